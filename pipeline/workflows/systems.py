"""Systems of static PDEs as a workflow kind: every field of every member in one store.

A ``problem`` section whose problem is a :class:`~pipeline.pde.systems.SystemProblem` runs as
:class:`SystemKind` (the registry chooses): one Gauss–Newton solve per member
(:func:`~pipeline.pde.gauss_newton.solve_system`); the store's ``u`` gains a ``field``
dimension (coordinate: the field names), the coefficients one row per field, and
``evaluate`` returns every field (docs/design.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import ConfigError
from pipeline.store import PointLayout, StoreSpec, Variable, point_layout
from pipeline.workflows.base import Clock, MemberTask, Plan, WorkflowKind, member_variables, padded
from pipeline.workflows.pde import (PROBLEM_SECTION, PDESettings, ProblemCache, basis_spec, build_problem,
                                    field_spec, shared_width, stored_layers, sweep_exact, write_basis)

__all__ = ["SystemKind", "is_system"]

SYSTEM_KEYS = {
    "basis": ("width", "activation", "sampler", "weight_scale", "bias_scale"),
    "collocation": ("n_interior", "n_boundary", "points"),
    "solver": ("rcond", "kappa"),
    "compute": ("chunk_rows",),
}

#: Gauss–Newton iterations kept in ``diagnostics/residual`` (continuation stages included)
MAX_HISTORY = 128


def is_system(problem) -> bool:
    from pipeline.pde.systems import SystemProblem

    return isinstance(problem, SystemProblem)


@dataclass(frozen=True)
class SystemShared:
    points: np.ndarray
    layout: PointLayout
    width: int
    fields: tuple


def _exact_fields(problem, points, layout) -> np.ndarray:
    """The reference of every field on the output grid (NaN for a field without one)."""
    out = []
    for name in problem.fields:
        fn = (problem.exact or {}).get(name)
        out.append(layout.to_grid(np.asarray(fn(points), dtype=float)) if fn is not None
                   else np.full(layout.shape, np.nan))
    return np.stack(out)


class SystemKind(WorkflowKind):
    """A system of static PDEs (several fields, linear or nonlinear): one Gauss–Newton solve per member."""

    name = "system"
    label = "system of PDEs"
    section = "problem"
    sections = {"problem": PROBLEM_SECTION}
    task = "a PDE"
    keys = SYSTEM_KEYS
    devices = ("cpu",)
    stages = ("sample", "solve", "write")
    splittable = True

    def plan(self, cfg, members, grid, path, quiet) -> Plan:
        from pipeline.pde.systems import resolve_system_settings

        cache = ProblemCache()
        problems = [cache(m.config["problem"]) for m in members]
        if not all(is_system(p) for p in problems):
            raise ConfigError("all members must be systems (a sweep cannot mix kinds of problem)")
        first = problems[0]
        if any(p.fields != first.fields for p in problems):
            raise ConfigError(f"the swept parameters change the fields (first: {list(first.fields)}); sweep other keys")
        settings = [PDESettings.from_config(m.config, self.keys) for m in members]
        try:
            resolved = [resolve_system_settings(p, s.kwargs()) for p, s in zip(problems, settings)]
        except ValueError as err:
            raise ConfigError(f"solver settings: {err}") from None
        points = first.evaluation_points()
        for p in problems[1:]:
            other = p.evaluation_points()
            if other.shape != points.shape or not np.allclose(other, points):
                raise ConfigError("the swept parameters change the output points; sweep other keys")
        layout = point_layout(points)
        width = max(r["width"] for r in resolved)
        shared = SystemShared(points, layout, width, first.fields)
        exact = None
        if first.exact:
            exact = sweep_exact(grid, members, lambda m: _exact_fields(cache(m.config["problem"]), points, layout))
        groups = {"": field_spec(grid, layout, ("field",), cfg["output"]["dtype"], {}, exact)}
        for name, variables in basis_spec(grid, 1, width, first.domain.dim, width + 1, lead=("field",)).items():
            groups.setdefault(name, {}).update(variables)
        for name, variables in member_variables(grid, self.stages, 1).items():
            groups.setdefault(name, {}).update(variables)
        groups["diagnostics"]["residual"] = Variable(
            grid.dims + ("iteration",), attrs={"long_name": "residual norm before each Gauss–Newton step"})
        groups["diagnostics"]["iterations"] = Variable(grid.dims, "int64")
        sizes = {**dict(zip(grid.dims, grid.sizes)), **dict(zip(layout.dims, layout.shape)), "block": 1,
                 "neuron": width, "dim": first.domain.dim, "coefficient": width + 1,
                 "sv": len(first.fields) * (width + 1),
                 "stage": len(self.stages), "window": 1, "field": len(first.fields), "iteration": MAX_HISTORY}
        field_coord = (("field",), list(first.fields), {"long_name": "field"})
        spec = StoreSpec(sizes, grid.dims, {**grid.coords, **layout.coords, "field": field_coord}, groups,
                         group_coords={"diagnostics": {"stage": (("stage",), list(self.stages), {})},
                                       "coefficients": {"field": field_coord}})
        n_cols = lambda r: len(first.fields) * (r["width"] + 1) + 1  # noqa: E731
        tasks = [MemberTask(self.name, path, m, grid, s, shared, 1, self.stages, quiet,
                            assembly_bytes=8 * (len(first.equations) * r["n_interior"] + r["n_boundary"]) * n_cols(r))
                 for m, s, r in zip(members, settings, resolved)]
        info = {"problem": first.name, "params": _json(first.params), "has_truth": bool(first.exact),
                "activation": str(resolved[0]["activation"]), "dim": first.domain.dim,
                "settings": _json({k: v for k, v in resolved[0].items() if v is not None}),
                "fields": list(first.fields), "gauge": list(first.gauge)}
        return Plan(tasks, spec, info)

    def run(self, task: MemberTask) -> dict:
        from pipeline.pde.gauss_newton import solve_system

        if task.first_pending() >= 1:
            return {"member": task.index, "skipped": True}
        problem = build_problem(task.member.config["problem"])
        shared: SystemShared = task.shared
        clock = Clock()
        start = clock.start()
        solution = solve_system(problem, seed=task.member.seed, **task.settings.kwargs())
        clock.stop("solve", start)
        clock.add("sample", solution.timings.get("setup", 0.0))
        start = clock.start()
        values = np.asarray(solution(shared.points))
        task.write("", {"u": (("field",) + shared.layout.dims,
                              np.stack([shared.layout.to_grid(values[:, f]) for f in range(len(shared.fields))]))})
        width = solution.network.width
        coef = np.stack([np.concatenate([padded(c[:width], shared.width), c[width:]]) for c in solution.coef])
        task.write("coefficients", {"c": (("field", "coefficient"), coef)})
        rank = solution.history[-1]["rank"]
        write_basis(task, 0, solution.network.layers[0], rank, solution.singular_values,
                    shared.width, len(shared.fields) * (shared.width + 1))
        history = np.array([h["residual"] for h in solution.history][:MAX_HISTORY])
        task.write("diagnostics", {"residual": (("iteration",), padded(history, MAX_HISTORY)),
                                   "iterations": ((), np.int64(len(solution.history)))})
        errors = solution.errors(shared.points) if problem.exact else {}
        rel_l2 = max(errors.values()) if errors else None
        clock.stop("write", start)
        task.write_diagnostics(clock, rel_l2)
        task.mark_done(0)
        return {"member": task.index, "rel_l2": rel_l2, "rank": rank, "iterations": len(solution.history),
                **{f"rel_l2_{k}": v for k, v in errors.items()}}

    def evaluate(self, result, points, times):
        """Every member's fields at ``points``: ``(members, fields, n)``."""
        from pipeline.nn import SampledNetwork

        width = shared_width(result)
        n_fields = int(result.tree["/"].sizes["field"])
        out = np.empty((result.members, n_fields, len(points)))
        for m in range(result.members):
            coef = np.asarray(result.member_values("coefficients", m)["c"])
            (layer,) = stored_layers(result, m, result.attrs["activation"])
            phi = SampledNetwork((layer,))(points)
            out[m] = coef[:, : layer.width] @ phi.T + coef[:, width][:, None]
        return out

    def plot(self, result, plt):
        from pipeline.workflows.plots import plot_fields

        return plot_fields(_FirstField(result), plt)


class _FirstField:
    """A run seen through its first field, for the single-field figure (``u`` of ``field[0]``)."""

    def __init__(self, result):
        self._result = result
        self.dataset = result.dataset.isel(field=0)
        self.attrs = {**result.attrs, "problem": f"{result.attrs.get('problem', '')}: field "
                                                 f"{result.dataset['field'].values[0]}"}

    def __getattr__(self, name):
        return getattr(self._result, name)


def _json(value) -> str:
    import json

    return json.dumps(value, default=str)
