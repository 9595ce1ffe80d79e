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

import dask.array as da
import numpy as np

from pipeline.cluster import compute
from pipeline.linalg import LeastSquaresFactor, default_chunk_rows, lstsq, tsqr_factor
from pipeline.nn.network import SampledNetwork
from pipeline.pde.evolution_problems import EvolutionProblem
from pipeline.pde.operators import derivative, identity
from pipeline.pde.static import RowGroup, _group_rows, operator_rows

__all__ = ["Projection", "build_projection"]


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
        """Reduced coordinates of the least-squares fit of values at points ``x``."""
        rows = operator_rows(identity(1.0), self.network, x) @ self.lift
        sol = lstsq(rows, np.asarray(values_at, dtype=float), rcond=self.rcond)
        # y = S_k V_kᵀ z, and transformᵀ = S_k⁻¹ V_kᵀ
        s = self.singular_values[: self.rank]
        return s * s * (self.transform.T @ sol.coef)


def _balance(interior_rows, groups, network, kappa):
    """κ per boundary group for the mass rows: ``kappa · sqrt(n_int/n_g) · rms(Ψ_X) / rms(BΨ_g)``."""
    reference = float(np.sqrt(np.mean(interior_rows[:256] ** 2)))
    out = []
    for g in groups:
        if g.weight is not None:
            out.append(g)
            continue
        rows = _group_rows(np.asarray(g.points[:256]), network, g, with_rhs=False)
        scale = float(np.sqrt(np.mean(rows**2))) if rows.size else 0.0
        w = kappa * np.sqrt(max(len(interior_rows), 1) / max(g.n_rows, 1)) * (reference / scale if scale > 0 else 1.0)
        out.append(replace(g, weight=float(w)))
    return out


def _null_space(constraints: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis of the approximate null space of the constraint rows."""
    _, s, vt = np.linalg.svd(constraints, full_matrices=True)
    rank = int(np.count_nonzero(s > tol * s[0])) if s.size else 0
    return vt[rank:].T


def build_projection(problem: EvolutionProblem, network: SampledNetwork, x_int: np.ndarray, groups: list,
                     settings: dict, t0: float, weights: np.ndarray | None = None) -> Projection:
    """Assemble and reduce the coefficient ODE of one time block (see the module docstring).

    ``weights`` are quadrature weights of the interior rows (points drawn from a non-uniform
    density ``q`` get ``1/√q``), so the least squares still measure the L2 norm: with an
    unweighted non-uniform point set the projected transport operators lose their skew
    symmetry and grow spurious modes (measured on Burgers).
    """
    width = network.width
    w_int = np.ones(len(x_int)) if weights is None else np.asarray(weights, dtype=float)
    psi_int = operator_rows(identity(1.0), network, x_int) * w_int[:, None]
    l_int = operator_rows(problem.operator, network, x_int) * w_int[:, None]
    boundary_mode = settings["boundary"]
    if boundary_mode == "compliant":
        constraint_rows = [_group_rows(np.asarray(g.points), network, g, with_rhs=False) for g in groups]
        for g in groups:
            if g.rhs is not None and not _is_zero(g, t0):
                raise ValueError(f"the compliant basis needs homogeneous conditions, but {g.name!r} has non-zero data; "
                                 "use boundary='penalty'")
        lift = _null_space(np.vstack(constraint_rows)) if constraint_rows else np.eye(width + 1)
        mass, stiff = psi_int @ lift, l_int @ lift
        forcing_rows = (w_int * _source_rows(problem, x_int, t0))[:, None]
        weighted = []
    else:
        lift = np.eye(width + 1)
        weighted = _balance(psi_int, groups, network, settings["kappa"])
        relax = settings["relaxation"]
        if relax is None:
            # 100× the faster of the interior operator's rate scale and 1/span: boundary values
            # then track their data closely enough that the boundary error stays below the
            # interior error (heat_2d: boundary RMS 6e-9 vs interior 2.3e-8; at 1× it was 2.5×
            # the interior error).  Exact and implicit integrators do not mind the stiffness.
            rate = float(np.sqrt(np.mean(l_int**2)) / max(np.sqrt(np.mean(psi_int**2)), 1e-300))
            span = float(problem.t_span[1] - problem.t_span[0])
            relax = 100.0 * max(rate, 1.0 / span)
        mass_parts, stiff_parts = [psi_int], [l_int]
        for g in weighted:
            rows = g.weight * _group_rows(np.asarray(g.points), network, g, with_rhs=False)
            mass_parts.append(rows)
            stiff_parts.append(-relax * rows)
        mass, stiff = np.vstack(mass_parts), np.vstack(stiff_parts)
        settings = {**settings, "relaxation": relax}
        forcing_rows = _forcing_rows(problem, x_int, weighted, settings["relaxation"], t0, w_int)[:, None]
    design = np.hstack([mass, stiff, forcing_rows])
    m = mass.shape[1]
    # Row blocks of `chunk_rows` (default: as for static solves, which keeps designs of up to
    # ~4 × columns rows in one block); each block is reduced to a triangle and the triangles merged.
    chunk = settings.get("chunk_rows") or default_chunk_rows(design.shape[1], len(design))
    (r,) = compute(tsqr_factor(da.from_array(design, chunks=(max(min(chunk, len(design)), 1), -1)),
                               name="the collocation rows"))
    factor = LeastSquaresFactor(r, n_columns=m, n_rows=len(design))
    u, s, vt = factor.svd
    keep = factor.filter_factors(settings["rcond"]) > 0
    k = int(keep.sum())
    transform = vt[:k].T / s[:k]
    z = factor.r[:m, m:]
    a = u[:, :k].T @ z[:, :m] @ transform
    b = u[:, :k].T @ z[:, m]
    needs_rows = (not problem.linear) or (not problem.autonomous)
    proj = Projection(network, lift, transform, a, b if problem.autonomous else None, s, k, settings["rcond"],
                      x_interior=x_int, interior_rows=len(x_int), interior_weights=w_int)
    if needs_rows:
        proj.mass_hat = mass @ transform
        proj.forcing = (lambda t: _forcing_rows(problem, x_int, weighted, settings.get("relaxation") or 0.0, t, w_int)) \
            if boundary_mode == "penalty" else (lambda t: w_int * _source_rows(problem, x_int, t))
        for alpha in problem.nonlinear_derivatives:
            alpha = tuple(alpha)
            op = identity(1.0) if sum(alpha) == 0 else derivative(alpha)
            proj.derivative_hat[alpha] = operator_rows(op, network, x_int) @ lift @ transform
    eig = np.linalg.eigvals(a) if k <= 3000 else np.array([np.nan])
    proj.diagnostics = {"rank": k, "width": width, "rows": len(design), "cutoff": settings["rcond"],
                        "max_growth_rate": float(np.max(eig.real)), "spectral_radius": float(np.max(np.abs(eig))),
                        "boundary": boundary_mode, "weights": {g.name: g.weight for g in weighted},
                        "relaxation": settings.get("relaxation")}
    return proj


def _is_zero(group: RowGroup, t) -> bool:
    pts = np.asarray(group.points)
    d = group.dim
    data = {"normal": pts[:, d : 2 * d], "t": t} if group.normals else {"t": t}
    return bool(np.all(np.asarray(group.rhs(pts[:, :d], data)) == 0))


def _source_rows(problem, x_int, t):
    return np.zeros(len(x_int)) if problem.source is None else np.asarray(problem.source(x_int, t), dtype=float)


def _forcing_rows(problem, x_int, weighted, relax, t, w_int, dt=1e-6):
    """``F(t) = [w f_X(t); κ (g_t + λ g)]`` for the penalty formulation."""
    parts = [w_int * _source_rows(problem, x_int, t)]
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
    return np.concatenate(parts)
