"""The scikit-learn estimators: API conformance, accuracy, ensembles, Dask input, bad input."""

import dask
import dask.array as da
import numpy as np
import pytest
from dask.callbacks import Callback
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import rel_l2, sin_cos
from pipeline import SampledNetworkClassifier, SampledNetworkRegressor
from pipeline.nn import ELMSampler, SWIMSampler


@parametrize_with_checks([SampledNetworkRegressor(), SampledNetworkClassifier()])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def sin_cos_data():
    rng = np.random.default_rng(0)
    x, xt = rng.uniform(-1, 1, size=(10_000, 2)), rng.uniform(-1, 1, size=(10_000, 2))
    return x, sin_cos(x), xt, sin_cos(xt)


def test_regressor_accuracy_512_tanh_on_10k_points(sin_cos_data):
    x, y, xt, yt = sin_cos_data
    model = SampledNetworkRegressor(512, activation="tanh", random_state=0).fit(x, y)
    assert rel_l2(model.predict(xt), yt) < 1e-5
    assert model.coef_[0].shape == (513, 1) and 0 < model.rank_[0] <= 513
    assert model.residual_norm_[0, 0] == pytest.approx(np.linalg.norm(model.predict(x) - y), rel=1e-6)


@pytest.mark.parametrize("sampler", ["uswim", "aswim", "elm"])
def test_other_samplers_are_accurate(sin_cos_data, sampler):
    x, y, xt, yt = sin_cos_data
    model = SampledNetworkRegressor(512, sampler=sampler, random_state=1).fit(x[:4000], y[:4000])
    assert rel_l2(model.predict(xt), yt) < 1e-4


def test_aswim_resamples_with_the_fitted_function(sin_cos_data):
    x, y, *_ = sin_cos_data
    uswim = SampledNetworkRegressor(64, sampler="uswim", random_state=3).fit(x[:2000], y[:2000])
    aswim = SampledNetworkRegressor(64, sampler="aswim", random_state=3).fit(x[:2000], y[:2000])
    assert not np.array_equal(uswim.networks_[0].layers[0].weights, aswim.networks_[0].layers[0].weights)


def test_deep_network_is_sampled_layer_by_layer(sin_cos_data):
    x, y, xt, yt = sin_cos_data
    model = SampledNetworkRegressor((128, 256), random_state=0).fit(x[:4000], y[:4000])
    assert [layer.width for layer in model.networks_[0].layers] == [128, 256]
    assert model.networks_[0].layers[1].input_dim == 128
    assert rel_l2(model.predict(xt), yt) < 1e-2


def test_ensemble_mean_and_spread(sin_cos_data):
    x, y, xt, yt = sin_cos_data
    ens = SampledNetworkRegressor(128, n_members=4, random_state=5).fit(x[:3000], y[:3000])
    mean, std = ens.predict(xt, return_std=True)
    members = np.stack([ens._member_output(n, c, xt)[:, 0] for n, c in zip(ens.networks_, ens.coef_)])
    np.testing.assert_allclose(mean, members.mean(0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(std, members.std(0, ddof=1), rtol=1e-6, atol=1e-10)
    assert np.all(std > 0)
    # members are distinct networks
    assert not np.array_equal(ens.networks_[0].layers[0].weights, ens.networks_[1].layers[0].weights)
    # the first member is the network a one-member fit with the same seed draws
    single = SampledNetworkRegressor(128, n_members=1, random_state=5).fit(x[:3000], y[:3000])
    np.testing.assert_array_equal(single.networks_[0].layers[0].weights, ens.networks_[0].layers[0].weights)


def test_multi_output_regression(sin_cos_data):
    x, y, xt, yt = sin_cos_data
    targets = np.column_stack([y, np.cos(x[:, 0] + x[:, 1])])
    model = SampledNetworkRegressor(256, random_state=0).fit(x[:4000], targets[:4000])
    pred = model.predict(xt)
    assert pred.shape == (len(xt), 2)
    assert rel_l2(pred[:, 1], np.cos(xt[:, 0] + xt[:, 1])) < 1e-5


def test_classifier_on_spirals_with_string_labels():
    from pipeline.datasets import make_dataset

    x, y, _ = make_dataset("spirals", 6000, seed=0)
    xt, yt, _ = make_dataset("spirals", 2000, seed=1)
    labels = np.array(["inner", "outer"])
    clf = SampledNetworkClassifier(256, random_state=0).fit(x, labels[y])
    assert list(clf.classes_) == ["inner", "outer"]
    assert np.mean(clf.predict(xt) == labels[yt]) > 0.99
    assert clf.decision_function(xt).shape == (2000,)


def test_clone_and_grid_search_respect_every_parameter(sin_cos_data):
    x, y, *_ = sin_cos_data
    x, y = x[:1500], y[:1500]
    non_default = dict(
        hidden_layer_sizes=(40, 30), activation="sin", sampler=ELMSampler(weight_scale=2.0),
        rcond=1e-6, ridge=1e-8, n_members=2, random_state=7, pool_size=300,
        neurons_per_block=16, chunk_rows=500, prune=1e-13,
    )
    assert set(non_default) == set(SampledNetworkRegressor().get_params())
    model = clone(SampledNetworkRegressor(**non_default))
    assert model.get_params() == non_default
    model.fit(x, y)
    assert [layer.width for layer in model.networks_[0].layers] == [40, 30]
    assert model.networks_[0].layers[0].activation.name == "sin"
    assert [c.shape for c in model.coef_] == [(31, 1), (31, 1)]
    w = model.networks_[0].layers[0].weights
    assert abs(w.std() - 2.0) < 0.5  # ELM with the given scale

    search = GridSearchCV(
        SampledNetworkRegressor(random_state=0),
        {"hidden_layer_sizes": [8, 64], "sampler": ["swim", SWIMSampler(mode="uniform")], "rcond": [1e-3, 1e-10]},
        cv=2,
    ).fit(x, y)
    assert search.best_params_["hidden_layer_sizes"] == 64
    assert search.best_params_["rcond"] == 1e-10
    assert search.best_estimator_.coef_[0].shape == (65, 1)
    widths = [p["hidden_layer_sizes"] for p in search.cv_results_["params"]]
    assert sorted(set(widths)) == [8, 64]


class _LargestResult(Callback):
    """Record the size of every task result the scheduler sees."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        size = getattr(result, "nbytes", 0)
        if isinstance(result, (list, tuple)):
            size = sum(getattr(r, "nbytes", 0) for r in result)
        self.largest = max(self.largest, size)


def test_dask_input_is_never_gathered():
    n = 1_000_000
    x = da.random.default_rng(0).uniform(-1, 1, size=(n, 2), chunks=(100_000, 2))
    y = da.sin(np.pi * x[:, 0]) * da.cos(np.pi * x[:, 1])
    watcher = _LargestResult()
    with watcher, dask.config.set(scheduler="threads"):
        model = SampledNetworkRegressor(128, random_state=0, pool_size=5000, chunk_rows=100_000).fit(x, y)
        pred = model.predict(x[:20_000])
        assert isinstance(pred, da.Array)
        truth = y[:20_000].compute()
        assert rel_l2(pred.compute(), truth) < 1e-3
    whole_design = n * (128 + 2) * 8  # features, intercept and target of every row
    assert watcher.largest <= whole_design / 8  # no task ever held more than about one row chunk
    # and numpy and dask inputs give the same network on the same data
    xs, ys = x[:30_000].compute(), y[:30_000].compute()
    a = SampledNetworkRegressor(32, random_state=1).fit(xs, ys)
    b = SampledNetworkRegressor(32, random_state=1).fit(da.from_array(xs, chunks=7000), da.from_array(ys, chunks=7000))
    np.testing.assert_array_equal(a.networks_[0].layers[0].weights, b.networks_[0].layers[0].weights)
    np.testing.assert_allclose(a.coef_[0], b.coef_[0], rtol=1e-8, atol=1e-8 * np.abs(a.coef_[0]).max())


def test_classifier_with_dask_labels():
    from pipeline.datasets import make_dataset

    x, y, _ = make_dataset("spirals", 4000, seed=2)
    clf = SampledNetworkClassifier(128, random_state=0).fit(da.from_array(x, chunks=1000), da.from_array(y, chunks=1000))
    pred = clf.predict(da.from_array(x, chunks=1000))
    assert isinstance(pred, da.Array)
    assert np.mean(pred.compute() == y) > 0.98


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(hidden_layer_sizes=0), "hidden_layer_sizes"),
        (dict(hidden_layer_sizes=(10, -1)), "hidden_layer_sizes"),
        (dict(activation="gelu"), "unknown activation"),
        (dict(sampler="sgd"), "unknown sampler"),
        (dict(rcond=0.0), "rcond"),
        (dict(rcond=-1.0), "rcond"),
        (dict(ridge=-2.0), "ridge"),
        (dict(ridge="gcv"), "ridge"),
        (dict(rcond=None, ridge=None), "rcond"),
        (dict(n_members=0), "n_members"),
        (dict(pool_size=1), "pool_size"),
        (dict(prune=1.5), "prune"),
        (dict(prune=0), "prune"),
    ],
)
def test_bad_parameters_name_themselves(params, match):
    x = np.random.default_rng(0).uniform(size=(50, 2))
    with pytest.raises(ValueError, match=match):
        SampledNetworkRegressor(**params).fit(x, x[:, 0])


def test_bad_data_is_rejected_with_a_clear_message():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(100, 2)), rng.uniform(size=100)
    bad = x.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SampledNetworkRegressor(16).fit(bad, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SampledNetworkRegressor(16).fit(x, y[:50])
    with pytest.raises(ValueError, match="1 sample"):
        SampledNetworkRegressor(16).fit(x[:1], y[:1])
    dx = da.from_array(bad, chunks=25)
    with pytest.raises(ValueError, match="NaN"):
        SampledNetworkRegressor(16, pool_size=10).fit(dx, da.from_array(y, chunks=25))
    with pytest.raises(ValueError, match="one row per sample"):
        SampledNetworkRegressor(16).fit(da.from_array(x, chunks=25), da.from_array(y[:60], chunks=25))
    model = SampledNetworkRegressor(16, random_state=0).fit(x, y)
    with pytest.raises(ValueError, match="3 features"):
        model.predict(rng.uniform(size=(5, 3)))


def test_pruning_keeps_accuracy_with_far_fewer_neurons(sin_cos_data):
    x, y, xt, yt = sin_cos_data
    # the truncated SVD alone (ridge=None): pruning is judged at the cut-off it must stay below
    full = SampledNetworkRegressor(1024, random_state=2, rcond=1e-11, ridge=None).fit(x, y)
    pruned = SampledNetworkRegressor(1024, random_state=2, rcond=1e-11, ridge=None, prune=1e-13).fit(x, y)
    kept = pruned.networks_[0].width
    assert kept < 0.8 * 1024  # redundant neurons are dropped ...
    full_error, pruned_error = rel_l2(full.predict(xt), yt), rel_l2(pruned.predict(xt), yt)
    assert pruned_error < 3 * full_error  # ... at (nearly) the same accuracy
    # the kept neurons are neurons of the sampled layer
    w_full, w_pruned = full.networks_[0].layers[0].weights, pruned.networks_[0].layers[0].weights
    assert all(any(np.array_equal(row, other) for other in w_full) for row in w_pruned[:20])
