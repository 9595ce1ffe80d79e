"""The projection of a time-dependent PDE onto a sampled basis: the reduced ODE of one time block.

``M a' = K a + [N(u_X); 0] + F(t)`` on the collocation and boundary rows (penalty rows relax the
boundary values to their data at rate λ; a boundary-compliant basis spans the null space of
homogeneous conditions instead).  One TSQR of ``[M | K | F]`` in row blocks gives
``R = U S Vᵀ`` and ``Z = Qᵀ [K | F]``; in the coordinates ``y = S_k V_kᵀ a`` the ODE is small and
well conditioned, ``y' = A y + …`` with ``A = U_kᵀ Z_K V_k S_k⁻¹`` (docs/design.md §3.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable

import dask
import dask.array as da
import numpy as np
import scipy.linalg

from pipeline.backend import COMPUTE_DTYPE, namespace_for
from pipeline.cluster import compute
from pipeline.linalg import LeastSquaresFactor, default_chunk_rows, tsqr_factor
from pipeline.nn.network import SampledNetwork
from pipeline.pde.evolution_problems import EvolutionProblem
from pipeline.pde.hyperreduction import HyperTerm, attach_hyper_term, hyper_alphas, use_hyper
from pipeline.pde.operators import identity
from pipeline.pde.row_blocks import (
    fit_rows,
    in_process,
    interior_rows,
    reduce_in_process,
    reduced_rows,
    row_blocks,
)
from pipeline.pde.static import RowGroup, _group_rows, operator_rows

__all__ = ["ChebyshevForcing", "Projection", "build_projection"]

#: Chebyshev–Lobatto nodes in time tried for the forcing series of a block: 17, 33, 65, 129.
SERIES_NODES = (16, 32, 64, 128)


@dataclass(frozen=True)
class ChebyshevForcing:
    """``b(t) = coefficients @ [T_0(s), …, T_p(s)]``, ``s = (2t − t0 − t1)/(t1 − t0)``: the projected
    forcing of a linear non-autonomous problem on one time block as a Chebyshev series in time.

    The exact integrator carries the basis ``u = T(s(t))`` in its augmented state
    (``u' = driver u``, nilpotent), so a forced linear problem is propagated by matrix
    exponentials like an autonomous one (:mod:`pipeline.pde.integrators`).
    """

    coefficients: np.ndarray  # (k, p + 1)
    t0: float
    t1: float

    def basis(self, t) -> np.ndarray:
        """``T(s(t))``: ``(p + 1,)`` for a scalar ``t``, ``(len(t), p + 1)`` for an array."""
        s = (2.0 * np.asarray(t, dtype=float) - self.t0 - self.t1) / (self.t1 - self.t0)
        out = np.polynomial.chebyshev.chebvander(s, self.coefficients.shape[1] - 1)
        return out.reshape(np.shape(s) + (self.coefficients.shape[1],))

    @property
    def driver(self) -> np.ndarray:
        """``D`` with ``d/dt T(s(t)) = D T(s(t))``: ``T_n' = Σ_{j<n, n−j odd} (2n / c_j) T_j``, ``c_0 = 2``."""
        n, j = np.ogrid[: self.coefficients.shape[1], : self.coefficients.shape[1]]
        d = np.where((j < n) & ((n - j) % 2 == 1), 2.0 * n / np.where(j == 0, 2.0, 1.0), 0.0)
        return d * (2.0 / (self.t1 - self.t0))

    def __call__(self, t):
        return self.basis(t) @ self.coefficients.T


@dataclass
class Projection:
    """The reduced ODE of one time block.

    ``a = lift @ transform @ y`` maps reduced coordinates to basis coefficients ``[c | c0]``.
    """

    network: SampledNetwork
    lift: np.ndarray  # (width + 1, m): identity (penalty) or the null-space basis (compliant)
    transform: np.ndarray  # (m, k): V_k S_k⁻¹
    a: np.ndarray  # (k, k) reduced linear operator
    b: np.ndarray | None  # (k,) projected autonomous forcing
    singular_values: np.ndarray
    rank: int
    rcond: float
    mass_hat: np.ndarray | None = None  # rows × k: M V_k S_k⁻¹ (orthonormal columns)
    interior_rows: int = 0
    interior_weights: np.ndarray | None = None  # quadrature weights of the interior rows
    derivative_hat: dict = field(default_factory=dict)  # alpha -> (n_int, k)
    forcing: Callable | None = None  # t -> rows (non-autonomous forcing rows)
    x_interior: np.ndarray | None = None
    diagnostics: dict = field(default_factory=dict)
    device: str = "cpu"
    chunk_rows: int | None = None
    # hyper-reduced nonlinear term (pipeline.pde.hyperreduction) and what it needs besides
    hyper: HyperTerm | None = None
    mass_hat_boundary: np.ndarray | None = None  # boundary rows of M̂ (penalty)
    boundary_forcing: Callable | None = None  # t -> boundary part of F(t)
    source: Callable | None = None  # f(x, t), interpolated with N
    exact_term: Callable | None = None  # (y, t) -> exact projected N + f over all rows (diagnostics)
    forcing_series: ChebyshevForcing | None = None  # linear, non-autonomous, method "exact": b(t)

    @cached_property  # used every window; lift and transform never change
    def coefficient_map(self) -> np.ndarray:
        """``(width + 1, k)``: basis coefficients per reduced coordinate."""
        return self.lift @ self.transform

    def coordinates(self, coef: np.ndarray) -> np.ndarray:
        """Reduced coordinates ``y`` of basis coefficients ``a`` (the inverse of ``coefficient_map``
        on its range): ``y = S_k V_kᵀ liftᵀ a``."""
        s = self.singular_values[: self.rank]
        return s * s * (self.transform.T @ (self.lift.T @ coef))

    def fingerprint(self) -> int:
        """A 63-bit hash of the reduced coordinates: equal only for bitwise-equal projections."""
        import hashlib

        digest = hashlib.sha256(self.transform.tobytes() + self.lift.tobytes() + self.a.tobytes()).digest()
        return int.from_bytes(digest[:8], "little") >> 1

    def evaluator(self, x: np.ndarray) -> np.ndarray:
        """``E`` with ``u(x) = E y``: ``(n_points, k)``."""
        return operator_rows(identity(1.0), self.network, x) @ self.coefficient_map

    def fit(self, values_at, x: np.ndarray) -> np.ndarray:
        """Reduced coordinates of the least-squares fit of values at points ``x``.

        Fitted in the reduced coordinates themselves (rows ``E = Ψ N V_k S_k⁻¹``, well
        conditioned), in row blocks reduced by the TSQR: the integration lives in this span,
        and its ``k`` columns cost less than the basis's ``width + 1``.
        """
        x = np.asarray(x, dtype=COMPUTE_DTYPE)
        packed = np.column_stack([x, np.asarray(values_at, dtype=COMPUTE_DTYPE)])
        k = self.rank
        chunk = self.chunk_rows or default_chunk_rows(k + 1, len(x))
        if in_process(len(x), k + 1, self.device):
            r = reduce_in_process((fit_rows(packed[i : i + chunk], self.network, self.coefficient_map, x.shape[1])
                                   for i in range(0, len(x), chunk)), name="the fitted values")
            return LeastSquaresFactor(r, n_columns=k, n_rows=len(x)).solve(self.rcond).coef[:, 0]
        blocks = row_blocks(packed, chunk, self.device)
        rows = blocks.map_blocks(fit_rows, dask.delayed(self.network, pure=True),
                                 dask.delayed(self.coefficient_map, pure=True), x.shape[1],
                                 chunks=(blocks.chunks[0], (k + 1,)), dtype=COMPUTE_DTYPE, meta=blocks._meta)
        (r,) = compute(tsqr_factor(rows, overwrite_blocks=True, name="the fitted values"))
        return LeastSquaresFactor(r, n_columns=k, n_rows=len(x)).solve(self.rcond).coef[:, 0]


def _balance(head_rows, n_interior, groups, network, kappa):
    """κ per boundary group for the mass rows: ``kappa · sqrt(n_int/n_g) · rms(Ψ_X) / rms(BΨ_g)``."""
    reference = float(np.sqrt(np.mean(head_rows**2)))
    out = []
    for g in groups:
        if g.weight is not None:
            out.append(g)
            continue
        rows = _group_rows(np.asarray(g.points[:256]), network, g, with_rhs=False)
        scale = float(np.sqrt(np.mean(rows**2))) if rows.size else 0.0
        w = kappa * np.sqrt(max(n_interior, 1) / max(g.n_rows, 1)) * (reference / scale if scale > 0 else 1.0)
        out.append(replace(g, weight=float(w)))
    return out


def _null_space(constraints: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis of the approximate null space of the constraint rows.

    The rank comes from the singular values; the basis from a column-pivoted QR of the
    transposed rows (the trailing columns of ``Q`` span the orthogonal complement of the rows'
    span): a fraction of the cost of the full ``V`` of an SVD.
    """
    if constraints.size == 0:
        return np.eye(constraints.shape[1])
    s = scipy.linalg.svdvals(constraints, check_finite=False)
    rank = int(np.count_nonzero(s > tol * s[0])) if s[0] > 0 else 0
    q, _, _ = scipy.linalg.qr(constraints.T, mode="full", pivoting=True, check_finite=False)
    return np.ascontiguousarray(q[:, rank:])


# ----------------------------------------------------------------------------- the projection
def build_projection(problem: EvolutionProblem, network: SampledNetwork, x_int: np.ndarray, groups: list,
                     settings: dict, t0: float, weights: np.ndarray | None = None, t1: float | None = None) -> Projection:
    """Assemble and reduce the coefficient ODE of one time block (see the module docstring).

    ``[M | K | F]`` is assembled in row blocks of ``settings["chunk_rows"]`` (NumPy, or CuPy with
    ``settings["device"] == "gpu"``) and reduced by the R-only TSQR: no process holds more than
    a block and the factor.  ``weights`` are quadrature weights of the interior rows (points
    drawn from a non-uniform density ``q`` get ``1/√q``), so the least squares still measure the
    L2 norm: with an unweighted non-uniform point set the projected transport operators lose
    their skew symmetry and grow spurious modes (measured on Burgers).

    A linear non-autonomous problem integrated by ``method="exact"`` gets its forcing on the block
    ``[t0, t1]`` (default: to the end of the span) as a Chebyshev series in time
    (:func:`_forcing_series`): the series' coefficient columns replace ``F``, and the projection
    carries ``forcing_series`` instead of the rows × k matrices of ``M̂``.
    """
    width, dim = network.width, problem.domain.dim
    device = settings.get("device") or "cpu"
    x_int = np.asarray(x_int, dtype=COMPUTE_DTYPE)
    w_int = np.ones(len(x_int)) if weights is None else np.asarray(weights, dtype=float)
    packed = np.column_stack([x_int, w_int])
    boundary_mode = settings["boundary"]
    weighted, lift, boundary, relax = [], None, None, 0.0
    if boundary_mode == "compliant":
        for g in groups:
            if g.rhs is not None and not _is_zero(g, t0):
                raise ValueError(f"the compliant basis needs homogeneous conditions, but {g.name!r} has non-zero data; "
                                 "use boundary='penalty'")
        constraint_rows = [_group_rows(np.asarray(g.points), network, g, with_rhs=False) for g in groups]
        lift = _null_space(np.vstack(constraint_rows)) if constraint_rows else None
    else:
        head = operator_rows(identity(1.0), network, x_int[:256]) * w_int[:256, None]
        weighted = _balance(head, len(x_int), groups, network, settings["kappa"])
        relax = settings["relaxation"]
        if relax is None:
            # 100× the faster of the interior operator's rate scale and 1/span: boundary values
            # then track their data closely enough that the boundary error stays below the
            # interior error (heat_2d: boundary RMS 6e-9 vs interior 2.3e-8; at 1× it was 2.5×
            # the interior error).  Exact and implicit integrators do not mind the stiffness.
            # The rates come from at most 2048 evenly spread interior rows.
            spread = x_int[:: max(1, len(x_int) // 2048)]
            psi_s = operator_rows(identity(1.0), network, spread)
            l_s = operator_rows(problem.operator, network, spread)
            rate = float(np.sqrt(np.mean(l_s**2)) / max(np.sqrt(np.mean(psi_s**2)), 1e-300))
            span = float(problem.t_span[1] - problem.t_span[0])
            relax = 100.0 * max(rate, 1.0 / span)
        settings = {**settings, "relaxation": relax}
    series = None
    if problem.linear and not problem.autonomous and settings.get("method") == "exact":
        t1 = float(problem.t_span[1] if t1 is None else t1)
        series = _forcing_series(problem, x_int, w_int, weighted, relax, float(t0), t1, settings["rtol"])
    if weighted:
        mass_b = np.vstack([g.weight * _group_rows(np.asarray(g.points), network, g, with_rhs=False)
                            for g in weighted])
        forcing_b = _boundary_forcing(problem, weighted, relax, t0)[:, None] if series is None else series[2]
        boundary = np.column_stack([mass_b, -relax * mass_b, forcing_b])
    m = width + 1 if lift is None else lift.shape[1]
    q = 1 if series is None else len(series[1])  # forcing columns
    n_rows = len(x_int) + (0 if boundary is None else len(boundary))
    # Row blocks of `chunk_rows` (default: as for static solves, which keeps designs of up to
    # ~4 × columns rows in one block); each block is reduced to a triangle and the triangles merged.
    chunk = settings.get("chunk_rows") or default_chunk_rows(2 * m + q, n_rows)
    net = dask.delayed(network, pure=True)
    lift_d = None if lift is None else dask.delayed(lift, pure=True)
    interior = row_blocks(packed, chunk, device)
    when = float(t0) if series is None else np.vstack([series[0][None, :], series[1]])  # forcing columns
    parts = [interior.map_blocks(interior_rows, net, problem.operator, lift_d, problem.source, when, dim,
                                 chunks=(interior.chunks[0], (2 * m + q,)), dtype=COMPUTE_DTYPE,
                                 meta=namespace_for(device).empty((0, 0)))]
    if boundary is not None:
        parts.append(row_blocks(boundary, chunk, device))
    (r,) = compute(tsqr_factor(da.concatenate(parts, axis=0), overwrite_blocks=True, name="the collocation rows"))
    factor = LeastSquaresFactor(r, n_columns=m, n_rows=n_rows)
    u, s, vt = factor.svd
    keep = factor.filter_factors(settings["rcond"]) > 0
    k = int(keep.sum())
    if k == 0:
        raise ValueError(f"the basis of {width} neuron(s) has no direction above rcond on the collocation points "
                         "(after pruning): raise width (basis.width) or lower rcond")
    transform = vt[:k].T / s[:k]
    z = factor.r[:m, m:]
    a = u[:, :k].T @ z[:, :m] @ transform
    removed = 0.0
    if problem.non_expansive and problem.linear and problem.time_order == 1 and k <= 3000:
        a, removed = _without_growth(a)
    b = u[:, :k].T @ z[:, m:]
    proj = Projection(network, np.eye(width + 1) if lift is None else lift, transform, a,
                      b[:, 0] if problem.autonomous else None, s, k, settings["rcond"],
                      x_interior=x_int, interior_rows=len(x_int), interior_weights=w_int, device=device,
                      chunk_rows=chunk, forcing_series=None if series is None else ChebyshevForcing(b, float(t0), t1))
    hyper = use_hyper(problem, settings, k, len(x_int))
    if (not problem.linear or not problem.autonomous) and not hyper and series is None:
        _attach_exact_rows(proj, problem, packed, boundary, weighted, settings, chunk, device)
    elif hyper:
        relax = settings.get("relaxation") or 0.0
        attach_hyper_term(proj, problem, packed, boundary, settings, chunk, device,
                          boundary_forcing=lambda t: _boundary_forcing(problem, weighted, relax, t))
    eig = np.linalg.eigvals(a) if k <= 3000 else np.array([np.nan])
    proj.diagnostics = {"rank": k, "width": width, "rows": n_rows, "cutoff": settings["rcond"],
                        "max_growth_rate": float(np.max(eig.real)), "spectral_radius": float(np.max(np.abs(eig))),
                        "removed_growth_rate": removed,
                        "boundary": boundary_mode, "weights": {g.name: g.weight for g in weighted},
                        "relaxation": settings.get("relaxation"), "chunk_rows": chunk,
                        **({"hyper_points": proj.hyper.points, **proj.hyper.diagnostics} if proj.hyper else {})}
    return proj


def _without_growth(a: np.ndarray) -> tuple[np.ndarray, float]:
    """``a`` with the positive real parts of its eigenvalues set to zero, and the largest removed.

    For a non-expansive ``L`` (advection: ``e^{tL}`` is an isometry) they are artefacts of the
    discretisation that ``e^{ta}`` would amplify (docs/design.md §3.3): advection β = 40, seed 1
    had a mode growing at 8.8 (4.7e-5 at T = 1, divergence at T = 1000); without it 3.1e-8.
    The projected advection is nearly normal (eigenvector condition ≤ 4 over seeds 0-7), so
    ``V Λ V⁻¹`` is rebuilt to rounding; a non-normal ``a`` is left as it is.
    """
    lam, vec = np.linalg.eig(a)
    growth = float(np.max(lam.real))
    if growth <= 0 or np.linalg.cond(vec) > 1e6:
        return a, 0.0
    lam = np.minimum(lam.real, 0.0) + 1j * lam.imag  # conjugate pairs stay conjugate: a stays real
    return np.real(np.linalg.solve(vec.T, (vec * lam).T).T), growth


def _forcing_series(problem, x_int, w_int, weighted, relax, t0, t1, rtol):
    """``(times, to_coefficients, boundary columns)`` of the forcing ``F(t)`` on ``[t0, t1]`` as a
    Chebyshev series: values at the Chebyshev–Lobatto ``times`` map to the kept coefficients by
    ``to_coefficients`` (``q × len(times)``); the boundary rows' coefficient columns are computed here.

    The degree is the first of :data:`SERIES_NODES` (nested node sets: each try reuses the last)
    whose last quarter of coefficients is below ``rtol`` of the largest (Euclidean norms over the
    rows, the interior's on at most 2048 evenly spread rows), or whose tail stopped falling below
    1e-8 (a noise floor: the boundary data's time derivative by central differences leaves ~1e-11);
    coefficients below that level after the last one above are dropped.  A forcing not resolved
    at 129 nodes raises a ValueError.
    """
    pick = slice(None, None, max(1, len(x_int) // 2048))
    x_s, w_s = x_int[pick], w_int[pick]

    def rows(t):
        parts = [] if problem.source is None else [w_s * _source_rows(problem, x_s, t)]
        return np.concatenate(parts + [_boundary_forcing(problem, weighted, relax, t)])

    tol, values, width, last = float(rtol), None, len(rows(t0)), np.inf
    for n in SERIES_NODES:
        times = 0.5 * (t0 + t1) + 0.5 * (t1 - t0) * np.cos(np.pi * np.arange(n + 1) / n)  # s_j = cos(πj/n)
        new = np.empty((n + 1, width))
        if values is not None:
            new[::2] = values
        for j in range(n + 1) if values is None else range(1, n + 1, 2):  # one evaluation per new node
            new[j] = rows(times[j])
        values = new
        j = np.arange(n + 1)
        ends = np.where((j == 0) | (j == n), 0.5, 1.0)
        to_coef = (2.0 / n) * np.cos(np.pi * np.outer(j, j) / n) * ends[None, :] * ends[:, None]
        norms = np.linalg.norm(to_coef @ values, axis=1)
        top = float(norms.max())
        tail = float(norms[-(n // 4):].max()) / top if top > 0 else 0.0
        if tail <= tol or 0.5 * last <= tail <= 1e-8:
            q = 1 + int(np.flatnonzero(norms > max(tol, 2.0 * tail) * top).max(initial=0))
            boundary = (to_coef[:q] @ values[:, len(x_s) if problem.source is not None else 0:]).T
            return times, to_coef[:q], boundary
        last = tail
    raise ValueError(f"the forcing of problem {problem.name!r} is not resolved by {n + 1} Chebyshev nodes in time on "
                     f"[{t0:g}, {t1:g}] (last coefficients {tail:.1e} of the largest): use more time blocks "
                     "(`blocks`) or an ODE method (`method='BDF'`)")


def _attach_exact_rows(proj, problem, packed, boundary, weighted, settings, chunk, device):
    """The rows × k matrices of the exact right-hand side: ``M̂`` and every ``D̂_α`` (gathered)."""
    cmap, dim = proj.coefficient_map, problem.domain.dim
    alphas = hyper_alphas(problem)
    blocks = row_blocks(packed, chunk, device).to_delayed().ravel()
    parts = compute(*[dask.delayed(reduced_rows, pure=True)(blk, proj.network, cmap, alphas, dim) for blk in blocks])
    rows = {a: np.concatenate([p[a] for p in parts]) for a in alphas}
    w_int = proj.interior_weights
    # unit weights (no adaptive points): M̂_X is D̂_0 itself, not a second rows × k copy
    mass_int = rows[alphas[0]] if np.all(w_int == 1.0) else w_int[:, None] * rows[alphas[0]]
    proj.mass_hat = mass_int if boundary is None else np.vstack(
        [mass_int, boundary[:, : proj.lift.shape[1]] @ proj.transform])
    proj.derivative_hat = {tuple(a): rows[tuple(a)] for a in problem.nonlinear_derivatives}
    x_int, relax = proj.x_interior, settings.get("relaxation") or 0.0
    if settings["boundary"] == "penalty":
        proj.forcing = lambda t: np.concatenate([w_int * _source_rows(problem, x_int, t),
                                                 _boundary_forcing(problem, weighted, relax, t)])
    else:
        proj.forcing = lambda t: w_int * _source_rows(problem, x_int, t)


def _is_zero(group: RowGroup, t) -> bool:
    pts = np.asarray(group.points)
    d = group.dim
    data = {"normal": pts[:, d : 2 * d], "t": t} if group.normals else {"t": t}
    return bool(np.all(np.asarray(group.rhs(pts[:, :d], data)) == 0))


def _source_rows(problem, x_int, t):
    return np.zeros(len(x_int)) if problem.source is None else np.asarray(problem.source(x_int, t), dtype=float)


def _boundary_forcing(problem, weighted, relax, t, dt=1e-6):
    """The boundary part ``κ (g_t + λ g)(t)`` of ``F(t)`` for the penalty formulation."""
    parts = []
    for g in weighted:
        if g.rhs is None:
            parts.append(np.zeros(g.n_rows))
            continue
        pts = np.asarray(g.points)
        d = g.dim
        base = {"normal": pts[:, d : 2 * d]} if g.normals else {}
        value = np.asarray(g.rhs(pts[:, :d], {**base, "t": t}), dtype=float)
        rate = 0.0 if problem.autonomous else (
            np.asarray(g.rhs(pts[:, :d], {**base, "t": t + dt}), float) - np.asarray(g.rhs(pts[:, :d], {**base, "t": t - dt}), float)
        ) / (2 * dt)
        parts.append(g.weight * (rate + relax * value))
    return np.concatenate(parts) if parts else np.zeros(0)
