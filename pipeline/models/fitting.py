"""The estimators' fit without a Dask graph, and the solve of one member's output layer.

Small NumPy problems (the feature matrix of all rows below ``SMALL_FIT_BYTES``) skip the graph:
Dask's per-fit cost (graph construction, tokenising the pool, the scheduler) was most of a fit
of 500 × 10 data.  The in-process path runs the same kernels in the same order as the graph —
the weight blocks from the same seeds, the row blocks of ``default_chunk_rows`` reduced by
``reduce_block`` and merged pairwise as ``tsqr_factor`` does — so its result is bit-identical
(``tests/test_supervised.py`` checks it).  docs/design.md §3.2.1 and §4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.backend import COMPUTE_DTYPE
from pipeline.linalg import LeastSquaresFactor, merge_factors, pivoted_columns, reduce_block
from pipeline.models.regularisation import RidgeFactor, choose, loo_of_fit, relative_grid
from pipeline.nn import DenseLayer, SampledNetwork, child_seed

__all__ = ["LOO_ROWS", "MemberFit", "SMALL_FIT_BYTES", "default_widths", "factor_in_process",
           "leave_one_out_rows", "prune_network", "sample_in_process", "solve_member"]

#: Training rows of the leave-one-out error (and of the classifier's calibration) at most.
LOO_ROWS = 4096
#: Largest feature matrix ``[Φ | 1 | Y]`` (bytes) fitted in-process without a Dask graph.
SMALL_FIT_BYTES = 16 * 2**20


def default_widths(n_samples: int) -> tuple[int, ...]:
    """``hidden_layer_sizes='auto'``: one layer of ``min(512, 3 n_samples / 4)`` neurons.

    Wider than the data, a layer costs ``O(k³)`` in the solve, and on small data sets the
    ridge path did not profit: breast cancer (455 training rows, 5 seeds of 5-fold CV)
    scored m/4 neurons 0.974, m/2 0.975, 3m/4 0.980, m 0.979, at 20, 34 and 60 ms per fit
    for the last three (docs/design.md §3.2.1).  Explicit widths are used as given.
    """
    return (min(512, max(1, 3 * n_samples // 4)),)


def sample_in_process(x_pool, y_pool, *, widths, activation, sampler, seed, neurons_per_block) -> SampledNetwork:
    """:func:`pipeline.nn.sample_network` without the graph: the same blocks from the same seeds."""
    layers, inputs = [], x_pool
    for index, width in enumerate(widths):
        layer_seed = child_seed(seed, index)
        full, rest = divmod(int(width), neurons_per_block)
        sizes = [neurons_per_block] * full + ([rest] if rest else [])
        blocks = [
            sampler.sample_block(n, inputs, y_pool, np.random.default_rng(child_seed(layer_seed, j)), activation)
            for j, n in enumerate(sizes)
        ]
        curvature = np.concatenate([b[2] for b in blocks]) if len(blocks[0]) == 3 else None
        layer = DenseLayer(np.concatenate([b[0] for b in blocks], axis=0),
                           np.concatenate([b[1] for b in blocks], axis=0), activation, curvature)
        layers.append(layer)
        if index + 1 < len(widths):
            inputs = layer(inputs)
    return SampledNetwork(tuple(layers))


def factor_in_process(x, targets, network: SampledNetwork, rows: int) -> np.ndarray:
    """:func:`pipeline.linalg.tsqr_factor` of ``[Φ(x) | 1 | targets]`` without the graph."""
    width, n_out = network.width, targets.shape[1]
    level = []
    for start in range(0, x.shape[0], rows):
        stop = min(start + rows, x.shape[0])
        block = np.empty((stop - start, width + 1 + n_out), dtype=COMPUTE_DTYPE, order="F")
        network(np.asarray(x[start:stop], dtype=COMPUTE_DTYPE), out=block[:, :width])
        block[:, width] = 1.0
        block[:, width + 1:] = targets[start:stop]
        if not np.isfinite(block.sum()) and not np.isfinite(block).all():
            raise ValueError("the features of X (or y) contain NaN or infinity; clean the input before fitting")
        level.append(reduce_block(block, overwrite=True))
    while len(level) > 1:  # the binary tree of tsqr_factor (split_every=2)
        level = [merge_factors(level[i : i + 2]) for i in range(0, len(level), 2)]
    return level[0]


def prune_network(network: SampledNetwork, x_pool, tolerance: float, seed) -> SampledNetwork:
    """Keep the neurons a column-pivoted QR of a row sketch finds independent.

    The sketch is ``2 (width + 1)`` pool rows (a uniform sample of the data); the intercept
    column is eliminated first and always kept.
    """
    rng = np.random.default_rng(seed)
    n_rows = min(len(x_pool), 2 * (network.width + 1))
    rows = np.sort(rng.choice(len(x_pool), size=n_rows, replace=False))
    design = np.empty((n_rows, network.width + 1), dtype=COMPUTE_DTYPE, order="F")
    design[:, 0] = 1.0
    network(x_pool[rows], out=design[:, 1:])
    kept = pivoted_columns(np.linalg.qr(design, mode="r"), tolerance, keep_first=1)
    return network.select_features(kept[1:] - 1)


def leave_one_out_rows(n_pool: int, seed) -> np.ndarray:
    """Pool rows on which the leave-one-out error is evaluated: all, or ``LOO_ROWS`` at random.

    Exact leave-one-out over every row costs ``O(p k²)``, as much as the reduction itself;
    above ``LOO_ROWS`` rows a uniform sample estimates the same curve without bias.
    """
    if n_pool <= LOO_ROWS:
        return np.arange(n_pool)
    return np.sort(np.random.default_rng(seed).choice(n_pool, size=LOO_ROWS, replace=False))


@dataclass
class MemberFit:
    """One member's output layer and its diagnostics (see the estimators' attributes)."""

    coef: np.ndarray
    rank: int
    singular_values: np.ndarray
    residual_norms: np.ndarray
    ridge: np.ndarray  # λ per output (NaN: truncated SVD without ridge)
    path: np.ndarray | None = None
    loo_curve: np.ndarray | None = None
    gcv_curve: np.ndarray | None = None
    held_out: np.ndarray | None = None  # leave-one-out predictions of the pool rows


def solve_member(r, network, *, n_rows: int, rcond, ridge, x_rows, y_rows, shared: bool) -> MemberFit:
    """Solve the output layer from the factor ``r`` of ``[Φ | 1 | Y]``.

    ``ridge``: ``"auto"`` (λ per output — one for all if ``shared`` — minimising the
    leave-one-out error of the training rows ``(x_rows, y_rows)``), a number (ridge with an
    unpenalised intercept), or None (the truncated SVD of ``[Φ | 1]``, the intercept a column
    like the others).  ``held_out`` are the leave-one-out predictions of those rows.
    """
    width = network.width
    features = network(x_rows)
    if ridge is None:
        factor = LeastSquaresFactor(r, n_columns=width + 1, n_rows=n_rows)
        sol = factor.solve(rcond, None)
        loo = loo_of_fit(factor, sol.coef, features, y_rows, rcond)
        held_out = None if loo is None else y_rows - loo
        return MemberFit(sol.coef, sol.rank, sol.singular_values, sol.residual_norms,
                         np.full(y_rows.shape[1], np.nan), held_out=held_out)
    factor = RidgeFactor(r, width, n_rows, rcond)
    rows = factor.rows(features, y_rows)
    fit = MemberFit(None, int(np.count_nonzero(factor.keep)), factor.s, None, None)
    if isinstance(ridge, str):
        fit.path = factor.path(relative_grid(rcond))
        fit.loo_curve = factor.loo_curve(fit.path, rows)
        fit.gcv_curve = factor.gcv(fit.path)
        index = choose(fit.loo_curve.sum(axis=1, keepdims=True)) if shared else choose(fit.loo_curve)
        lam = np.broadcast_to(fit.path[index], (y_rows.shape[1],)).copy()
    else:
        lam = np.full(y_rows.shape[1], float(ridge))
    fit.ridge = lam
    fit.coef = factor.coef(lam)
    fit.residual_norms = np.sqrt(np.maximum(np.diagonal(factor.rss(lam)), 0.0))
    held_out = y_rows - factor.loo_residuals(lam, rows)
    fit.held_out = held_out if np.isfinite(held_out).all() else None
    return fit
