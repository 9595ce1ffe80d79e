"""Gauss–Newton / Levenberg–Marquardt for systems, each step one TSQR least-squares solve.

Every Gauss–Newton step is one least-squares solve of the linearised rows ``[J | J c - r]``,
assembled in row blocks and reduced by the TSQR exactly as the linear solver's rows are; a
linear system is one step.  A step that does not lower the residual is retried from the same
factor with Levenberg–Marquardt damping (no new assembly), and ``continuation`` walks a
parameter from an easy value to the target, each stage starting from the last
(docs/design.md §1.4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import dask
import dask.array as da
import numpy as np

from pipeline.backend import COMPUTE_DTYPE, to_host
from pipeline.cluster import blas_limited, compute
from pipeline.linalg import LeastSquaresFactor, default_chunk_rows, tsqr_factor
from pipeline.nn import ELMSampler, child_seed, get_activation, get_sampler, root_seed, sample_network
from pipeline.pde.conditions import Periodic
from pipeline.pde.fields import Equation, basis_derivatives, field_jets, inspect_residual, linearise
from pipeline.pde.systems import (ConvergenceError, SystemProblem, SystemSolution, _BoundaryOwner,
                                  resolve_system_settings)

__all__ = ["solve_system"]


@dataclass(frozen=True)
class _Group:
    """Rows of one equation (or a periodic pairing): packed points, keys read, weight."""

    name: str
    points: object  # (n, d [+ d normals | + d partner])
    equation: Equation | None
    keys: tuple
    normals: bool = False
    periodic: Periodic | None = None
    weight: float | None = 1.0
    linear: bool = False
    n_fields: int = 1

    @property
    def n_rows(self) -> int:
        return int(self.points.shape[0]) * self.rows_per_point

    @property
    def rows_per_point(self) -> int:
        """A periodic pair gives one row per derivative order and field; any other point one."""
        if self.periodic is None:
            return 1
        return len(self.periodic.operators(self.points.shape[1] // 2)) * self.n_fields


def _rows(packed, network, coef, group: _Group, fields, params, with_jacobian=True):
    """``[J | -r]`` (or just ``r``) of a block of a group, weighted."""
    layer = network.layers[0]
    d = layer.input_dim
    x = np.asarray(packed[:, :d], dtype=COMPUTE_DTYPE)
    n_f, cols = len(fields), layer.width + 1
    if group.periodic is not None:  # u(x) - u(x + L e) for every field and derivative order
        partner = np.asarray(packed[:, d:], dtype=COMPUTE_DTYPE)
        blocks = []
        for op in group.periodic.operators(d):
            alpha = op.terms[0].alpha or (0,) * d
            diff = basis_derivatives(layer, x, [alpha])[alpha] - basis_derivatives(layer, partner, [alpha])[alpha]
            for f in range(n_f):
                rows = np.zeros((len(x), n_f * cols + 1), dtype=COMPUTE_DTYPE)
                rows[:, f * cols:(f + 1) * cols] = diff
                rows[:, -1] = 0.0  # J c - r: the difference is linear, so its rows need no right-hand side
                blocks.append(rows)
        out = np.concatenate(blocks)
        out *= group.weight
        return out if with_jacobian else out[:, -1]
    normal = np.asarray(packed[:, d:2 * d], dtype=COMPUTE_DTYPE) if group.normals else None
    features = basis_derivatives(layer, x, sorted({k[1] for k in group.keys}))
    jet = field_jets(features, coef, fields, group.keys, d, x, normal)
    if not with_jacobian:
        return group.weight * np.asarray(group.equation.residual(x, jet, params), dtype=COMPUTE_DTYPE)
    r, slopes = linearise(group.equation.residual, jet, group.keys, params)
    rows = np.zeros((len(x), n_f * cols + 1), dtype=COMPUTE_DTYPE, order="F")
    index = {f: i for i, f in enumerate(fields)}
    for key, slope in zip(group.keys, slopes):
        f = index[key[0]]
        rows[:, f * cols:(f + 1) * cols] += slope[:, None] * features[key[1]]
    rows[:, -1] = rows[:, :-1] @ coef.reshape(-1) - r  # J c - r: the right-hand side of the new iterate
    rows *= group.weight
    return rows


def _map_groups(groups, network, coef, fields, params, chunk, with_jacobian):
    net = dask.delayed(network, pure=True)
    c = dask.delayed(coef, pure=True)
    n_cols = len(fields) * (network.width + 1) + 1
    parts = []
    for g in groups:
        per = g.rows_per_point
        points = g.points if isinstance(g.points, da.Array) else da.from_array(
            np.asarray(g.points), chunks=(max(1, chunk // per), -1))
        spec = replace(g, points=np.empty((0, g.points.shape[1])))  # the block comes as the argument
        out_chunks = tuple(c_ * per for c_ in points.chunks[0])
        if with_jacobian:
            parts.append(da.map_blocks(_rows, points, net, c, spec, fields, params, True,
                                       chunks=(out_chunks, (n_cols,)), dtype=COMPUTE_DTYPE,
                                       meta=np.empty((0, 0))))
        else:
            parts.append(da.map_blocks(_rows, points, net, c, spec, fields, params, False,
                                       chunks=(out_chunks,), drop_axis=1, dtype=COMPUTE_DTYPE,
                                       meta=np.empty((0,))))
    return da.concatenate(parts, axis=0)


def _groups(problem: SystemProblem, s, root) -> list[_Group]:
    d = problem.domain.dim
    chunk = s.get("chunk_rows") or default_chunk_rows(problem.n_fields * (s["width"] + 1) + 1, s["n_interior"])
    interior = problem.domain.interior_points(s["n_interior"], method=s["points"], seed=child_seed(root, 0),
                                              chunk_rows=chunk)
    boundary = problem.domain.sample_boundary(s["n_boundary"], method=s["points"], seed=child_seed(root, 1)) \
        if any(not e.interior for e in problem.equations) else None
    probe = problem.domain.sample_interior(16, seed=7)
    groups = []
    for i, eq in enumerate(problem.equations):
        if eq.interior:
            points, normals, weight = interior, False, 1.0
            info = inspect_residual(eq, problem.fields, d, problem.params, probe)
        else:
            own = _BoundaryOwner(eq.on, name=eq.name).select(problem.domain, boundary)
            if len(own) == 0:
                raise ValueError(f"equation {eq.name!r} of problem {problem.name!r} owns no boundary points; "
                                 f"increase n_boundary (now {s['n_boundary']})")
            points, normals, weight = np.hstack([own.points, own.normals]), True, eq.weight
            info = inspect_residual(eq, problem.fields, d, problem.params, own.points[:16], own.normals[:16])
        name = eq.name if sum(e.name == eq.name for e in problem.equations) == 1 else f"{eq.name}{i}"
        groups.append(_Group(name, points, eq, tuple(info["keys"]), normals, None, weight, info["linear"]))
        if eq.interior and s["pde_on_boundary"] and boundary is not None:
            groups.append(_Group(f"{name}@boundary", boundary.points, eq, tuple(info["keys"]), False, None, 1.0,
                                 info["linear"]))
    for i, c in enumerate(problem.periodic):
        share = max(1, s["n_boundary"] // (2 * d))
        x, partner = c.pairs(problem.domain, share, s["points"], child_seed(root, 2, i))
        groups.append(_Group(f"periodic{i}", np.hstack([x, partner]), None, (), False, c, c.weight, True,
                             problem.n_fields))
    return groups


def _balance(groups, network, coef, fields, params, kappa):
    def rms(g):
        pts = g.points[:256]
        pts = np.asarray(pts.compute() if isinstance(pts, da.Array) else pts)
        rows = _rows(pts, network, coef, replace(g, weight=1.0), fields, params)[:, :-1]
        return float(np.sqrt(np.mean(rows ** 2))) if rows.size else 0.0

    interior = [g for g in groups if g.equation is not None and g.equation.interior]
    ref = np.mean([rms(g) for g in interior])
    n_int = sum(g.n_rows for g in interior)
    out = []
    for g in groups:
        if g.weight is None:
            scale = rms(g)
            g = replace(g, weight=float(kappa * np.sqrt(n_int / max(g.n_rows, 1)) * (ref / scale if scale else 1.0)))
        out.append(g)
    return out


def _initial_coef(problem, network, pool, n_f):
    coef = np.zeros((n_f, network.width + 1))
    if not problem.initial:
        return coef
    x = np.asarray(pool, dtype=COMPUTE_DTYPE)
    phi = basis_derivatives(network.layers[0], x, [(0,) * x.shape[1]])[(0,) * x.shape[1]]
    u, s, vt = np.linalg.svd(phi, full_matrices=False)
    keep = s > 1e-12 * s[0]
    for name, fn in problem.initial.items():
        y = np.asarray(fn(x), dtype=COMPUTE_DTYPE)
        coef[problem.fields.index(name)] = vt[keep].T @ ((u[:, keep].T @ y) / s[keep])
    return coef


def _field_change(network, pool, coef, step, gauge):
    """``max_f rms(Φ δ_f) / rms(u_f)`` on the pool points (the step's size where it matters).

    Gauge fields (``gauge``: a boolean per field) are compared with their means removed.
    """
    x = np.asarray(pool[:512], dtype=COMPUTE_DTYPE)
    phi = basis_derivatives(network.layers[0], x, [(0,) * x.shape[1]])[(0,) * x.shape[1]]
    du, u = phi @ step.T, phi @ coef.T
    du[:, gauge] -= du[:, gauge].mean(axis=0)
    u[:, gauge] -= u[:, gauge].mean(axis=0)
    return float(np.max(np.sqrt(np.mean(du ** 2, axis=0)) / np.maximum(np.sqrt(np.mean(u ** 2, axis=0)), 1e-300)))


def _iterate(factor, scale, coef, rcond, mu):
    """The next iterate from the factor of ``[J D⁻¹ | J c - r]`` (``D``: column norms).

    Undamped, the new iterate itself is the minimum-norm truncated solution of
    ``J c_new = J c - r``: it keeps no component along the directions the cut-off drops, which
    a sum of increments from earlier Jacobians would accumulate (large coefficients, small on
    the collocation points, wild between them).  Damped (``mu > 0``, Levenberg–Marquardt), the
    step ``δ`` minimises ``||J δ + r||² + mu ||D δ||²``.
    """
    n = factor.n_columns
    u, s, vt = factor.svd
    keep = s > rcond * s[0] if s.size and s[0] > 0 else np.zeros(s.shape, bool)
    z = factor.r[:n, n]
    if not mu:
        scaled = vt[keep].T @ ((u[:, keep].T @ z) / s[keep])
        return scaled / scale - coef, int(keep.sum())
    g = z - factor.r[:n, :n] @ (scale * coef)
    f = s[keep] / (s[keep] ** 2 + mu)
    return (vt[keep].T @ (f * (u[:, keep].T @ g))) / scale, int(keep.sum())


def _newton(problem, groups, network, coef, params, s, pool, stage, history):
    fields, n_f = problem.fields, problem.n_fields
    shape = (n_f, network.width + 1)
    chunk = s.get("chunk_rows") or default_chunk_rows(n_f * (network.width + 1) + 1, s["n_interior"])
    linear = all(g.linear for g in groups)
    gauge = [f in problem.gauge for f in fields]
    for iteration in range(s["max_iterations"]):
        rows = _map_groups(groups, network, coef, fields, params, chunk, True)
        (r,) = compute(tsqr_factor(rows, overwrite_blocks=True, name="the linearised rows"))
        # equilibrate the columns (their norms are R's): the fields' columns differ in scale
        # (a Laplacian's |w|² against a gradient's |w|), and one cut-off must treat them alike
        r = np.triu(to_host(r))
        n = rows.shape[1] - 1
        scale = np.sqrt(np.sum(r[:, :n] ** 2, axis=0))
        scale[scale == 0] = 1.0
        r[:, :n] /= scale
        factor = LeastSquaresFactor(r, n_columns=n, n_rows=rows.shape[0], vector_rhs=True)
        flat = coef.reshape(-1)
        residual = float(np.sqrt(np.sum((r[:n, n] - r[:n, :n] @ (scale * flat)) ** 2) + np.sum(r[n:, n] ** 2)))
        if not np.isfinite(residual):
            raise ConvergenceError(f"problem {problem.name!r}: the residual is not finite at iteration {iteration} "
                                   f"(stage {stage}); the iteration diverged", history)
        mu, accepted, new_residual = 0.0, False, None
        s0 = float(factor.singular_values[0]) if factor.singular_values.size else 1.0
        for attempt in range(12):
            step, rank = _iterate(factor, scale, flat, s["rcond"], mu)
            step = step.reshape(shape)
            change = _field_change(network, pool, coef + step, step, gauge)
            if linear or (not mu and change < s["tolerance"]):  # converged: the residual is at its floor
                accepted = True
                break
            res = _map_groups(groups, network, coef + step, fields, params, chunk, False)
            (new_residual,) = compute(da.sqrt((res ** 2).sum()))
            new_residual = float(new_residual)
            if not mu and change < np.sqrt(s["tolerance"]) and new_residual >= residual * (1 - 1e-6):
                # a small full step that no longer lowers the residual: the floor of the discretisation
                history.append({"stage": stage, "iteration": iteration, "residual": residual, "rank": rank,
                                "damping": 0.0, "next_residual": new_residual, "change": change})
                return (coef + step if new_residual < residual else coef), factor.singular_values
            if np.isfinite(new_residual) and new_residual < residual * (1 + 1e-12) + 1e-300:
                accepted = True
                break
            mu = max(mu * 100.0, 1e-12 * s0 * s0)
        history.append({"stage": stage, "iteration": iteration, "residual": residual, "rank": rank,
                        "damping": mu, "next_residual": new_residual})
        if not accepted:
            raise ConvergenceError(
                f"problem {problem.name!r}: Gauss–Newton diverged at iteration {iteration} (stage {stage}): no damped "
                f"step lowers the residual {residual:.3e}; try continuation or an initial guess", history)
        coef = coef + step
        history[-1]["change"] = change
        if linear or change < s["tolerance"]:
            return coef, factor.singular_values
    raise ConvergenceError(f"problem {problem.name!r}: Gauss–Newton did not converge in {s['max_iterations']} "
                           f"iterations (stage {stage}; last change {change:.2e}, tolerance {s['tolerance']:.0e})",
                           history)


@blas_limited
def solve_system(problem: SystemProblem, **overrides) -> SystemSolution:
    """Solve a :class:`SystemProblem` (settings as :data:`SYSTEM_DEFAULTS`, then the problem's).

    Raises :class:`ConvergenceError` (a ``ValueError``) with the residual history when the
    iteration diverges or does not converge.
    """
    s = resolve_system_settings(problem, overrides)
    activation = get_activation(s["activation"])
    sampler = ELMSampler(s["weight_scale"], s["bias_scale"]) if s["sampler"] == "elm" else get_sampler(s["sampler"])
    if getattr(sampler, "mode", None) == "data":
        raise ValueError("sampler 'swim' needs function values; use 'uswim' or 'elm' for a system")
    root = root_seed(s["seed"])
    timings, start = {}, time.perf_counter()
    groups = _groups(problem, s, root)
    order = max([sum(k[1]) for g in groups for k in g.keys] + [g.periodic.derivatives for g in groups if g.periodic])
    activation.check_order(order)
    pool = problem.domain.sample_interior(s["pool_size"], seed=child_seed(root, 3))
    (network,) = compute(sample_network(pool, None, widths=[s["width"]], activation=activation, sampler=sampler,
                                        seed=child_seed(root, 4)))
    coef = _initial_coef(problem, network, pool, problem.n_fields)
    timings["setup"] = time.perf_counter() - start
    start = time.perf_counter()
    cont = s["continuation"]
    stages = [(None, None)]
    if cont:  # the problem's own value is always the last stage
        values = [float(v) for v in cont["values"]]
        target = float(problem.params[cont["param"]])
        stages = [(cont["param"], v) for v in values + ([target] if values[-1] != target else [])]
    history, weights = [], {}
    for stage, (name, value) in enumerate(stages):
        params = dict(problem.params)
        if name is not None:
            params[name] = float(value)
        groups_w = _balance(groups, network, coef, problem.fields, params, s["kappa"])
        weights = {g.name: g.weight for g in groups_w if g.weight != 1.0 or not (g.equation and g.equation.interior)}
        coef, singular_values = _newton(problem, groups_w, network, coef, params, s, pool, stage, history)
    timings["solve"] = time.perf_counter() - start
    return SystemSolution(problem, network, coef, s, history, weights, timings, singular_values)
