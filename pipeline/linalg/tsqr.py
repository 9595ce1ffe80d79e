"""R-only tall-skinny QR of ``[A | B]`` over row blocks (docs/design.md §3.2).

Each row block of the augmented matrix ``M = diag(w) [A | B]`` is reduced to a triangular
factor as soon as it is built (inside the same task, so the block is freed at once), and the
factors are merged up a tree.  The root ``R̃`` holds everything a least-squares solve needs:

    R̃ = [[R, Z],       R = triangular factor of A,  Z = Qᵀ B,
         [0, ρ]]       ρ = triangular factor of the part of B outside range(A).

Only ``(n + k)²`` numbers per block travel; the tall matrix is never stored.  The factor is
unique up to the signs of its rows, which no quantity derived from it depends on.

Kernels dispatch on the array namespace: NumPy blocks use LAPACK's triangular–pentagonal QR
(``dtpqrt``, called without the GIL), which reduces ``[R; block]`` without refactoring the
zeros below ``R``; CuPy
blocks (and anything else with ``linalg.qr``) stack and call ``qr(mode="r")``.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from pipeline.backend import COMPUTE_DTYPE, namespace_of
from pipeline.linalg._lapack import tpqrt

__all__ = ["augmented_block", "merge_factors", "reduce_block", "tsqr_factor"]

#: Panel width of the blocked triangular-pentagonal QR (measured fastest on OpenBLAS).
_PANEL = 64


def augmented_block(a, b=None, w=None, *, name: str = "A"):
    """``diag(w) [a | b]`` as one Fortran-ordered float64 block, checked for NaN/inf."""
    xp = namespace_of(a)
    a = xp.asarray(a, dtype=COMPUTE_DTYPE)
    if a.ndim == 1:
        a = a[:, None]
    parts = [a]
    if b is not None:
        b = xp.asarray(b, dtype=COMPUTE_DTYPE)
        parts.append(b[:, None] if b.ndim == 1 else b)
    n_cols = sum(p.shape[1] for p in parts)
    m = xp.empty((a.shape[0], n_cols), dtype=COMPUTE_DTYPE, order="F")
    start = 0
    for p in parts:
        m[:, start : start + p.shape[1]] = p
        start += p.shape[1]
    if w is not None:
        m *= xp.asarray(w, dtype=COMPUTE_DTYPE).reshape(-1, 1)
    _check_finite(m, name)
    return m


def _check_finite(m, name):
    xp = namespace_of(m)
    # One reduction instead of a block-sized boolean temporary; a non-finite sum is confirmed
    # entry-wise (finite entries can overflow the sum).
    if not bool(xp.isfinite(xp.sum(m))) and not bool(xp.isfinite(m).all()):
        raise ValueError(
            f"{name} (or its right-hand side / row weights) contains NaN or infinity in rows "
            "of this block; clean the input before solving"
        )


def reduce_block(m, *, overwrite: bool = False):
    """Triangular factor (``n × n``, ``n = m.shape[1]``) of one row block.

    With ``overwrite`` the block's memory may be reused as LAPACK workspace (the TSQR leaves
    own their blocks, so they pass it and save a copy).
    """
    xp = namespace_of(m)
    n = m.shape[1]
    if m.shape[0] == 0:
        return xp.zeros((n, n), dtype=COMPUTE_DTYPE)
    if xp is np:
        block = np.asfortranarray(m, dtype=COMPUTE_DTYPE)
        if block is m and not overwrite:
            block = m.copy(order="F")
        return tpqrt(0, _PANEL, np.zeros((n, n), dtype=COMPUTE_DTYPE, order="F"), block)
    return _reduce_stacked(m)


def merge_factors(factors):
    """Triangular factor of the row-stack of several triangular factors."""
    factors = list(factors)
    if len(factors) == 1:
        return factors[0]
    if namespace_of(factors[0]) is np:
        n = factors[0].shape[1]
        r = np.array(factors[0], dtype=COMPUTE_DTYPE, order="F", copy=True)
        for other in factors[1:]:
            tpqrt(n, _PANEL, r, np.array(other, dtype=COMPUTE_DTYPE, order="F", copy=True))
        return r
    return _merge_stacked(factors)


def _reduce_stacked(m):
    """Generic kernel (CuPy and any namespace with ``linalg.qr``): QR of the block itself."""
    xp = namespace_of(m)
    return _pad_rows(xp.linalg.qr(m, mode="r"), m.shape[1])


def _merge_stacked(factors):
    """Generic kernel: QR of the stacked factors."""
    xp = namespace_of(factors[0])
    return _pad_rows(xp.linalg.qr(xp.concatenate(factors, axis=0), mode="r"), factors[0].shape[1])


def _pad_rows(r, n):
    xp = namespace_of(r)
    if r.shape[0] == n:
        return r
    out = xp.zeros((n, n), dtype=r.dtype)
    out[: r.shape[0]] = r
    return out


def _leaf(a, b, w, name, owned):
    xp = namespace_of(a)
    if owned and b is None and w is None and a.dtype == COMPUTE_DTYPE and a.ndim == 2 and (
        a.flags.f_contiguous if xp is np else True
    ):
        _check_finite(a, name)
        return reduce_block(a, overwrite=True)
    return reduce_block(augmented_block(a, b, w, name=name), overwrite=True)


def _as_row_blocks(x, rows, name):
    """Delayed row blocks of ``x`` aligned to the row ``chunks`` (or Nones when x is None)."""
    if x is None:
        return [None] * len(rows)
    if not isinstance(x, da.Array):
        x = da.from_array(np.asarray(x), chunks=(rows,) + (-1,) * (np.ndim(x) - 1))
    if x.shape[0] != sum(rows):
        raise ValueError(
            f"{name} has {x.shape[0]} rows but A has {sum(rows)}: they must have the same "
            "number of rows"
        )
    x = x.rechunk((rows,) + (-1,) * (x.ndim - 1))
    return list(x.to_delayed().ravel())


def tsqr_factor(
    a: da.Array,
    b=None,
    row_weights=None,
    *,
    split_every: int = 2,
    name: str = "A",
    overwrite_blocks: bool = False,
):
    """A Delayed triangular factor ``R̃`` of ``diag(row_weights) [a | b]``.

    ``a`` is a Dask array chunked along rows only (it is rechunked to one column chunk);
    ``b`` (right-hand sides, 1-D or 2-D) and ``row_weights`` (1-D) may be Dask or NumPy
    arrays with the same number of rows.  ``overwrite_blocks`` declares that the blocks of
    ``a`` are built by the graph itself (not views of the caller's data), so the leaves may
    factor them in place instead of copying (with ``b`` and ``row_weights`` absent; append
    right-hand sides to ``a`` with ``feature_matrix(..., append=b)``).  Nothing is computed
    here: the returned Delayed is part of one graph, and the scheduler is chosen when it is
    computed.

    ``split_every`` factors are merged per task.  Merging is sequential pair by pair whatever
    the fan-in (``merge_factors``), so the binary tree of the default does the same arithmetic
    as a wider one, has more parallelism, and holds fewer factors while it waits: depth-first,
    at most one pending factor per level (``log2`` of the leaves) against ``split_every - 1``
    per level.  At 4000 columns (128 MB factors) and 200 leaves: ~1.1 GB of waiting factors
    against ~2.5 GB at ``split_every=8`` (docs/design.md §3.2).
    """
    if not isinstance(a, da.Array):
        raise TypeError("tsqr_factor expects a Dask array; use pipeline.linalg.lstsq for NumPy input")
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    if split_every < 2:
        raise ValueError(f"split_every must be at least 2, got {split_every}")
    if a.numblocks[1] != 1:
        a = a.rechunk({1: -1})
    rows = a.chunks[0]
    leaves = [
        dask.delayed(_leaf, pure=True)(ab, bb, wb, name, overwrite_blocks)
        for ab, bb, wb in zip(
            a.to_delayed().ravel(),
            _as_row_blocks(b, rows, "the right-hand side B"),
            _as_row_blocks(row_weights, rows, "row_weights"),
            strict=True,
        )
    ]
    level = leaves
    while len(level) > 1:
        level = [
            dask.delayed(merge_factors, pure=True)(level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    return level[0]
