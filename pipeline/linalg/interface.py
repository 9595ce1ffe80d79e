"""The interface system of a partitioned least-squares problem (docs/design.md §3.6).

After each subdomain's rows are orthogonalised by its own factor (``z_i`` the coefficients in
the local left singular basis), the normal equations of the whole problem read ``N z = h`` with
``N = I - Σ_f (E_fᵀ F_j + F_jᵀ E_f)`` — the identity on every block (the local rows and traces
are orthonormal there) coupled only through the faces: an interface row ``F_i z_i - F_j z_j``
between neighbours ``i`` and ``j`` adds ``-F_iᵀ F_j`` to block ``(i, j)``.  ``N`` is symmetric
positive semi-definite with ``‖N‖ ≤ 2``; its smallest eigenvalue is the global coupling.

Two solvers, both with memory linear in the number of blocks:

* ``cg``: conjugate gradients with ``N`` applied face by face (two small GEMVs a face),
  preconditioned by a coarse space when the blocks bring one (two-level additive Schwarz: the
  modes of small eigenvalues solved together, the rest is the identity already),
* ``direct``: ``N`` assembled as a sparse matrix and factored by SuperLU (exact; its fill grows
  faster than linearly on 2-D and 3-D grids, so it suits up to a few ten thousand unknowns).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Coupling", "InterfaceSystem"]

#: ``auto`` factors directly up to this many unknowns, then iterates (8 × 8 boxes, 16 700
#: unknowns: LU 12 s, conjugate gradients with the coarse space 2.5 s)
DIRECT_LIMIT = 3_000


@dataclass(frozen=True)
class Coupling:
    """The rows ``F_lower z_lower - F_upper z_upper`` of one face (``(m, r_lower)``, ``(m, r_upper)``)."""

    lower: int
    upper: int
    f_lower: np.ndarray
    f_upper: np.ndarray


@dataclass
class InterfaceSystem:
    """``N z = h`` over blocks of ``sizes`` unknowns coupled by ``couplings``."""

    sizes: list[int]
    couplings: list[Coupling]
    #: per block ``(r_i, p)``: vectors of the coarse space (the smooth global modes), or None
    coarse: list[np.ndarray] | None = None
    offsets: np.ndarray = field(init=False)

    def __post_init__(self):
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        for c in self.couplings:
            if c.f_lower.shape != (c.f_lower.shape[0], self.sizes[c.lower]) or \
                    c.f_upper.shape != (c.f_lower.shape[0], self.sizes[c.upper]):
                raise ValueError(f"coupling ({c.lower}, {c.upper}) has shapes {c.f_lower.shape}, {c.f_upper.shape} "
                                 f"for blocks of {self.sizes[c.lower]} and {self.sizes[c.upper]} unknowns")

    @property
    def n(self) -> int:
        return int(self.offsets[-1])

    def block(self, z, i):
        return z[self.offsets[i]:self.offsets[i + 1]]

    def matvec(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float).ravel()
        y = z.copy()
        for c in self.couplings:
            lo, up = slice(self.offsets[c.lower], self.offsets[c.lower + 1]), \
                slice(self.offsets[c.upper], self.offsets[c.upper + 1])
            y[lo] -= c.f_lower.T @ (c.f_upper @ z[up])
            y[up] -= c.f_upper.T @ (c.f_lower @ z[lo])
        return y

    def _coarse_preconditioner(self):
        """``M⁻¹ = I + Z (Zᵀ N Z)⁻¹ Zᵀ``: the two-level additive preconditioner (the block-diagonal
        part of ``N`` is the identity already; ``Z``, block-diagonal, holds the modes of small
        eigenvalues, and ``Zᵀ N Z`` is sparse like ``N`` and factored once by SuperLU)."""
        import scipy.sparse.linalg as spla

        z_blocks = self.coarse
        p = np.concatenate([[0], np.cumsum([zb.shape[1] for zb in z_blocks])]).astype(np.int64)
        entries = [(i, i, zb.T @ zb) for i, zb in enumerate(z_blocks)]
        for c in self.couplings:
            g_lo, g_up = c.f_lower @ z_blocks[c.lower], c.f_upper @ z_blocks[c.upper]
            entries += [(c.lower, c.upper, -(g_lo.T @ g_up)), (c.upper, c.lower, -(g_up.T @ g_lo))]
        coarse = _block_matrix(entries, p)
        del entries
        # Zᵀ N Z is symmetric positive definite: a symmetric ordering (0.74× the fill of COLAMD)
        # and pivots kept on the diagonal, so the ordering's fill is what SuperLU gets; with
        # partial pivoting the LU of 20 × 20 boxes (43 000 unknowns) took 122 s and 2.1 GB
        # instead of 10 s and 0.75 GB (docs/design.md §3.6)
        lu = spla.splu(coarse, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.001,
                       options={"SymmetricMode": True})
        del coarse

        def apply(v):
            v = np.asarray(v, dtype=float).ravel()
            zt = np.concatenate([zb.T @ self.block(v, i) for i, zb in enumerate(z_blocks)])
            y = lu.solve(zt)
            out = v.copy()
            for i, zb in enumerate(z_blocks):
                out[self.offsets[i]:self.offsets[i + 1]] += zb @ y[p[i]:p[i + 1]]
            return out

        return apply

    def matrix(self):
        """``N`` as a SciPy CSC matrix."""
        import scipy.sparse as sp

        entries = []
        for c in self.couplings:
            block = -(c.f_lower.T @ c.f_upper)
            entries += [(c.lower, c.upper, block), (c.upper, c.lower, block.T)]
        return (sp.identity(self.n, format="csc") + _block_matrix(entries, self.offsets)).tocsc()

    def solve(self, h: np.ndarray, method: str = "auto", rtol: float = 1e-12, maxiter: int | None = None):
        """``(z, info)``: the solution and ``{"method", "iterations", "residual"}`` (relative)."""
        import scipy.sparse.linalg as spla

        if method not in ("auto", "cg", "direct"):
            raise ValueError(f"interface solver must be 'auto', 'cg' or 'direct', got {method!r}")
        h = np.asarray(h, dtype=float)
        if method == "auto":
            method = "direct" if self.n <= DIRECT_LIMIT else "cg"
        norm = float(np.linalg.norm(h)) or 1.0
        if method == "direct":
            z = spla.splu(self.matrix()).solve(h)
            iterations = 0
        else:
            count = [0]

            def step(_):
                count[0] += 1

            operator = spla.LinearOperator((self.n, self.n), matvec=self.matvec, dtype=float)
            coarse = self.coarse is not None and sum(zb.shape[1] for zb in self.coarse) > 0
            m = None if not coarse else spla.LinearOperator((self.n, self.n),
                                                                      matvec=self._coarse_preconditioner(), dtype=float)
            z, status = spla.cg(operator, h, rtol=rtol, atol=0.0, maxiter=maxiter or 20 * self.n, callback=step, M=m)
            iterations = count[0]
            if status > 0:
                residual = float(np.linalg.norm(self.matvec(z) - h)) / norm
                raise RuntimeError(f"the interface system did not converge in {iterations} conjugate-gradient "
                                   f"iterations (relative residual {residual:.1e}); use interface_solver 'direct' "
                                   "or fewer subdomains")
        residual = float(np.linalg.norm(self.matvec(z) - h)) / norm
        return z, {"method": method, "iterations": iterations, "residual": residual}


def _block_matrix(entries, offsets):
    """A square CSC matrix of dense blocks ``(i, j, block)`` at rows/columns ``offsets[i]`` and
    ``offsets[j]``; blocks at the same place add up (a box glued to itself by a periodic face).

    Written straight into CSC arrays (8 bytes of value and 4 of row index an entry): COO
    triplets with 64-bit indices and SciPy's conversion took 1.2 GB on top for the 0.27 GB
    coarse matrix of 20 × 20 boxes (docs/design.md §3.6).
    """
    import scipy.sparse as sp

    offsets = np.asarray(offsets, dtype=np.int64)
    n, sizes = int(offsets[-1]), np.diff(offsets)
    summed = {}
    for i, j, block in entries:  # keyed (column, row): sorted, the blocks come in CSC order
        key = (int(j), int(i))
        summed[key] = summed[key] + block if key in summed else np.asarray(block, dtype=float)
    height = np.zeros(len(sizes), dtype=np.int64)  # rows held by each block column
    for j, i in summed:
        height[j] += sizes[i]
    nnz = int(height @ sizes)
    index = np.int32 if max(n, nnz) < 2**31 else np.int64
    data, indices, indptr = np.empty(nnz), np.empty(nnz, dtype=index), np.zeros(n + 1, dtype=index)
    indptr[1:] = np.cumsum(np.repeat(height, sizes))
    for j, column in itertools.groupby(sorted(summed), key=lambda key: key[0]):
        column = [i for _, i in column]
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1], dtype=index) for i in column])
        start, width = int(indptr[offsets[j]]), int(sizes[j])
        indices[start:start + width * len(rows)] = np.tile(rows, width)
        out = data[start:start + width * len(rows)].reshape(width, len(rows))  # the columns' values, row-major
        for i, row in zip(column, np.cumsum([0] + [sizes[i] for i in column[:-1]]), strict=True):
            out[:, row:row + sizes[i]] = summed.pop((j, i)).T
    return sp.csc_matrix((data, indices, indptr), shape=(n, n))
