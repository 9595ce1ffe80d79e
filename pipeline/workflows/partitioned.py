"""Static PDEs on a partition (``basis.partition``): one local basis per box (docs/design.md §1.5, §5.2).

A member is :func:`~pipeline.pde.partitioned.solve_partitioned`: its boxes are factored as
tasks of the cluster (a lone member is split, so two workers share its boxes) and only their
small factors come back.  The store keeps every box's basis (``block`` = box) and coefficients,
and the partition in the run attributes, so ``evaluate`` rebuilds ``u`` anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from pipeline.config import ConfigError
from pipeline.store import StoreSpec, Variable, point_layout
from pipeline.workflows.base import Clock, MemberTask, Plan, WorkflowKind, member_variables, padded
from pipeline.workflows.pde import (PROBLEM_SECTION, STATIC_KEYS, PDESettings, ProblemCache, field_spec, pde_info,
                                    stored_layers, sweep_exact)

__all__ = ["PartitionedKind", "is_partitioned"]

PARTITION_KEYS = {
    "basis": ("width", "activation", "sampler", "weight_scale", "bias_scale", "partition"),
    "collocation": ("n_interior", "n_boundary", "points", "n_interface"),
    "solver": ("rcond", "kappa", "interface_solver", "interface_weight"),
    "compute": STATIC_KEYS["compute"],
}
#: the keys above that are not :class:`PDESettings` fields: passed to the solver as they are
EXTRA = ("n_interface", "interface_solver", "interface_weight")


def is_partitioned(cfg: dict) -> bool:
    """Whether a PDE workflow asks for a partition (set, or swept)."""
    swept = (cfg.get("ensemble") or {}).get("sweep") or {}
    return cfg["basis"].get("partition") is not None or "basis.partition" in swept


def _settings(config: dict) -> dict:
    values = PDESettings.from_config(config, PARTITION_KEYS).kwargs()
    values.update({k: config[s][k] for s, ks in PARTITION_KEYS.items() for k in ks if k in EXTRA
                   and config[s][k] is not None})
    return values


@dataclass(frozen=True)
class PartitionedShared:
    points: np.ndarray
    layout: object
    boxes: int
    width: int  # neurons per box (the largest over members)
    times: np.ndarray | None = None  # output times of a time-dependent problem


@dataclass(frozen=True)
class Solved:
    """A member's solve: the boxes' bases, ``u`` at the output points (and times), the padded
    coefficients ``([time,] block, coefficient)``, the continuity residual, the CG iterations."""

    solution: object  # a PartitionedSolution: the kept boxes, their layers, ranks and conditions
    u: np.ndarray
    coefs: np.ndarray
    jump: float
    iterations: int


def _padded_coefs(shared: PartitionedShared, solution) -> np.ndarray:
    """``(block, width + 1)``: each kept box's ``[c | c0]`` padded to the store's width."""
    out = np.full((shared.boxes, shared.width + 1), np.nan)
    for box, coef in zip(solution.boxes, solution.coefs, strict=True):
        out[box] = np.concatenate([padded(coef[:-1], shared.width), coef[-1:]])
    return out


def _split_stage(clock: Clock, first: str, second: str, seconds: float) -> None:
    """Split the clock's ``solve`` into ``first`` and ``second`` (``seconds`` of single-threaded wall time)."""
    wall, cpu = clock.stages.pop("solve")
    clock.add(first, wall - seconds, max(0.0, cpu - seconds))
    clock.add(second, seconds, min(cpu, seconds))


class PartitionedKind(WorkflowKind):
    """A static PDE on a grid of boxes: local bases glued by continuity rows."""

    name = "partitioned"
    label = "partitioned static PDE"
    section = "problem"
    sections = {"problem": PROBLEM_SECTION}
    task = "a PDE"
    keys = PARTITION_KEYS
    devices = ("cpu",)
    stages = ("factor", "interface", "write")
    splittable = True

    def prepare(self, problem, partition, settings):
        """``(partition, resolved settings, activation, sampler)`` of one member, checked before work."""
        from pipeline.pde.partitioned import prepare_partition

        return prepare_partition(problem, partition, settings)

    def output_times(self, cfg, problem):
        """The output times (None: a static problem)."""
        return None

    def plan(self, cfg, members, grid, path, quiet) -> Plan:
        cache = ProblemCache()
        problems = [cache(m.config["problem"]) for m in members]
        settings = [_settings(m.config) for m in members]
        try:
            prepared = [self.prepare(p, m.config["basis"]["partition"], s)
                        for p, m, s in zip(problems, members, settings, strict=True)]
        except ValueError as err:
            raise ConfigError(f"basis.partition: {err}") from None
        first, (part, resolved, _, _) = problems[0], prepared[0]
        if any(p.domain.dim != first.domain.dim or q[0].counts != part.counts for p, q in zip(problems, prepared)):
            raise ConfigError("basis.partition: every member needs the same partition of the same domain")
        times = self.output_times(cfg, first)
        points = first.evaluation_points() if times is None else first.evaluation_grid()[0]
        for p in problems[1:]:  # one store layout: every member's output points (and times) are the first's
            other = p.evaluation_points() if times is None else p.evaluation_grid()[0]
            other_times = self.output_times(cfg, p)
            if other.shape != points.shape or not np.allclose(other, points):
                raise ConfigError("the swept parameters change the output points (the domain or its grid); "
                                  "sweep other keys")
            if times is not None and (other_times.shape != times.shape or not np.allclose(other_times, times)):
                raise ConfigError("the swept parameters change the output times (the span or its grid): sweep "
                                  "other keys, or set time.outputs where only the grid differs")
        layout = point_layout(points)
        width = max(q[0].width_per_box(p.domain, q[1]["width"]) for p, q in zip(problems, prepared))
        shared = PartitionedShared(points, layout, part.size, width, times)
        lead = () if times is None else ("time",)
        exact = None
        if first.truth is not None:
            def reference(m):
                truth = cache(m.config["problem"]).truth
                if times is None:
                    return layout.to_grid(np.asarray(truth(points)))
                return layout.to_grid(np.stack([np.asarray(truth(points, t)) for t in times]))
            exact = sweep_exact(grid, members, reference)
        g = grid.dims
        groups = {"": field_spec(grid, layout, lead, cfg["output"]["dtype"], {}, exact)}
        groups["coefficients"] = {"c": Variable(g + lead + ("block", "coefficient"), chunks={"block": 1},
                                                attrs={"long_name": "coefficients [c | c0] of each box's basis"})}
        groups["basis"] = {k: Variable(g + ("block", "neuron") + (("dim",) if k == "weights" else ()),
                                       chunks={"block": 1}) for k in ("weights", "biases", "curvature")}
        for name, variables in member_variables(grid, self.stages, 1).items():
            groups.setdefault(name, {}).update(variables)
        groups["diagnostics"].update({
            "rank": Variable(g + ("block",), "int64", chunks={"block": 1}),
            "condition": Variable(g + ("block",), chunks={"block": 1},
                                  attrs={"long_name": "condition number of the box's rows and traces (truncated)"}),
            "interface_jump": Variable(g, attrs={"long_name": "continuity rows' residual / the data's norm"}),
            "interface_iterations": Variable(g, "int64")})
        sizes = {**dict(zip(grid.dims, grid.sizes)), **dict(zip(layout.dims, layout.shape)), "block": part.size,
                 "neuron": width, "dim": first.domain.dim, "coefficient": width + 1, "stage": len(self.stages),
                 "window": 1}
        coords = {**grid.coords, **layout.coords}
        group_coords = {"diagnostics": {"stage": (("stage",), list(self.stages), {})}}
        if times is not None:
            sizes["time"] = len(times)
            coords["time"] = (("time",), times, {"long_name": "time", "units": "1", "axis": "T"})
            group_coords["coefficients"] = {"time": coords["time"]}
        spec = StoreSpec(sizes, grid.dims, coords, groups, group_coords=group_coords)
        tasks = [MemberTask(self.name, path, m, grid, s, shared, 1, self.stages, quiet,
                            assembly_bytes=8 * (r[1]["n_interior"] + r[1]["n_boundary"]) * (r[1]["width"] + 2))
                 for m, s, r in zip(members, settings, prepared)]
        info = pde_info(first, resolved)
        info.update({"partition": json.dumps(list(part.counts)), "partition_lo": json.dumps(part.lo.tolist()),
                     "partition_hi": json.dumps(part.hi.tolist())})
        return Plan(tasks, spec, info)

    def solve(self, task: MemberTask, problem, clock: Clock) -> Solved:
        from pipeline.pde.partitioned import solve_partitioned

        start = clock.start()
        solution = solve_partitioned(problem, task.member.config["basis"]["partition"], seed=task.member.seed,
                                     **task.settings)
        clock.stop("solve", start)
        # the interface solve ran single-threaded in this process: its CPU seconds are its wall seconds
        _split_stage(clock, "factor", "interface", solution.timings["interface"])
        return Solved(solution, solution(task.shared.points), _padded_coefs(task.shared, solution),
                      solution.info["interface_jump"], solution.info["interface"]["iterations"])

    def run(self, task: MemberTask) -> dict:
        if task.first_pending() >= 1:
            return {"member": task.index, "skipped": True}
        problem = ProblemCache()(task.member.config["problem"])
        shared: PartitionedShared = task.shared
        clock = Clock()
        solved = self.solve(task, problem, clock)
        solution = solved.solution
        lead = () if shared.times is None else ("time",)
        start = clock.start()
        task.write("", {"u": (lead + shared.layout.dims, shared.layout.to_grid(solved.u))})
        n = shared.boxes
        weights, biases = np.full((n, shared.width, problem.domain.dim), np.nan), np.full((n, shared.width), np.nan)
        rank, condition = np.zeros(n, dtype=np.int64), np.full(n, np.nan)
        for box, layer, r, c in zip(solution.boxes, solution.layers, solution.info["box_ranks"],
                                    solution.info["box_conditions"], strict=True):
            weights[box], biases[box] = padded(layer.weights, shared.width), padded(layer.biases, shared.width)
            rank[box], condition[box] = r, c
        task.write("basis", {"weights": (("block", "neuron", "dim"), weights), "biases": (("block", "neuron"), biases),
                             "curvature": (("block", "neuron"), np.where(np.isfinite(biases), 0.0, np.nan))})
        task.write("coefficients", {"c": (lead + ("block", "coefficient"), solved.coefs)})
        task.write("diagnostics", {"rank": (("block",), rank), "condition": (("block",), condition),
                                   "interface_jump": ((), solved.jump), "interface_iterations": ((), solved.iterations)})
        rel_l2 = None
        if problem.truth is not None:
            ref = (np.asarray(problem.truth(shared.points)) if shared.times is None
                   else np.stack([np.asarray(problem.truth(shared.points, t)) for t in shared.times]))
            rel_l2 = float(np.linalg.norm(solved.u - ref) / np.linalg.norm(ref))
        clock.stop("write", start)
        task.write_diagnostics(clock, rel_l2)
        task.mark_done(0)
        return {"member": task.index, "rel_l2": rel_l2, "rank": solution.rank}

    def evaluate(self, result, points, times):
        return self.evaluate_at(result, points, lambda m: [(slice(None), result.member_values("coefficients", m)["c"])])

    @staticmethod
    def evaluate_at(result, points, coefficients):
        """``u`` of every member at ``points``; ``coefficients(m)``: ``[(which points, (block, coefficient))]``."""
        from pipeline.pde.partition import Partition
        from pipeline.pde.partitioned import PartitionedSolution

        attrs = result.attrs
        part = Partition(np.array(json.loads(attrs["partition_lo"])), np.array(json.loads(attrs["partition_hi"])),
                         tuple(json.loads(attrs["partition"])))
        out = np.empty((result.members, len(points)))
        for m in range(result.members):
            layers = stored_layers(result, m, attrs["activation"])
            boxes = [i for i, layer in enumerate(layers) if layer is not None]
            for at, coef in coefficients(m):
                coefs = [np.concatenate([coef[i][: layers[i].width], coef[i][-1:]]) for i in boxes]
                out[m, at] = PartitionedSolution(None, part, np.array(boxes, dtype=np.int64),
                                                 [layers[i] for i in boxes], coefs, {}, {})(points[at])
        return out

    def plot(self, result, plt):
        from pipeline.workflows.plots import plot_fields

        return plot_fields(result, plt)
