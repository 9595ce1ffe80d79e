"""Linear time-dependent PDEs on a partition: the method of lines on local bases (docs/design.md §1.5).

``u(x, t) = Φ_i(x) c_i(t)`` in box ``i``.  At every instant the time derivative is the least-squares
fit, on the same rows as a static solve with the identity operator — the collocation points, the
(homogeneous) boundary conditions, the continuity rows on the faces — of ``L u``.  In the boxes'
local coordinates ``z_i = S Vᵀ c_i`` (§3.6) that fit is ``N ż = H z``: ``N`` the interface system
of the partition, ``H`` block-diagonal, each box's ``(QU)_pdeᵀ [LΦ_i | L1] P_i`` computed in its own
task.  ``ż = N⁻¹ H z`` is integrated exactly (one matrix exponential per output step); the
initial state is the partitioned fit of ``u0``.

Linear, autonomous, first-order problems with periodic or homogeneous boundary conditions; the
reduced operator is formed densely, so the total rank should stay below ~10⁴ (a 1-D domain of
hundreds of wavelengths, or a 2-D one of tens).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from pipeline.cluster import blas_limited
from pipeline.pde.conditions import Periodic
from pipeline.pde.integrators import integrate
from pipeline.pde.operators import identity
from pipeline.pde.partitioned import PartitionedSolution, factor_partition, prepare_partition
from pipeline.pde.static import GLOBAL_DEFAULTS

__all__ = ["PartitionedEvolution", "evolve_partitioned", "prepare_evolution"]

#: the most local coordinates whose reduced operator is formed (a dense square of them)
MAX_RANK = 12_000


@dataclass
class PartitionedEvolution:
    """The coefficients of every box at the output ``times``; fields by :meth:`at`."""

    problem: object
    times: np.ndarray
    fields: list  # a PartitionedSolution per output time
    info: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    def at(self, k: int) -> PartitionedSolution:
        """The field at output time ``times[k]``."""
        return self.fields[k]

    def __call__(self, x, k: int):
        return self.fields[k](x)

    def error(self, x=None) -> float:
        """Relative L2 error over the output times at points ``x`` (default: the problem's error grid)."""
        truth = self.problem.truth
        if truth is None:
            raise ValueError(f"problem {self.problem.name!r} has no exact or reference solution")
        if x is None:
            x, _ = self.problem.evaluation()
        x = np.asarray(x, dtype=float)
        num = den = 0.0
        for t, solution in zip(self.times, self.fields):
            ref = np.asarray(truth(x, t))
            num += float(np.sum((solution(x) - ref) ** 2))
            den += float(np.sum(ref**2))
        return float(np.sqrt(num / den))


def _spatial_fit_problem(problem):
    """The static problem whose rows fit a field: the identity, ``u0`` and the conditions."""
    from pipeline.pde.problems import StaticProblem

    return StaticProblem(f"{problem.name} (fit)", problem.domain, identity(1.0, problem.domain.dim),
                         lambda x: problem.initial(x), problem.conditions, free_boundary=problem.free_boundary)


def _check(problem):
    if problem.time_order != 1 or problem.nonlinear is not None or problem.source is not None \
            or not problem.autonomous:
        raise ValueError(f"a partitioned evolution needs a linear, autonomous, first-order problem without a source; "
                         f"{problem.name!r} is not (solve it without 'partition')")
    probe = problem.domain.sample_boundary(64, seed=0)
    for c in problem.conditions:
        if isinstance(c, Periodic):
            continue
        own = c.select(problem.domain, probe)
        data = c.rhs(own.points, {"normal": own.normals, "t": problem.t_span[0]}) if c.rhs is not None and len(own) \
            else 0.0
        if np.any(np.asarray(data) != 0):
            raise ValueError(f"condition {c.name!r} of {problem.name!r} has non-zero data; a partitioned evolution "
                             "takes periodic or homogeneous conditions only")


def prepare_evolution(problem, partition, overrides: dict):
    """``(fit problem, partition, settings, activation, sampler)`` of a partitioned evolution, all
    checked, no work done (a workflow's plan calls it before any member runs)."""
    _check(problem)
    fit = _spatial_fit_problem(problem)
    overrides = {**{k: v for k, v in problem.defaults.items() if k in GLOBAL_DEFAULTS}, **overrides}
    part, settings, activation, sampler = prepare_partition(fit, partition, overrides)
    if settings["continuity"] is None:  # glued as the evolution operator needs, not the fit's identity
        settings["continuity"] = max(0, problem.operator.order - 1)
    return fit, part, settings, activation, sampler


@blas_limited
def evolve_partitioned(problem, partition, times=None, **overrides) -> PartitionedEvolution:
    """Integrate a linear :class:`~pipeline.pde.evolution_problems.EvolutionProblem` on a partition.

    ``times``: output times (default: the problem's error grid); the settings are those of
    :func:`~pipeline.pde.partitioned.solve_partitioned` (totals over the domain).
    """
    fit, part, settings, activation, sampler = prepare_evolution(problem, partition, overrides)
    if times is None:
        _, times = problem.evaluation()
    times = np.unique(np.concatenate([[problem.t_span[0]], np.asarray(times, dtype=float)]))
    factored = factor_partition(fit, part, settings, activation, sampler, operators=(problem.operator,))
    system = factored.system
    if system.n > MAX_RANK:
        raise ValueError(f"{system.n} local coordinates: the reduced operator of a partitioned evolution is formed "
                         f"densely, at most {MAX_RANK}; use fewer neurons per box or a smaller domain")
    from scipy.linalg import block_diag
    from scipy.sparse.linalg import splu

    start = time.perf_counter()
    lu = splu(system.matrix())  # N, factored once: the initial fit and the operator
    h0 = np.concatenate([r["h"] for r in factored.results])
    z0 = lu.solve(h0)
    info = {"method": "direct", "residual": float(np.linalg.norm(system.matvec(z0) - h0) / (np.linalg.norm(h0) or 1.0))}
    operator = lu.solve(block_diag(*[r["projected"][0] for r in factored.results]))  # ż = N⁻¹ H z
    timings = {**factored.timings, "operator": time.perf_counter() - start}
    start = time.perf_counter()
    trajectory = integrate(None, z0, times, method="exact", linear=(operator, None))
    timings["integrate"] = time.perf_counter() - start
    states = np.asarray(trajectory.states).T  # (n, times): every box's coefficients at every time in one pass
    coefs = factored.coefficients(states)
    fields = [factored.solution(problem, None, settings, timings, [c[:, k] for c in coefs])
              for k in range(states.shape[1])]
    # the continuity rows' residual at the worst output time, relative to the initial data's norm
    jump = max(factored.jump(states[:, k]) for k in range(states.shape[1]))
    return PartitionedEvolution(problem, times, fields, {**factored.info, "initial_fit": info, "interface_jump": jump},
                                timings)

