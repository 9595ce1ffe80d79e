"""Least-squares solutions read off the small TSQR factor (docs/design.md §3.2).

With ``R = U S Vᵀ`` (the SVD of the ``n × n`` triangular factor of ``A``) and ``Z = Qᵀ B``,

    truncated SVD:  x = V_k S_k⁻¹ U_kᵀ Z,   keeping s_i > rcond · s_0,
    ridge:          x = V diag(s / (s² + λ)) Uᵀ Z,

which equals ``scipy.linalg.lstsq(A, B, cond=rcond)`` (same singular values and right
vectors) although ``A`` was never stored whole.  Every filter uses the same SVD, so a whole
regularisation path costs one small SVD.  The residual of any filtered solution is exact:

    ||A x - b_j||² = ||ρ_j||² + Σ_i (1 - f_i)² (Uᵀ z_j)_i²,

with ``f_i`` the filter factors and ``ρ`` the part of ``B`` outside the range of ``A``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from functools import cached_property

import dask.array as da
import numpy as np
import scipy.linalg

from pipeline.backend import COMPUTE_DTYPE, to_host
from pipeline.cluster import large_dense_step
from pipeline.linalg.tsqr import tsqr_factor

__all__ = ["LeastSquaresFactor", "LeastSquaresSolution", "check_regularisation", "lstsq"]


def check_regularisation(rcond, ridge) -> None:
    """Raise a ValueError naming ``rcond`` or ``ridge`` when either is out of range."""
    if rcond is not None:
        if isinstance(rcond, bool) or not isinstance(rcond, (int, float, np.floating)):
            raise ValueError(f"rcond must be a float in (0, 1), got {rcond!r}")
        if not (0.0 < float(rcond) < 1.0):
            raise ValueError(
                f"rcond must lie in (0, 1) (singular values below rcond * s_max are cut), "
                f"got {rcond!r}"
            )
    if ridge is not None:
        if isinstance(ridge, bool) or not isinstance(ridge, (int, float, np.floating)):
            raise ValueError(f"ridge must be a non-negative float, got {ridge!r}")
        if not (math.isfinite(float(ridge)) and float(ridge) >= 0.0):
            raise ValueError(f"ridge must be a finite, non-negative float, got {ridge!r}")


@dataclass(frozen=True)
class LeastSquaresSolution:
    """A solution with its diagnostics.

    Attributes:
        coef: ``(n, k)`` coefficients (``(n,)`` for a single right-hand side).
        rank: number of singular values kept by the filter.
        singular_values: all singular values of ``diag(w) A``, descending.
        residual_norms: ``||diag(w) (A x - b_j)||`` per right-hand side, read off the factor.
        rhs_norms: ``||diag(w) b_j||`` per right-hand side.
        rcond, ridge: the filter that produced the solution.
    """

    coef: np.ndarray
    rank: int
    singular_values: np.ndarray
    residual_norms: np.ndarray
    rhs_norms: np.ndarray
    rcond: float | None
    ridge: float | None

    @property
    def relative_residuals(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.rhs_norms > 0, self.residual_norms / self.rhs_norms, 0.0)

    @property
    def condition_number(self) -> float:
        s = self.singular_values
        return float(s[0] / s[-1]) if s[-1] > 0 else math.inf


@dataclass
class LeastSquaresFactor:
    """The root TSQR factor ``R̃`` of ``[A | B]``, split and decomposed on the host.

    Args:
        r: the ``(n + k) × (n + k)`` triangular factor (NumPy or CuPy).
        n_columns: ``n``, the number of columns of ``A``.
        n_rows: rows of ``A`` (for the default cutoff); optional.
        vector_rhs: ``B`` was 1-D, so solutions are returned 1-D.
    """

    r: np.ndarray
    n_columns: int
    n_rows: int | None = None
    vector_rhs: bool = False
    _svd: tuple = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.r = np.triu(to_host(self.r).astype(COMPUTE_DTYPE, copy=False))
        if self.r.ndim != 2 or self.r.shape[0] != self.r.shape[1] or self.r.shape[0] < self.n_columns:
            raise ValueError(f"r must be square with at least n_columns rows, got {self.r.shape}")

    @property
    def n_rhs(self) -> int:
        return self.r.shape[0] - self.n_columns

    @cached_property
    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(U, s, Vᵀ)`` of the ``n × n`` factor of ``A``."""
        n = self.n_columns
        r = self.r[:n, :n]
        # O(n³) on one core is minutes at n = 4000: where the task has the machine, use it
        with large_dense_step() if n >= 1000 else contextlib.nullcontext():
            try:
                return scipy.linalg.svd(r, lapack_driver="gesdd", check_finite=False)
            except np.linalg.LinAlgError:  # divide and conquer failed to converge: use QR iteration
                return scipy.linalg.svd(r, lapack_driver="gesvd", check_finite=False)

    @property
    def singular_values(self) -> np.ndarray:
        return self.svd[1]

    def default_rcond(self) -> float:
        """NumPy's default cutoff: machine epsilon times the larger dimension."""
        return float(np.finfo(COMPUTE_DTYPE).eps * max(self.n_rows or 0, self.n_columns))

    def filter_factors(self, rcond=None, ridge=None) -> np.ndarray:
        """``f_i`` such that ``x = V diag(f / s) Uᵀ Z`` (0 where a direction is dropped)."""
        check_regularisation(rcond, ridge)
        s = self.singular_values
        if rcond is None and ridge is None:
            rcond = self.default_rcond()
        if s.size == 0 or s[0] == 0.0:  # no column, or all zero: nothing to keep
            return np.zeros(s.shape, dtype=COMPUTE_DTYPE)
        keep = s > (rcond * s[0] if rcond is not None else 0.0)
        f = keep.astype(COMPUTE_DTYPE)
        if ridge:
            f *= s * s / (s * s + ridge)
        return f

    def solve(self, rcond=None, ridge=None) -> LeastSquaresSolution:
        """Solve with a truncated SVD (``rcond``), ridge (``ridge``), or both.

        With neither, the cutoff defaults to ``eps * max(m, n)`` as in NumPy.
        """
        n = self.n_columns
        u, s, vt = self.svd
        f = self.filter_factors(rcond, ridge)
        z = self.r[:n, n:]
        uz = u.T @ z
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(f > 0, f / np.where(s > 0, s, 1.0), 0.0)
        coef = vt.T @ (scale[:, None] * uz)
        rho = self.r[n:, n:]
        residual = np.sqrt(np.sum(rho * rho, axis=0) + np.sum(((1.0 - f)[:, None] * uz) ** 2, axis=0))
        rhs_norms = np.sqrt(np.sum(z * z, axis=0) + np.sum(rho * rho, axis=0))
        if self.vector_rhs:
            coef = coef[:, 0]
        return LeastSquaresSolution(
            coef=coef,
            rank=int(np.count_nonzero(f)),
            singular_values=s,
            residual_norms=residual,
            rhs_norms=rhs_norms,
            rcond=rcond,
            ridge=ridge,
        )


def lstsq(
    a,
    b,
    *,
    rcond=None,
    ridge=None,
    row_weights=None,
    chunk_rows: int | None = None,
    split_every: int = 2,
) -> LeastSquaresSolution:
    """Solve ``min ||diag(w) (A x - b)||`` by TSQR and a truncated-SVD or ridge filter.

    ``a`` may be a NumPy or a Dask array (rows chunked; a Dask array is never gathered, only
    its small factor travels); ``b`` is 1-D or 2-D with the same number of rows.  The factor is
    computed with whatever scheduler is active (one BLAS thread per worker, see
    :func:`pipeline.cluster.compute`).  For many solves on one factor use
    :func:`factorize` and :meth:`LeastSquaresFactor.solve`.
    """
    factor = factorize(a, b, row_weights=row_weights, chunk_rows=chunk_rows, split_every=split_every)
    return factor.solve(rcond=rcond, ridge=ridge)


def factorize(a, b, *, row_weights=None, chunk_rows: int | None = None, split_every: int = 2) -> LeastSquaresFactor:
    """Compute the TSQR factor of ``[A | B]`` (see :func:`lstsq` for the arguments)."""
    from pipeline.cluster import compute

    if a.ndim != 2:
        raise ValueError(f"A must be 2-D, got shape {a.shape}")
    if b.ndim not in (1, 2):
        raise ValueError(f"B must be 1-D or 2-D, got shape {b.shape}")
    if b.shape[0] != a.shape[0]:
        raise ValueError(f"A has {a.shape[0]} rows but B has {b.shape[0]}: they must agree")
    if row_weights is not None and (np.ndim(row_weights) != 1 or row_weights.shape[0] != a.shape[0]):
        raise ValueError(
            f"row_weights must be 1-D with one weight per row of A ({a.shape[0]}), "
            f"got shape {np.shape(row_weights)}"
        )
    if not isinstance(a, da.Array):
        a = np.asarray(a)
        rows = chunk_rows or default_chunk_rows(
            a.shape[1] + (1 if b.ndim == 1 else b.shape[1]), a.shape[0]
        )
        a = da.from_array(a, chunks=(rows, -1))
    elif chunk_rows is not None:
        a = a.rechunk({0: chunk_rows, 1: -1})
    (r,) = compute(tsqr_factor(a, b, row_weights, split_every=split_every))
    return LeastSquaresFactor(r, n_columns=a.shape[1], n_rows=a.shape[0], vector_rhs=b.ndim == 1)


#: Target size of one row block of the augmented matrix: large enough that the per-block
#: triangular merge (~n³) is small next to the block's own QR (~rows · n²), small enough that
#: a few blocks per worker fit in memory.
BLOCK_BYTES = 256 * 2**20


def default_chunk_rows(n_columns: int, n_rows: int | None = None) -> int:
    """Rows per block so that a block of ``n_columns`` float64 columns is at most ~256 MiB.

    With ``n_rows`` known, blocks are also cut so that there are about four of them (work for
    every core), but never below ``4 n_columns`` rows (merge overhead stays below ~8%) or 256.
    """
    rows = BLOCK_BYTES // (8 * max(n_columns, 1))
    if n_rows:
        rows = min(rows, -(-n_rows // 4))
    return int(max(rows, 4 * n_columns, 256))
