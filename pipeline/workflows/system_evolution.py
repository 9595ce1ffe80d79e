"""Time-dependent systems as a workflow kind: every field of every member at every output time.

A ``problem`` section whose problem is a
:class:`~pipeline.pde.system_evolution.SystemEvolutionProblem` runs as
:class:`SystemEvolutionKind` (the registry chooses): one
:class:`~pipeline.pde.system_evolution.SystemEvolution` per member (basis sampled once, one
reduced ODE for all fields, one integration over the span).  The store's ``u`` is
``(member dims…, time, field, point dims)``, the coefficients ``(…, time, field, coefficient)``.

Dense output (for :meth:`SystemEvolutionKind.evaluate`): the span is cut at every output time
(and at its ends), each interval into ``s`` equal pieces, and the basis coefficients of every
field are stored at the 17 Chebyshev–Lobatto nodes of each piece (``/trajectory``, the layout
of :mod:`pipeline.pde.dense`).  The node states come from the same integration as the output
states (``solve_ivp``'s own interpolant between steps: no extra steps), so ``evaluate`` is
exact at the stored output times (they are piece ends) and a degree-16 interpolation between
them.  ``s`` is the smallest of 1, 2, 4, … whose interpolation error at the check points (the
angular midpoints between nodes), relative to each field's largest norm on the collocation
rows, is within ``100 · rtol`` (clipped to [1e-10, 1e-5]); candidates up to 256 pieces share one
integration, and the measured error is stored (``diagnostics/dense_error``): Brusselator 8e-10
(s = 1), Schrödinger 2.5e-7 (s = 2); against a direct integration at 400 random times, rel. L2
on the output points, 2e-10 and 3e-7 — far below the methods' own errors.  One window per
member (the system solver integrates from ``t0``, so a member restarts whole on ``--resume``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from pipeline.config import ConfigError
from pipeline.store import PointLayout, StoreSpec, Variable, field_time_chunk, point_layout
from pipeline.workflows.base import Clock, MemberTask, Plan, WorkflowKind, member_variables, padded
from pipeline.workflows.pde import (
    PROBLEM_SECTION,
    PDESettings,
    ProblemCache,
    basis_spec,
    build_problem,
    evaluation_times,
    field_spec,
    shared_width,
    stored_layers,
    sweep_exact,
    write_basis,
)

__all__ = ["SystemEvolutionKind", "is_system_evolution"]

SYSTEM_EVOLUTION_KEYS = {
    "basis": ("width", "activation", "sampler", "weight_scale", "bias_scale"),
    "collocation": ("n_interior", "n_boundary", "points"),
    "solver": ("rcond",),
    "time": ("outputs", "method", "rtol", "atol"),
}

#: the dense output's tolerance: this many times ``rtol`` (clipped to [DENSE_FLOOR, DENSE_CEILING])
DENSE_FACTOR, DENSE_FLOOR, DENSE_CEILING = 100.0, 1e-10, 1e-5
#: pieces sampled by one integration when trying several subdivisions at once
LEVEL_BUDGET = 256


def is_system_evolution(problem) -> bool:
    from pipeline.pde.system_evolution import SystemEvolutionProblem

    return isinstance(problem, SystemEvolutionProblem)


@dataclass(frozen=True)
class SystemEvolutionShared:
    points: np.ndarray
    layout: PointLayout
    times: np.ndarray
    edges: np.ndarray  # the output times and the span's ends: every piece lies between two
    width: int
    fields: tuple


def _exact_fields(problem, points, times, layout) -> np.ndarray:
    """``(time, field, point dims)``: the reference of every field (NaN for a field without one)."""
    out = []
    for name in problem.fields:
        fn = problem.truth.get(name)
        out.append(np.stack([np.asarray(fn(points, float(t)), dtype=float) for t in times]) if fn is not None
                   else np.full((len(times), len(points)), np.nan))
    return layout.to_grid(np.stack(out, axis=1))


class SystemEvolutionKind(WorkflowKind):
    """A time-dependent system (several fields on one basis): one integration per member."""

    name = "system_evolution"
    label = "time-dependent system"
    section = "problem"
    sections = {"problem": PROBLEM_SECTION}
    task = "a PDE"
    keys = SYSTEM_EVOLUTION_KEYS
    devices = ("cpu",)
    stages = ("sample", "project", "integrate", "write")

    def plan(self, cfg, members, grid, path, quiet) -> Plan:
        from pipeline.pde.dense import MAX_PIECES, NODES
        from pipeline.pde.system_evolution import SystemEvolution, check_outputs

        cache = ProblemCache()
        problems = [cache(m.config["problem"]) for m in members]
        if not all(is_system_evolution(p) for p in problems):
            raise ConfigError("all members must be time-dependent systems (a sweep cannot mix kinds of problem)")
        first = problems[0]
        if any(p.fields != first.fields for p in problems):
            raise ConfigError(f"the swept parameters change the fields (first: {list(first.fields)}); sweep other keys")
        settings = [PDESettings.from_config(m.config, self.keys) for m in members]
        resolved, seen = [], {}
        try:  # every distinct (problem, settings) once: the basis, jets and activation order are checked here
            for p, m, s in zip(problems, members, settings):
                key = json.dumps([m.config["problem"], s.kwargs()], sort_keys=True, default=str)
                if key not in seen:
                    ev = SystemEvolution(p, seed=m.seed, **s.kwargs())
                    if ev.settings["method"] == "exact":  # a linear autonomous system only: refused here, not later
                        ev.states(np.asarray(p.t_span))
                    seen[key] = ev.settings
                resolved.append(seen[key])
        except (ValueError, TypeError, KeyError) as err:
            raise ConfigError(f"solver settings: {err}") from None
        points, grid_times = first.evaluation_grid()
        n_out = cfg["time"]["outputs"]
        times = np.linspace(*first.t_span, n_out) if n_out else grid_times
        for p in problems[1:]:
            other, other_times = p.evaluation_grid()
            if other.shape != points.shape or not np.allclose(other, points) or p.t_span != first.t_span or (
                    n_out is None and (other_times.shape != times.shape or not np.allclose(other_times, times))):
                raise ConfigError("the swept parameters change the output grid (points, times or span); sweep other "
                                  "keys, or set time.outputs")
        try:
            check_outputs(first, times, points)
        except ValueError as err:
            raise ConfigError(f"problem: {err}") from None
        if np.any(np.diff(times) <= 0):
            raise ConfigError("the output times must increase strictly")
        edges = np.unique(np.concatenate([[first.t_span[0]], times, [first.t_span[1]]]))
        if len(edges) - 1 > MAX_PIECES:
            raise ConfigError(f"time.outputs: at most {MAX_PIECES + 1} output times (one piece of the dense output "
                              f"between each two); got {len(times)}")
        layout = point_layout(points)
        width = max(r["width"] for r in resolved)
        n_fields = len(first.fields)
        shared = SystemEvolutionShared(points, layout, times, edges, width, first.fields)
        dtype = cfg["output"]["dtype"]
        exact = None
        if first.truth:
            exact = sweep_exact(grid, members,
                                lambda m: _exact_fields(cache(m.config["problem"]), points, times, layout))
        chunk = {"time": field_time_chunk(len(times), n_fields * int(np.prod(layout.shape)), np.dtype(dtype).itemsize)}
        g = grid.dims
        groups = {"": field_spec(grid, layout, ("time", "field"), dtype, chunk, exact)}
        for name, variables in basis_spec(grid, 1, width, first.domain.dim, width + 1, ("time", "field")).items():
            groups.setdefault(name, {}).update(variables)
        for name, variables in member_variables(grid, self.stages, 1).items():
            groups.setdefault(name, {}).update(variables)
        diagnostics = groups["diagnostics"]
        diagnostics["field_rank"] = Variable(g + ("field",), "int64",
                                             attrs={"long_name": "rank of each field's reduced space"})
        diagnostics["dense_error"] = Variable(g, attrs={
            "long_name": "measured relative interpolation error of the dense output (evaluate between output times)"})
        if first.truth:
            diagnostics["field_rel_l2"] = Variable(g + ("field",), attrs={
                "long_name": "relative L2 error of each field over the output grid (NaN: no reference)"})
        pieces = {"piece": 32}
        groups["trajectory"] = {
            "t_start": Variable(g + ("piece",), chunks=pieces, attrs={"long_name": "start of the piece"}),
            "t_end": Variable(g + ("piece",), chunks=pieces, attrs={"long_name": "end of the piece"}),
            "values": Variable(g + ("piece", "node", "field", "coefficient"), chunks=pieces, attrs={
                "long_name": "basis coefficients [c | c0] of every field at the Chebyshev nodes of each piece"}),
        }
        sizes = {**dict(zip(g, grid.sizes)), **dict(zip(layout.dims, layout.shape)), "time": len(times),
                 "field": n_fields, "block": 1, "neuron": width, "dim": first.domain.dim, "coefficient": width + 1,
                 "sv": n_fields * (width + 1), "stage": len(self.stages), "window": 1, "piece": MAX_PIECES,
                 "node": NODES}
        field_coord = (("field",), list(first.fields), {"long_name": "field"})
        coords = {**grid.coords, **layout.coords, "field": field_coord,
                  "time": (("time",), times, {"long_name": "time", "units": "1", "axis": "T"})}
        spec = StoreSpec(sizes, g, coords, groups,
                         group_coords={"diagnostics": {"stage": (("stage",), list(self.stages), {}),
                                                       "field": field_coord},
                                       "coefficients": {"time": coords["time"], "field": field_coord},
                                       "trajectory": {"field": field_coord}})
        tasks = [MemberTask(self.name, path, m, grid, s, shared, 1, self.stages, quiet)
                 for m, s in zip(members, settings)]
        r0 = {k: v for k, v in resolved[0].items() if k != "seed" and v is not None}
        info = {"problem": first.name, "params": json.dumps(first.params, default=str), "has_truth": bool(first.truth),
                "activation": str(r0["activation"]), "dim": first.domain.dim,
                "settings": json.dumps(r0, default=str), "fields": list(first.fields),
                "t_span": list(first.t_span)}
        return Plan(tasks, spec, info)

    def run(self, task: MemberTask) -> dict:
        from pipeline.pde.integrators import DivergenceError
        from pipeline.pde.system_evolution import SystemEvolution, SystemEvolutionResult

        if task.first_pending() >= 1:
            return {"member": task.index, "skipped": True}
        shared: SystemEvolutionShared = task.shared
        problem = build_problem(task.member.config["problem"])
        clock = Clock()
        ev = SystemEvolution(problem, seed=task.member.seed, **task.settings.kwargs())
        clock.add("sample", ev.timings["sample_s"], ev.timings["sample_cpu_s"])
        start = clock.start()
        try:
            proj, outputs, nodes, dense = _integrate(ev, shared.times, shared.edges)
        except DivergenceError as err:
            raise DivergenceError(f"member {task.index} diverged: {err} (no window is in the store)", None) from None
        wall, cpu = clock.start()
        project = proj.diagnostics.get("project_s", 0.0), proj.diagnostics.get("project_cpu_s", 0.0)
        clock.add("project", *project)  # the projection is built inside the first integration
        clock.add("integrate", wall - start[0] - project[0], cpu - start[1] - project[1])
        start = clock.start()
        evaluators = proj.evaluators(shared.points)
        fields = {name: outputs[:, proj.offsets[f]:proj.offsets[f + 1]] @ evaluators[f].T
                  for f, name in enumerate(problem.fields)}
        task.write("", {"u": (("time", "field") + shared.layout.dims,
                              shared.layout.to_grid(np.stack([fields[f] for f in problem.fields], axis=1)))})
        task.write("coefficients", {"c": (("time", "field", "coefficient"), _coefficients(proj, outputs, shared.width))})
        starts, ends, node_states = nodes
        values = _coefficients(proj, node_states.reshape(-1, node_states.shape[-1]), shared.width)
        values = values.reshape(node_states.shape[:2] + values.shape[1:])
        task.write("trajectory", {"t_start": (("piece",), starts), "t_end": (("piece",), ends),
                                  "values": (("piece", "node", "field", "coefficient"), values)},
                   {"piece": slice(0, len(starts))})
        spaces = [proj.spaces[proj.space_of[f]] for f in range(len(problem.fields))]
        svs = np.concatenate([padded(s.singular_values, shared.width + 1) for s in spaces])
        write_basis(task, 0, ev.network.layers[0], proj.size, svs, shared.width, len(svs))
        ranks = [int(s.rank) for s in spaces]
        errors, rel_l2 = {}, None
        diagnostics = {"field_rank": (("field",), np.array(ranks, dtype="int64")), "dense_error": ((), dense)}
        if problem.truth:
            result = SystemEvolutionResult(problem, shared.times, shared.points, fields, outputs, dict(problem.params),
                                           dict(ev.settings), {}, proj)
            errors = result.errors()
            per_field = [errors.get(f, np.nan) for f in problem.fields]
            rel_l2 = float(np.nanmax(per_field))
            diagnostics["field_rel_l2"] = (("field",), np.array(per_field))
        task.write("diagnostics", diagnostics)
        clock.stop("write", start)
        task.write_diagnostics(clock, rel_l2)
        task.mark_done(0)
        return {"member": task.index, "rel_l2": rel_l2, "rank_per_field": dict(zip(problem.fields, ranks)),
                "dense_error": dense, **{f"rel_l2_{k}": v for k, v in errors.items()}}

    def evaluate(self, result, points, times):
        """Every member's fields at ``(points[i], times[i])``: ``(members, fields, n)``, from the store only.

        The stored dense trajectory (basis coefficients of every field at the Chebyshev–Lobatto
        nodes of pieces between output times) is interpolated at ``times`` — exactly the stored
        states at the output times, within ``diagnostics/dense_error`` between them (module
        docstring) — and multiplied by the stored basis.  Nothing is integrated again.
        """
        from pipeline.nn import SampledNetwork
        from pipeline.pde.dense import evaluate_pieces

        times = evaluation_times(points, times)
        span = result.attrs["t_span"]
        t0, t1 = (float(v) for v in (json.loads(span) if isinstance(span, str) else span))
        slack = 1e-12 * max(1.0, abs(t0), abs(t1))
        if not np.all(np.isfinite(times)) or np.any(times < t0 - slack) or np.any(times > t1 + slack):
            raise ValueError(f"times must lie in the run's span [{t0:g}, {t1:g}]; got {np.nanmin(times):g} to "
                             f"{np.nanmax(times):g}")
        times = np.clip(times, t0, t1)
        width = shared_width(result)
        n_fields = int(result.tree["/"].sizes["field"])
        out = np.empty((result.members, n_fields, len(points)))
        for m in range(result.members):
            traj = result.member_dataset("trajectory", m)
            starts = traj["t_start"].values
            used = int(np.isfinite(starts).sum())
            if used == 0 or np.nanmax(traj["t_end"].values) < t1 - slack:
                raise ValueError(f"{result.member_label(m)} of this store has not finished; evaluate it after --resume")
            values = traj["values"].isel(piece=slice(0, used)).values  # (pieces, node, field, coefficient)
            coef = evaluate_pieces(starts[:used], traj["t_end"].values[:used],
                                   values.reshape(used, values.shape[1], -1), times).reshape(len(times), n_fields, -1)
            (layer,) = stored_layers(result, m, result.attrs["activation"])
            features = SampledNetwork((layer,))(points)
            out[m] = np.einsum("ij,ifj->fi", features, coef[:, :, : layer.width]) + coef[:, :, width].T
        return out

    def plot(self, result, plt):
        from pipeline.workflows.plots import plot_fields
        from pipeline.workflows.systems import _FirstField

        return plot_fields(_FirstField(result), plt)


def _coefficients(proj, states: np.ndarray, width: int) -> np.ndarray:
    """``(n, field, width + 1)``: basis coefficients ``[c (padded) | c0]`` of every field of each state."""
    out = []
    for f in range(len(proj.fields)):
        c = states[:, proj.offsets[f]:proj.offsets[f + 1]] @ proj.spaces[proj.space_of[f]].coefficient_map.T
        w = c.shape[1] - 1
        out.append(np.concatenate([padded(c[:, :w].T, width).T, c[:, w:]], axis=1))
    return np.stack(out, axis=1)


def _pieces(edges: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Every interval between edges cut into ``s`` equal pieces: ``(starts, ends)``, ends exact."""
    frac = np.arange(s + 1) / s
    cuts = edges[:-1, None] + np.diff(edges)[:, None] * frac[None, :]
    cuts[:, -1] = edges[1:]
    return cuts[:, :-1].ravel(), cuts[:, 1:].ravel()


def _integrate(ev, times: np.ndarray, edges: np.ndarray):
    """One integration for the output states and the dense output's nodes (module docstring).

    Returns ``(projection, states at times, (starts, ends, node states), measured error)``.
    """
    from pipeline.pde.dense import MAX_PIECES, NODES, evaluate_pieces

    lobatto = (1.0 - np.cos(np.pi * np.arange(NODES) / (NODES - 1))) / 2.0
    check = (1.0 - np.cos(np.pi * (np.arange(NODES - 1) + 0.5) / (NODES - 1))) / 2.0
    tol = float(np.clip(DENSE_FACTOR * ev.settings["rtol"], DENSE_FLOOR, DENSE_CEILING))
    intervals, exact = len(edges) - 1, ev.settings["method"] == "exact"
    s, best = 1, None
    while best is None or (best[-1] > tol and s * intervals <= MAX_PIECES):
        levels = [s]  # "exact" caches one exponential per distinct step: one subdivision per call
        while exact is False and 2 * levels[-1] * intervals <= MAX_PIECES and (
                sum(levels) + 2 * levels[-1]) * intervals <= max(LEVEL_BUDGET, s * intervals):
            levels.append(2 * levels[-1])
        grids = []
        for level in levels:
            a, b = _pieces(edges, level)
            at = a[:, None] + (b - a)[:, None] * lobatto[None, :]
            at[:, 0], at[:, -1] = a, b
            grids.append((a, b, at, a[:, None] + (b - a)[:, None] * check[None, :]))
        sample = np.concatenate([times] + [np.concatenate([g[2].ravel(), g[3].ravel()]) for g in grids])
        proj, states, _ = ev.states(sample)
        outputs, offset = states[: len(times)], len(times)
        scale = [max(float(np.max(np.linalg.norm(states[:, proj.offsets[f]:proj.offsets[f + 1]], axis=1))), 1e-300)
                 for f in range(len(proj.fields))]
        for a, b, at, chk in grids:
            nodes = states[offset: offset + at.size].reshape(len(a), NODES, -1)
            truth = states[offset + at.size: offset + at.size + chk.size]
            offset += at.size + chk.size
            diff = evaluate_pieces(a, b, nodes, chk.ravel()) - truth
            error = max(float(np.max(np.linalg.norm(diff[:, proj.offsets[f]:proj.offsets[f + 1]], axis=1))) / scale[f]
                        for f in range(len(proj.fields)))
            if best is None or best[-1] > tol:
                best = (a, b, nodes, error) if best is None or error < best[-1] or error <= tol else best
        s = 2 * levels[-1]
    a, b, nodes, error = best
    return proj, outputs, (a, b, nodes), error
