"""The reduced ODE of a time-dependent system on one sampled basis (neural method of lines).

Every field ``u_f(x, t) = Ψ(x) N_f a_f(t)`` lives on the shared basis ``Ψ = [Φ | 1]``; ``N_f``
spans the null space of the field's homogeneous conditions (periodic pairs, linear boundary
equations), so every coefficient vector satisfies them (the boundary-compliant basis of
docs/design.md §3.3).  One SVD ``Ψ(X) N_f = U S Vᵀ`` on the collocation points ``X`` gives the
reduced coordinates ``y_f = S_k V_kᵀ a_f`` (orthonormal on the rows: ``u_f(X) = U_k y_f``), the
reduced derivative matrices ``D̂_α = ∂^α Ψ(X) N_f V_k S_k⁻¹`` and the ODE

    y_f' = U_kᵀ F_f(X, U(y), p),        U[(g, α)] = D̂_α y_g,

the least-squares projection of ``∂_t u_f = F_f`` at every instant.  Fields with the same
conditions share one reduced space.  The Jacobian of the right-hand side is
``Σ_(g, α) U_kᵀ diag(∂F_f/∂U_(g,α)) D̂_α`` with the point-wise partials by complex step
(:func:`pipeline.pde.fields.linearise`): one GEMM per jet entry, no difference quotients.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.linalg

from pipeline.backend import COMPUTE_DTYPE
from pipeline.pde.conditions import Dirichlet, Periodic
from pipeline.pde.fields import Jet, basis_derivatives, linearise
from pipeline.pde.projection import _null_space

__all__ = ["FieldSpace", "SystemProjection", "build_system_projection", "condition_points", "condition_rows",
           "field_condition_rows", "rows_digest"]


@dataclass
class FieldSpace:
    """The reduced space of the fields sharing one set of conditions."""

    lift: np.ndarray  # (width + 1, m): null space of the condition rows (identity without conditions)
    transform: np.ndarray  # (m, k): V_k S_k⁻¹
    mass_hat: np.ndarray  # (n, k): U_k, orthonormal columns
    singular_values: np.ndarray
    rank: int

    @cached_property
    def coefficient_map(self) -> np.ndarray:
        """``(width + 1, k)``: basis coefficients ``[c | c0]`` per reduced coordinate."""
        return self.lift @ self.transform


@dataclass
class SystemProjection:
    """The reduced system of a :class:`~pipeline.pde.system_evolution.SystemEvolutionProblem`.

    The state is the concatenation of the fields' coordinates, ``y[offsets[f]:offsets[f + 1]]``.
    """

    network: object
    x: np.ndarray  # (n, d) collocation points
    fields: tuple
    spaces: list  # [FieldSpace]
    space_of: tuple  # field index -> space index
    rhs_equations: tuple  # per field: the Equation of ∂_t u_f
    keys: tuple  # per field: the jet keys its right-hand side reads
    derivative_hat: dict  # (space, alpha) -> (n, k)
    fingerprint: str = ""
    diagnostics: dict = field(default_factory=dict)
    evaluations: dict = field(default_factory=lambda: {"rhs": 0, "jacobian": 0})

    @cached_property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([self.spaces[s].rank for s in self.space_of])]).astype(int)

    @property
    def size(self) -> int:
        return int(self.offsets[-1])

    def part(self, y, f: int):
        return y[self.offsets[f]:self.offsets[f + 1]]

    @cached_property
    def _plan(self) -> dict:
        """``(space, alpha) -> [(key, field index)]``: the jet entries one GEMM computes together."""
        index = {name: i for i, name in enumerate(self.fields)}
        plan = {}
        for key in sorted({key for keys in self.keys for key in keys}):
            plan.setdefault((self.space_of[index[key[0]]], key[1]), []).append((key, index[key[0]]))
        return plan

    @cached_property
    def _groups(self) -> dict:
        """``space -> [field index]``: the fields projected by one GEMM."""
        groups = {}
        for f, s in enumerate(self.space_of):
            groups.setdefault(s, []).append(f)
        return groups

    def _jet(self, y) -> Jet:
        values = {}
        for (s, alpha), members in self._plan.items():
            block = self.derivative_hat[s, alpha] @ np.column_stack([self.part(y, f) for _, f in members])
            for j, (key, _) in enumerate(members):
                values[key] = block[:, j]
        return Jet(values, self.fields, self.x.shape[1], self.x)

    def rhs(self, t: float, y: np.ndarray, params: dict) -> np.ndarray:
        """``y'``: every field's right-hand side at the collocation points, projected."""
        self.evaluations["rhs"] += 1
        jet, p = self._jet(y), {**params, "t": t}
        values = [np.asarray(eq.residual(self.x, jet, p)) for eq in self.rhs_equations]
        out = np.empty(self.size, dtype=np.result_type(y, *values))
        for s, members in self._groups.items():
            block = self.spaces[s].mass_hat.T @ np.column_stack([values[f] for f in members])
            for j, f in enumerate(members):
                out[self.offsets[f]:self.offsets[f + 1]] = block[:, j]
        return out

    def jacobian(self, t: float, y: np.ndarray, params: dict) -> np.ndarray:
        """``∂y'/∂y``: the point-wise partials by complex step, then one GEMM per jet entry."""
        self.evaluations["jacobian"] += 1
        jet, p = self._jet(y), {**params, "t": t}
        index = {name: i for i, name in enumerate(self.fields)}
        out = np.zeros((self.size, self.size))
        for f, eq in enumerate(self.rhs_equations):
            _, slopes = linearise(eq.residual, jet, self.keys[f], p)
            rows = slice(self.offsets[f], self.offsets[f + 1])
            mass_t = self.spaces[self.space_of[f]].mass_hat.T
            for key, slope in zip(self.keys[f], slopes):
                g = index[key[0]]
                d_hat = self.derivative_hat[self.space_of[g], key[1]]
                out[rows, self.offsets[g]:self.offsets[g + 1]] += mass_t @ (slope[:, None] * d_hat)
        return out

    def fit(self, values: dict) -> np.ndarray:
        """Reduced state of fields given at the collocation points: ``y_f = U_kᵀ u_f(X)``
        (the least-squares fit on the rows, which are orthonormal)."""
        return np.concatenate([self.spaces[self.space_of[f]].mass_hat.T @ np.asarray(values[name], dtype=float)
                               for f, name in enumerate(self.fields)])

    def evaluators(self, points: np.ndarray) -> list:
        """``E_f`` with ``u_f(points) = E_f y_f``, one per field (shared per space)."""
        points = np.asarray(points, dtype=COMPUTE_DTYPE)
        zero = (0,) * points.shape[1]
        psi = basis_derivatives(self.network.layers[0], points, [zero])[zero]
        per_space = {s: psi @ self.spaces[s].coefficient_map for s in set(self.space_of)}
        return [per_space[s] for s in self.space_of]

    def coefficients(self, y: np.ndarray) -> np.ndarray:
        """``(n_fields, width + 1)`` basis coefficients ``[c | c0]`` of every field."""
        return np.stack([self.spaces[self.space_of[f]].coefficient_map @ self.part(y, f)
                         for f in range(len(self.fields))])


# ----------------------------------------------------------------------------- conditions
def condition_rows(problem, network, condition, params: dict, points) -> dict:
    """``{field index: rows}`` of one homogeneous linear condition over ``[Φ | 1]`` columns.

    Periodic pairs give ``∂^α Ψ(x) − ∂^α Ψ(x + L e)`` for every field; a boundary equation the
    linearised rows ``Σ_k ∂r/∂U_k ∂^{α_k} Ψ`` of the one field it reads.
    """
    layer, d = network.layers[0], problem.domain.dim
    if isinstance(condition, Periodic):
        x, partner = points
        rows = []
        for op in condition.operators(d):
            alpha = op.terms[0].alpha or (0,) * d
            rows.append(basis_derivatives(layer, x, [alpha])[alpha] - basis_derivatives(layer, partner, [alpha])[alpha])
        block = np.vstack(rows)
        return {f: block for f in range(len(problem.fields))}
    own, keys = points
    features = basis_derivatives(layer, own.points, sorted({k[1] for k in keys}))
    zero = {key: np.zeros(len(own)) for key in keys}
    r, slopes = linearise(condition.residual, Jet(zero, problem.fields, d, own.points, own.normals), keys, params)
    scale = max(1.0, float(np.max(np.abs(np.concatenate(slopes)))))
    if np.max(np.abs(r)) > 1e-12 * scale:
        raise ValueError(f"condition {condition.name!r} of problem {problem.name!r} is not homogeneous (its residual "
                         "at zero fields is not zero): the boundary-compliant basis needs conditions r(x, U, p) = 0 "
                         "that hold for U = 0; move the data into the right-hand side or shift the fields")
    rows = sum(slope[:, None] * features[key[1]] for key, slope in zip(keys, slopes))
    return {problem.fields.index(keys[0][0]): rows}


def condition_points(problem, settings, seed_of) -> list:
    """Per condition: periodic pairs ``(x, partner)`` or ``(boundary sample, keys)``."""
    from pipeline.pde.fields import inspect_residual

    d = problem.domain.dim
    out, boundary = [], None
    for i, c in enumerate(problem.conditions):
        if isinstance(c, Periodic):
            share = max(1, settings["n_boundary"] // (2 * d))
            out.append(c.pairs(problem.domain, share, settings["points"], seed_of(2, i)))
            continue
        if boundary is None:
            boundary = problem.domain.sample_boundary(settings["n_boundary"], method=settings["points"],
                                                      seed=seed_of(1))
        own = Dirichlet(on=c.on).select(problem.domain, boundary)
        if len(own) == 0:
            raise ValueError(f"condition {c.name!r} of problem {problem.name!r} owns no boundary points; increase "
                             f"n_boundary (now {settings['n_boundary']})")
        info = inspect_residual(c, problem.fields, d, {**problem.params, "t": problem.t_span[0]},
                                own.points[:16], own.normals[:16])
        read = sorted({k[0] for k in info["keys"]})
        if not info["linear"]:
            raise ValueError(f"condition {c.name!r} of problem {problem.name!r} is nonlinear; the boundary-compliant "
                             "basis needs linear homogeneous conditions")
        if len(read) != 1:
            raise ValueError(f"condition {c.name!r} of problem {problem.name!r} couples the fields {read}; each "
                             "boundary equation must constrain one field (the compliant basis is built per field)")
        out.append((own, tuple(info["keys"])))
    return out


def field_condition_rows(problem, network, points: list, params: dict) -> list:
    """Per field: the stacked rows of every condition on it (``(0, width + 1)`` without)."""
    width = network.layers[0].width
    per_field = [[] for _ in problem.fields]
    for c, pts in zip(problem.conditions, points):
        for f, rows in condition_rows(problem, network, c, params, pts).items():
            per_field[f].append(rows)
    return [np.vstack(rows) if rows else np.zeros((0, width + 1)) for rows in per_field]


def rows_digest(per_field: list) -> str:
    """A hash of the condition rows: equal rows give the same reduced spaces."""
    digest = hashlib.sha256()
    for rows in per_field:
        digest.update(np.ascontiguousarray(rows).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


def build_system_projection(problem, network, x: np.ndarray, per_field: list, rhs_keys: tuple,
                            rcond: float) -> SystemProjection:
    """Null spaces of the conditions per field, one SVD per distinct space, reduced matrices."""
    layer, n_f = network.layers[0], len(problem.fields)
    width = layer.width
    zero = (0,) * x.shape[1]
    alphas = sorted({key[1] for keys in rhs_keys for key in keys} | {zero})
    features = basis_derivatives(layer, x, alphas)
    spaces, space_of, seen = [], [], {}
    for f in range(n_f):
        rows = per_field[f]
        key = hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()
        if key not in seen:
            lift = _null_space(rows) if len(rows) else np.eye(width + 1)
            u, s, vt = scipy.linalg.svd(features[zero] @ lift, full_matrices=False, check_finite=False)
            k = int(np.count_nonzero(s > rcond * s[0])) if s.size and s[0] > 0 else 0
            if k == 0:
                raise ValueError(f"the basis of {width} neuron(s) has no direction above rcond on the collocation points")
            seen[key] = len(spaces)
            spaces.append(FieldSpace(lift, vt[:k].T / s[:k], u[:, :k], s, k))
        space_of.append(seen[key])
    index = {name: i for i, name in enumerate(problem.fields)}
    needed = {(space_of[index[key[0]]], key[1]) for keys in rhs_keys for key in keys}
    derivative_hat = {}
    for s_index, alpha in sorted(needed):
        space = spaces[s_index]
        derivative_hat[s_index, alpha] = space.mass_hat if alpha == zero else \
            (features[alpha] @ space.lift) @ space.transform
    proj = SystemProjection(network, x, problem.fields, spaces, tuple(space_of),
                            tuple(problem.rhs[name] for name in problem.fields), tuple(rhs_keys), derivative_hat,
                            rows_digest(per_field))
    proj.diagnostics = {"rank": {problem.fields[f]: spaces[space_of[f]].rank for f in range(n_f)},
                        "spaces": len(spaces), "width": width, "rows": len(x), "cutoff": rcond,
                        "conditions": [getattr(c, "name", type(c).__name__) for c in problem.conditions]}
    return proj
