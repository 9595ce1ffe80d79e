"""Projected nonlinear terms of the reduced ODE, exact or hyper-reduced (docs/design.md §3.3.1).

The projected nonlinear term of a time block is ``g(y) = M̂_Xᵀ W N(u)`` with ``u_α = D̂_α y`` at
the interior collocation rows: every right-hand side touches all ``n`` rows (``O(n k)``).

Hyper-reduction evaluates ``N`` at ``m ≪ n`` rows ``P`` only.  ``N(u, ∂^α u)`` is fitted in the span
of the fields it is made of, ``V = [D̂_0 | D̂_α …]`` (the values and the derivatives ``N`` reads),
from its values at ``P`` (discrete empirical interpolation, ``N ≈ V (V[P])⁺ N_P``), so

    g(y) ≈ C N_P,     C = [G_0 | G_α …] (V[P])⁺,    G_α = M̂_Xᵀ W D̂_α = D̂_0ᵀ W² D̂_α

(``M̂_X = W D̂_0``; the Grams are sums over the row blocks).  The span of ``D̂_0`` alone is not
enough where the solution is steep: Burgers' ``u u_x`` at t = 0.7 leaves 1.3e-2 of its norm
outside it and 4e-6 outside ``[D̂_0 | D̂_1]``, and the projected term's error at 650 of 2000
rows is 8e-3 against 7e-6.  The rows ``P`` come from column-pivoted QR of ``Vᵀ`` (Q-DEIM, each
part scaled to unit RMS), repeated on the rows left over until ``m = oversampling · columns of
V`` are chosen; over row blocks the choice is a tournament (each block nominates its own rows,
the nominees are chosen among again), so no process holds more than a block and the nominees.  A right-hand side then costs ``O(m k)``, and
its Jacobian ``C Σ_α diag(∂N/∂u_α) D̂_α[P]`` ``O(m k²)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

__all__ = ["ExactTerm", "HyperTerm", "pointwise_partials", "select_rows"]


def select_rows(mat: np.ndarray, m: int) -> np.ndarray:
    """Indices of ``m`` rows of ``mat`` (``n × k``) chosen by rounds of column-pivoted QR of ``matᵀ``.

    Each round picks up to ``k`` rows among those not chosen yet (Q-DEIM); sorted on return.
    """
    n, k = mat.shape
    m = min(int(m), n)
    chosen: list[np.ndarray] = []
    left = np.arange(n)
    while sum(len(c) for c in chosen) < m and left.size:
        want = min(m - sum(len(c) for c in chosen), k, left.size)
        _, piv = scipy.linalg.qr(mat[left].T, mode="r", pivoting=True, check_finite=False)
        pick = left[piv[:want]]
        chosen.append(pick)
        left = np.setdiff1d(left, pick, assume_unique=True)
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)


def pointwise_partials(nonlinear, u: dict, x: np.ndarray, t: float, value: np.ndarray | None = None) -> dict:
    """``∂N/∂u_α`` at every point, by one forward difference per ``α`` (``N`` acts point-wise).

    Accurate to ~1e-8 relative: enough for the Newton iterations of implicit integrators,
    which only need an approximate Jacobian (the solution's accuracy does not depend on it).
    """
    base = np.asarray(nonlinear(u, x, t), dtype=float) if value is None else value
    out = {}
    for alpha, ua in u.items():
        h = 1e-7 * (1.0 + np.abs(ua))
        shifted = dict(u)
        shifted[alpha] = ua + h
        out[alpha] = (np.asarray(nonlinear(shifted, x, t), dtype=float) - base) / h
    return out


@dataclass
class ExactTerm:
    """``g(y) = M̂_Xᵀ (w ⊙ (N(u) + f(t)))`` over all interior rows (the reference)."""

    nonlinear: object  # N(u, x, t)
    mass: np.ndarray  # (n, k): M̂_X, the interior rows of M̂ (weights applied)
    derivatives: dict  # alpha -> (n, k): D̂_α
    x: np.ndarray
    weights: np.ndarray

    @property
    def points(self) -> int:
        return len(self.x)

    def fields(self, y):
        return {alpha: mat @ y for alpha, mat in self.derivatives.items()}

    def __call__(self, y, t, source=None):
        values = np.asarray(self.nonlinear(self.fields(y), self.x, t), dtype=float)
        if source is not None:
            values = values + source(self.x, t)
        return self.mass.T @ (self.weights * values)

    def jacobian(self, y, t, block: int = 8192):
        """``M̂_Xᵀ W Σ_α diag(∂N/∂u_α) D̂_α``, summed over row blocks (temporaries stay small)."""
        u = self.fields(y)
        partials = pointwise_partials(self.nonlinear, u, self.x, t)
        out = np.zeros((self.mass.shape[1], self.mass.shape[1]))
        for lo in range(0, self.points, block):
            rows = slice(lo, lo + block)
            inner = sum((self.weights[rows] * partials[a][rows])[:, None] * self.derivatives[a][rows] for a in u)
            out += self.mass[rows].T @ inner
        return out


@dataclass
class HyperTerm:
    """``g(y) ≈ C (N(u_P) + f_P(t))`` at ``m`` interpolation rows (see the module docstring)."""

    nonlinear: object
    coupling: np.ndarray  # (k, m): C
    derivatives: dict  # alpha -> (m, k): D̂_α[P]
    x: np.ndarray  # (m, d)
    rows: np.ndarray  # indices of P among the interior rows
    diagnostics: dict = field(default_factory=dict)

    @property
    def points(self) -> int:
        return len(self.x)

    def fields(self, y):
        return {alpha: mat @ y for alpha, mat in self.derivatives.items()}

    def __call__(self, y, t, source=None):
        values = np.asarray(self.nonlinear(self.fields(y), self.x, t), dtype=float)
        if source is not None:
            values = values + source(self.x, t)
        return self.coupling @ values

    def jacobian(self, y, t):
        u = self.fields(y)
        partials = pointwise_partials(self.nonlinear, u, self.x, t)
        inner = sum(partials[alpha][:, None] * self.derivatives[alpha] for alpha in u)
        return self.coupling @ inner

    @classmethod
    def from_rows(cls, nonlinear, derivatives: dict, basis: list, grams: list, x, rows,
                  rcond: float = 1e-10) -> "HyperTerm":
        """``C = [G_0 | G_α …] (V[P])⁺`` from the chosen rows of the interpolation basis
        ``V = [D̂_0 | D̂_α …]`` and the Grams ``G_α = D̂_0ᵀ W² D̂_α`` over all rows.

        Each part of ``V`` is scaled to unit RMS first, so the cut-off treats them alike.
        """
        scales = [1.0 / max(float(np.sqrt(np.mean(b**2))), 1e-300) for b in basis]
        v = np.hstack([b * c for b, c in zip(basis, scales)])
        gram = np.hstack([g * c for g, c in zip(grams, scales)])
        # C = G V_P⁺, i.e. Cᵀ = (V_Pᵀ)⁺ Gᵀ: the minimum-norm solution by a rank-revealing
        # (column-pivoted) QR, a third of the cost of an SVD at m ≈ columns
        ct, _, rank, _ = scipy.linalg.lstsq(v.T, gram.T, cond=rcond, lapack_driver="gelsy", check_finite=False)
        term = cls(nonlinear, np.ascontiguousarray(ct.T), derivatives, np.asarray(x), np.asarray(rows))
        term.diagnostics = {"points": int(len(x)), "interpolation_rank": int(rank),
                            "interpolation_columns": int(v.shape[1])}
        return term
