"""The estimators' automatic ridge, probabilities and in-process small fits, against
independently computed references (scikit-learn's Ridge / RidgeCV on the same features, a
direct SVD, scipy.optimize on the same held-out scores)."""

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.optimize
from dask.callbacks import Callback
from scipy.special import log_softmax
from sklearn.linear_model import Ridge, RidgeCV

from pipeline import SampledNetworkClassifier, SampledNetworkRegressor
from pipeline.models import fitting
from pipeline.nn import child_seed, draw_pool_indices, root_seed

EPS = np.finfo(float).eps


def _noisy(n, seed=0, outputs=2, noise=0.3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, 3))
    y = np.column_stack([np.sin(3 * x[:, 0]) * x[:, 1], x[:, 2] ** 2][:outputs])
    return x, y + noise * rng.standard_normal(y.shape)


def _features(model, x):
    return model.networks_[0](x)


def _tolerance(model, lam):
    """Relative rounding error of a ridge solve at λ: eps times its condition (s_0² + λ) / λ,
    with a safety factor for the O(k) operations that accumulate it."""
    s0 = model.singular_values_[0][0]
    return 1e3 * EPS * (s0 * s0 + lam) / lam


def test_auto_ridge_is_exact_leave_one_out_as_ridgecv():
    x, y = _noisy(300)
    model = SampledNetworkRegressor(120, random_state=0).fit(x, y)
    assert model.networks_[0].width == 120
    phi, path = _features(model, x), model.ridge_path_[0]
    s0 = model.singular_values_[0][0]
    # the λ where the solve is conditioned well enough to compare with scikit-learn's own SVD
    usable = path >= 1e-8 * s0 * s0
    reference = RidgeCV(alphas=path[usable], alpha_per_target=True, store_cv_results=True).fit(phi, y)
    loo = reference.cv_results_.mean(axis=0).T  # (n_alphas, n_outputs) mean squared LOO residual
    tol = _tolerance(model, path[usable].min())
    np.testing.assert_allclose(model.loo_curve_[0][usable], loo, rtol=tol)
    # the minimum lies inside the compared range and is RidgeCV's choice, per output
    assert np.all(model.ridge_[0] > path[usable].min()) and np.all(model.ridge_[0] < path[-1])
    np.testing.assert_array_equal(model.ridge_[0], reference.alpha_)
    # and the coefficients are those of Ridge on the features at that λ (intercept unpenalised)
    for j in range(2):
        ridge = Ridge(alpha=model.ridge_[0, j]).fit(phi, y[:, j])
        c = model.coef_[0][:, j]
        scale = np.abs(ridge.coef_).max()
        np.testing.assert_allclose(c[:-1], ridge.coef_, atol=_tolerance(model, model.ridge_[0, j]) * scale)
        assert c[-1] == pytest.approx(ridge.intercept_, abs=_tolerance(model, model.ridge_[0, j]) * scale * 10)
    assert model.residual_norm_[0] == pytest.approx(np.linalg.norm(model.predict(x) - y, axis=0), rel=1e-8)


def test_a_fixed_ridge_is_sklearn_ridge_on_the_features():
    x, y = _noisy(200, seed=1, outputs=1)
    model = SampledNetworkRegressor(60, ridge=0.5, rcond=None, random_state=1).fit(x, y[:, 0])
    ridge = Ridge(alpha=0.5).fit(_features(model, x), y[:, 0])
    tol = _tolerance(model, 0.5) * np.abs(ridge.coef_).max()
    np.testing.assert_allclose(model.coef_[0][:-1, 0], ridge.coef_, atol=tol)
    assert model.coef_[0][-1, 0] == pytest.approx(ridge.intercept_, abs=10 * tol)
    assert model.ridge_.tolist() == [[0.5]] and model.ridge_path_ is None and model.loo_curve_ is None


def test_gcv_curve_is_the_direct_formula():
    x, y = _noisy(150, seed=2, outputs=1)
    model = SampledNetworkRegressor(40, random_state=2).fit(x, y)
    phi = _features(model, x)
    centred = phi - phi.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    yc = y - y.mean(axis=0)
    path = model.ridge_path_[0]
    keep = s > 1e-10 * s[0]
    for lam, gcv in zip(path[::8], model.gcv_curve_[0][::8]):
        f = np.where(keep, s * s / (s * s + lam), 0.0)
        rss = np.sum((yc - u @ (f[:, None] * (u.T @ yc))) ** 2)
        expected = len(x) * rss / (len(x) - 1 - f.sum()) ** 2
        assert gcv[0] == pytest.approx(expected, rel=max(1e-8, _tolerance(model, lam)))


def test_leave_one_out_of_a_pool_sample_is_exact_for_those_rows(monkeypatch):
    monkeypatch.setattr(fitting, "LOO_ROWS", 100)
    x, y = _noisy(400, seed=3, outputs=1)
    model = SampledNetworkRegressor(50, pool_size=250, random_state=3).fit(x, y)
    root = root_seed(3)
    pool = draw_pool_indices(400, 250, child_seed(root, 0))
    rows = pool[fitting.leave_one_out_rows(250, child_seed(root, 3))]
    assert len(rows) == 100
    path = model.ridge_path_[0]
    usable = path >= 1e-8 * model.singular_values_[0][0] ** 2
    reference = RidgeCV(alphas=path[usable], store_cv_results=True).fit(_features(model, x), y[:, 0])
    expected = reference.cv_results_[rows].mean(axis=0)  # squared LOO residuals of those rows
    np.testing.assert_allclose(model.loo_curve_[0][usable, 0], expected, rtol=_tolerance(model, path[usable].min()))


def test_multi_output_gets_a_ridge_per_output_and_the_classifier_one():
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, size=(300, 2))
    y = np.column_stack([np.sin(np.pi * x[:, 0]), x[:, 1] + rng.standard_normal(300)])  # smooth / noise
    reg = SampledNetworkRegressor(100, random_state=4).fit(x, y)
    assert reg.ridge_[0, 0] < 1e-3 * reg.ridge_[0, 1]  # the noisy output is regularised far more
    clf = SampledNetworkClassifier(100, random_state=4).fit(x, np.digitize(x[:, 0] + x[:, 1], [-0.5, 0.5]))
    assert clf.ridge_.shape == (1, 3) and len(set(clf.ridge_[0])) == 1


def test_auto_width_is_three_quarters_of_the_samples_up_to_512_and_explicit_widths_are_kept():
    x, y = _noisy(100, seed=5, outputs=1)
    assert SampledNetworkRegressor(random_state=5).fit(x, y[:, 0]).networks_[0].width == 75
    assert SampledNetworkRegressor(random_state=5).fit(*_noisy(1000, outputs=1)).networks_[0].width == 512
    wide = SampledNetworkRegressor((150, 150), random_state=5).fit(x, y[:, 0])  # wider than the data
    assert [layer.width for layer in wide.networks_[0].layers] == [150, 150]
    assert wide.ridge_[0, 0] > 0 and np.isfinite(wide.predict(x)).all()  # regularised, not interpolated


def test_probabilities_are_a_calibrated_softmax_of_the_scores():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 2))
    labels = np.array(["a", "b", "c"])[np.digitize(x[:, 0] + 0.3 * rng.normal(size=300), [-0.5, 0.5])]
    clf = SampledNetworkClassifier(60, random_state=6).fit(x, labels)
    proba, log_proba = clf.predict_proba(x), clf.predict_log_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(log_proba, np.log(proba), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(x), clf.classes_[np.argmax(proba, axis=1)])
    np.testing.assert_array_equal(np.argmax(clf.decision_function(x), axis=1), np.argmax(proba, axis=1))
    # (a, b) minimise the smoothed log-loss of the leave-one-out scores: redo it with scipy
    phi, onehot = _features(clf, x), (labels[:, None] == clf.classes_).astype(float)
    held_out = RidgeCV(alphas=[clf.ridge_[0, 0]], scoring="neg_mean_squared_error",
                       store_cv_results=True).fit(phi, onehot).cv_results_[:, :, 0]
    m = len(x)
    targets = (m * onehot + 1) / (m + 3)

    def loss(theta):
        z = theta[0] * held_out + np.concatenate([[0.0], theta[1:]])
        return -np.sum(targets * log_softmax(z, axis=1))

    best = scipy.optimize.minimize(loss, np.array([1.0, 0.0, 0.0]), method="BFGS", options={"gtol": 1e-10})
    assert clf.calibration_scale_ > 0
    np.testing.assert_allclose([clf.calibration_scale_, *clf.calibration_bias_[1:]], best.x, rtol=1e-4, atol=1e-4)
    assert loss(np.array([clf.calibration_scale_, *clf.calibration_bias_[1:]])) <= best.fun + 1e-8


def test_binary_decision_function_is_the_log_odds():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    clf = SampledNetworkClassifier(40, random_state=7).fit(x, y)
    d = clf.decision_function(x)
    assert d.shape == (200,)
    np.testing.assert_allclose(clf.predict_proba(x)[:, 1], 1 / (1 + np.exp(-d)), rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(x), (d > 0).astype(int))
    # uninformative scores: the scale stays positive and the probabilities near the class shares
    noise = SampledNetworkClassifier(40, random_state=7).fit(rng.normal(size=(200, 3)), y)
    assert noise.calibration_scale_ > 0
    assert abs(noise.predict_proba(x)[:, 1].mean() - y.mean()) < 0.15


def test_probabilities_of_dask_input_are_lazy_and_equal():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(400, 2))
    y = (np.hypot(x[:, 0], x[:, 1]) > 1).astype(int)
    clf = SampledNetworkClassifier(50, random_state=8).fit(x, y)
    dx = da.from_array(x, chunks=150)
    for method in ("predict_proba", "predict_log_proba", "decision_function", "predict"):
        lazy = getattr(clf, method)(dx)
        assert isinstance(lazy, da.Array)
        np.testing.assert_allclose(lazy.compute(), getattr(clf, method)(x), rtol=1e-12, atol=1e-12)


class _Graphs(Callback):
    def __init__(self):
        super().__init__()
        self.count = 0

    def _start(self, dsk):
        self.count += 1


@pytest.mark.parametrize("kwargs", [
    dict(hidden_layer_sizes=70),
    dict(hidden_layer_sizes=(30, 40), sampler="aswim", n_members=2),
    dict(hidden_layer_sizes=64, chunk_rows=60, prune=1e-12),  # several row blocks, merged pairwise
    dict(hidden_layer_sizes=50, sampler="elm", ridge=None),
])
def test_small_fits_run_in_process_and_equal_the_graph_path(kwargs, monkeypatch):
    x, y = _noisy(250, seed=9, outputs=1)
    labels = (y[:, 0] > np.median(y)).astype(int)
    with dask.config.set(scheduler="threads"):
        watcher = _Graphs()
        with watcher:
            small = SampledNetworkRegressor(random_state=9, **kwargs).fit(x, y[:, 0])
            small_clf = SampledNetworkClassifier(random_state=9, **kwargs).fit(x, labels)
        assert watcher.count == 0  # no Dask graph ran
        monkeypatch.setattr(fitting, "SMALL_FIT_BYTES", -1)
        graph = SampledNetworkRegressor(random_state=9, **kwargs).fit(x, y[:, 0])
        graph_clf = SampledNetworkClassifier(random_state=9, **kwargs).fit(x, labels)
    for a, b in ((small, graph), (small_clf, graph_clf)):
        for net_a, net_b in zip(a.networks_, b.networks_, strict=True):
            for la, lb in zip(net_a.layers, net_b.layers, strict=True):
                np.testing.assert_array_equal(la.weights, lb.weights)
                np.testing.assert_array_equal(la.biases, lb.biases)
        for ca, cb in zip(a.coef_, b.coef_, strict=True):
            np.testing.assert_array_equal(ca, cb)
        np.testing.assert_array_equal(a.ridge_, b.ridge_)
    np.testing.assert_array_equal(small_clf.predict_proba(x), graph_clf.predict_proba(x))


@pytest.mark.parametrize("ridge", ["gcv", "AUTO", -1.0, True])
def test_bad_ridge_names_itself(ridge):
    x, y = _noisy(50, outputs=1)
    with pytest.raises(ValueError, match="ridge"):
        SampledNetworkRegressor(8, ridge=ridge).fit(x, y[:, 0])


def test_supervised_workflows_take_ridge_auto(tmp_path):
    from pipeline.config import ConfigError, load_workflow
    from pipeline.workflows.runner import run_workflow

    overrides = ["model.ridge=auto", "model.hidden_layer_sizes=128", "data.n_train=1500", "data.n_test=500",
                 "data.noise=0.05", "ensemble.members=1"]
    cfg, raw = load_workflow("workflows/regression_ensemble.yaml", overrides)
    assert cfg["model"]["ridge"] == "auto"
    metrics = run_workflow(cfg, raw, output=str(tmp_path / "auto.zarr"), scheduler="synchronous", quiet=True)
    assert metrics["rel_l2"] < 0.05  # noise 0.05 on a unit-size target, regularised, not interpolated
    with pytest.raises(ConfigError, match="model.ridge must be 'auto'"):
        load_workflow("workflows/regression_ensemble.yaml", ["model.ridge=gcv"])


@pytest.mark.slow
def test_defaults_reach_the_issue_targets_in_5_fold_cv():
    """Issue 17's accuracy targets with every default (benchmarks/supervised.py times them)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cases = [(load_diabetes, SampledNetworkRegressor, KFold, "r2", 0.48),
             (load_breast_cancer, SampledNetworkClassifier, StratifiedKFold, "accuracy", 0.97),
             (load_digits, SampledNetworkClassifier, StratifiedKFold, "accuracy", 0.98)]
    for loader, estimator, folds, scoring, target in cases:
        x, y = loader(return_X_y=True)
        scores = cross_validate(make_pipeline(StandardScaler(), estimator(random_state=0)), x, y,
                                cv=folds(5, shuffle=True, random_state=0), scoring=scoring)["test_score"]
        assert scores.mean() >= target, (loader.__name__, scores.mean())
