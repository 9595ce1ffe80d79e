"""Sampled-network regression and classification with the scikit-learn estimator API.

The hidden layers are sampled (ELM, SWIM, U-SWIM or A-SWIM), layer by layer, from a pool of
training points; the linear output layer (with an intercept) is a ridge solution whose λ is
chosen by exact leave-one-out from the SVD the solve already has (``ridge="auto"``, the
default; :mod:`pipeline.models.regularisation`), computed from the factor of the row-block
TSQR, so ``X`` may be a Dask array with millions of rows that is never gathered: only the pool
(``pool_size`` rows) and the small triangular factors travel.  Small NumPy problems are fitted
in-process with the same kernels and no Dask graph (:mod:`pipeline.models.fitting`).  The
classifier's probabilities are a softmax of its scores fitted to their leave-one-out values
(:mod:`pipeline.models.calibration`).  With ``n_members > 1`` the estimator is an ensemble of
independently sampled networks whose ``predict`` returns the mean and, on request, the spread.
"""

from __future__ import annotations

import numbers

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from pipeline.backend import COMPUTE_DTYPE
from pipeline.cluster import blas_limited, compute
from pipeline.linalg import check_regularisation, default_chunk_rows, tsqr_factor
from pipeline.models import fitting
from pipeline.models.calibration import calibrated_logits, fit_softmax_calibration, probabilities
from pipeline.nn import (
    SWIMSampler,
    child_seed,
    draw_pool_indices,
    feature_matrix,
    get_activation,
    get_sampler,
    root_seed,
    sample_network,
)
from pipeline.nn.assembly import as_row_chunked

__all__ = ["SampledNetworkClassifier", "SampledNetworkRegressor"]


class _SampledNetworkEstimator(BaseEstimator):
    """Shared fitting machinery; see the two public estimators for the parameters."""

    def __init__(
        self,
        hidden_layer_sizes="auto",
        *,
        activation="tanh",
        sampler="swim",
        rcond=1e-10,
        ridge="auto",
        n_members=1,
        random_state=None,
        pool_size=20_000,
        neurons_per_block=256,
        chunk_rows=None,
        prune=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.sampler = sampler
        self.rcond = rcond
        self.ridge = ridge
        self.n_members = n_members
        self.random_state = random_state
        self.pool_size = pool_size
        self.neurons_per_block = neurons_per_block
        self.chunk_rows = chunk_rows
        self.prune = prune

    # ------------------------------------------------------------------ parameters
    def _widths(self) -> tuple[int, ...] | None:
        """The widths, or None for ``'auto'`` (set from the number of samples)."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, str) and sizes == "auto":
            return None
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            sizes = None
        if not sizes or not all(
            isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1 for w in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be 'auto', a positive int or a non-empty sequence of "
                f"positive ints (one width per hidden layer), got {self.hidden_layer_sizes!r}"
            )
        return tuple(int(w) for w in sizes)

    def _check_params(self):
        """Validate every parameter before any data is touched."""
        widths = self._widths()
        activation = get_activation(self.activation)
        sampler = get_sampler(self.sampler)
        if isinstance(self.ridge, str):
            if self.ridge != "auto":
                raise ValueError(f"ridge must be 'auto', a non-negative float or None, got {self.ridge!r}")
            check_regularisation(self.rcond, None)
        else:
            check_regularisation(self.rcond, self.ridge)
        if self.rcond is None and self.ridge is None:
            raise ValueError("set rcond (truncated SVD) or ridge (Tikhonov), or both; both are None")
        for key in ("n_members", "pool_size", "neurons_per_block"):
            value = getattr(self, key)
            minimum = 2 if key == "pool_size" else 1
            if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum):
                raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r}")
        if self.chunk_rows is not None and not (
            isinstance(self.chunk_rows, numbers.Integral) and self.chunk_rows >= 1
        ):
            raise ValueError(f"chunk_rows must be None (automatic) or a positive integer, got {self.chunk_rows!r}")
        if self.prune is not None and not (
            isinstance(self.prune, (float, np.floating)) and 0.0 < self.prune < 1.0
        ):
            raise ValueError(
                "prune must be None (keep every neuron) or a relative pivot tolerance in (0, 1) "
                f"such as 1e-12, got {self.prune!r}"
            )
        return widths, activation, sampler

    # ------------------------------------------------------------------ input handling
    def _check_dask_input(self, X, y=None, *, reset: bool):
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got a Dask array of shape {X.shape}")
        if any(np.isnan(c) for c in X.chunks[0]):
            raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
        if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
            raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input"
            )
        if y is not None:
            if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"y must be 1-D or 2-D with one row per sample of X ({X.shape[0]}), got shape {y.shape}"
                )
        return X.astype(COMPUTE_DTYPE)

    # ------------------------------------------------------------------ fitting
    def _fit_targets(self, X, targets, *, shared_ridge: bool = False):
        """Sample the networks and solve the output layers; ``targets`` is 2-D float.

        Returns the leave-one-out rows ``(x, y)`` and the members' fits (their held-out
        predictions of those rows).
        """
        widths, activation, sampler = self._check_params()
        n_samples, n_outputs = X.shape[0], targets.shape[1]
        if isinstance(sampler, SWIMSampler) and n_samples < 2:
            raise ValueError(
                f"SWIM sampling needs pairs of points, got n_samples = {n_samples}; "
                "provide at least 2 samples or use sampler='elm'"
            )
        widths = widths or fitting.default_widths(n_samples)
        n_columns = widths[-1] + 1 + n_outputs
        rows = self.chunk_rows or default_chunk_rows(n_columns, n_samples)
        in_process = (isinstance(X, np.ndarray) and isinstance(targets, np.ndarray)
                      and 8 * n_samples * n_columns <= fitting.SMALL_FIT_BYTES)
        root = root_seed(self.random_state)
        pool_idx = draw_pool_indices(n_samples, self.pool_size, child_seed(root, 0))
        if in_process:
            x_pool, y_pool = X[pool_idx], targets[pool_idx]
        else:
            X, targets = as_row_chunked(X, rows), as_row_chunked(targets, rows, name="y")
            x_pool, y_pool = (np.asarray(a) for a in compute(X[pool_idx], targets[pool_idx]))
        if not (np.isfinite(x_pool).all() and np.isfinite(y_pool).all()):
            raise ValueError("X or y contains NaN or infinity; clean the data before fitting")
        # Seed tree: (0) the pool, (1, member, pass, layer, block) the weights, (2, member,
        # pass) the pruning sketch, (3) the leave-one-out rows.
        loo_rows = fitting.leave_one_out_rows(len(x_pool), child_seed(root, 3))
        x_loo, y_loo = x_pool[loo_rows], y_pool[loo_rows]
        member_seeds = [child_seed(root, 1, m) for m in range(self.n_members)]
        sampling = dict(widths=widths, activation=activation, sampler=sampler, neurons_per_block=self.neurons_per_block)

        networks, fits = None, None
        for pass_index, values in enumerate(sampler.passes):
            if values == "fitted":
                pool_values = [self._member_output(net, fit.coef, x_pool) for net, fit in zip(networks, fits)]
            else:
                pool_values = [y_pool if values == "data" else None] * self.n_members
            seeds = [child_seed(seed, pass_index) for seed in member_seeds]
            if in_process:
                networks = [fitting.sample_in_process(x_pool, yv, seed=s, **sampling)
                            for s, yv in zip(seeds, pool_values)]
            else:
                networks = list(compute(*[sample_network(x_pool, yv, seed=s, **sampling)
                                          for s, yv in zip(seeds, pool_values)]))
            if self.prune is not None:
                networks = [
                    fitting.prune_network(net, x_pool, self.prune, child_seed(root, 2, member, pass_index))
                    for member, net in enumerate(networks)
                ]
            if in_process:
                factors = [fitting.factor_in_process(X, targets, net, rows) for net in networks]
            else:
                factors = compute(*[
                    tsqr_factor(feature_matrix(X, net, intercept=True, append=targets),
                                name="the features of X (or y)", overwrite_blocks=True)
                    for net in networks
                ])
            fits = [
                fitting.solve_member(r, net, n_rows=n_samples, rcond=self.rcond, ridge=self.ridge,
                                     x_rows=x_loo, y_rows=y_loo, shared=shared_ridge)
                for r, net in zip(factors, networks)
            ]

        self.networks_ = networks
        self.coef_ = [f.coef for f in fits]
        self.rank_ = np.array([f.rank for f in fits])
        self.singular_values_ = [f.singular_values for f in fits]
        self.residual_norm_ = np.stack([f.residual_norms for f in fits])
        self.ridge_ = np.stack([f.ridge for f in fits])
        auto = fits[0].path is not None
        self.ridge_path_ = np.stack([f.path for f in fits]) if auto else None
        self.loo_curve_ = np.stack([f.loo_curve for f in fits]) if auto else None
        self.gcv_curve_ = np.stack([f.gcv_curve for f in fits]) if auto else None
        self.n_outputs_ = n_outputs
        return x_loo, y_loo, fits

    @staticmethod
    def _member_output(network, coef, x):
        return network(x) @ coef[:-1] + coef[-1]

    # ------------------------------------------------------------------ prediction
    def _member_outputs_block(self, x):
        """``(n_members, rows, n_outputs)`` network outputs on one block of points."""
        x = np.asarray(x, dtype=COMPUTE_DTYPE)
        return np.stack([self._member_output(net, c, x) for net, c in zip(self.networks_, self.coef_)])

    def _ensemble(self, X, return_std: bool):
        """Mean (and spread) over members of the raw outputs, ``(n_samples, n_outputs)``."""
        check_is_fitted(self, "coef_")
        if isinstance(X, da.Array):
            X = self._check_dask_input(X, reset=False)
            if X.numblocks[1] != 1:
                X = X.rechunk({1: -1})
            outputs = X.map_blocks(
                self._member_outputs_block,
                chunks=((self.n_members,), X.chunks[0], (self.n_outputs_,)),
                new_axis=0,
                dtype=COMPUTE_DTYPE,
            )
        else:
            X = validate_data(self, X, reset=False, dtype=COMPUTE_DTYPE)
            rows = self.chunk_rows or default_chunk_rows(self.networks_[0].width, X.shape[0])
            outputs = np.concatenate(
                [self._member_outputs_block(X[i : i + rows]) for i in range(0, X.shape[0], rows)] or
                [np.empty((self.n_members, 0, self.n_outputs_))],
                axis=1,
            )
        mean = outputs.mean(axis=0)
        if not return_std:
            return mean, None
        if self.n_members > 1:
            return mean, outputs.std(axis=0, ddof=1)
        return mean, outputs[0] * 0.0


class SampledNetworkRegressor(RegressorMixin, _SampledNetworkEstimator):
    """Regression with a sampled (SWIM/ELM) neural network.

    Parameters
    ----------
    hidden_layer_sizes : 'auto', int or tuple of int, default='auto'
        Width of each hidden layer; deep networks are sampled layer by layer.  ``'auto'``:
        one layer of ``min(512, 3 n_samples // 4)`` neurons (docs/design.md §3.2.1).
    activation : {'tanh', 'sin', 'relu', 'logistic'} or Activation, default='tanh'
    sampler : {'swim', 'uswim', 'aswim', 'elm'} or sampler instance, default='swim'
        How hidden weights are drawn: SWIM (pairs drawn by the target's finite-difference
        gradient), U-SWIM (pairs drawn uniformly), A-SWIM (U-SWIM, then SWIM on the fitted
        values), ELM (Gaussian weights, uniform biases; see :class:`pipeline.nn.ELMSampler`).
    rcond : float in (0, 1) or None, default=1e-10
        Truncation of the output-layer solve: singular values below ``rcond * s_max`` are cut.
    ridge : 'auto', float >= 0 or None, default='auto'
        ``'auto'``: ridge with the λ (per output) of least exact leave-one-out error of the
        training rows (all of them up to 4096, else 4096 pool rows at random), from a path of
        λ / s_max² from ``rcond²`` (1e-20 at least) to 100, four per decade.  A float: that λ.  Both leave the intercept
        unpenalised (``sklearn.linear_model.Ridge`` on the features).  None: the truncated
        SVD of ``[Φ | 1]`` alone (the solve of ``pipeline.linalg.lstsq``).
    n_members : int, default=1
        Ensemble size: independently sampled networks, averaged by ``predict``.
    random_state : int, RandomState, Generator or None, default=None
        Root seed; members, layers and weight blocks draw from children of it.
    pool_size : int, default=20000
        Training points from which SWIM draws candidate pairs (and the leave-one-out rows);
        the rest only enter the least-squares solve.
    neurons_per_block : int, default=256
        Neurons per independently seeded weight block (part of the result's identity).
    chunk_rows : int or None, default=None
        Rows per block of the least-squares reduction (None: automatic, blocks of up to ~256 MiB).
    prune : float in (0, 1) or None, default=None
        Drop neurons of the last hidden layer that are numerically dependent on the others
        before the solve: a column-pivoted QR of the features on a sketch of ``2 (width + 1)``
        pool rows keeps neurons while their pivot exceeds ``prune`` times the first.  Sampled
        layers are highly redundant (2048 tanh neurons on 2-D data keep ~820 at 1e-12), and
        the least-squares cost falls with the square of the kept width; choose ``prune``
        well below ``rcond`` (1e-12 with rcond 1e-10).  None keeps every neuron.

    Attributes
    ----------
    networks_ : list of SampledNetwork, one per member (pruned if ``prune`` is set)
    coef_ : list of ndarray (width_m + 1, n_outputs), one per member
        Output weights; the last row is the intercept.
    rank_ : ndarray (n_members,)
        Singular values kept by the output-layer solve.
    singular_values_ : list of ndarray, one per member
        Of the centred features (``width_m``; with ``ridge=None`` of ``[Φ | 1]``, ``width_m + 1``).
    residual_norm_ : ndarray (n_members, n_outputs)
        Training residual ``||Φ c - y||`` per output, read off the TSQR factor.
    ridge_ : ndarray (n_members, n_outputs)
        The λ of each member and output (NaN with ``ridge=None``).
    ridge_path_ : ndarray (n_members, n_path) or None
        The λ tried by ``ridge='auto'`` (None otherwise).
    loo_curve_, gcv_curve_ : ndarray (n_members, n_path, n_outputs) or None
        Mean squared leave-one-out residual of the leave-one-out rows, and the generalised
        cross-validation ``m RSS / (m - dof)²``, along ``ridge_path_``.
    n_features_in_, feature_names_in_, n_outputs_
    """

    @blas_limited
    def fit(self, X, y):
        """Sample the hidden layers and solve the output layer; ``X``/``y`` NumPy or Dask."""
        self._check_params()
        if isinstance(X, da.Array) or isinstance(y, da.Array):
            X = self._check_dask_input(da.asarray(X), da.asarray(y), reset=True)
            y = da.asarray(y).astype(COMPUTE_DTYPE)
        else:
            X, y = validate_data(
                self, X, y, dtype=COMPUTE_DTYPE, multi_output=True, y_numeric=True,
                ensure_min_samples=2 if isinstance(get_sampler(self.sampler), SWIMSampler) else 1,
            )
        self._y_1d = y.ndim == 1
        self._fit_targets(X, y[:, None] if y.ndim == 1 else y)
        return self

    @blas_limited
    def predict(self, X, return_std: bool = False):
        """Ensemble mean; with ``return_std`` also the standard deviation over members.

        A Dask ``X`` gives lazy Dask results with the same row chunks.
        """
        mean, std = self._ensemble(X, return_std)
        if self._y_1d:
            mean = mean[:, 0]
            std = None if std is None else std[:, 0]
        return (mean, std) if return_std else mean

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class SampledNetworkClassifier(ClassifierMixin, _SampledNetworkEstimator):
    """Classification with a sampled network: ridge on one-hot targets, calibrated by softmax.

    Takes the parameters of :class:`SampledNetworkRegressor` (``ridge='auto'`` chooses one λ
    for all classes: the least summed leave-one-out error).  SWIM draws pairs of points with
    different labels (``max |Δ one-hot| / ||Δx||``).  The ensemble-mean scores ``s`` become
    logits ``a s + b``, with ``a > 0`` and ``b`` fitted to the leave-one-out scores of the
    training rows (Platt scaling for two classes; docs/design.md §3.2.1): ``predict_proba`` is their
    softmax, ``decision_function`` the logits (for two classes the log-odds of
    ``classes_[1]``), ``predict`` the class of the largest.

    Attributes are those of the regressor plus ``classes_``, ``calibration_scale_`` (``a``)
    and ``calibration_bias_`` (``b``, ``(n_classes,)``).
    """

    @blas_limited
    def fit(self, X, y):
        """Sample the hidden layers and solve for one-hot targets; ``X``/``y`` NumPy or Dask."""
        self._check_params()
        if isinstance(X, da.Array) or isinstance(y, da.Array):
            X = self._check_dask_input(da.asarray(X), da.asarray(y), reset=True)
            y = da.asarray(y)
            if y.ndim != 1:
                raise ValueError(f"y must be 1-D class labels, got shape {y.shape}")
            self.classes_ = np.asarray(compute(da.unique(y))[0])
            check_classification_targets(self.classes_)
            onehot = y.map_blocks(_one_hot, self.classes_, new_axis=1,
                                  chunks=(y.chunks[0], (len(self.classes_),)), dtype=COMPUTE_DTYPE)
        else:
            X, y = validate_data(
                self, X, y, dtype=COMPUTE_DTYPE,
                ensure_min_samples=2 if isinstance(get_sampler(self.sampler), SWIMSampler) else 1,
            )
            check_classification_targets(y)
            self.classes_ = np.unique(y)
            onehot = _one_hot(y, self.classes_)
        x_rows, y_rows, fits = self._fit_targets(X, onehot, shared_ridge=True)
        # held-out scores of the leave-one-out rows where defined, else the fit's own
        held_out = np.mean([f.held_out if f.held_out is not None else self._member_output(net, f.coef, x_rows)
                            for f, net in zip(fits, self.networks_)], axis=0)
        self.calibration_scale_, self.calibration_bias_ = fit_softmax_calibration(
            held_out, np.argmax(y_rows, axis=1), len(self.classes_))
        return self

    def _logits(self, X):
        scores, _ = self._ensemble(X, return_std=False)
        return calibrated_logits(scores, self.calibration_scale_, self.calibration_bias_)

    @blas_limited
    def decision_function(self, X):
        """Logits ``(n_samples, n_classes)``; for two classes the log-odds ``(n_samples,)``."""
        logits = self._logits(X)
        if len(self.classes_) == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    @blas_limited
    def predict(self, X):
        logits = self._logits(X)
        if isinstance(logits, da.Array):
            return logits.argmax(axis=1).map_blocks(lambda i: self.classes_[i], dtype=self.classes_.dtype)
        return self.classes_[np.argmax(logits, axis=1)]

    @blas_limited
    def predict_proba(self, X):
        """Class probabilities ``(n_samples, n_classes)`` in the order of ``classes_``."""
        return self._probabilities(X, log=False)

    @blas_limited
    def predict_log_proba(self, X):
        """Logarithms of :meth:`predict_proba`, computed stably."""
        return self._probabilities(X, log=True)

    def _probabilities(self, X, log: bool):
        logits = self._logits(X)
        if isinstance(logits, da.Array):
            return logits.map_blocks(probabilities, log=log, dtype=COMPUTE_DTYPE)
        return probabilities(logits, log=log)


def _one_hot(y, classes):
    return (np.asarray(y)[:, None] == classes[None, :]).astype(COMPUTE_DTYPE)
