"""Row-block kernels of the time-dependent projection (docs/design.md §3.3).

Each kernel turns one block of packed rows ``[x | w]`` (NumPy, or CuPy on a device) into rows of
a matrix the projection reduces or reads: ``[M | K | F]``, the fit rows, the reduced
``D̂_α = (∂^α Ψ) coefficient_map``.  ``row_blocks`` makes the Dask array of blocks, ``tree``
merges per-block results in groups (as the TSQR does).

A projection's initial fit of at most :data:`SMALL_BYTES` of rows skips the graph:
:func:`reduce_in_process` reduces the same blocks with the same kernels in the same tree, so the
factor is bit-identical (as the estimators' small fits, docs/design.md §3.2.1).
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from pipeline.backend import COMPUTE_DTYPE, namespace_for, namespace_of, to_host
from pipeline.linalg import merge_factors, reduce_block
from pipeline.linalg.tsqr import augmented_block
from pipeline.pde.operators import derivative, identity
from pipeline.pde.static import operator_rows

__all__ = ["SMALL_BYTES", "alpha_operator", "fit_rows", "in_process", "interior_rows", "reduce_in_process",
           "reduced_rows", "row_blocks", "tree"]

#: Largest matrix of rows (bytes) that a fit reduces in this process, without a graph.
SMALL_BYTES = 16 * 2**20


def in_process(n_rows: int, n_columns: int, device: str) -> bool:
    """Whether rows of this size are reduced in this process (host arrays, at most :data:`SMALL_BYTES`)."""
    return device == "cpu" and 8 * n_rows * n_columns <= SMALL_BYTES


def reduce_in_process(blocks, name: str = "the collocation rows"):
    """The factor ``tsqr_factor(..., overwrite_blocks=True)`` computes of these host row blocks (an
    iterable, consumed one block at a time), without a graph: each block checked and reduced, the
    factors merged pairwise in the same binary tree — the same arithmetic in the same order."""
    level = [reduce_block(augmented_block(block, name=name), overwrite=True) for block in blocks]
    while len(level) > 1:
        level = [merge_factors(level[i : i + 2]) for i in range(0, len(level), 2)]
    return level[0]


def interior_rows(packed, network, operator, lift, source, t0, dim):
    """``[w Ψ N | w (LΨ) N | w f(t0)]`` of one block of ``packed = [x | w]`` (``N``: the lift).

    ``t0`` an array ``[times; to_coefficients]`` (``(1 + q) × nodes``): the forcing columns are those
    of a series in time instead, ``w f(x, times) @ to_coefficientsᵀ`` (``pipeline.pde.projection``).
    """
    xp = namespace_of(packed)
    x, w = packed[:, :dim], packed[:, dim]
    psi, lpsi = operator_rows(identity(1.0), network, x), operator_rows(operator, network, x)
    if lift is not None:
        lift = xp.asarray(lift)
        psi, lpsi = psi @ lift, lpsi @ lift
    m = psi.shape[1]
    series = np.ndim(t0) == 2
    out = xp.empty((x.shape[0], 2 * m + (len(t0) - 1 if series else 1)), dtype=COMPUTE_DTYPE, order="F")
    out[:, :m] = psi * w[:, None]
    out[:, m : 2 * m] = lpsi * w[:, None]
    if source is None:
        out[:, 2 * m :] = 0.0
    elif not series:
        out[:, 2 * m] = w * xp.asarray(source(to_host(x), t0), dtype=COMPUTE_DTYPE)
    else:  # one evaluation of f per node time
        host = to_host(x)
        values = np.stack([np.asarray(source(host, float(t)), dtype=COMPUTE_DTYPE) for t in t0[0]], axis=1)
        out[:, 2 * m :] = w[:, None] * xp.asarray(values @ t0[1:].T)
    return out


def reduced_rows(packed, network, cmap, alphas, dim):
    """``D̂_α`` rows (``(∂^α Ψ) N V_k S_k⁻¹``) of one block, host arrays: ``{alpha: (n, k)}``."""
    xp = namespace_of(packed)
    x, cmap = packed[:, :dim], xp.asarray(cmap)
    return {alpha: to_host(operator_rows(alpha_operator(alpha), network, x) @ cmap) for alpha in alphas}


def fit_rows(packed, network, cmap, dim):
    """``[E | values]`` of one block of ``packed = [x | values]`` (``E = Ψ N V_k S_k⁻¹``)."""
    xp = namespace_of(packed)
    e = operator_rows(identity(1.0), network, packed[:, :dim]) @ xp.asarray(cmap)
    out = xp.empty((e.shape[0], e.shape[1] + 1), dtype=COMPUTE_DTYPE, order="F")
    out[:, :-1] = e
    out[:, -1] = packed[:, dim]
    return out


def alpha_operator(alpha):
    return identity(1.0) if sum(alpha) == 0 else derivative(alpha)


def row_blocks(packed: np.ndarray, chunk: int, device: str) -> da.Array:
    blocks = da.from_array(packed, chunks=(max(min(chunk, len(packed)), 1), -1))
    if device == "cpu":
        return blocks
    xp = namespace_for(device)
    return blocks.map_blocks(xp.asarray, dtype=COMPUTE_DTYPE, meta=xp.empty((0, 0)))


def tree(parts, merge, *args, split_every=8):
    while len(parts) > 1:
        parts = [dask.delayed(merge, pure=True)(parts[i : i + split_every], *args)
                 for i in range(0, len(parts), split_every)]
    return parts[0]
