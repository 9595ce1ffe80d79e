"""Time-dependent PDEs on a partition (``basis.partition``): the method of lines on local bases
(:func:`~pipeline.pde.partitioned_evolution.evolve_partitioned`, docs/design.md §1.5, §5.2).

A member factors its boxes as tasks of the cluster (as a static partitioned member does), forms
the reduced operator ``N⁻¹ H`` and propagates the local coordinates exactly to every output
time (one matrix exponential per distinct step).  The factor dominates and the propagation is
exact, so a member is one window: a resumed run redoes a member that had not finished.  The
store keeps every box's basis and its coefficients at every output time, so ``evaluate`` gives
``u`` anywhere in space at the stored times.
"""

from __future__ import annotations

import numpy as np

from pipeline.workflows.base import Clock, MemberTask
from pipeline.workflows.partitioned import PARTITION_KEYS, PartitionedKind, Solved, _padded_coefs, _split_stage
from pipeline.workflows.pde import evaluation_times

__all__ = ["PartitionedEvolutionKind"]


class PartitionedEvolutionKind(PartitionedKind):
    """A linear time-dependent PDE on a grid of boxes: ``u`` (members × time × points)."""

    name = "partitioned_evolution"
    label = "partitioned time-dependent PDE"
    # the evolution factors N by sparse LU whatever solver.interface_solver says: refused, not ignored
    keys = {**PARTITION_KEYS, "solver": tuple(k for k in PARTITION_KEYS["solver"] if k != "interface_solver"),
            "time": ("outputs",)}
    stages = ("factor", "integrate", "write")

    def prepare(self, problem, partition, settings):
        from pipeline.pde.partitioned_evolution import prepare_evolution

        return prepare_evolution(problem, partition, settings)[1:]  # the fit problem stays inside

    def output_times(self, cfg, problem):
        n_out = cfg["time"]["outputs"]
        return np.linspace(*problem.t_span, n_out) if n_out else problem.evaluation_grid()[1]

    def solve(self, task: MemberTask, problem, clock: Clock) -> Solved:
        from pipeline.pde.partitioned_evolution import evolve_partitioned

        shared = task.shared
        start = clock.start()
        evolution = evolve_partitioned(problem, task.member.config["basis"]["partition"], shared.times,
                                       seed=task.member.seed, **task.settings)
        clock.stop("solve", start)
        # the operator and the propagation ran in this process, single-threaded
        _split_stage(clock, "factor", "integrate", evolution.timings["operator"] + evolution.timings["integrate"])
        at = np.searchsorted(evolution.times, shared.times)  # the integration also starts at t0
        fields = [evolution.fields[k] for k in at]
        u = np.stack([f(shared.points) for f in fields])
        coefs = np.stack([_padded_coefs(shared, f) for f in fields])
        return Solved(fields[0], u, coefs, evolution.info["interface_jump"], 0)

    def evaluate(self, result, points, times):
        times = evaluation_times(points, times)
        stored = result.tree["/"]["time"].values
        # the coefficients are exact at the stored times only (no dense trajectory is kept)
        index = np.clip(np.searchsorted(stored, times), 0, len(stored) - 1)
        below = np.clip(index - 1, 0, len(stored) - 1)
        index = np.where(np.abs(stored[below] - times) < np.abs(stored[index] - times), below, index)
        tol = 1e-9 * max(1.0, float(np.max(np.abs(stored))))
        off = np.abs(stored[index] - times) > tol
        if off.any():
            raise ValueError(f"a partitioned evolution is stored at its output times only; {float(times[off][0])} is not "
                             f"one of them ({len(stored)} from {stored[0]} to {stored[-1]}: result.tree['/']['time'])")

        def coefficients(m):
            c = result.member_values("coefficients", m)["c"]
            return [(index == k, c[k]) for k in np.unique(index)]

        return self.evaluate_at(result, points, coefficients)
