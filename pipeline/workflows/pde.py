"""PDE workflows (``problem:``): the static kind, and what it shares with the time-dependent one.

A ``problem`` section names a registry problem or a user's ``file.py:function``; the built
problem decides the kind: a :class:`~pipeline.pde.problems.StaticProblem` runs as
:class:`StaticKind` (one least-squares solve per member), an
:class:`~pipeline.pde.evolution.EvolutionProblem` as
:class:`pipeline.workflows.evolution.EvolutionKind` (the registry chooses).  Problems are built once per distinct
problem section on the client (for the store template) and once per member task.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from pipeline.config import NULL, ConfigError, Field, Section, module_spec
from pipeline.ensemble import MemberGrid
from pipeline.store import PointLayout, StoreSpec, Variable, point_layout
from pipeline.workflows.base import Clock, MemberTask, Plan, WorkflowKind, member_variables, padded

__all__ = ["PDESettings", "ProblemCache", "StaticKind", "build_problem", "is_evolution"]


def _one_source(section: dict) -> str | None:
    if (section["name"] is None) == (section["module"] is None):
        return "problem needs exactly one of 'problem.name' (registry) or 'problem.module' (your file)"
    return None


#: the ``problem:`` section (registered by both PDE kinds)
PROBLEM_SECTION = Section({
    "name": Field((str, NULL), None, doc="registry problem (`pipeline problems` lists them)"),
    "params": Field(dict, {}, doc="problem parameters, e.g. {beta: 40}"),
    "module": Field((str, NULL), None, check=module_spec,
                    doc="a user problem: 'file.py:function' returning a StaticProblem or EvolutionProblem"),
}, doc="the PDE to solve", optional=True, check=_one_source)


# ----------------------------------------------------------------------------- problems
_MODULES: dict = {}  # resolved file -> (mtime, module): a user's file is imported once per process


def _user_module(file: Path):
    stamp = file.stat().st_mtime_ns
    known = _MODULES.get(file)
    if known is not None and known[0] == stamp:
        return known[1]
    spec = importlib.util.spec_from_file_location(f"user_problem_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - the user's code: any failure is reported as theirs
        raise ConfigError(f"problem.module: importing {str(file)!r} failed: {type(err).__name__}: {err} "
                          "(--debug shows the traceback)") from err
    _MODULES[file] = (stamp, module)
    return module


def build_problem(section: dict):
    """The problem a workflow names: from the registry, or from the user's file.

    The user's file is imported once per process (again only when it changes); whatever goes
    wrong in it — an import error, an exception in the factory, a factory that returns
    something other than a problem — is a :class:`ConfigError` naming ``problem.module``.
    """
    from pipeline.pde import get_problem
    from pipeline.pde.evolution_problems import EvolutionProblem
    from pipeline.pde.problems import StaticProblem
    from pipeline.pde.system_evolution import SystemEvolutionProblem
    from pipeline.pde.systems import SystemProblem

    if section["module"]:
        path, _, name = section["module"].rpartition(":")
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"problem.module: the file {path!r} does not exist")
        factory = getattr(_user_module(file.resolve()), name, None)
        if not callable(factory):
            raise ConfigError(f"problem.module: {path!r} has no function {name!r}")
        try:
            problem = factory(**section["params"])
        except (Exception, SystemExit) as err:  # noqa: BLE001 - the user's code (sys.exit included)
            raise ConfigError(f"problem.module: {name}(**problem.params) raised {type(err).__name__}: {err} "
                              "(--debug shows the traceback)") from err
        if not isinstance(problem, (StaticProblem, EvolutionProblem, SystemProblem, SystemEvolutionProblem)):
            raise ConfigError(f"problem.module: {name}() returned {type(problem).__name__}, not a StaticProblem, "
                              "an EvolutionProblem, a SystemProblem or a SystemEvolutionProblem")
        return problem
    try:
        return get_problem(section["name"], **section["params"])
    except ValueError as err:
        raise ConfigError(f"problem: {err}") from None


class ProblemCache:
    """Problems built once per distinct ``problem`` section on the client (members share them).

    One instance serves the whole client process, so choosing the kind and planning the store
    build each problem once; a user's module is rebuilt when its file changes.
    """

    _shared: dict = {}

    def __call__(self, section: dict):
        stamp = None
        if section.get("module"):
            file = Path(section["module"].rpartition(":")[0])
            stamp = file.stat().st_mtime_ns if file.is_file() else None
        key = json.dumps(section, sort_keys=True, default=str), stamp
        if key not in self._shared:
            if len(self._shared) >= 64:
                self._shared.clear()
            self._shared[key] = build_problem(section)
        return self._shared[key]


def is_evolution(problem) -> bool:
    from pipeline.pde.evolution_problems import EvolutionProblem

    return isinstance(problem, EvolutionProblem)


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class PDESettings:
    """The solver settings one member sets (None: the problem's own default)."""

    width: int | None = None
    activation: str | None = None
    sampler: str | None = None
    weight_scale: float | None = None
    bias_scale: float | None = None
    curvature_scale: float | None = None
    active_directions: int | None = None
    active_scale: float | None = None
    n_interior: int | None = None
    n_boundary: int | None = None
    points: str | None = None
    rcond: float | None = None
    ridge: float | None = None
    kappa: float | None = None
    relaxation: float | None = None
    boundary: str | None = None
    prune: float | None = None
    method: str | None = None
    windows: int | None = None
    blocks: int | None = None
    rtol: float | None = None
    atol: float | None = None
    adaptive_points: float | None = None
    hyper_reduction: bool | None = None
    hyper_oversampling: float | None = None
    hyper_basis: str | None = None
    chunk_rows: int | None = None
    device: str | None = None

    @classmethod
    def from_config(cls, cfg: dict, keys: dict) -> "PDESettings":
        """The settings of the keys ``section -> names`` that take effect for the kind."""
        names = {f.name for f in fields(cls)}
        values = {k: cfg[section][k] for section, ks in keys.items() for k in ks if k in names}
        if cfg["compute"]["device"] != "cpu":
            values["device"] = cfg["compute"]["device"]
        return cls(**values)

    def kwargs(self) -> dict:
        """Keyword arguments of the solver: only what the workflow sets."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def check_device(cfg: dict) -> None:
    """Refuse ``compute.device=gpu`` before any work where CuPy or a CUDA device is missing
    (in the members it would fail after the store exists)."""
    if cfg["compute"]["device"] == "gpu":
        from pipeline.backend import gpu_available

        if not gpu_available():
            raise ConfigError("compute.device=gpu needs CuPy and a CUDA device, and this machine has none "
                              "(pip install 'swim-pipeline[gpu]' on a GPU machine, or use --device cpu)")


def field_spec(grid: MemberGrid, layout: PointLayout, lead: tuple, dtype: str, chunks: dict, exact=None) -> dict:
    """``u`` (members × ``lead`` × points), and ``u_exact`` (sweep points × …) where a reference exists."""
    dims = grid.dims + lead + layout.dims
    out = {"u": Variable(dims, dtype, {"long_name": "solution u", "units": "1"}, chunks)}
    if exact is not None:
        out["u_exact"] = Variable(grid.dims[:-1] + lead + layout.dims, dtype,
                                  {"long_name": "exact or reference solution", "units": "1"}, chunks, exact)
    return out


def sweep_exact(grid: MemberGrid, members, compute) -> np.ndarray:
    """A reference per sweep point (replicates share it): ``compute(member) -> array``."""
    first = {}
    for m in members:
        first.setdefault(m.position, m)
    values = {pos: compute(m) for pos, m in first.items()}
    shape = grid.sizes[:-1]
    sample = next(iter(values.values()))
    out = np.empty(shape + np.shape(sample))
    for pos, v in values.items():
        out[pos] = v
    return out


def basis_spec(grid: MemberGrid, blocks: int, width: int, dim: int, coefficients: int, lead: tuple = ()) -> dict:
    """``/coefficients``, ``/basis`` and the rank / singular values of every sampled block."""
    g = grid.dims
    neuron = {"neuron": width, "dim": dim}
    return {
        "coefficients": {"c": Variable(g + lead + ("coefficient",),
                                       attrs={"long_name": "output-layer coefficients [c | c0 | enrichments]"},
                                       chunks={"time": 64})},
        "basis": {
            "weights": Variable(g + ("block", "neuron", "dim"), chunks={"block": 1, **neuron}),
            "biases": Variable(g + ("block", "neuron"), chunks={"block": 1}),
            "curvature": Variable(g + ("block", "neuron"), chunks={"block": 1},
                                  attrs={"long_name": "a of quadratic neurons σ(w·x + a||x||² + b) (0: ridge neurons)"}),
        },
        "diagnostics": {
            "rank": Variable(g + ("block",), "int64", chunks={"block": 1}),
            "singular_values": Variable(g + ("block", "sv"), chunks={"block": 1}),
        },
    }


def write_basis(task: MemberTask, block: int, layer, rank: int, singular_values, width: int, sv: int) -> None:
    """A sampled layer (padded to the store's width), its rank and singular values."""
    curvature = np.zeros(layer.width) if layer.curvature is None else layer.curvature
    region = {"block": slice(block, block + 1)}
    task.write("basis", {"weights": (("block", "neuron", "dim"), padded(layer.weights, width)[None]),
                         "biases": (("block", "neuron"), padded(layer.biases, width)[None]),
                         "curvature": (("block", "neuron"), padded(curvature, width)[None])}, region)
    task.write("diagnostics", {"rank": (("block",), [rank]),
                               "singular_values": (("block", "sv"), padded(singular_values, sv)[None])}, region)


def layers_from_basis(basis: dict, activation) -> list:
    """Each block's layer from one member's ``/basis`` arrays (None for blocks never sampled):
    the store pads swept widths with NaN neurons, which are dropped."""
    from pipeline.nn import DenseLayer

    layers = []
    for weights, biases, curvature in zip(basis["weights"], basis["biases"], basis["curvature"]):
        keep = np.isfinite(biases)
        layers.append(DenseLayer(weights[keep], biases[keep], activation, curvature[keep]) if keep.any() else None)
    return layers


def stored_layers(result, m: int, activation) -> list:
    """Every block's layer of member ``m`` (flat index) from a store's ``/basis``."""
    return layers_from_basis(result.member_values("basis", m), activation)


def evaluation_times(points: np.ndarray, times) -> np.ndarray:
    """``times`` of a time-dependent run's ``evaluate``: one per point, as a float array."""
    if times is None:
        raise ValueError("this run is time-dependent: pass times (one per point)")
    times = np.asarray(times, dtype=float).reshape(-1)
    if times.shape[0] != points.shape[0]:
        raise ValueError(f"times must have one entry per point ({points.shape[0]}), got {times.shape[0]}")
    return times


def pde_info(problem, resolved: dict) -> dict:
    """Run attributes: the problem, and the first member's resolved solver settings."""
    settings = {k: v for k, v in resolved.items() if v is not None and not callable(v)}
    return {"problem": problem.name, "params": json.dumps(problem.params, default=str),
            "has_truth": problem.truth is not None, "activation": str(resolved["activation"]),
            "dim": problem.domain.dim, "settings": json.dumps(settings, default=str)}


# ----------------------------------------------------------------------------- static
STATIC_KEYS = {
    "basis": ("width", "activation", "sampler", "weight_scale", "bias_scale", "curvature_scale", "active_directions",
              "active_scale"),
    "collocation": ("n_interior", "n_boundary", "points"),
    "solver": ("rcond", "ridge", "kappa", "prune"),
    "compute": ("chunk_rows", "split_members"),
}


@dataclass(frozen=True)
class StaticShared:
    points: np.ndarray
    layout: PointLayout
    width: int
    coefficients: int


class StaticKind(WorkflowKind):
    """A static PDE: one least-squares solve per member; ``u`` on the problem's output points."""

    name = "static"
    label = "static PDE"
    section = "problem"
    sections = {"problem": PROBLEM_SECTION}
    task = 'a PDE'
    keys = STATIC_KEYS
    devices = ("cpu", "gpu")
    stages = ("sample", "solve", "write")
    splittable = True

    def plan(self, cfg, members, grid, path, quiet) -> Plan:
        from pipeline.pde.static import prepare_basis

        cache = ProblemCache()
        problems = [cache(m.config["problem"]) for m in members]
        if any(is_evolution(p) for p in problems):
            raise ConfigError("all members must be static or all time-dependent")
        settings = [PDESettings.from_config(m.config, self.keys) for m in members]
        check_device(cfg)
        try:
            resolved = [prepare_basis(p, s.kwargs())[0] for p, s in zip(problems, settings)]
        except ValueError as err:
            raise ConfigError(f"solver settings: {err}") from None
        first = problems[0]
        points = first.evaluation_points()
        for p in problems[1:]:
            other = p.evaluation_points()
            if other.shape != points.shape or not np.allclose(other, points):
                raise ConfigError("the swept parameters change the output points; sweep other keys")
        layout = point_layout(points)
        width = max(r["width"] for r in resolved)
        n_coef = width + 1 + len(first.enrichments)
        shared = StaticShared(points, layout, width, n_coef)
        exact = None
        if first.truth is not None:
            exact = sweep_exact(grid, members, lambda m: layout.to_grid(np.asarray(cache(m.config["problem"]).truth(points))))
        groups = {"": field_spec(grid, layout, (), cfg["output"]["dtype"], {}, exact)}
        for name, variables in basis_spec(grid, 1, width, first.domain.dim, n_coef).items():
            groups.setdefault(name, {}).update(variables)
        for name, variables in member_variables(grid, self.stages, 1).items():
            groups.setdefault(name, {}).update(variables)
        sizes = {**dict(zip(grid.dims, grid.sizes)), **dict(zip(layout.dims, layout.shape)), "block": 1,
                 "neuron": width, "dim": first.domain.dim, "coefficient": n_coef, "sv": n_coef,
                 "stage": len(self.stages), "window": 1}
        spec = StoreSpec(sizes, grid.dims, {**grid.coords, **layout.coords}, groups,
                         group_coords={"diagnostics": {"stage": (("stage",), list(self.stages), {})}})
        tasks = [MemberTask(self.name, path, m, grid, s, shared, 1, self.stages, quiet,
                            assembly_bytes=8 * (r["n_interior"] + r["n_boundary"]) * (r["width"] + 2))
                 for m, s, r in zip(members, settings, resolved)]
        return Plan(tasks, spec, pde_info(first, resolved[0]))

    def run(self, task: MemberTask) -> dict:
        from pipeline.pde import solve_static

        if task.first_pending() >= 1:
            return {"member": task.index, "skipped": True}
        problem = build_problem(task.member.config["problem"])
        shared: StaticShared = task.shared
        clock = Clock()
        start = clock.start()
        solution = solve_static(problem, seed=task.member.seed, **task.settings.kwargs())
        clock.stop("solve", start)
        clock.add("sample", sum(v for k, v in solution.timings.items() if k.startswith("sample")))
        start = clock.start()
        u = np.asarray(solution(shared.points))
        task.write("", {"u": (shared.layout.dims, shared.layout.to_grid(u))})
        width = solution.network.width
        coef = np.concatenate([padded(solution.coef[:width], shared.width), solution.coef[width:]])
        task.write("coefficients", {"c": (("coefficient",), coef)})
        write_basis(task, 0, solution.network.layers[0], solution.rank, solution.solution.singular_values,
                    shared.width, shared.coefficients)
        rel_l2 = solution.error(shared.points) if problem.truth is not None else None
        clock.stop("write", start)
        task.write_diagnostics(clock, rel_l2)
        task.mark_done(0)
        return {"member": task.index, "rel_l2": rel_l2, "rank": solution.rank}

    def evaluate(self, result, points, times):
        from pipeline.nn import SampledNetwork

        out = np.empty((result.members, len(points)))
        width = shared_width(result)
        for m in range(result.members):
            coef = result.member_values("coefficients", m)["c"]
            (layer,) = stored_layers(result, m, result.attrs["activation"])
            if np.isfinite(coef[width + 1:]).any():
                raise ValueError("evaluate() cannot rebuild enrichment functions; read u from the store instead")
            out[m] = SampledNetwork((layer,))(points) @ coef[: layer.width] + coef[width]
        return out

    def plot(self, result, plt):
        from pipeline.workflows.plots import plot_fields

        return plot_fields(result, plt)


def shared_width(result) -> int:
    """The store's (padded) width: the position of the constant c0 in the coefficients."""
    return int(result.tree["basis"].sizes["neuron"])
