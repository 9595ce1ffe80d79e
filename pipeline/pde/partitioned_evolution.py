"""Linear time-dependent PDEs on a partition: the method of lines on local bases (docs/design.md §1.5).

``u(x, t) = Φ_i(x) c_i(t)`` in box ``i``.  At every instant the time derivative is the least-squares
fit, on the same rows as a static solve with the identity operator — the collocation points, the
(homogeneous) boundary conditions, the continuity rows on the faces — of ``L u``.  In the boxes'
local coordinates ``z_i = S Vᵀ c_i`` (§3.6) that fit is ``N ż = H z``: ``N`` the interface system
of the partition, ``H`` block-diagonal, each box's ``(QU)_pdeᵀ [LΦ_i | L1] P_i`` computed in its own
task.  ``ż = N⁻¹ H z`` is propagated exactly: with ``N⁻¹H`` formed and its exponentials (small
partitions), or matrix-free by truncated Taylor series planned as SciPy's ``expm_multiply`` plans
them (products with ``H`` and solves with the sparse LU of ``N``: memory linear in the boxes).
The initial state is the partitioned fit of ``u0``.

Linear, autonomous, first-order problems with periodic or homogeneous boundary conditions.
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

#: local coordinates up to which ``"auto"`` forms ``N⁻¹ H`` (a dense square of them) and propagates
#: it by dense exponentials, and the most that ``"dense"`` forms (docs/design.md §1.5)
DENSE_RANK, MAX_DENSE_RANK = 1_000, 12_000
#: the most products with ``A`` a matrix-free propagation may take (each a sparse triangular solve)
MAX_PRODUCTS = 20_000
PROPAGATIONS = ("auto", "dense", "matrix-free")


def _reduced_operator(lu, blocks):
    """``A = N⁻¹ H`` as a SciPy linear operator: products with ``H`` (block-diagonal, sparse) and
    solves with the sparse LU of ``N``; memory linear in the boxes."""
    import scipy.sparse
    from scipy.sparse.linalg import LinearOperator

    h = scipy.sparse.block_diag(blocks, format="csr")
    n = h.shape[0]
    return LinearOperator((n, n), matvec=lambda v: lu.solve(np.asarray(h @ v)),
                          rmatvec=lambda v: np.asarray(h.T @ lu.solve(np.asarray(v), trans="T")), dtype=float)


def taylor_plan(a, span: float) -> tuple[int, int]:
    """``(degree, steps)`` of the truncated Taylor series for ``e^{span A}``: SciPy's own choice in
    ``expm_multiply`` (Al-Mohy and Higham 2011, §3), from ``onenormest`` of powers of ``A`` (a few
    dozen products).  ``degree · steps`` products at most.  A sampled basis can give its reduced
    operator spurious fast modes (tanh U-SWIM on 200 wavelengths, seed 1: |λ| up to 8e6 where the
    physics has 1e3): then the steps are millions."""
    from scipy.sparse.linalg import onenormest

    norm = float(onenormest(a)) * span
    if norm == 0:
        return 0, 1
    try:
        from scipy.sparse.linalg._expm_multiply import LazyOperatorNormInfo, _fragment_3_1
    except ImportError:  # the private helpers moved: degree 55 and its θ = 9.9 from the 1-norm alone
        return 55, int(np.ceil(norm / 9.9))
    degree, steps = _fragment_3_1(LazyOperatorNormInfo(a * span, A_1_norm=norm, ell=2), 1, 2.0**-53, ell=2)
    return int(degree), int(steps)


def _taylor(a, z, dt: float, degree: int, steps: int) -> np.ndarray:
    """``e^{dt A} z``: ``steps`` truncated Taylor series of at most ``degree`` terms, each stopped once
    two terms fall below the rounding of the sum (Al-Mohy and Higham 2011, Algorithm 3.2, no shift)."""
    total = np.asarray(z, dtype=float)
    for _ in range(steps):
        term = total
        previous = np.max(np.abs(term))
        for j in range(degree):
            term = (dt / (steps * (j + 1))) * a.matvec(term)
            current = np.max(np.abs(term))
            total = total + term
            if previous + current <= 2.0**-53 * np.max(np.abs(total)):
                break
            previous = current
    return total


def _propagate_matrix_free(a, z0, times, plan) -> np.ndarray:
    """``(n, len(times))``: ``z(t) = e^{(t - t0) A} z0``, output step by output step, each with the
    plan's degree and its share of the steps (a shorter span needs proportionally fewer)."""
    degree, steps = plan
    span = float(times[-1] - times[0])
    states = [np.asarray(z0, dtype=float)]
    for dt in np.diff(times):
        states.append(_taylor(a, states[-1], float(dt), degree, max(1, int(np.ceil(steps * dt / span)))))
    return np.stack(states, axis=1)


def _choose(propagation: str, n: int, plan):
    """``("dense", None)`` or ``("matrix-free", (degree, steps))``; ``plan()`` only when it decides."""
    if propagation == "dense" or (propagation == "auto" and n <= DENSE_RANK):
        if n > MAX_DENSE_RANK:
            raise ValueError(f"{n} local coordinates: a dense reduced operator is formed up to {MAX_DENSE_RANK}; "
                             "use propagation='matrix-free' (or 'auto')")
        return "dense", None
    degree, steps = plan()
    if degree * steps <= MAX_PRODUCTS:
        return "matrix-free", (degree, steps)
    if propagation == "auto" and n <= MAX_DENSE_RANK:
        return "dense", None
    raise ValueError(f"the reduced operator is stiff: the matrix-free propagation would take {degree * steps:.3g} "
                     f"products (at most {MAX_PRODUCTS}), and {n} local coordinates are too many to form it (at most "
                     f"{MAX_DENSE_RANK}). Spurious fast modes come from steep features: use features at the "
                     "solution's frequency (sine ELM), or fewer neurons per box")


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
def evolve_partitioned(problem, partition, times=None, *, propagation="auto", **overrides) -> PartitionedEvolution:
    """Integrate a linear :class:`~pipeline.pde.evolution_problems.EvolutionProblem` on a partition.

    ``times``: output times (default: the problem's error grid); the settings are those of
    :func:`~pipeline.pde.partitioned.solve_partitioned` (totals over the domain).
    ``propagation``: ``"dense"`` forms ``N⁻¹H`` and its exponentials (exact to rounding; memory
    and time grow as the square and cube of the local coordinates), ``"matrix-free"`` applies it
    in the action of the exponential (linear in the boxes; refused when it would take more than
    :data:`MAX_PRODUCTS` products, :func:`taylor_plan`), ``"auto"``: dense up to :data:`DENSE_RANK` coordinates, else
    matrix-free unless too stiff, then dense up to :data:`MAX_DENSE_RANK`.
    """
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {', '.join(PROPAGATIONS)}, got {propagation!r}")
    fit, part, settings, activation, sampler = prepare_evolution(problem, partition, overrides)
    if times is None:
        _, times = problem.evaluation()
    times = np.unique(np.concatenate([[problem.t_span[0]], np.asarray(times, dtype=float)]))
    factored = factor_partition(fit, part, settings, activation, sampler, operators=(problem.operator,))
    system = factored.system
    from scipy.sparse.linalg import splu

    start = time.perf_counter()
    # N, factored once (the initial fit and the operator). N is symmetric: a symmetric ordering
    # with diagonal pivots fills less and solves faster (6 × 6 boxes of the 2-D advection_diffusion:
    # 1.5e7 nonzeros against 2.0e7, a solve 15 ms against 42 ms; the propagation solves ~10³ times)
    lu = splu(system.matrix(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.001, options={"SymmetricMode": True})
    h0 = np.concatenate([r["h"] for r in factored.results])
    z0 = lu.solve(h0)
    info = {"method": "direct", "residual": float(np.linalg.norm(system.matvec(z0) - h0) / (np.linalg.norm(h0) or 1.0))}
    blocks = [r["projected"][0] for r in factored.results]
    a = _reduced_operator(lu, blocks)
    span = float(times[-1] - times[0])
    chosen, plan = _choose(propagation, system.n, lambda: taylor_plan(a, span))
    timings = dict(factored.timings)
    if chosen == "dense":
        from scipy.linalg import block_diag

        operator = lu.solve(block_diag(*blocks))  # ż = N⁻¹ H z
        timings["operator"] = time.perf_counter() - start
        start = time.perf_counter()
        states = np.asarray(integrate(None, z0, times, method="exact", linear=(operator, None)).states).T
    else:
        timings["operator"] = time.perf_counter() - start
        start = time.perf_counter()
        states = _propagate_matrix_free(a, z0, times, plan)
    timings["integrate"] = time.perf_counter() - start
    coefs = factored.coefficients(states)
    fields = [factored.solution(problem, None, settings, timings, [c[:, k] for c in coefs])
              for k in range(states.shape[1])]
    # the continuity rows' residual at the worst output time, relative to the initial data's norm
    jump = max(factored.jump(states[:, k]) for k in range(states.shape[1]))
    return PartitionedEvolution(problem, times, fields, {**factored.info, "initial_fit": info, "interface_jump": jump,
                                                       "propagation": chosen},
                                timings)

