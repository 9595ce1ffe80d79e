"""Problems of large domains, meant for a partition (docs/design.md §1.5): many wavelengths across.

``advection_diffusion`` in time (``evolve_partitioned``, ``basis.partition``); the static
``poisson_waves`` lives with the static problems (it is also solved with one global basis).
"""

from __future__ import annotations

import numpy as np

from pipeline.pde.conditions import Periodic
from pipeline.pde.domains import Box
from pipeline.pde.evolution_problems import EvolutionProblem
from pipeline.pde.operators import derivative
from pipeline.pde.problems import _positive, _positive_int, register

__all__: list[str] = []


def _axis(alpha_order: int, axis: int, dim: int) -> tuple:
    alpha = [0] * dim
    alpha[axis] = alpha_order
    return tuple(alpha)


def _grid(waves: float, dim: int, T: float, per_wave: int):
    """``per_wave`` points a wavelength along each axis, 11 times."""
    ticks = np.linspace(0.0, waves, int(per_wave * waves) + 1)
    axes = np.meshgrid(*([ticks] * dim), indexing="ij")
    return lambda: (np.stack([a.ravel() for a in axes], 1), np.linspace(0.0, T, 11))


@register("advection_diffusion", params={"waves": 200.0, "speed": 1.0, "nu": 0.01, "T": 1.0, "dim": 1},
          truth="exact", kind="evolution")
def advection_diffusion(waves=200.0, speed=1.0, nu=0.01, T=1.0, dim=1):
    """u_t + a·∇u = νΔu on [0, n]^d (d = 1, 2; n wavelengths of 1 along each axis), periodic, a = (a, …, a),
    u0 = Π sin 2πx_i; exact e^{-νd(2π)²t} Π sin 2π(x_i - at).

    The large-domain case in time: solve it on a partition (``evolve_partitioned``,
    ``basis.partition``; docs/design.md §1.5).
    """
    waves, nu, T, speed = _positive("waves", waves), _positive("nu", nu), _positive("T", T), float(speed)
    dim = _positive_int("dim", dim)
    if dim > 2:
        raise ValueError(f"advection_diffusion: dim must be 1 or 2, got {dim}")
    k = 2 * np.pi
    operator = sum((derivative(_axis(2, i, dim)) * nu + derivative(_axis(1, i, dim)) * (-speed)
                    for i in range(1, dim)), derivative(_axis(2, 0, dim)) * nu + derivative(_axis(1, 0, dim)) * (-speed))

    def exact(x, t):
        return np.exp(-nu * dim * k**2 * t) * np.prod(np.sin(k * (x - speed * t)), axis=1)

    if dim == 1:
        # sine features at the solution's wavenumber on grid points (as for advection): 30 a wavelength
        defaults = {"width": int(30 * waves), "n_interior": int(100 * waves)}
    else:
        # 2-D: 200 features a square wavelength, w ~ N(0, (2π)² I) (|w| ~ 2π√2, the solution's
        # wavenumber), three grid points each.  4 × 4 wavelengths on 4 × 4 boxes, seed 0, T = 1:
        # 100 a wavelength 1.2e-4, 150 1.2e-6, 200 2.4e-8 (6 CPU-s), 300 6.1e-10; scale 0.8 × 2π 9.6e-8,
        # 1.2 × 2π 1.5e-8 (7 CPU-s), 2π√2 at 60 a wavelength 5.9e-2 (2π: 1.3e-2)
        defaults = {"width": int(200 * waves**2), "n_interior": int(600 * waves**2)}
    defaults.update({"points": "grid", "activation": "sin", "sampler": "elm", "weight_scale": float(k),
                     "bias_scale": float(np.pi), "rcond": 1e-12})
    return EvolutionProblem(
        "advection_diffusion", Box([0.0] * dim, [waves] * dim), operator,
        lambda x: np.prod(np.sin(k * x), axis=1), (0.0, T),
        conditions=tuple(Periodic(axis=i, derivatives=2) for i in range(dim)), exact=exact,
        params={"waves": waves, "speed": speed, "nu": nu, "T": T, "dim": dim}, description=advection_diffusion.__doc__,
        evaluation=_grid(waves, dim, T, 40 if dim == 1 else 10),
        defaults=defaults,
        # the decade above the worst of seeds 0-2 on a partition of 200 wavelengths (1.1e-12,
        # benchmarks/large_domain.py); the defaults are meant for evolve_partitioned
        target=1e-11 if dim == 1 else 1e-6,
    )

