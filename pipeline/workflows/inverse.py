"""Inverse problems as a workflow kind: a ``problem`` plus an ``inverse`` section naming observations.

Two unknowns (docs/design.md §1.4):

* ``inverse.unknown: source`` — the source ``f`` of a static problem ``L u = f`` as a second
  sampled network (:func:`~pipeline.pde.inverse.estimate_source`); the store holds the
  estimated source, its standard error and the state on the problem's grid, and ``evaluate``
  returns the source at new points;
* ``inverse.unknown: [D_u, b, …]`` — constants of a time-dependent system
  (:func:`~pipeline.pde.inverse_evolution.estimate_parameters`); the store holds the estimates
  and their standard errors (coordinate ``parameter``).

The observations (``inverse.observations``: a ``.csv``, ``.nc`` or ``.zarr`` file, relative
to the workflow's directory) are read and checked against the domain, the fields and the
time span on the client before any store exists.  Members (seeds) draw their own bases, so
the spread over an ensemble is the estimate's sensitivity to the basis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import NULL, ConfigError, Field, Section
from pipeline.store import PointLayout, StoreSpec, Variable, point_layout
from pipeline.workflows.base import Clock, MemberTask, Plan, WorkflowKind, member_variables, padded
from pipeline.workflows.pde import PROBLEM_SECTION, PDESettings, ProblemCache, basis_spec, build_problem, \
    pde_info, stored_layers, sweep_exact, write_basis

__all__ = ["INVERSE_SECTION", "InverseKind"]


def _check(section: dict) -> str | None:
    unknown = section["unknown"]
    if isinstance(unknown, str) and unknown != "source":
        return "inverse.unknown must be 'source' or a list of parameter names"
    if isinstance(unknown, list) and (not unknown or not all(isinstance(u, str) for u in unknown)
                                      or len(set(unknown)) != len(unknown)):
        return f"inverse.unknown must be a non-empty list of distinct parameter names, got {unknown!r}"
    return None


def _non_negative(v):
    return None if v is None or (np.isfinite(v) and v >= 0) else "must be a non-negative number"


INVERSE_SECTION = Section({
    "observations": Field(str, doc="a .csv, .nc or .zarr file of points (x, y, …, t) and observed fields"),
    "unknown": Field((str, list), "source", doc="'source' (of a static problem) or parameter names (time-dependent)"),
    "noise": Field((float, int, NULL), None, check=_non_negative, doc="standard deviation of the observation noise"),
    "source_width": Field(int, 40, check=lambda v: None if v >= 1 else "must be >= 1", doc="neurons of the source"),
    "smoothness": Field(int, 2, choices=(0, 1, 2, 3), doc="order of the source's penalised seminorm"),
    "modes": Field((int, NULL), None, check=lambda v: None if v is None or v >= 1 else "must be >= 1",
                   doc="the source in up to this many Dirichlet eigenfunctions of c·Δ (spectral cut-off; its prior: "
                       "the source vanishes on the boundary) instead of a network"),
    "reference": Field((dict, NULL), None, doc="true values of the unknown parameters, where known (synthetic "
                                               "observations): the errors reported"),
    "max_iterations": Field(int, 30, check=lambda v: None if v >= 1 else "must be >= 1",
                            doc="Levenberg–Marquardt iterations (parameters)"),
}, doc="an inverse problem: unknowns of `problem` fitted to observations", optional=True, check=_check)

SOURCE_KEYS = ("width", "activation", "sampler", "weight_scale", "bias_scale", "n_interior", "n_boundary", "points",
               "rcond", "kappa", "chunk_rows")
PARAMETER_KEYS = ("width", "sampler", "weight_scale", "bias_scale", "n_interior", "rcond", "method", "rtol", "atol")
INVERSE_KEYS = {
    "inverse": tuple(INVERSE_SECTION.fields),
    "basis": ("width", "activation", "sampler", "weight_scale", "bias_scale"),
    "collocation": ("n_interior", "n_boundary", "points"),
    "solver": ("rcond", "kappa"),
    "time": ("method", "rtol", "atol"),
    "compute": ("chunk_rows",),
}


@dataclass(frozen=True)
class InverseShared:
    mode: str  # "source" or "parameters"
    observations: object
    unknown: tuple
    points: np.ndarray | None = None
    layout: PointLayout | None = None
    width: int = 0
    source_width: int = 0


def _settings(settings: PDESettings, mode: str) -> dict:
    kwargs = settings.kwargs()
    allowed = SOURCE_KEYS if mode == "source" else PARAMETER_KEYS
    unused = sorted(set(kwargs) - set(allowed))
    if unused:
        raise ConfigError(f"{unused[0]!r} does not apply to an inverse problem with unknown "
                          f"{'source' if mode == 'source' else 'parameters'}; remove it")
    return kwargs


def _observations(cfg, problem, mode):
    from pipeline.pde.observations import load_observations

    section = cfg["inverse"]
    fields = ("u",) if mode == "source" else problem.fields
    try:
        obs = load_observations(section["observations"], dim=problem.domain.dim, fields=fields,
                                noise=section["noise"], time=mode == "parameters")
        if mode == "source":
            obs.check(problem.domain, fields=("u",))
        else:
            obs.check(problem.domain, fields=problem.fields, span=problem.t_span)
    except ValueError as err:
        raise ConfigError(f"inverse.observations: {err}") from None
    return obs


class InverseKind(WorkflowKind):
    """Unknowns of a PDE (a source, or constants) fitted to observations; one estimate per member."""

    name = "inverse"
    label = "inverse problem"
    section = "problem"
    sections = {"problem": PROBLEM_SECTION, "inverse": INVERSE_SECTION}
    task = "a PDE"
    keys = INVERSE_KEYS
    devices = ("cpu",)
    stages = ("solve", "write")
    splittable = False

    def plan(self, cfg, members, grid, path, quiet) -> Plan:
        from pipeline.pde.problems import StaticProblem
        from pipeline.pde.system_evolution import SystemEvolutionProblem

        cache = ProblemCache()
        problems = [cache(m.config["problem"]) for m in members]
        first = problems[0]
        unknown = first_unknown = cfg["inverse"]["unknown"]
        mode = "source" if unknown == "source" else "parameters"
        wanted = StaticProblem if mode == "source" else SystemEvolutionProblem
        for p, m in zip(problems, members):
            if not isinstance(p, wanted):
                raise ConfigError(f"inverse.unknown {first_unknown!r} needs a {wanted.__name__}; problem {p.name!r} is "
                                  f"a {type(p).__name__}")
            if m.config["inverse"] != cfg["inverse"]:
                raise ConfigError("inverse.* cannot be swept (every member fits the same observations)")
        if mode == "parameters":
            missing = [u for u in unknown if u not in first.params]
            if missing:
                raise ConfigError(f"inverse.unknown: problem {first.name!r} has no parameter(s) {missing}; "
                                  f"its parameters: {sorted(first.params)}")
        settings = [PDESettings.from_config(m.config, self.keys) for m in members]
        kwargs = [_settings(s, mode) for s in settings]
        observations = _observations(cfg, first, mode)
        if mode == "source":
            return self._plan_source(cfg, members, grid, path, quiet, problems, settings, kwargs, observations)
        return self._plan_parameters(cfg, members, grid, path, quiet, problems, settings, kwargs, observations)

    def _plan_source(self, cfg, members, grid, path, quiet, problems, settings, kwargs, observations) -> Plan:
        from pipeline.pde.inverse import STATE_DEFAULTS
        from pipeline.pde.static import prepare_basis

        first = problems[0]
        section = cfg["inverse"]
        try:
            resolved = [prepare_basis(p, {**STATE_DEFAULTS, **k})[0] for p, k in zip(problems, kwargs)]
        except ValueError as err:
            raise ConfigError(f"solver settings: {err}") from None
        modes = section["modes"]
        key, needed = ("inverse.modes", modes) if modes is not None else ("inverse.source_width",
                                                                          section["source_width"] + 1)
        if len(observations) <= needed:
            raise ConfigError(f"{key}: {len(observations)} observations cannot determine {needed} source coefficients")
        if modes is not None:
            from pipeline.pde.eigenmodes import laplacian_scale

            try:
                laplacian_scale(first)
            except ValueError as err:
                raise ConfigError(f"inverse.{err}") from None
        points = first.evaluation_points()
        layout = point_layout(points)
        width = max(max(r["width"] for r in resolved), section["source_width"])
        # eigenfunction sources are combinations of the state's features: stored on the state's layer
        slots = width if modes is not None else section["source_width"]
        shared = InverseShared("source", observations, ("source",), points, layout, width, slots)
        g, dims = grid.dims, layout.dims
        groups = {"": {
            "source": Variable(g + dims, attrs={"long_name": "estimated source f"}),
            "source_std": Variable(g + dims, attrs={"long_name": "standard error of the source"}),
            "u": Variable(g + dims, attrs={"long_name": "state u of the estimated source"}),
        }}
        has_truth = first.exact is not None
        if has_truth:  # a benchmark case: the problem's own source is the one to recover
            truth = sweep_exact(grid, members, lambda m: layout.to_grid(
                np.asarray(ProblemCache()(m.config["problem"]).source(points), dtype=float)))
            groups[""]["source_exact"] = Variable(g[:-1] + dims, attrs={"long_name": "the problem's own source"},
                                                  data=truth)
        for name, variables in basis_spec(grid, 2, width, first.domain.dim, width + 1).items():
            groups.setdefault(name, {}).update(variables)
        groups["coefficients"]["source"] = Variable(g + ("source_coefficient",),
                                                    attrs={"long_name": "source coefficients [a | a0]"})
        for name, variables in member_variables(grid, self.stages, 1).items():
            groups.setdefault(name, {}).update(variables)
        sizes = {**dict(zip(g, grid.sizes)), **dict(zip(dims, layout.shape)), "block": 2, "neuron": width,
                 "dim": first.domain.dim, "coefficient": width + 1, "sv": width + 1,
                 "source_coefficient": slots + 1, "stage": len(self.stages), "window": 1}
        spec = StoreSpec(sizes, g, {**grid.coords, **layout.coords}, groups,
                         group_coords={"diagnostics": {"stage": (("stage",), list(self.stages), {})}})
        tasks = [MemberTask(self.name, path, m, grid, s, shared, 1, self.stages, quiet)
                 for m, s in zip(members, settings)]
        info = self._info(first, resolved[0], "source", has_truth, observations)
        return Plan(tasks, spec, info)

    def _plan_parameters(self, cfg, members, grid, path, quiet, problems, settings, kwargs, observations) -> Plan:
        from pipeline.pde.system_evolution import resolve_system_evolution_settings

        first = problems[0]
        unknown = tuple(cfg["inverse"]["unknown"])
        if observations.values.size <= len(unknown):
            raise ConfigError(f"inverse.observations: {observations.values.size} values cannot determine "
                              f"{len(unknown)} parameters")
        try:
            resolved = [resolve_system_evolution_settings(p, {"seed": m.seed, **k})
                        for p, m, k in zip(problems, members, kwargs)]
        except ValueError as err:
            raise ConfigError(f"solver settings: {err}") from None
        shared = InverseShared("parameters", observations, unknown)
        g = grid.dims
        p_dims = g + ("parameter",)
        truth = np.array([[float(p.params[u]) for u in unknown] for p in problems])
        groups = {"estimates": {
            "value": Variable(p_dims, attrs={"long_name": "estimated parameter"}),
            "standard_error": Variable(p_dims, attrs={"long_name": "standard error (σ² (JᵀJ)⁻¹)"}),
            "start": Variable(("parameter",), attrs={"long_name": "the problem's values: the start of the "
                                                     "iteration"}, data=truth[0]),
            "sigma": Variable(g, attrs={"long_name": "residual standard deviation (relative to rms of the data)"}),
            "iterations": Variable(g, "int64"),
        }}
        for name, variables in member_variables(grid, self.stages, 1).items():
            groups.setdefault(name, {}).update(variables)
        sizes = {**dict(zip(g, grid.sizes)), "parameter": len(unknown), "stage": len(self.stages), "window": 1}
        coords = {**grid.coords, "parameter": (("parameter",), list(unknown), {"long_name": "parameter"})}
        spec = StoreSpec(sizes, g, coords, groups,
                         group_coords={"diagnostics": {"stage": (("stage",), list(self.stages), {})},
                                       "estimates": {"parameter": coords["parameter"]}})
        tasks = [MemberTask(self.name, path, m, grid, s, shared, 1, self.stages, quiet)
                 for m, s in zip(members, settings)]
        reference = cfg["inverse"]["reference"] or {}
        bad = sorted(set(reference) - set(unknown))
        if bad or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in reference.values()):
            raise ConfigError(f"inverse.reference must map unknown parameters to numbers; got {reference!r}")
        if reference:
            groups["estimates"]["reference"] = Variable(
                ("parameter",), attrs={"long_name": "true values (synthetic observations)"},
                data=np.array([float(reference.get(u, np.nan)) for u in unknown]))
        info = self._info(first, resolved[0], "parameters", bool(reference), observations)
        info["unknown"] = list(unknown)
        return Plan(tasks, spec, info)

    @staticmethod
    def _info(problem, resolved, mode, has_truth, observations) -> dict:
        return {**pde_info(problem, resolved), "has_truth": has_truth, "unknown_kind": mode,
                "observations": len(observations), "noise": -1.0 if observations.noise is None else observations.noise}

    def run(self, task: MemberTask) -> dict:
        if task.first_pending() >= 1:
            return {"member": task.index, "skipped": True}
        problem = build_problem(task.member.config["problem"])
        shared: InverseShared = task.shared
        kwargs = _settings(task.settings, shared.mode)
        section = task.member.config["inverse"]
        clock = Clock()
        start = clock.start()
        if shared.mode == "source":
            from pipeline.pde.inverse import estimate_source

            est = estimate_source(problem, shared.observations, source_width=section["source_width"],
                                  smoothness=section["smoothness"], modes=section["modes"], seed=task.member.seed,
                                  **kwargs)
            clock.stop("solve", start)
            start = clock.start()
            metrics = self._write_source(task, problem, est)
        else:
            from pipeline.pde.inverse_evolution import estimate_parameters

            res = estimate_parameters(problem, shared.observations, list(shared.unknown),
                                      settings={"seed": task.member.seed, **kwargs},
                                      max_iterations=section["max_iterations"])
            clock.stop("solve", start)
            start = clock.start()
            metrics = self._write_parameters(task, problem, res)
        clock.stop("write", start)
        task.write_diagnostics(clock, metrics["rel_l2"])
        task.mark_done(0)
        return {"member": task.index, **metrics}

    @staticmethod
    def _write_source(task, problem, est) -> dict:
        shared: InverseShared = task.shared
        x, layout = shared.points, shared.layout
        source = est.source(x)
        task.write("", {"source": (layout.dims, layout.to_grid(source)),
                        "source_std": (layout.dims, layout.to_grid(est.source_std(x))),
                        "u": (layout.dims, layout.to_grid(est(x)))})
        state_coef = est.response[:, :-1] @ est.coef + est.response[:, -1]
        width = est.state.width
        layer, source_coef = est.source_basis_layer()
        task.write("coefficients", {"c": (("coefficient",), np.concatenate([padded(state_coef[:width], shared.width),
                                                                              state_coef[width:]])),
                                    "source": (("source_coefficient",), np.concatenate(
                                        [padded(source_coef[:-1], shared.source_width), source_coef[-1:]]))})
        rank = int(est.diagnostics["rank"])
        sv = np.full(shared.width + 1, np.nan)
        sv[0] = est.regularisation  # the chosen λ where a factor's singular values would be
        write_basis(task, 0, est.state.layers[0], rank, sv, shared.width, shared.width + 1)
        write_basis(task, 1, layer, layer.width + 1, sv, shared.width, shared.width + 1)
        rel = None
        if problem.exact is not None:
            ref = np.asarray(problem.source(x), dtype=float)
            rel = float(np.linalg.norm(source - ref) / np.linalg.norm(ref))
        return {"rel_l2": rel, "lambda": est.regularisation, "misfit_rms": est.diagnostics["misfit_rms"]}

    @staticmethod
    def _write_parameters(task, problem, res) -> dict:
        names = task.shared.unknown
        values = np.array([res.estimates[n] for n in names])
        errors = np.array([res.standard_errors[n] for n in names])
        task.write("estimates", {"value": (("parameter",), values), "standard_error": (("parameter",), errors),
                                 "sigma": ((), np.float64(res.sigma)), "iterations": ((), np.int64(res.iterations))})
        reference = task.member.config["inverse"]["reference"] or {}
        truth = np.array([float(reference.get(n, np.nan)) for n in names])
        known = np.isfinite(truth)
        rel = float(np.max(np.abs(values - truth)[known] / np.maximum(np.abs(truth[known]), 1e-300))) \
            if known.any() else None
        return {"rel_l2": rel, **{f"{n}": float(v) for n, v in zip(names, values)},
                **{f"{n}_se": float(e) for n, e in zip(names, errors)}}

    def evaluate(self, result, points, times):
        """The estimated source at ``points``: ``(members, n)`` (constants have no field to evaluate)."""
        from pipeline.nn import SampledNetwork

        if result.attrs.get("unknown_kind") != "source":
            raise ValueError("an inverse run of constants has no field to evaluate: read result.tree['estimates']")
        out = np.empty((result.members, len(points)))
        for m in range(result.members):
            a = np.asarray(result.member_values("coefficients", m)["source"])
            _, layer = stored_layers(result, m, result.attrs["activation"])
            out[m] = SampledNetwork((layer,))(points) @ a[: layer.width] + a[-1]
        return out
