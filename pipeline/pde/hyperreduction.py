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

import dask
import numpy as np
import scipy.linalg

from pipeline.backend import to_host
from pipeline.cluster import compute
from pipeline.pde.row_blocks import reduced_rows, row_blocks, tree

__all__ = ["ExactTerm", "HyperTerm", "attach_hyper_term", "hyper_alphas", "hyper_defaults", "pointwise_partials",
           "select_rows", "use_hyper"]

#: Up to this size the interior rows of the interpolation basis ``D̂_α`` (rows × k × fields)
#: stay in the calling process, so the exact term of the diagnostics costs no second pass.
HELD_ROWS_BYTES = 64 * 2**20


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


class _PointwiseTerm:
    """What both terms share: the fields ``u_α = D̂_α y`` at their rows and ``N(u) + f`` there."""

    @property
    def points(self) -> int:
        return len(self.x)

    def fields(self, y):
        return {alpha: mat @ y for alpha, mat in self.derivatives.items()}

    def values(self, y, t, source=None):
        """``N(u) + f`` at the term's rows (``source``: ``f(x, t)``, or None)."""
        values = np.asarray(self.nonlinear(self.fields(y), self.x, t), dtype=float)
        return values if source is None else values + source(self.x, t)


@dataclass
class ExactTerm(_PointwiseTerm):
    """``g(y) = M̂_Xᵀ (w ⊙ (N(u) + f(t)))`` over all interior rows (the reference)."""

    nonlinear: object  # N(u, x, t)
    mass: np.ndarray  # (n, k): M̂_X, the interior rows of M̂ (weights applied)
    derivatives: dict  # alpha -> (n, k): D̂_α
    x: np.ndarray
    weights: np.ndarray

    def __call__(self, y, t, source=None):
        return self.mass.T @ (self.weights * self.values(y, t, source))

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
class HyperTerm(_PointwiseTerm):
    """``g(y) ≈ C (N(u_P) + f_P(t))`` at ``m`` interpolation rows (see the module docstring)."""

    nonlinear: object
    coupling: np.ndarray  # (k, m): C
    derivatives: dict  # alpha -> (m, k): D̂_α[P]
    x: np.ndarray  # (m, d)
    rows: np.ndarray  # indices of P among the interior rows
    diagnostics: dict = field(default_factory=dict)

    def __call__(self, y, t, source=None):
        return self.coupling @ self.values(y, t, source)

    def jacobian(self, y, t):
        """``C Σ_α diag(∂N/∂u_α) D̂_α[P]``."""
        u = self.fields(y)
        partials = pointwise_partials(self.nonlinear, u, self.x, t)
        return self.coupling @ sum(partials[alpha][:, None] * self.derivatives[alpha] for alpha in u)

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


# ----------------------------------------------------------------------------- over the row blocks
def _nominate(packed, offset, network, cmap, alphas, dim, m, rows=None):
    """A block's ``m`` best interpolation rows (Q-DEIM on ``[D̂_0 | D̂_α …]``, each part scaled to
    unit RMS) with their ``D̂_α``, and the block's Grams ``D̂_0ᵀ W² D̂_α`` (``rows``: the block's
    ``D̂_α`` if already computed)."""
    rows = reduced_rows(packed, network, cmap, alphas, dim) if rows is None else rows
    host = to_host(packed)
    w2 = host[:, dim] ** 2
    pick = select_rows(_scaled(rows, alphas), m)
    return {"index": offset + pick, "x": host[pick, :dim], "rows": {a: r[pick] for a, r in rows.items()},
            "gram": {a: rows[alphas[0]].T @ (w2[:, None] * r) for a, r in rows.items()}}


def _scaled(rows, alphas):
    parts = []
    for a in alphas:
        scale = float(np.sqrt(np.mean(rows[a] ** 2))) if rows[a].size else 0.0
        parts.append(rows[a] / scale if scale > 0 else rows[a])
    return np.hstack(parts)


def _merge_nominees(parts, m):
    index = np.concatenate([p["index"] for p in parts])
    x = np.concatenate([p["x"] for p in parts])
    alphas = list(parts[0]["rows"])
    rows = {a: np.concatenate([p["rows"][a] for p in parts]) for a in alphas}
    pick = select_rows(_scaled(rows, alphas), m) if len(index) > m else np.arange(len(index))
    return {"index": index[pick], "x": x[pick], "rows": {a: r[pick] for a, r in rows.items()},
            "gram": {a: sum(p["gram"][a] for p in parts) for a in alphas}}


def _exact_term_part(packed, network, cmap, alphas, dim, nonlinear, source, y, t, rows=None):
    """One block's share of the exact projected term ``D̂_0ᵀ (w² (N(u) + f))``."""
    rows = reduced_rows(packed, network, cmap, alphas, dim) if rows is None else rows
    host = to_host(packed)
    x, w = host[:, :dim], host[:, dim]
    u = {a: r @ y for a, r in rows.items()}
    values = np.asarray(nonlinear(u, x, t), dtype=float) + (0.0 if source is None else source(x, t))
    return rows[alphas[0]].T @ (w * w * values)


def use_hyper(problem, settings, rank: int, rows: int) -> bool:
    """Hyper-reduce a nonlinear term when asked, or (``None``) when it pays: with at most a quarter
    of the interior rows as interpolation rows.  Above that, choosing the rows costs about what
    the right-hand sides save (Burgers, 650 of 1500 rows: 0.62 against 0.52 CPU-s exact)."""
    if problem.linear:
        return False
    choice = settings.get("hyper_reduction")
    if choice is not None:
        return bool(choice)
    basis, oversampling = hyper_defaults(problem, settings)
    columns = rank * len(hyper_alphas(problem, enrich=basis == "gradients"))
    return min(rows, max(rank, int(np.ceil(oversampling * columns)))) <= rows / 4


def hyper_defaults(problem, settings) -> tuple[str, float]:
    """``(hyper_basis, hyper_oversampling)``, the automatic choice where unset.

    In 1-D the gradients join the interpolation basis at one row per column (Allen–Cahn
    ε = 1e-4: projected-term error 3.6e-4 against 3e-2 with the values alone at two rows per
    column); in more dimensions they would triple the columns and the cost of choosing the rows
    (column-pivoted QR, ~rows · columns²), while the values at two rows per column already come
    within 10 % of the exact term's solution error (2-D Allen–Cahn: 1.67e-4 against 1.54e-4;
    one row per column: 4.8e-4).
    """
    basis = settings.get("hyper_basis") or ("gradients" if problem.domain.dim == 1 else "values")
    oversampling = settings.get("hyper_oversampling") or (1.0 if basis == "gradients" else 2.0)
    return basis, float(oversampling)


def hyper_alphas(problem, enrich: bool = False):
    """``(0,…,0)``, then the derivatives ``N`` reads; with ``enrich``, also every first derivative
    (the interpolation basis of the hyper-reduced term: see :mod:`pipeline.pde.hyperreduction`)."""
    dim = problem.domain.dim
    out = [(0,) * dim]
    extra = [tuple(a) for a in problem.nonlinear_derivatives]
    if enrich:
        extra += [tuple(int(i == j) for j in range(dim)) for i in range(dim)]
    for a in extra:
        if a not in out:
            out.append(a)
    return out


def attach_hyper_term(proj, problem, packed, boundary, settings, chunk, device, boundary_forcing):
    """Interpolation rows by a Q-DEIM tournament over the row blocks, and the coupling ``C``."""
    cmap, dim, k = proj.coefficient_map, problem.domain.dim, proj.rank
    basis, oversampling = hyper_defaults(problem, settings)
    alphas = hyper_alphas(problem, enrich=basis == "gradients")
    m = min(len(packed), max(k, int(np.ceil(oversampling * k * len(alphas)))))
    blocks = row_blocks(packed, chunk, device)
    # one pivoting round per block (as many rows as V has columns), the further rounds among the
    # nominees: with several blocks this halves the tournament's cost at two rows per column
    per_block = m if blocks.numblocks[0] == 1 else min(m, k * len(alphas))
    offsets = np.concatenate([[0], np.cumsum(blocks.chunks[0])[:-1]])
    delayed_blocks = blocks.to_delayed().ravel()
    held = None
    if len(packed) * k * len(alphas) * 8 <= HELD_ROWS_BYTES:
        # small: the rows stay in this process, for the tournament and the exact term alike
        held = compute(*[dask.delayed(reduced_rows, pure=True)(blk, proj.network, cmap, alphas, dim)
                         for blk in delayed_blocks])
        parts = [_nominate(packed[off : off + len(r[alphas[0]])], int(off), None, None, alphas, dim, per_block,
                           rows=r)
                 for r, off in zip(held, offsets)]
        chosen = _merge_nominees(parts, m) if len(parts) > 1 else parts[0]
    else:
        nominees = [dask.delayed(_nominate, pure=True)(blk, int(off), proj.network, cmap, alphas, dim, per_block)
                    for blk, off in zip(delayed_blocks, offsets)]
        (chosen,) = compute(tree(nominees, _merge_nominees, m))
    mass_b = None if boundary is None else boundary[:, : proj.lift.shape[1]] @ proj.transform
    derivatives = {tuple(a): chosen["rows"][tuple(a)] for a in problem.nonlinear_derivatives}
    proj.hyper = HyperTerm.from_rows(problem.nonlinear, derivatives, [chosen["rows"][a] for a in alphas],
                                     [chosen["gram"][a] for a in alphas], chosen["x"], chosen["index"])
    proj.mass_hat_boundary = mass_b
    proj.boundary_forcing = None if mass_b is None else boundary_forcing
    proj.source = None if problem.source is None else (lambda x, t: np.asarray(problem.source(x, t), dtype=float))
    if held is None:
        proj.exact_term = lambda y, t: _exact_term(proj, problem, packed, alphas, chunk, device, y, t)
    else:
        rows = {a: np.concatenate([r[a] for r in held]) for a in alphas}
        proj.exact_term = lambda y, t: _exact_term_part(packed, None, None, alphas, dim, problem.nonlinear,
                                                        proj.source, y, t, rows=rows)


def _exact_term(proj, problem, packed, alphas, chunk, device, y, t):
    """The exact projected nonlinear term, summed over the row blocks (for the diagnostics)."""
    parts = [dask.delayed(_exact_term_part, pure=True)(blk, proj.network, proj.coefficient_map, alphas,
                                                      problem.domain.dim, problem.nonlinear, proj.source, y, t)
             for blk in row_blocks(packed, chunk, device).to_delayed().ravel()]
    return compute(tree(parts, _sum_parts))[0]


def _sum_parts(parts):
    return np.sum(parts, axis=0)
