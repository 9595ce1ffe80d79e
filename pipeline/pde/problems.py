"""The problem registry: named PDE problems with parameters and exact or reference solutions.

``get_problem(name, **params)`` builds a problem; ``PROBLEMS`` lists them (name, parameters
with defaults, whether an exact or reference solution exists, a summary).  Each problem also
carries solver ``defaults`` measured to meet its accuracy ``target`` on a 2-core machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from pipeline.nn.seeding import child_seed
from pipeline.pde.conditions import BoundaryCondition, Condition, Dirichlet, Periodic, check_boundary_coverage
from pipeline.pde.domains import Ball, Box, Domain
from pipeline.pde.polygons import LShape
from pipeline.pde.operators import LinearOperator, biharmonic, derivative, helmholtz, laplacian
from pipeline.pde.static import RowGroup

__all__ = ["PROBLEMS", "ProblemSpec", "StaticProblem", "get_problem", "problem_names"]


@dataclass(frozen=True, eq=False)
class StaticProblem:
    """``L u = f`` in the domain, with boundary conditions.

    Args:
        name: registry name.
        domain: a :class:`~pipeline.pde.domains.Domain`.
        operator: ``L``.
        source: ``f(x) -> (n,)``.
        conditions: boundary conditions.
        exact: exact solution ``u(x)``, if known.
        reference: an independently computed reference ``u(x)``, if no exact one.
        params: the parameters the problem was built with.
        defaults: solver settings that meet the problem's accuracy target.
        target: that accuracy target: the relative L2 error on the evaluation points the
            defaults are meant to stay below, for every seed (``benchmarks/defaults.py`` checks
            seeds 0-7 across each parameter's documented range); None where none is claimed.
        evaluation: ``() -> points`` where errors are measured (default: a 101^d grid in 1-2 D,
            10 000 seeded random points above).
        enrichments: known singular functions added to the basis
            (:mod:`pipeline.pde.enrichment`).
        free_boundary: boundary part names deliberately left without a condition (an outflow
            boundary, say). Every other part needs a condition once the problem has one; a
            part left uncovered is an error (:func:`~pipeline.pde.conditions.check_boundary_coverage`).
    """

    name: str
    domain: Domain
    operator: LinearOperator
    source: Callable
    conditions: tuple[Condition, ...] = ()
    exact: Callable | None = None
    reference: Callable | None = None
    description: str = ""
    params: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    evaluation: Callable | None = None
    enrichments: tuple = ()
    free_boundary: tuple = ()
    target: float | None = None

    def __post_init__(self):
        self.operator.check_dim(self.domain.dim)
        object.__setattr__(self, "conditions", tuple(self.conditions))
        free = (self.free_boundary,) if isinstance(self.free_boundary, str) else tuple(self.free_boundary or ())
        object.__setattr__(self, "free_boundary", free)
        for c in self.conditions:
            for op in c.operators(self.domain.dim):
                op.check_dim(self.domain.dim, f"the domain of problem {self.name!r}")
        check_boundary_coverage(self.domain, self.conditions, self.free_boundary, problem=self.name)

    @property
    def truth(self) -> Callable | None:
        return self.exact if self.exact is not None else self.reference

    def evaluation_points(self) -> np.ndarray:
        if self.evaluation is not None:
            return self.evaluation()
        d = self.domain.dim
        if d <= 2:
            lo, hi = self.domain.bounds
            axes = [np.linspace(lo[i], hi[i], 101) for i in range(d)]
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
            return grid[self.domain.contains(grid)]
        return self.domain.sample_interior(10_000, seed=2024)

    def row_groups(self, n_interior: int, n_boundary: int, *, method: str = "uniform", seed=0,
                   chunk_rows: int | None = None) -> list[RowGroup]:
        """Interior rows first, then one group per condition."""
        seed = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        d = self.domain.dim
        interior = self.domain.interior_points(n_interior, method=method, seed=child_seed(seed, 0), chunk_rows=chunk_rows)
        source = self.source
        extra = {"enrichments": tuple(self.enrichments)}
        groups = [RowGroup("pde", interior, (self.operator,), lambda x, data: source(x), d, weight=1.0, **extra)]
        boundary = self.domain.sample_boundary(n_boundary, method=method, seed=child_seed(seed, 1)) \
            if any(isinstance(c, BoundaryCondition) for c in self.conditions) else None
        for i, c in enumerate(self.conditions):
            name = f"{c.name}{i}" if sum(cc.name == c.name for cc in self.conditions) > 1 else c.name
            if isinstance(c, Periodic):
                share = max(1, n_boundary // (2 * d))
                x, partner = c.pairs(self.domain, share, method, child_seed(seed, 2, i))
                groups.append(RowGroup(name, np.hstack([x, partner]), tuple(c.operators(d)), None, d,
                                       paired=True, weight=c.weight, **extra))
                continue
            own = c.select(self.domain, boundary)
            if len(own) == 0:
                raise ValueError(f"condition {name!r} of problem {self.name!r} owns no boundary points; "
                                 f"increase n_boundary (now {n_boundary})")
            groups.append(RowGroup(name, np.hstack([own.points, own.normals]), (c.boundary_operator,), c.rhs, d,
                                   normals=True, weight=c.weight, **extra))
        return groups

    def pool(self, n: int, seed) -> np.ndarray:
        """Candidate points for sampling the basis: 80% interior, 20% boundary."""
        n_b = n // 5 if self.conditions else 0
        inner = self.domain.sample_interior(n - n_b, seed=child_seed(seed, 0))
        if n_b == 0:
            return inner
        return np.concatenate([inner, self.domain.sample_boundary(n_b, seed=child_seed(seed, 1)).points])


@dataclass(frozen=True)
class ProblemSpec:
    name: str
    factory: Callable
    params: dict
    truth: str  # "exact", "reference" or "none"
    kind: str  # "static" or "evolution"
    summary: str


PROBLEMS: dict[str, ProblemSpec] = {}


def register(name: str, *, params: dict, truth: str, kind: str = "static", summary: str = ""):
    def wrap(factory):
        PROBLEMS[name] = ProblemSpec(name, factory, dict(params), truth, kind, summary or factory.__doc__.split("\n")[0])
        return factory

    return wrap


def problem_names(kind: str | None = None) -> list[str]:
    return [n for n, s in PROBLEMS.items() if kind is None or s.kind == kind]


def get_problem(name: str, **params):
    """Build a registered problem; unknown names and parameters are errors that list the valid ones."""
    try:
        spec = PROBLEMS[name]
    except KeyError:
        raise ValueError(f"unknown problem {name!r}; known problems: {', '.join(PROBLEMS)}") from None
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        allowed = ", ".join(f"{k} (default {v})" for k, v in spec.params.items()) or "none"
        raise ValueError(f"problem {name!r} has no parameter {unknown[0]!r}; its parameters: {allowed}")
    return spec.factory(**{**spec.params, **params})


def _positive_int(name, v, minimum=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"parameter {name} must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"parameter {name} must be a positive number, got {v!r}")
    return float(v)


# ------------------------------------------------------------------------------ problems
@register("poisson_sin2d", params={}, truth="exact")
def poisson_sin2d():
    """Poisson Δu = f on [0, 1]², u = sin(πx) sin(πy), homogeneous Dirichlet."""
    def exact(x):
        return np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1])

    return StaticProblem(
        "poisson_sin2d", Box.cube(2), laplacian(2), lambda x: -2 * np.pi**2 * exact(x), (Dirichlet(0.0),),
        exact=exact, description=poisson_sin2d.__doc__,
        defaults={"width": 1500, "n_interior": 6000, "n_boundary": 1200, "sampler": "uswim", "rcond": 1e-13},
        target=1e-8,  # tests/test_pde_static.py, workflows/poisson_2d.yaml (tests/test_workflows.py)
    )


def _grid(side: int) -> np.ndarray:
    ticks = np.linspace(0.0, 1.0, side)
    return np.stack(np.meshgrid(ticks, ticks, indexing="ij"), axis=-1).reshape(-1, 2)


@register("poisson_waves", params={"waves": 4.0}, truth="exact")
def poisson_waves(waves=4.0):
    """Poisson Δu = f on [0, 1]², u = sin(2πnx) sin(2πny): n wavelengths across each axis, Dirichlet u on the boundary.

    The default width grows with n (500 sine features a wavelength, up to 4000 at n = 8); the
    large-domain case beyond that is solved on a partition (``solve_partitioned``,
    ``basis.partition``; docs/design.md §1.5).
    """
    waves = _positive("waves", waves)
    k = 2 * math.pi * waves
    # ten points a wavelength: on the default 101 × 101 grid the solution of 50 waves is zero at every node
    side = max(101, int(10 * waves) + 1)
    width = min(4000, 100 * math.ceil(5 * waves))

    def exact(x):
        return np.sin(k * x[:, 0]) * np.sin(k * x[:, 1])

    return StaticProblem(
        "poisson_waves", Box.cube(2), laplacian(2), lambda x: -2 * k**2 * exact(x),
        (Dirichlet(lambda x, data: exact(x)),),
        exact=exact, params={"waves": waves}, description=poisson_waves.__doc__, evaluation=lambda: _grid(side),
        # sine features at the solution's frequency: 4 waves, width 2000: 6e-13 … 2e-12 over seeds 0-2
        # (tanh U-SWIM: 2e-4).  A fixed 2000 gave 8.8e-9 at 6 waves; 500 a wave, seed 0: 2 waves
        # 4.1e-13, 6 waves 3.4e-12 (16.6 CPU-s), 8 waves 2.5e-12 (42 CPU-s).
        defaults={"width": width, "n_interior": 5 * width // 2, "n_boundary": width // 2, "activation": "sin",
                  "sampler": "elm", "weight_scale": k, "bias_scale": math.pi, "rcond": 1e-13},
        target=1e-11,  # the decade above the worst of seeds 0-2 at 4 waves (2e-12, above)
    )


@register("poisson_sum_sin", params={"dim": 10}, truth="exact")
def poisson_sum_sin(dim=10):
    """Poisson Δu = f on [0, 1]^d, u = Σ_i sin(π x_i / 2), Dirichlet u on the boundary."""
    dim = _positive_int("dim", dim)

    def exact(x):
        return np.sin(0.5 * np.pi * x).sum(axis=1)

    # The width 1e-4 takes grows ~2^(d/2) (seed 0: d = 3 at 400, 2.2e-9; d = 6 at 1200, 1.4e-5;
    # d = 8 at 2400, 4.6e-5; d = 10 at 4800, worst of seeds 0-7 7.5e-5, where 4000 gave 1.0e-4
    # on 3 of 8 seeds); capped at 6000, where a solve takes minutes.  Twice the rows gain only 15 %.
    width = min(6000, 100 * round(1.5 * 2 ** (dim / 2)))
    return StaticProblem(
        "poisson_sum_sin", Box.cube(dim), laplacian(dim), lambda x: -(np.pi**2 / 4) * exact(x),
        (Dirichlet(lambda x, data: exact(x)),), exact=exact, params={"dim": dim}, description=poisson_sum_sin.__doc__,
        # Smooth sine features resolve the sum of 1-D profiles far better than steep tanh ones
        # (d = 10: 3.4e-4 vs 2.1e-3 at width 2000).
        defaults={"width": width, "n_interior": 10 * width // 3, "n_boundary": 5 * width // 4, "activation": "sin",
                  "sampler": "elm", "weight_scale": 0.5, "bias_scale": math.pi, "rcond": 1e-12},
        target=1e-4,  # tests/test_pde_static.py, d = 10
    )


@register("poisson_gaussian", params={"dim": 100, "sigma": 1.0}, truth="exact")
def poisson_gaussian(dim=100, sigma=1.0):
    """Poisson Δu = f on the unit ball in R^d, u = exp(-||x - c||² / (2σ²)), c = (1/2, 0, …), Dirichlet."""
    dim, sigma = _positive_int("dim", dim), _positive("sigma", sigma)
    fast = dim >= 50 and sigma >= 1.0  # the small basis of the defaults (below)
    centre = np.zeros(dim)
    centre[0] = 0.5

    def exact(x):
        return np.exp(-((x - centre) ** 2).sum(axis=1) / (2 * sigma**2))

    def source(x):
        r2 = ((x - centre) ** 2).sum(axis=1)
        return exact(x) * (r2 / sigma**4 - dim / sigma**2)

    return StaticProblem(
        "poisson_gaussian", Ball.unit(dim), laplacian(dim), source, (Dirichlet(lambda x, data: exact(x)),),
        exact=exact, params={"dim": dim, "sigma": sigma}, description=poisson_gaussian.__doc__,
        # Ridge functions need O(d²) neurons for ||x - c||² (random Fourier features: 1.85e-2 at
        # width 3000, d = 100). Quadratic neurons σ(w·x + a||x||² + b) carry the isotropic part;
        # the anisotropic part along c is found as the active subspace of a first solve's
        # gradients and put into the weights of a second (d = 100: 5e-5 in ~3 s at width 1000).
        # From d = 50 on with σ >= 1, 400 neurons on 1200 + 500 points meet 4e-4 in ~0.25 CPU-s
        # (d = 100, 8 seeds: benchmarks/high_dim.py); narrower Gaussians (σ = 0.5: 5.5e-3 at 400)
        # and lower dimensions (d = 10: 1.6e-6 against 2e-5) keep the wide basis.
        defaults={"width": 400 if fast else 1000, "n_interior": 1200 if fast else 8000,
                  "n_boundary": 500 if fast else 3000, "activation": "tanh", "sampler": "elm",
                  "weight_scale": 0.03, "bias_scale": 1.0, "curvature_scale": 1.0 / sigma**2, "active_directions": 1,
                  "active_scale": 1.0 / sigma, "rcond": 1e-12},
        # 4e-4: what the fast basis was chosen to meet (above; tests/test_high_dim_fast.py, d = 100).
        # Narrower Gaussians (the wide basis): 1e-3, the decade above the README's 7.2e-4 at
        # σ = 0.5, d = 100.
        target=4e-4 if sigma >= 1.0 else 1e-3,
    )


@register("helmholtz_sin", params={"k": 4.0}, truth="exact")
def helmholtz_sin(k=4.0):
    """Helmholtz Δu + k²u = f on [0, 1]², u = sin(kx) sin(ky), Dirichlet u on the boundary."""
    k = _positive("k", k)

    def exact(x):
        return np.sin(k * x[:, 0]) * np.sin(k * x[:, 1])

    return StaticProblem(
        "helmholtz_sin", Box.cube(2), helmholtz(k, 2), lambda x: -(k**2) * exact(x),
        (Dirichlet(lambda x, data: exact(x)),), exact=exact, params={"k": k}, description=helmholtz_sin.__doc__,
        # rcond 1e-14: seeds 0-7 at k = 10 all below 8.9e-7 (1e-13: seed 7 2.8e-6), same CPU time
        defaults={"width": 1500, "n_interior": 6000, "n_boundary": 1200, "sampler": "uswim", "rcond": 1e-14},
        # 1e-8 up to the default k = 4 (tests/test_pde_static.py); above, the decade over the
        # README's 3.0e-7 at k = 10 (the same width resolves fewer wavelengths per neuron)
        target=1e-8 if k <= 4.0 else 1e-6,
    )


@register("beam_static", params={}, truth="exact")
def beam_static():
    """Euler–Bernoulli beam u'''' = -1 on [0, 1], clamped at 0 (u = u' = 0), free at 1 (u'' = u''' = 0)."""
    def exact(x):
        s = x[:, 0]
        return -(s**2) * (s**2 - 4 * s + 6) / 24

    zero = 0.0
    conditions = (
        BoundaryCondition(derivative((0,)), zero, "x0-", name="clamped_value"),
        BoundaryCondition(derivative((1,)), zero, "x0-", name="clamped_slope"),
        BoundaryCondition(derivative((2,)), zero, "x0+", name="free_moment"),
        BoundaryCondition(derivative((3,)), zero, "x0+", name="free_shear"),
    )
    return StaticProblem(
        "beam_static", Box.cube(1), biharmonic(1), lambda x: -np.ones(len(x)), conditions, exact=exact,
        description=beam_static.__doc__,
        # Smooth sine features: steep tanh neurons from close pairs make fourth derivatives huge
        # (U-SWIM tanh: 1.2e-7; ELM sine: 3e-14).
        defaults={"width": 200, "n_interior": 400, "n_boundary": 2, "activation": "sin", "sampler": "elm",
                  "weight_scale": 3.0, "bias_scale": math.pi, "rcond": 1e-13, "points": "grid"},
        target=1e-8,  # tests/test_pde_static.py
    )


@register("poisson_lshape", params={"enrich": True}, truth="reference")
def poisson_lshape(enrich=True):
    """Poisson -Δu = 1 on the L-shape (-1,1)² minus [0,1)×(-1,0], u = 0; reference: extrapolated finite differences.

    With ``enrich`` the corner singularity r^{2/3} sin(2θ/3) joins the basis (one column).
    """
    from pipeline.pde.enrichment import corner_singularity
    from pipeline.pde.reference import lshape_reference

    if not isinstance(enrich, bool):
        raise ValueError(f"parameter enrich must be true or false, got {enrich!r}")
    enrichments = (corner_singularity((0.0, 0.0), angle_from=0.0, opening=1.5 * np.pi),) if enrich else ()
    return StaticProblem(
        "poisson_lshape", LShape(), -laplacian(2), lambda x: np.ones(len(x)), (Dirichlet(0.0),),
        reference=lshape_reference, description=poisson_lshape.__doc__, params={"enrich": enrich},
        defaults={"width": 1500, "n_interior": 6000, "n_boundary": 1500, "sampler": "uswim", "rcond": 1e-12},
        enrichments=enrichments,
        # tests/test_pde_static.py, workflows/lshape.yaml; without the corner function none is claimed
        target=1e-3 if enrich else None,
    )


@register("poisson_periodic", params={}, truth="exact")
def poisson_periodic():
    """Poisson Δu = f on [0, 1]², u = sin(2πx) sin(πy) + cos(2πx) y: periodic in x, Dirichlet in y."""
    def exact(x):
        return np.sin(2 * np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]) + np.cos(2 * np.pi * x[:, 0]) * x[:, 1]

    def source(x):
        return (-5 * np.pi**2 * np.sin(2 * np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1])
                - 4 * np.pi**2 * np.cos(2 * np.pi * x[:, 0]) * x[:, 1])

    conditions = (Periodic(axis=0), Dirichlet(lambda x, data: exact(x), on=("x1-", "x1+")))
    return StaticProblem(
        "poisson_periodic", Box.cube(2), laplacian(2), source, conditions, exact=exact,
        description=poisson_periodic.__doc__,
        defaults={"width": 1500, "n_interior": 6000, "n_boundary": 1200, "sampler": "uswim", "rcond": 1e-12},
        target=1e-7,  # tests/test_pde_static.py
    )


@register("poisson_mixed", params={}, truth="exact")
def poisson_mixed():
    """Poisson Δu = f on [0, 1]², u = cos(πx) e^y: Neumann on x = 0, 1, Robin u + ∂u/∂n on y = 1, Dirichlet on y = 0."""
    from pipeline.pde.conditions import Neumann, Robin

    def exact(x):
        return np.cos(np.pi * x[:, 0]) * np.exp(x[:, 1])

    def grad(x):
        return np.stack([-np.pi * np.sin(np.pi * x[:, 0]) * np.exp(x[:, 1]), exact(x)], axis=1)

    def flux(x, data):
        return (grad(x) * data["normal"]).sum(axis=1)

    conditions = (
        Neumann(flux, on=("x0-", "x0+")),
        Robin(1.0, 1.0, lambda x, data: exact(x) + flux(x, data), on="x1+"),
        Dirichlet(lambda x, data: exact(x), on="x1-"),
    )
    return StaticProblem(
        "poisson_mixed", Box.cube(2), laplacian(2), lambda x: (1 - np.pi**2) * exact(x), conditions, exact=exact,
        description=poisson_mixed.__doc__,
        defaults={"width": 1500, "n_interior": 6000, "n_boundary": 1200, "sampler": "uswim", "rcond": 1e-12},
        target=1e-7,  # tests/test_pde_static.py
    )
