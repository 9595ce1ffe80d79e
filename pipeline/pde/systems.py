"""Systems of static PDEs: the problem, its settings and its solution (solved in ``gauss_newton.py``).

Fields ``u_f = Φ c_f + c0_f`` share one sampled basis; every equation is a point-wise
residual (:mod:`pipeline.pde.fields`).  Each Gauss–Newton step is one least-squares solve of
the linearised rows ``[J | -r]``, assembled in row blocks and reduced by the TSQR exactly as
the linear solver's rows are; a linear system is one step.  A step that does not lower the
residual is retried from the same factor with Levenberg–Marquardt damping (a ridge on the
step: no new assembly), and ``continuation`` walks a parameter from an easy value to the
target, each stage starting from the last (docs/design.md §1.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.backend import COMPUTE_DTYPE
from pipeline.linalg import check_regularisation
from pipeline.pde.conditions import Periodic, check_boundary_coverage
from pipeline.pde.domains import METHODS, Domain
from pipeline.pde.fields import Equation, basis_derivatives, check_field_names

__all__ = ["ConvergenceError", "SYSTEM_DEFAULTS", "SystemProblem", "SystemSolution", "resolve_system_settings"]

SYSTEM_DEFAULTS = {
    "width": 400,
    "activation": "tanh",
    "sampler": "uswim",
    "n_interior": 2000,
    "n_boundary": 400,
    "points": "uniform",
    "rcond": 1e-13,
    "pool_size": 4000,
    "kappa": 1.0,
    "weight_scale": 1.0,
    "bias_scale": 1.0,
    "pde_on_boundary": False,  # interior equations also on the boundary points (measured: no gain on Kovasznay)
    "max_iterations": 30,
    "tolerance": 1e-10,  # relative change of the fields in a step
    "continuation": None,  # {"param": name, "values": [..., target]} (the last value is the problem's)
}


class ConvergenceError(ValueError):
    """A Gauss–Newton iteration that diverged or did not converge (the history is attached)."""

    def __init__(self, message, history):
        super().__init__(message)
        self.history = history


@dataclass(frozen=True, eq=False)
class SystemProblem:
    """Fields on a domain with point-wise equations in the interior and on the boundary.

    Args:
        name: registry name.
        domain: the :class:`~pipeline.pde.domains.Domain`.
        fields: field names (``("u", "v", "p")``).
        equations: interior and boundary :class:`~pipeline.pde.fields.Equation` s.
        periodic: :class:`~pipeline.pde.conditions.Periodic` conditions (every field).
        exact: ``{field: u(x)}``, where known (or an independent reference).
        gauge: fields determined only up to a constant (pressure): errors after removing the mean.
        initial: ``{field: u0(x)}``, the first iterate of a nonlinear solve (default zero):
            the branch of a problem with several solutions.
        params: the parameters, passed to every residual as ``p``.
        defaults: solver settings meeting the problem's accuracy target.
    """

    name: str
    domain: Domain
    fields: tuple[str, ...]
    equations: tuple[Equation, ...]
    periodic: tuple[Periodic, ...] = ()
    exact: dict | None = None
    gauge: tuple[str, ...] = ()
    initial: dict | None = None
    params: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    description: str = ""
    free_boundary: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "fields", check_field_names(self.fields))
        object.__setattr__(self, "equations", tuple(self.equations))
        object.__setattr__(self, "periodic", tuple(self.periodic))
        if not any(e.interior for e in self.equations):
            raise ValueError(f"problem {self.name!r} needs at least one interior equation")
        for name in ("exact", "initial"):
            given = getattr(self, name) or {}
            unknown = sorted(set(given) - set(self.fields))
            if unknown:
                raise ValueError(f"problem {self.name!r}: {name} names unknown field(s) {unknown}; "
                                 f"the fields are {list(self.fields)}")
        bad = sorted(set(self.gauge) - set(self.fields))
        if bad:
            raise ValueError(f"problem {self.name!r}: gauge names unknown field(s) {bad}")
        check_boundary_coverage(self.domain, self.conditions, self.free_boundary, problem=self.name)

    @property
    def conditions(self) -> tuple:
        """The boundary equations (as coverage sees them) and the periodic pairings."""
        return tuple(_BoundaryOwner(e.on, e.weight, e.name) for e in self.equations if not e.interior) + self.periodic

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    def evaluation_points(self) -> np.ndarray:
        d = self.domain.dim
        if d <= 2:
            lo, hi = self.domain.bounds
            axes = [np.linspace(lo[i], hi[i], 101 if d == 2 else 1001) for i in range(d)]
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
            return grid[self.domain.contains(grid)]
        return self.domain.sample_interior(10_000, seed=2024)


@dataclass(frozen=True)
class _BoundaryOwner:
    """A boundary equation seen by the coverage check (which reads ``on`` and ``select``)."""

    on: object
    weight: float | None = None
    name: str = "equation"

    def select(self, domain, sample):
        from pipeline.pde.conditions import Dirichlet

        return Dirichlet(on=self.on).select(domain, sample)


@dataclass
class SystemSolution:
    """The fields of a solved system: ``solution(x)`` is ``(n, n_fields)``."""

    problem: SystemProblem
    network: object
    coef: np.ndarray  # (n_fields, width + 1)
    settings: dict
    history: list
    weights: dict
    timings: dict = field(default_factory=dict)
    #: of the last step's column-equilibrated Jacobian (its conditioning)
    singular_values: np.ndarray | None = None

    @property
    def fields(self):
        return self.problem.fields

    def __call__(self, x):
        x = np.asarray(x, dtype=COMPUTE_DTYPE)
        phi = basis_derivatives(self.network.layers[0], x, [(0,) * x.shape[1]])[(0,) * x.shape[1]]
        return phi @ self.coef.T

    def field(self, name: str, x) -> np.ndarray:
        return self(x)[:, self.fields.index(name)]

    def derivative(self, name: str, x, alpha) -> np.ndarray:
        x = np.asarray(x, dtype=COMPUTE_DTYPE)
        alpha = tuple(alpha)
        return basis_derivatives(self.network.layers[0], x, [alpha])[alpha] @ self.coef[self.fields.index(name)]

    def errors(self, x=None) -> dict:
        """Relative L2 error of every field with a known solution (gauge fields: mean removed)."""
        exact = self.problem.exact or {}
        if not exact:
            raise ValueError(f"problem {self.problem.name!r} has no exact or reference solution")
        x = self.problem.evaluation_points() if x is None else np.asarray(x, dtype=float)
        values = self(x)
        out = {}
        for name, fn in exact.items():
            u, ref = values[:, self.fields.index(name)], np.asarray(fn(x), dtype=float)
            if name in self.problem.gauge:
                u, ref = u - u.mean(), ref - ref.mean()
            out[name] = float(np.linalg.norm(u - ref) / np.linalg.norm(ref))
        return out

    def diagnostics(self) -> dict:
        last = self.history[-1]
        return {"width": self.network.width, "iterations": len(self.history), "rank": last["rank"],
                "residual_history": [h["residual"] for h in self.history],
                "weights": dict(self.weights), "timings": dict(self.timings)}


def resolve_system_settings(problem: SystemProblem, overrides: dict) -> dict:
    allowed = set(SYSTEM_DEFAULTS) | {"seed", "chunk_rows"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown solver setting {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    s = {**SYSTEM_DEFAULTS, **problem.defaults, **{k: v for k, v in overrides.items() if v is not None}}
    s.setdefault("seed", 0)
    for key in ("width", "n_interior", "pool_size", "max_iterations"):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{key} must be a positive integer, got {v!r}")
    if s["n_interior"] < 2:
        raise ValueError(f"n_interior must be at least 2 collocation points, got {s['n_interior']}")
    if isinstance(s["n_boundary"], bool) or not isinstance(s["n_boundary"], (int, np.integer)) or s["n_boundary"] < 0:
        raise ValueError(f"n_boundary must be a non-negative integer, got {s['n_boundary']!r}")
    if s["points"] not in METHODS:
        raise ValueError(f"points must be one of {METHODS}, got {s['points']!r}")
    if not (np.isfinite(s["kappa"]) and s["kappa"] > 0):
        raise ValueError(f"kappa must be a positive number, got {s['kappa']!r}")
    if not (isinstance(s["tolerance"], (int, float)) and 0 < s["tolerance"] < 1):
        raise ValueError(f"tolerance must be a number in (0, 1), got {s['tolerance']!r}")
    check_regularisation(s["rcond"], None)
    cont = s["continuation"]
    if cont is not None:
        if not isinstance(cont, dict) or set(cont) != {"param", "values"}:
            raise ValueError("continuation must be {'param': name, 'values': [v1, v2, …]}")
        if cont["param"] not in problem.params:
            raise ValueError(f"continuation param {cont['param']!r} is not a parameter of problem "
                             f"{problem.name!r} ({sorted(problem.params)})")
        values = cont["values"]
        if not isinstance(values, (list, tuple)) or not values or \
                not all(isinstance(v, (int, float)) and np.isfinite(v) for v in values):
            raise ValueError("continuation values must be a non-empty list of finite numbers")
    if problem.equations and any(not e.interior for e in problem.equations) and s["n_boundary"] == 0:
        raise ValueError(f"problem {problem.name!r} has boundary equations, so n_boundary must be positive")
    return s


