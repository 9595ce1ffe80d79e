"""Time-dependent PDE workflows: the neural method of lines, window by window into the store.

A member samples its basis, projects the PDE to a small ODE and integrates it window by
window (:class:`pipeline.pde.evolution.Evolution`); after each window it writes the fields at
the window's output times, the coefficients, the state at the window's end (resumption), the
window's error sums and its *dense trajectory* — the basis coefficients as piecewise
Chebyshev interpolants of the integrator's solution — and only then marks the window done.
``evaluate(points, times)`` is then an interpolation and one product with the stored basis,
for any number of times: nothing is integrated again (docs/design.md §5.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import ConfigError
from pipeline.store import PointLayout, StoreSpec, Variable, field_time_chunk, point_layout
from pipeline.workflows.base import Clock, MemberTask, Plan, WorkflowKind, member_variables, padded
from pipeline.workflows.pde import (PROBLEM_SECTION, PDESettings, ProblemCache, basis_spec, build_problem,
                                    check_device, evaluation_times, field_spec, is_evolution, layers_from_basis, pde_info,
                                    shared_width, stored_layers, sweep_exact, write_basis)

__all__ = ["EvolutionKind"]

EVOLUTION_KEYS = {
    "basis": ("width", "activation", "sampler", "weight_scale", "bias_scale", "curvature_scale"),
    "collocation": ("n_interior", "n_boundary", "points"),
    "solver": ("rcond", "kappa", "relaxation", "boundary", "prune"),
    "time": ("outputs", "method", "windows", "blocks", "rtol", "atol", "adaptive_points", "hyper_reduction",
             "hyper_oversampling", "hyper_basis"),
    "compute": ("chunk_rows", "split_members"),
}


@dataclass(frozen=True)
class EvolutionShared:
    points: np.ndarray
    layout: PointLayout
    times: np.ndarray
    width: int
    state: int  # (width + 1) · time order


class EvolutionKind(WorkflowKind):
    """A time-dependent PDE: ``u`` (members × time × points), integrated and written window by window."""

    name = "evolution"
    label = "time-dependent PDE"
    section = "problem"
    sections = {"problem": PROBLEM_SECTION}
    task = 'a PDE'
    keys = EVOLUTION_KEYS
    devices = ("cpu", "gpu")  # the projection's row blocks; the small reduced ODE runs on the host
    stages = ("project", "integrate", "write")  # sampling the basis is part of each block's projection
    splittable = True  # a block's projection (assembly, TSQR, interpolation rows) is Dask graphs

    def plan(self, cfg, members, grid, path, quiet) -> Plan:
        from pipeline.pde.dense import MAX_PIECES, NODES
        from pipeline.pde.evolution import Evolution

        cache = ProblemCache()
        problems = [cache(m.config["problem"]) for m in members]
        if not all(is_evolution(p) for p in problems):
            raise ConfigError("all members must be static or all time-dependent")
        settings = [PDESettings.from_config(m.config, self.keys) for m in members]
        check_device(cfg)
        try:
            evs = [Evolution(p, seed=m.seed, **s.kwargs()) for p, m, s in zip(problems, members, settings)]
        except ValueError as err:
            raise ConfigError(f"solver settings: {err}") from None
        first = problems[0]
        points, grid_times = first.evaluation_grid()
        n_out = cfg["time"]["outputs"]
        times = np.linspace(*first.t_span, n_out) if n_out else grid_times
        for p in problems[1:]:
            other, other_times = p.evaluation_grid()
            if other.shape != points.shape or not np.allclose(other, points) or (
                    n_out is None and not np.allclose(other_times, times)) or p.t_span != first.t_span:
                raise ConfigError("the swept parameters change the output grid (points, times or span); sweep other "
                                  "keys, or set time.outputs")
        layout = point_layout(points)
        windows = [len(ev.window_edges()) - 1 for ev in evs]
        width = max(ev.settings["width"] for ev in evs)
        state = (width + 1) * first.time_order
        blocks = max(ev.settings["blocks"] for ev in evs)
        shared = EvolutionShared(points, layout, times, width, state)
        dtype = cfg["output"]["dtype"]
        exact = None
        if first.truth is not None:
            def reference(m):
                truth = cache(m.config["problem"]).truth
                return layout.to_grid(np.stack([np.asarray(truth(points, t)) for t in times]))
            exact = sweep_exact(grid, members, reference)
        chunk = {"time": field_time_chunk(len(times), int(np.prod(layout.shape)), np.dtype(dtype).itemsize)}
        g = grid.dims
        groups = {"": field_spec(grid, layout, ("time",), dtype, chunk, exact)}
        for name, variables in basis_spec(grid, blocks, width, first.domain.dim, width + 1, ("time",)).items():
            groups.setdefault(name, {}).update(variables)
        for name, variables in member_variables(grid, self.stages, max(windows)).items():
            groups.setdefault(name, {}).update(variables)
        per_window = {"window": 1}
        groups["progress"]["window_of_time"] = Variable(
            g + ("time",), "int64", chunks={"time": chunk["time"]}, data=_window_of_time(grid, members, evs, times),
            attrs={"long_name": "the window that writes each output time (integrity checks and repair)"})
        groups["state"] = {
            "y": Variable(g + ("window", "state"), chunks=per_window,
                          attrs={"long_name": "reduced ODE state at the window's end"}),
            "c_end": Variable(g + ("window", "state"), chunks=per_window,
                              attrs={"long_name": "the same state as basis coefficients [a | a_t]"}),
            "fingerprint": Variable(g + ("window",), "int64", chunks=per_window),
            "rank": Variable(g + ("window",), "int64", chunks=per_window),
            "block": Variable(g + ("window",), "int64", chunks=per_window),
            # float64 sums per window: exact metrics whatever the stored dtype, kept across resumption
            "error_squared": Variable(g + ("window",), chunks=per_window),
            "reference_squared": Variable(g + ("window",), chunks=per_window),
        }
        pieces = {"window": 1, "piece": 32}
        groups["trajectory"] = {
            "t_start": Variable(g + ("window", "piece"), chunks=pieces, attrs={"long_name": "start of the piece"}),
            "t_end": Variable(g + ("window", "piece"), chunks=pieces, attrs={"long_name": "end of the piece"}),
            "values": Variable(g + ("window", "piece", "node", "coefficient"), chunks=pieces,
                               attrs={"long_name": "basis coefficients [c | c0] at the Chebyshev nodes of each piece"}),
        }
        sizes = {**dict(zip(g, grid.sizes)), **dict(zip(layout.dims, layout.shape)), "time": len(times),
                 "block": blocks, "neuron": width, "dim": first.domain.dim, "coefficient": width + 1, "sv": width + 1,
                 "stage": len(self.stages), "window": max(windows), "state": state, "piece": MAX_PIECES,
                 "node": NODES}
        coords = {**grid.coords, **layout.coords,
                  "time": (("time",), times, {"long_name": "time", "units": "1", "axis": "T"})}
        spec = StoreSpec(sizes, g, coords, groups,
                         group_coords={"diagnostics": {"stage": (("stage",), list(self.stages), {})},
                                       "coefficients": {"time": coords["time"]}})
        tasks = [MemberTask(self.name, path, m, grid, s, shared, w, self.stages, quiet,
                            assembly_bytes=8 * (ev.settings["n_interior"] + ev.settings["n_boundary"])
                            * (2 * ev.settings["width"] + 3))
                 for m, s, w, ev in zip(members, settings, windows, evs)]
        info = {**pde_info(first, evs[0].settings),
                "block_edges": [ev.block_edges.tolist() for ev in evs][0], "time_order": first.time_order}
        return Plan(tasks, spec, info)

    def run(self, task: MemberTask) -> dict:
        from pipeline.pde.evolution import Evolution

        shared: EvolutionShared = task.shared
        problem = build_problem(task.member.config["problem"])
        ev = Evolution(problem, seed=task.member.seed, **task.settings.kwargs())
        first = task.first_pending()
        if first == task.windows:
            return {"member": task.index, "skipped": True}
        clock = Clock()
        state, block = None, None
        if first > 0:
            state, block = self._restore(task, ev, first, clock)
        written_blocks = set()
        rel_l2 = None
        windows = ev.march(shared.times, shared.points, start=first, state=state, block=block)
        for index, win, owned in _reporting_divergence(windows, task):
            start = clock.start()
            proj = ev.projections[win.block]
            if win.block not in written_blocks:
                write_basis(task, win.block, proj.network.layers[0], proj.rank, proj.singular_values,
                            shared.width, shared.width + 1)
                written_blocks.add(win.block)
            self._write_window(task, ev, index, win, owned, problem)
            clock.stop("write", start)
            clock.add("integrate", win.stats["seconds"])
            if index == task.windows - 1:  # diagnostics before the last done mark: a resume never loses them
                clock.add("project", sum(v for k, v in ev.timings.items() if k.startswith("projection")))
                if problem.truth is not None:
                    sums = task.read("state")
                    rel_l2 = float(np.sqrt(np.nansum(sums["error_squared"]) / np.nansum(sums["reference_squared"])))
                task.write_diagnostics(clock, rel_l2)
            task.mark_done(index)
        return {"member": task.index, "rel_l2": rel_l2, "rank": [p.rank for p in ev.projections.values()]}

    @staticmethod
    def _restore(task, ev, first, clock):
        """Resume: rebuild the block's projection from the stored basis and reload the state."""
        from pipeline.nn import SampledNetwork

        stored = task.read("state")
        block = int(stored["block"][first - 1])
        start = clock.start()
        layer = layers_from_basis(task.read("basis"), ev.activation)[block]
        proj = ev.projection(block, network=SampledNetwork((layer,)))
        clock.stop("project", start)
        order = ev.problem.time_order
        if proj.fingerprint() == int(stored["fingerprint"][first - 1]):
            state = stored["y"][first - 1][: proj.rank * order]  # bitwise continuation
        else:  # another numerical environment (BLAS, machine): continue from the coefficients
            c_end = stored["c_end"][first - 1]
            stride = len(c_end) // order
            width = proj.network.width + 1
            state = np.concatenate([proj.coordinates(c_end[i * stride: i * stride + width]) for i in range(order)])
            task.log("the rebuilt projection differs in rounding; continuing from the stored coefficients")
        task.log(f"resuming at window {first + 1}/{task.windows} (block {block})")
        return state, block

    @staticmethod
    def _write_window(task, ev, index, win, owned, problem):
        shared: EvolutionShared = task.shared
        proj = ev.projections[win.block]
        width = proj.network.width
        if len(owned):
            times = {"time": slice(int(owned[0]), int(owned[-1]) + 1)}
            task.write("", {"u": (("time",) + shared.layout.dims, shared.layout.to_grid(win.fields))}, times)
            coefs = np.concatenate([padded(win.coefficients[:, :width].T, shared.width).T, win.coefficients[:, width:]],
                                   axis=1)
            task.write("coefficients", {"c": (("time", "coefficient"), coefs)}, times)
        y = padded(win.states[-1], shared.state)
        c_end = np.full(shared.state, np.nan)
        for i in range(problem.time_order):
            c = proj.coefficient_map @ win.states[-1][i * proj.rank:(i + 1) * proj.rank]
            c_end[i * (shared.width + 1): i * (shared.width + 1) + len(c)] = c
        err2 = ref2 = np.nan
        if problem.truth is not None and len(owned):
            ref = np.stack([np.asarray(problem.truth(shared.points, t)) for t in shared.times[owned]])
            err2, ref2 = float(np.sum((win.fields - ref) ** 2)), float(np.sum(ref**2))
        region = {"window": slice(index, index + 1)}
        task.write("state", {"y": (("window", "state"), y[None]), "c_end": (("window", "state"), c_end[None]),
                             "fingerprint": (("window",), [proj.fingerprint()]), "rank": (("window",), [proj.rank]),
                             "block": (("window",), [win.block]), "error_squared": (("window",), [err2]),
                             "reference_squared": (("window",), [ref2])}, region)
        dense = win.dense
        values = dense.values
        # [c | c0] padded to the store's width: the constant stays last
        values = np.concatenate([np.pad(values[..., :width], ((0, 0), (0, 0), (0, shared.width - width)),
                                        constant_values=np.nan), values[..., width:]], axis=-1)
        n = len(dense.starts)
        task.write("trajectory", {"t_start": (("window", "piece"), dense.starts[None]),
                                  "t_end": (("window", "piece"), dense.ends[None]),
                                  "values": (("window", "piece", "node", "coefficient"), values[None])},
                   {**region, "piece": slice(0, n)})

    def evaluate(self, result, points, times):
        """Interpolate each member's dense coefficient trajectory; one product per time block."""
        from pipeline.nn import SampledNetwork
        from pipeline.pde.dense import evaluate_pieces

        times = evaluation_times(points, times)
        span = result.tree["/"]["time"].values
        if np.any(times < span[0]) or np.any(times > span[-1]):
            raise ValueError(f"times must lie in the run's span [{span[0]}, {span[-1]}]")
        width = shared_width(result)
        out = np.empty((result.members, len(points)))
        for m in range(result.members):
            traj = result.member_dataset("trajectory", m)
            blocks = result.member_values("state", m)["block"]
            starts, ends = traj["t_start"].values, traj["t_end"].values
            used = int(np.isfinite(starts).sum(axis=1).max())  # read only the written pieces
            starts, ends = starts[:, :used], ends[:, :used]
            values = traj["values"].isel(piece=slice(0, used)).values
            piece_block = np.broadcast_to(blocks[:, None], starts.shape)
            keep = np.isfinite(starts)  # windows beyond the member's own (swept time.windows) hold none
            if not keep.any() or np.nanmax(ends) < span[-1] - 1e-12 * max(1.0, abs(span[-1])):
                raise ValueError(f"member {m} of this store has not finished; evaluate it after --resume")
            order = np.argsort(starts[keep], kind="stable")
            starts, ends, block_of = starts[keep][order], ends[keep][order], piece_block[keep][order]
            values = values[keep][order]
            coef = evaluate_pieces(starts, ends, values, times)  # (n, width + 1)
            piece = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(starts) - 1)
            layers = stored_layers(result, m, result.attrs["activation"])
            for b in np.unique(block_of[piece]):
                at = block_of[piece] == b
                layer = layers[b]
                features = SampledNetwork((layer,))(points[at])
                out[m, at] = np.einsum("ij,ij->i", features, coef[at, : layer.width]) + coef[at, width]
        return out

    def plot(self, result, plt):
        from pipeline.workflows.plots import plot_fields

        return plot_fields(result, plt)


def _reporting_divergence(windows, task):
    """The windows of a member; a divergence names the member and what the store holds."""
    from pipeline.pde.integrators import DivergenceError

    done = task.first_pending()
    try:
        for item in windows:
            yield item
            done = item[0] + 1
    except DivergenceError as err:
        kept = f"windows 1–{done} of {task.windows} are in the store" if done else "no window is in the store"
        raise DivergenceError(f"member {task.index} diverged: {err} ({kept})", None) from None


def _window_of_time(grid, members, evs, times) -> np.ndarray:
    """``(member dims…, time)``: the window of each member that owns each output time."""
    from pipeline.pde.evolution import Evolution

    out = np.zeros(tuple(grid.sizes) + (len(times),), dtype="int64")
    for member, ev in zip(members, evs):
        edges = ev.window_edges()
        row = out[grid.position(member)]
        for index, (w0, w1) in enumerate(zip(edges[:-1], edges[1:])):
            row[Evolution.owned_times(times, w0, w1, index == 0)] = index
    return out
