"""Time-dependent systems ``∂_t u_f = F_f(x, U, p)`` on one sampled basis (neural method of lines).

Several fields share one basis ``Ψ = [Φ | 1]``, sampled once on the domain (U-SWIM or ELM).
Each right-hand side is a point-wise function of the fields' jet, written like a static
system's residual (:class:`pipeline.pde.fields.Equation`: ``F(x, U, p)`` reading ``U["u_xx"]``,
``U["v"]``; ``p`` holds the problem's parameters and ``p["t"]``, the time).  Conditions are
periodic pairs or homogeneous linear boundary equations, each enforced exactly by a
boundary-compliant basis (the null space of its rows, per field); the projection onto the
collocation points gives a small ODE in reduced coordinates (:mod:`pipeline.pde.system_projection`,
docs/design.md §3.3), integrated by ``solve_ivp`` — explicit (``DOP853``, ``RK45``) or implicit
(``Radau``, ``BDF``, with the analytic Jacobian by complex step) — or, for linear autonomous
systems, exactly (``"exact"``, the matrix exponential).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pipeline.cluster import blas_limited, compute
from pipeline.nn import ELMSampler, child_seed, get_activation, get_sampler, root_seed, sample_network
from pipeline.pde.conditions import Periodic, check_boundary_coverage
from pipeline.pde.domains import METHODS as POINT_METHODS
from pipeline.pde.domains import Domain
from pipeline.pde.fields import Equation, check_field_names, inspect_residual
from pipeline.pde.integrators import EXPLICIT_METHODS, IMPLICIT_METHODS, METHODS, integrate
from pipeline.pde.system_projection import (
    SystemProjection,
    build_system_projection,
    condition_points,
    field_condition_rows,
    rows_digest,
)

__all__ = ["SYSTEM_EVOLUTION_DEFAULTS", "SystemEvolution", "SystemEvolutionProblem", "SystemEvolutionResult",
           "evolve_system"]

SYSTEM_EVOLUTION_DEFAULTS = {
    "width": 400,
    "activation": "tanh",
    "sampler": "uswim",
    "weight_scale": 1.0,
    "bias_scale": 1.0,
    "n_interior": 1000,
    "n_boundary": 100,
    "points": "grid",
    "rcond": 1e-10,
    "method": "DOP853",
    "rtol": 1e-10,
    "atol": 1e-12,
    "pool_size": 2000,
    "seed": 0,
}


def _per_field(problem_name, fields, given, what, required):
    given = dict(given or {})
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ValueError(f"problem {problem_name!r}: {what} for unknown field(s) {unknown}; the fields are {list(fields)}")
    missing = [f for f in fields if f not in given]
    if required and missing:
        raise ValueError(f"problem {problem_name!r}: no {what} for field(s) {missing}; the fields are {list(fields)}")
    for name, fn in given.items():
        if not callable(fn) and not isinstance(fn, Equation):
            raise TypeError(f"problem {problem_name!r}: the {what} of field {name!r} must be callable, got {fn!r}")
    return given


@dataclass(frozen=True, eq=False)
class SystemEvolutionProblem:
    """``∂_t u_f = F_f(x, U, p)`` for every field, on a domain, over ``t_span``.

    Args:
        name: registry name.
        domain: the :class:`~pipeline.pde.domains.Domain`.
        fields: field names (``("u", "v")``).
        rhs: ``{field: F}``, one right-hand side per field: an
            :class:`~pipeline.pde.fields.Equation` or a callable ``F(x, U, p) -> (n,)`` (``U`` the
            jet, ``p`` the parameters and ``p["t"]``); analytic operations only (complex step).
        initial: ``{field: u0(x)}`` for every field.
        t_span: ``(t0, t1)``.
        conditions: :class:`~pipeline.pde.conditions.Periodic` pairs (every field) and boundary
            :class:`~pipeline.pde.fields.Equation` s (``on`` a boundary selection), linear and
            homogeneous in one field each; enforced by a boundary-compliant basis.
        exact / reference: ``{field: u(x, t)}``, where known.
        derived: ``{name: g(values)}``: quantities computed from the fields' values
            (``values[field]`` arrays) whose errors are reported too, e.g. ``|h|``.
        params: the parameters, passed to every right-hand side as ``p`` (not ``"t"``).
        defaults: solver settings meeting the problem's accuracy target.
        evaluation: ``() -> (points, times)``, the space–time error grid.
    """

    name: str
    domain: Domain
    fields: tuple
    rhs: dict
    initial: dict
    t_span: tuple
    conditions: tuple = ()
    exact: dict | None = None
    reference: dict | None = None
    derived: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    description: str = ""
    evaluation: Callable | None = None
    free_boundary: tuple = ()

    def __post_init__(self):
        fields = check_field_names(self.fields)
        object.__setattr__(self, "fields", fields)
        rhs = _per_field(self.name, fields, self.rhs, "right-hand side", True)
        object.__setattr__(self, "rhs", {f: rhs[f] if isinstance(rhs[f], Equation)
                                         else Equation(rhs[f], name=f"d{f}/dt") for f in fields})
        object.__setattr__(self, "initial", _per_field(self.name, fields, self.initial, "initial condition", True))
        for what in ("exact", "reference"):
            given = getattr(self, what)
            if given is not None:
                object.__setattr__(self, what, _per_field(self.name, fields, given, f"{what} solution", False))
        t0, t1 = (float(v) for v in self.t_span)
        if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
            raise ValueError(f"problem {self.name!r}: t_span must be (t0, t1) with t0 < t1, got {self.t_span!r}")
        object.__setattr__(self, "t_span", (t0, t1))
        if "t" in self.params:
            raise ValueError(f"problem {self.name!r}: 't' is reserved for the time (p['t']); rename the parameter")
        conditions = tuple(self.conditions)
        for c in conditions:
            if not (isinstance(c, Periodic) or (isinstance(c, Equation) and not c.interior)):
                raise ValueError(f"problem {self.name!r}: conditions must be Periodic pairs or boundary Equations "
                                 f"(on=…), got {c!r}")
        object.__setattr__(self, "conditions", conditions)
        free = (self.free_boundary,) if isinstance(self.free_boundary, str) else tuple(self.free_boundary or ())
        object.__setattr__(self, "free_boundary", free)
        check_boundary_coverage(self.domain, conditions, free, problem=self.name)

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def truth(self) -> dict:
        return {**(self.reference or {}), **(self.exact or {})}

    def evaluation_grid(self) -> tuple[np.ndarray, np.ndarray]:
        if self.evaluation is not None:
            points, times = self.evaluation()
            return np.asarray(points, dtype=float), np.asarray(times, dtype=float)
        lo, hi = self.domain.bounds
        d = self.domain.dim
        axes = [np.linspace(lo[i], hi[i], 201 if d == 1 else 41) for i in range(d)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
        return grid[self.domain.contains(grid)], np.linspace(*self.t_span, 11)


def resolve_system_evolution_settings(problem: SystemEvolutionProblem, overrides: dict) -> dict:
    unknown = sorted(set(overrides) - set(SYSTEM_EVOLUTION_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; allowed: {', '.join(SYSTEM_EVOLUTION_DEFAULTS)}")
    s = {**SYSTEM_EVOLUTION_DEFAULTS, **problem.defaults, **{k: v for k, v in overrides.items() if v is not None}}
    for key in ("width", "n_interior", "pool_size"):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{key} must be a positive integer, got {v!r}")
    if isinstance(s["n_boundary"], bool) or not isinstance(s["n_boundary"], (int, np.integer)) or s["n_boundary"] < 1:
        raise ValueError(f"n_boundary must be a positive integer, got {s['n_boundary']!r}")
    if s["points"] not in POINT_METHODS:
        raise ValueError(f"points must be one of {POINT_METHODS}, got {s['points']!r}")
    if s["method"] not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {s['method']!r}")
    for key in ("rcond", "rtol", "atol"):
        if not (isinstance(s[key], (int, float)) and 0 < s[key] < 1):
            raise ValueError(f"{key} must be a number in (0, 1), got {s[key]!r}")
    if s["sampler"] not in ("uswim", "elm"):
        raise ValueError(f"sampler must be 'uswim' or 'elm' (the basis is sampled once, before any solution is "
                         f"known), got {s['sampler']!r}")
    return s


@dataclass
class SystemEvolutionResult:
    """Fields at the output times on the output points: ``fields[name]`` is ``(n_times, n_points)``."""

    problem: SystemEvolutionProblem
    times: np.ndarray
    points: np.ndarray
    fields: dict
    states: np.ndarray  # (n_times, k): reduced coordinates
    params: dict
    settings: dict
    diagnostics: dict
    projection: SystemProjection | None = None

    def values(self) -> dict:
        """The fields and the problem's derived quantities, ``(n_times, n_points)`` each."""
        out = dict(self.fields)
        for name, fn in self.problem.derived.items():
            out[name] = np.asarray(fn(self.fields), dtype=float)
        return out

    def truth(self) -> dict:
        """The exact or reference fields (and derived quantities) on the output grid."""
        truth = self.problem.truth
        if not truth:
            raise ValueError(f"problem {self.problem.name!r} has no exact or reference solution")
        out = {name: np.stack([np.asarray(fn(self.points, float(t)), dtype=float) for t in self.times])
               for name, fn in truth.items()}
        if set(self.problem.fields) <= set(out):
            for name, fn in self.problem.derived.items():
                out[name] = np.asarray(fn({f: out[f] for f in self.problem.fields}), dtype=float)
        return out

    def errors(self) -> dict:
        """Relative L2 error over the space–time grid, per field (and derived quantity) with a truth."""
        values, truth = self.values(), self.truth()
        return {name: float(np.linalg.norm(values[name] - ref) / max(np.linalg.norm(ref), 1e-300))
                for name, ref in truth.items()}


class SystemEvolution:
    """A configured solver: the basis, collocation points and condition points are drawn once;
    :meth:`run` integrates for any parameter values (the projection is rebuilt only when the
    conditions' rows change with them).  Settings: :data:`SYSTEM_EVOLUTION_DEFAULTS`, then the
    problem's ``defaults``, then the overrides."""

    def __init__(self, problem: SystemEvolutionProblem, **overrides):
        self.problem = problem
        s = self.settings = resolve_system_evolution_settings(problem, overrides)
        start, cpu = time.perf_counter(), time.process_time()
        activation = get_activation(s["activation"])
        sampler = ELMSampler(s["weight_scale"], s["bias_scale"]) if s["sampler"] == "elm" else get_sampler("uswim")
        root = root_seed(s["seed"])
        d = problem.domain.dim
        self.x = problem.domain.sample_interior(s["n_interior"], method=s["points"], seed=child_seed(root, 0))
        probe = problem.domain.sample_interior(16, seed=7)
        params = {**problem.params, "t": problem.t_span[0]}
        infos = [inspect_residual(problem.rhs[f], problem.fields, d, params, probe) for f in problem.fields]
        self.keys = tuple(tuple(info["keys"]) for info in infos)
        self.linear = all(info["linear"] for info in infos)
        self.condition_points = condition_points(problem, s, lambda *key: child_seed(root, *key))
        order = max([sum(k[1]) for keys in self.keys for k in keys] +
                    [c.derivatives for c in problem.conditions if isinstance(c, Periodic)])
        activation.check_order(order)
        pool = problem.domain.sample_interior(s["pool_size"], seed=child_seed(root, 3))
        (self.network,) = compute(sample_network(pool, None, widths=[s["width"]], activation=activation,
                                                 sampler=sampler, seed=child_seed(root, 4)))
        self._projections: dict[str, SystemProjection] = {}
        self._initial: dict[str, np.ndarray] = {}
        self.timings = {"sample_s": time.perf_counter() - start, "sample_cpu_s": time.process_time() - cpu}

    def parameters(self, params: dict | None) -> dict:
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.problem.params))
        if unknown:
            raise ValueError(f"problem {self.problem.name!r} has no parameter(s) {unknown}; its parameters: "
                             f"{sorted(self.problem.params)}")
        return {**self.problem.params, **params}

    def projection(self, params: dict | None = None) -> SystemProjection:
        """The reduced system for these parameter values (cached by the conditions' rows)."""
        params = self.parameters(params)
        rows = field_condition_rows(self.problem, self.network, self.condition_points,
                                    {**params, "t": self.problem.t_span[0]})
        key = rows_digest(rows)
        if key not in self._projections:
            start, cpu = time.perf_counter(), time.process_time()
            proj = build_system_projection(self.problem, self.network, self.x, rows, self.keys, self.settings["rcond"])
            proj.diagnostics.update(project_s=time.perf_counter() - start, project_cpu_s=time.process_time() - cpu)
            self._projections[key] = proj
            self._initial[key] = proj.fit({f: np.asarray(self.problem.initial[f](self.x), dtype=float)
                                           for f in self.problem.fields})
        return self._projections[key]

    def initial_state(self, proj: SystemProjection) -> np.ndarray:
        return self._initial[proj.fingerprint]

    def _linear_system(self, proj, params):
        """``(A, b)`` of a linear autonomous reduced system, for ``method="exact"``."""
        t0, t1 = self.problem.t_span
        probe = np.random.default_rng(0).standard_normal(proj.size)
        if not self.linear or not np.allclose(proj.rhs(t0, probe, params), proj.rhs(t1, probe, params),
                                              rtol=1e-12, atol=1e-12):
            raise ValueError(f"method 'exact' needs a linear autonomous system; problem {self.problem.name!r} is not "
                             "(use 'DOP853', 'Radau' or 'BDF')")
        return proj.jacobian(t0, np.zeros(proj.size), params), proj.rhs(t0, np.zeros(proj.size), params)

    def states(self, times, params: dict | None = None) -> tuple[SystemProjection, np.ndarray, dict]:
        """``(projection, states, diagnostics)``: reduced states at ``times`` (any order, repeats
        allowed; inside the span), ``states[i]`` at ``times[i]``, for these parameter values."""
        problem, s = self.problem, self.settings
        params = self.parameters(params)
        times = np.asarray(times, dtype=float)
        wall, cpu = time.perf_counter(), time.process_time()
        proj = self.projection(params)
        before = dict(proj.evaluations)
        t0 = problem.t_span[0]
        unique, inverse = np.unique(times, return_inverse=True)
        steps = np.concatenate([[t0], unique]) if unique[0] > t0 else unique
        method = s["method"]
        linear = self._linear_system(proj, params) if method == "exact" else None
        jacobian = (lambda t, y: proj.jacobian(t, y, params)) if method in IMPLICIT_METHODS else None
        if method in EXPLICIT_METHODS and "spectral_radius" not in proj.diagnostics:
            eig = np.linalg.eigvals(proj.jacobian(t0, self.initial_state(proj), params))
            proj.diagnostics.update(spectral_radius=float(np.max(np.abs(eig))), max_growth_rate=float(np.max(eig.real)))
            span = problem.t_span[1] - t0
            if proj.diagnostics["spectral_radius"] * span > 1e5:
                warnings.warn(f"problem {problem.name!r} looks stiff for {method!r} (spectral radius × span = "
                              f"{proj.diagnostics['spectral_radius'] * span:.1e}); use 'Radau' or 'BDF'",
                              RuntimeWarning, stacklevel=3)
        traj = integrate(lambda t, y: proj.rhs(t, y, params), self.initial_state(proj), steps, method=method,
                         linear=linear, jacobian=jacobian, rtol=s["rtol"], atol=s["atol"])
        states = traj.states[len(steps) - len(unique):][inverse.reshape(-1)]
        diagnostics = {**proj.diagnostics, "method": method, "rhs_evaluations": proj.evaluations["rhs"] - before["rhs"],
                       "jacobian_evaluations": proj.evaluations["jacobian"] - before["jacobian"],
                       "integrator": {k: v for k, v in traj.stats.items() if k != "message"},
                       "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, **self.timings}
        return proj, states, diagnostics

    @blas_limited
    def run(self, output_times=None, output_points=None, params: dict | None = None) -> SystemEvolutionResult:
        """Integrate over the span; fields at ``output_times`` on ``output_points`` (default: the error grid)."""
        problem = self.problem
        params = self.parameters(params)
        grid_points, grid_times = problem.evaluation_grid()
        points = grid_points if output_points is None else np.asarray(output_points, dtype=float)
        times = grid_times if output_times is None else np.asarray(output_times, dtype=float)
        check_outputs(problem, times, points)
        proj, states, diagnostics = self.states(times, params)
        evaluators = proj.evaluators(points)
        fields = {name: states[:, proj.offsets[f]:proj.offsets[f + 1]] @ evaluators[f].T
                  for f, name in enumerate(problem.fields)}
        return SystemEvolutionResult(problem, times, points, fields, states, params, dict(self.settings), diagnostics,
                                     proj)


def check_outputs(problem, times: np.ndarray, points: np.ndarray, what: str = "output") -> None:
    """Times inside the span and points of the domain (finite, of its dimension, inside it)."""
    t0, t1 = problem.t_span
    slack = 1e-12 * max(1.0, abs(t0), abs(t1))
    if times.ndim != 1 or len(times) == 0 or not np.all(np.isfinite(times)):
        raise ValueError(f"{what} times must be a non-empty 1-D array of finite times, got shape {times.shape}")
    if times.min() < t0 - slack or times.max() > t1 + slack:
        raise ValueError(f"{what} times must lie in the problem's span [{t0:g}, {t1:g}]; got times from "
                         f"{times.min():g} to {times.max():g}")
    d = problem.domain.dim
    if points.ndim != 2 or points.shape[1] != d or len(points) == 0 or not np.all(np.isfinite(points)):
        raise ValueError(f"{what} points must be finite, of shape (n, {d}); got {points.shape}")
    outside = ~np.asarray(problem.domain.contains(points))
    if outside.any():
        first = points[np.flatnonzero(outside)[0]]
        raise ValueError(f"{int(outside.sum())} {what} point(s) lie outside the domain of problem {problem.name!r}, "
                         f"e.g. {np.array2string(first, precision=6)}")


@blas_limited
def evolve_system(problem: SystemEvolutionProblem, *, output_times=None, output_points=None, params=None,
                  **settings) -> SystemEvolutionResult:
    """Solve a time-dependent system (settings: :data:`SYSTEM_EVOLUTION_DEFAULTS`, then the
    problem's ``defaults``); fields at ``output_times`` on ``output_points`` (default: the
    problem's space–time error grid), for the problem's parameters updated by ``params``."""
    return SystemEvolution(problem, **settings).run(output_times, output_points, params)
