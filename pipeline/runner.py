"""Running a validated workflow: members as independent Dask tasks writing one zarr store.

Every member (a seed and a sweep point) is one task of one graph; the task samples its basis,
solves, and region-writes its own slices of the store window by window, marking each window
done only after its data is written.  Only small metrics travel back to the client, which
then computes the ensemble mean and spread out of core from the store.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from pipeline import __version__
from pipeline.cluster import connect, inline
from pipeline.config import ConfigError, workflow_kind
from pipeline.ensemble import Member, expand_members
from pipeline.store import (Layout, StoreExists, basis_variables, create_store, finalize, progress, read_attrs,
                            stored_layer, write)

__all__ = ["run_workflow"]

STAGES = ("sample", "project", "integrate", "write")


# ----------------------------------------------------------------------------- problems
def build_problem(problem_cfg: dict):
    """The problem a workflow names: from the registry, or from the user's file."""
    from pipeline.pde import get_problem

    if problem_cfg["module"]:
        path, _, name = problem_cfg["module"].rpartition(":")
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"problem.module: the file {path!r} does not exist")
        spec = importlib.util.spec_from_file_location(f"user_problem_{file.stem}", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        factory = getattr(module, name, None)
        if not callable(factory):
            raise ConfigError(f"problem.module: {path!r} has no function {name!r}")
        return factory(**problem_cfg["params"])
    try:
        return get_problem(problem_cfg["name"], **problem_cfg["params"])
    except ValueError as err:
        raise ConfigError(f"problem: {err}") from None


def _is_evolution(problem) -> bool:
    from pipeline.pde.evolution import EvolutionProblem

    return isinstance(problem, EvolutionProblem)


def solver_settings(cfg: dict, evolution: bool) -> dict:
    """The solver keyword arguments a workflow sets (unset ones keep the problem's defaults)."""
    sections = {
        "basis": ("width", "activation", "sampler", "weight_scale", "bias_scale", "curvature_scale")
        + (() if evolution else ("active_directions", "active_scale")),
        "collocation": ("n_interior", "n_boundary", "points"),
        "solver": ("rcond", "kappa") + (("relaxation", "boundary") if evolution else ("ridge", "prune")),
        "time": ("method", "windows", "blocks", "rtol", "atol", "adaptive_points") if evolution else (),
    }
    out = {k: cfg[section][k] for section, keys in sections.items() for k in keys if cfg[section][k] is not None}
    if not evolution:
        for key in ("ridge", "prune"):
            if cfg["solver"][key] is not None:
                out[key] = cfg["solver"][key]
        if cfg["compute"]["chunk_rows"]:
            out["chunk_rows"] = cfg["compute"]["chunk_rows"]
        if cfg["compute"]["device"] != "cpu":
            out["device"] = cfg["compute"]["device"]
    else:
        unused = [f"{s}.{k}" for s, k in (("solver", "ridge"), ("solver", "prune"), ("basis", "active_directions"),
                                          ("basis", "active_scale")) if cfg[s][k] is not None]
        if unused:
            raise ConfigError(f"{unused[0]} applies to static problems only; remove it for this time-dependent problem")
    return out


# ----------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Job:
    """What one member's task needs (picklable: the problem is rebuilt from its config)."""

    path: str
    member: Member
    kind: str  # "static", "evolution", "supervised", "hamiltonian" or "lti"
    settings: dict
    points: np.ndarray | None
    times: np.ndarray | None
    width: int
    state_size: int
    quiet: bool
    sv_size: int = 0


def _log(job: Job, message: str) -> None:
    if not job.quiet:
        print(f"  [{job.member.index}] {message}", flush=True)


def _stage_times(timings: dict, stages=STAGES) -> tuple[list, list]:
    return [timings.get(s, (np.nan, np.nan))[0] for s in stages], [timings.get(s, (np.nan, np.nan))[1] for s in stages]


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start):
    return time.perf_counter() - start[0], time.process_time() - start[1]


def _write_diagnostics(job, timings, rel_l2, stages=STAGES):
    """``rel_l2`` and the wall and CPU seconds of each of the store's ``stages``."""
    m = job.member.index
    wall, cpu = _stage_times(timings, stages)
    variables = {"rel_l2": (("member",), [np.nan if rel_l2 is None else rel_l2]),
                 "wall_seconds": (("member", "stage"), [wall]), "cpu_seconds": (("member", "stage"), [cpu])}
    write(job.path, "diagnostics", variables, {"member": slice(m, m + 1), "stage": slice(None)})


def _padded(values, size):
    """``values`` padded with NaN along the first axis to the store's ``size`` (swept widths)."""
    out = np.full((size,) + np.shape(values)[1:], np.nan)
    out[: len(values)] = values
    return out


def _write_basis(job, block, network, rank, singular_values):
    m = job.member.index
    write(job.path, "basis", basis_variables(network.layers[0], job.width),
          {"member": slice(m, m + 1), "block": slice(block, block + 1), "neuron": slice(None), "dim": slice(None)})
    write(job.path, "diagnostics", {"rank": (("member", "block"), [[rank]]),
                                    "singular_values": (("member", "block", "sv"),
                                                        _padded(singular_values, job.sv_size)[None, None])},
          {"member": slice(m, m + 1), "block": slice(block, block + 1), "sv": slice(None)})


def _mark_done(job, window):
    m = job.member.index
    write(job.path, "progress", {"done": (("member", "window"), np.ones((1, 1), dtype="int8"))},
          {"member": slice(m, m + 1), "window": slice(window, window + 1)})


def _stored_network(path, m, block, activation):
    import xarray as xr

    from pipeline.nn import SampledNetwork

    basis = xr.open_zarr(path, group="basis", consolidated=False)
    return SampledNetwork((stored_layer(basis, m, block, activation),))


def _state_from_coefficients(proj, c_end, order):
    """The reduced state of a projection from stored coefficients ``[a | a_t]`` (padded)."""
    width = proj.network.width + 1
    stride = len(c_end) // order
    return np.concatenate([proj.coordinates(c_end[i * stride: i * stride + width]) for i in range(order)])


def run_member(job: Job) -> dict:
    """One member, start to end (or from its first window not yet done); returns its metrics."""
    with inline():
        if job.kind == "supervised":
            return _run_supervised_member(job)
        if job.kind == "hamiltonian":
            from pipeline.system_jobs import run_hamiltonian_member

            return run_hamiltonian_member(job)
        if job.kind == "lti":
            from pipeline.system_jobs import run_lti_member

            return run_lti_member(job)
        problem = build_problem(job.member.config["problem"])
        if job.kind == "static":
            return _run_static_member(job, problem)
        return _run_evolution_member(job, problem)


def _run_static_member(job: Job, problem) -> dict:
    from pipeline.pde import solve_static

    m = job.member.index
    if progress(job.path)[m, 0]:
        _log(job, "already done")
        return {"member": m, "skipped": True}
    start = _clock()
    solution = solve_static(problem, seed=job.member.seed, **job.settings)
    solved = _since(start)
    start = _clock()
    u = np.asarray(solution(job.points))
    write(job.path, "", {"u": (("member", "point"), u[None])}, {"member": slice(m, m + 1), "point": slice(None)})
    # [basis | c0 | enrichments], the basis part padded to the store's width
    width = solution.network.width
    coef = np.concatenate([_padded(solution.coef[:width], job.width), solution.coef[width:]])
    write(job.path, "coefficients", {"c": (("member", "coefficient"), coef[None])},
          {"member": slice(m, m + 1), "coefficient": slice(None)})
    _write_basis(job, 0, solution.network, solution.rank, solution.solution.singular_values)
    rel_l2 = solution.error(job.points) if problem.truth is not None else None
    timings = {"sample": (sum(v for k, v in solution.timings.items() if k.startswith("sample")), np.nan),
               "project": solved, "write": _since(start)}
    _write_diagnostics(job, timings, rel_l2)
    _mark_done(job, 0)
    _log(job, f"solved: rank {solution.rank}" + (f", rel. L2 {rel_l2:.3e}" if rel_l2 is not None else ""))
    return {"member": m, "rel_l2": rel_l2, "rank": solution.rank}


def _run_evolution_member(job: Job, problem) -> dict:
    from pipeline.pde.evolution import Evolution

    m = job.member.index
    ev = Evolution(problem, seed=job.member.seed, **job.settings)
    edges = ev.window_edges()
    done = progress(job.path)[m]
    first = int(np.argmin(done)) if not done.all() else len(done)
    timings = {s: (0.0, 0.0) for s in STAGES}
    if first == len(edges) - 1:
        _log(job, "already done")
        return {"member": m, "skipped": True}
    state, block = None, None
    if first > 0:  # resume: rebuild the block's projection from the stored basis, reload the state
        import xarray as xr

        stored = xr.open_zarr(job.path, group="state", consolidated=False)
        block = int(stored["block"].values[m, first - 1])
        start = _clock()
        proj = ev.projection(block, network=_stored_network(job.path, m, block, ev.activation))
        timings["project"] = _since(start)
        if proj.fingerprint() == int(stored["fingerprint"].values[m, first - 1]):
            state = stored["y"].values[m, first - 1][: proj.rank * problem.time_order]  # bitwise continuation
        else:  # another numerical environment (BLAS threads, machine): continue from the coefficients
            state = _state_from_coefficients(proj, stored["c_end"].values[m, first - 1], problem.time_order)
            _log(job, "the rebuilt projection differs in rounding; continuing from the stored coefficients")
        _log(job, f"resuming at window {first + 1}/{len(edges) - 1} (block {block})")
    written_blocks = set()
    for index, win, owned in ev.march(job.times, job.points, start=first, state=state, block=block):
        start = _clock()
        if win.block not in written_blocks:
            proj = ev.projections[win.block]
            _write_basis(job, win.block, proj.network, proj.rank, proj.singular_values)
            written_blocks.add(win.block)
        if len(owned):
            region = {"member": slice(m, m + 1), "time": slice(int(owned[0]), int(owned[-1]) + 1)}
            write(job.path, "", {"u": (("member", "time", "point"), win.fields[None])}, {**region, "point": slice(None)})
            width = ev.projections[win.block].network.width
            coefs = np.concatenate([_padded(win.coefficients[:, :width].T, job.width).T, win.coefficients[:, width:]], axis=1)
            write(job.path, "coefficients", {"c": (("member", "time", "coefficient"), coefs[None])},
                  {**region, "coefficient": slice(None)})
        y = np.full(job.state_size, np.nan)
        y[: len(win.states[-1])] = win.states[-1]
        err2 = ref2 = np.nan
        if problem.truth is not None and len(owned):
            ref = np.stack([np.asarray(problem.truth(job.points, t)) for t in job.times[owned]])
            err2, ref2 = float(np.sum((win.fields - ref) ** 2)), float(np.sum(ref**2))
        proj = ev.projections[win.block]
        c_end = np.full(job.state_size, np.nan)
        ends = [proj.coefficient_map @ win.states[-1][i * proj.rank:(i + 1) * proj.rank]
                for i in range(problem.time_order)]
        for i, c in enumerate(ends):
            c_end[i * (job.width + 1): i * (job.width + 1) + len(c)] = c
        write(job.path, "state", {"y": (("member", "window", "state"), y[None, None]),
                                  "c_end": (("member", "window", "state"), c_end[None, None]),
                                  "fingerprint": (("member", "window"), [[proj.fingerprint()]]),
                                  "rank": (("member", "window"), [[ev.projections[win.block].rank]]),
                                  "block": (("member", "window"), [[win.block]]),
                                  "error_squared": (("member", "window"), [[err2]]),
                                  "reference_squared": (("member", "window"), [[ref2]])},
              {"member": slice(m, m + 1), "window": slice(index, index + 1), "state": slice(None)})
        _mark_done(job, index)
        w, c = _since(start)
        timings["write"] = (timings["write"][0] + w, timings["write"][1] + c)
        timings["integrate"] = (timings["integrate"][0] + win.stats["seconds"], np.nan)
        _log(job, f"window {index + 1}/{len(edges) - 1} t = {win.t1:.4g} ({win.stats['seconds']:.2f} s)")
    timings["project"] = (sum(v for k, v in ev.timings.items() if k.startswith("projection")), np.nan)
    import xarray as xr

    rel_l2 = None
    if problem.truth is not None:
        sums = xr.open_zarr(job.path, group="state", consolidated=False)
        rel_l2 = float(np.sqrt(np.nansum(sums["error_squared"].values[m]) / np.nansum(sums["reference_squared"].values[m])))
    _write_diagnostics(job, timings, rel_l2)
    ranks = [p.rank for p in ev.projections.values()]
    return {"member": m, "rel_l2": rel_l2, "rank": ranks}


def _run_supervised_member(job: Job) -> dict:
    from pipeline.datasets import workflow_data
    from pipeline.models import SampledNetworkClassifier, SampledNetworkRegressor

    m = job.member.index
    if progress(job.path)[m, 0]:
        return {"member": m, "skipped": True}
    cfg = job.member.config
    model = cfg["model"]
    x, y, _, y_test, task = workflow_data(cfg["data"])
    cls = SampledNetworkRegressor if task == "regression" else SampledNetworkClassifier
    widths = model["hidden_layer_sizes"]
    estimator = cls(hidden_layer_sizes=tuple(widths) if isinstance(widths, list) else widths,
                    activation=cfg["basis"]["activation"] or "tanh", sampler=cfg["basis"]["sampler"] or "swim",
                    rcond=model["rcond"], ridge=model["ridge"], prune=model["prune"], pool_size=model["pool_size"],
                    random_state=job.member.seed, chunk_rows=cfg["compute"]["chunk_rows"])
    start = _clock()
    estimator.fit(x, y)
    fitted = _since(start)
    start = _clock()
    pred = np.asarray(estimator.predict(job.points), dtype=float)
    if task == "regression":
        score = float(np.linalg.norm(pred - y_test) / np.linalg.norm(y_test))
        metric = "rel_l2"
    else:
        pred = np.searchsorted(estimator.classes_, pred).astype(float)
        score = float(np.mean(estimator.classes_[pred.astype(int)] == y_test))
        metric = "accuracy"
    write(job.path, "", {"u": (("member", "point"), pred[None])}, {"member": slice(m, m + 1), "point": slice(None)})
    network = estimator.networks_[0]
    if len(network.layers) == 1:  # one hidden layer: the store can rebuild the network
        c = estimator.coef_[0][:, 0]
        coef = np.concatenate([_padded(c[:-1], job.width), c[-1:]])
        write(job.path, "coefficients", {"c": (("member", "coefficient"), coef[None])},
              {"member": slice(m, m + 1), "coefficient": slice(None)})
        _write_basis(job, 0, network, int(estimator.rank_[0]), estimator.singular_values_[0])
    _write_diagnostics(job, {"project": fitted, "write": _since(start)}, score if metric == "rel_l2" else None)
    _mark_done(job, 0)
    _log(job, f"fitted: {metric} {score:.3e}")
    return {"member": m, metric: score, "rank": int(estimator.rank_[0])}


def replay_member(result, m: int, points: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``u`` of member ``m`` of a stored time-dependent run at ``(points[i], times[i])``.

    The member's evolution is rebuilt from the stored workflow and basis; each requested time
    is reached by integrating from the state stored at the start of its window (taken from
    the stored coefficients, so rounding differences of the rebuilt projection do not matter).
    """
    from pipeline.config import validate
    from pipeline.pde.evolution import Evolution

    workflow = yaml.safe_load(result.workflow)
    member = expand_members(validate(workflow), workflow)[m]
    problem = build_problem(member.config["problem"])
    ev = Evolution(problem, seed=member.seed, **solver_settings(member.config, True))
    t0, t1 = problem.t_span
    if np.any(times < t0) or np.any(times > t1):
        raise ValueError(f"times must lie in the run's span [{t0}, {t1}]")
    state_ds = result.tree["state"].to_dataset()
    edges = ev.window_edges()
    out = np.empty(len(points))
    for t in np.unique(times):
        at = times == t
        w = int(min(np.searchsorted(edges, t, side="right") - 1, len(edges) - 2))
        if w == 0:
            block, state = 0, ev.initial_state(0)
        else:
            block = int(state_ds["block"].values[m, w - 1])
            proj = ev.projection(block, network=_stored_network(result.path, m, block, ev.activation))
            state = _state_from_coefficients(proj, state_ds["c_end"].values[m, w - 1], problem.time_order)
            new_block = ev.block_of(edges[w])
            if new_block != block:  # the window opens the next block: carry the state over to it
                stored = _stored_network(result.path, m, new_block, ev.activation)
                state, block = ev.carry_over(block, state, new_block, network=stored), new_block
        if t == edges[w]:
            proj = ev.projections[block]
            out[at] = proj.evaluator(points[at]) @ state[: proj.rank]
            continue
        win = ev.window(block, state, float(edges[w]), float(t), None, points[at])
        out[at] = win.fields[-1]
    return out


# ----------------------------------------------------------------------------- driver
def _workflow_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare(cfg: dict, raw: dict, *, output: str | None, quiet: bool):
    """Members, jobs and the store layout, with every input checked before any work."""
    kind = workflow_kind(cfg)
    members = expand_members(cfg, raw)
    path = output or cfg["output"]["path"]
    if not path:
        raise ConfigError("output.path is not set: give it in the workflow or with --output")
    if kind == "hamiltonian":
        from pipeline.system_jobs import hamiltonian_layout, hamiltonian_settings

        layout, test, info = hamiltonian_layout(cfg, members)
        layout.sweep, layout.sweep_point = _sweep_coords(cfg, members), _sweep_points(members)
        jobs = [Job(path, mem, kind, hamiltonian_settings(mem.config), test, None, layout.width, layout.state, quiet,
                    layout.singular_values) for mem in members]
        return kind, members, jobs, layout, path, info
    if kind == "lti":
        from pipeline.system_jobs import lti_layout

        layout, times, info = lti_layout(cfg, members)
        layout.sweep, layout.sweep_point = _sweep_coords(cfg, members), _sweep_points(members)
        jobs = [Job(path, mem, kind, {}, None, times, 0, 0, quiet) for mem in members]
        return kind, members, jobs, layout, path, info
    if kind == "supervised":
        from pipeline.datasets import workflow_data

        for mem in members:
            if mem.config["data"] != members[0].config["data"]:
                raise ConfigError("sweeping the data section is not supported: members must share their test set")
        try:
            _, _, x_test, y_test, task = workflow_data(cfg["data"])
        except ValueError as err:
            raise ConfigError(str(err)) from None
        last = [m.config["model"]["hidden_layer_sizes"] for m in members]
        width = max(w[-1] if isinstance(w, list) else w for w in last)
        layout = Layout("supervised", len(members), x_test, None, width + 1, width, x_test.shape[1],
                        state=width + 1, singular_values=width + 1, dtype=cfg["output"]["dtype"],
                        sweep_point=_sweep_points(members),
                        u_exact=np.tile(y_test.astype(float), (len(members), 1)) if task == "regression" else None)
        jobs = [Job(path, mem, "supervised", {}, x_test, None, width, width + 1, quiet, width + 1) for mem in members]
        return kind, members, jobs, layout, path, {"problem": cfg["data"]["function"] or cfg["data"]["path"], "task": task}
    problems = [build_problem(mem.config["problem"]) for mem in members]
    evolution = _is_evolution(problems[0])
    if any(_is_evolution(p) != evolution for p in problems):
        raise ConfigError("all members must be static or all time-dependent")
    settings = [solver_settings(mem.config, evolution) for mem in members]
    first = problems[0]
    if evolution:
        from pipeline.pde.evolution import Evolution

        evs = [Evolution(p, seed=mem.seed, **s) for p, mem, s in zip(problems, members, settings)]  # validates
        points, grid_times = first.evaluation_grid()
        n_out = cfg["time"]["outputs"]
        times = np.linspace(*first.t_span, n_out) if n_out else grid_times
        windows = max(len(ev.window_edges()) - 1 for ev in evs)
        width = max(ev.settings["width"] for ev in evs)
        state = (width + 1) * first.time_order
        u_exact = np.stack([np.stack([np.asarray(p.truth(points, t)) for t in times]) for p in problems]) \
            if first.truth is not None else None
        blocks = max(ev.settings["blocks"] for ev in evs)
        n_coef = width + 1
    else:
        from pipeline.pde.static import resolve_settings

        resolved = [resolve_settings(p, s) for p, s in zip(problems, settings)]  # validates
        points, times, windows, blocks = first.evaluation_points(), None, 1, 1
        width = max(r["width"] for r in resolved)
        n_coef = width + 1 + len(first.enrichments)
        state = n_coef
        u_exact = np.stack([np.asarray(p.truth(points)) for p in problems]) if first.truth is not None else None
    for p in problems[1:]:
        other = p.evaluation_grid() if evolution else (p.evaluation_points(), None)
        if other[0].shape != points.shape or not np.allclose(other[0], points) or (
                evolution and cfg["time"]["outputs"] is None and not np.allclose(other[1], times)):
            raise ConfigError("the swept parameters change the output grid (points or times); sweep other keys, "
                              "or set time.outputs")
    sweep_coords = _sweep_coords(cfg, members)
    layout = Layout("evolution" if evolution else "static", len(members), points, times, n_coef, width,
                    first.domain.dim, blocks=blocks, windows=windows, state=state, singular_values=n_coef,
                    dtype=cfg["output"]["dtype"], sweep=sweep_coords, sweep_point=_sweep_points(members),
                    u_exact=u_exact)
    kind = layout.kind
    jobs = [Job(path, mem, kind, s, points, times, width, state, quiet, n_coef) for mem, s in zip(members, settings)]
    info = {"problem": first.name, "params": json.dumps(first.params, default=str), "has_truth": first.truth is not None}
    return kind, members, jobs, layout, path, info


def _sweep_coords(cfg, members) -> dict:
    """Coordinates ``sweep:<key>`` along ``member``: each member's swept values (null: NaN)."""
    coords = {}
    for key in cfg["ensemble"]["sweep"]:
        values = [mem.sweep[key] for mem in members]
        if any(v is None for v in values):
            values = [np.nan if v is None else v for v in values]
        coords[f"sweep:{key}"] = values
    return coords


def _sweep_points(members) -> np.ndarray:
    """Index of each member's sweep point (its replicates share it)."""
    keys = [json.dumps(m.sweep, sort_keys=True, default=str) for m in members]
    order = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return np.array([order[k] for k in keys])


def run_workflow(cfg: dict, raw: dict, *, output=None, overwrite=False, resume=False, scheduler=None, workers=None,
                 quiet=False, log=print) -> dict:
    """Run a workflow into its store; returns the metrics (also stored in the root attributes)."""
    import dask

    if overwrite and resume:
        raise ConfigError("--overwrite and --resume exclude each other")
    kind, members, jobs, layout, path, info = prepare(cfg, raw, output=output, quiet=quiet)
    digest = _workflow_hash(cfg)
    if resume:
        if not Path(path).exists():
            raise ConfigError(f"--resume: there is no store at {path!r} to resume")
        attrs = read_attrs(path)
        if attrs.get("workflow_hash") != digest:
            raise ConfigError(f"--resume: the store at {path!r} was written by another workflow "
                              "(its settings differ); use a new --output or --overwrite")
    else:
        attrs = {"workflow": yaml.safe_dump(cfg, sort_keys=False), "workflow_hash": digest, "version": __version__,
                 "kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seed": cfg["basis"]["seed"],
                 "members": len(members), "activation": _activation_name(cfg, jobs), **info}
        try:
            create_store(path, layout, attrs, overwrite=overwrite)
        except StoreExists as err:
            raise ConfigError(str(err)) from None
    if kind == "evolution":
        _record_block_edges(path, jobs[0])
    log(f"{len(members)} member(s) of {info['problem']} ({kind}) -> {path}")
    start = _clock()
    with connect(cfg["compute"], scheduler=scheduler, workers=workers) as client:
        tasks = [dask.delayed(run_member, pure=False)(job) for job in jobs]
        if client is not None:
            futures = client.compute(tasks)
            results = client.gather(futures)
        else:
            results = list(dask.compute(*tasks))
    total = _since(start)
    metrics = _metrics(path, kind, results, info, total)
    finalize(path, metrics)
    return metrics


def _activation_name(cfg, jobs) -> str:
    if cfg["basis"]["activation"]:
        return cfg["basis"]["activation"]
    if jobs[0].kind in ("supervised", "hamiltonian"):
        return "tanh"
    if jobs[0].kind == "lti":
        return "none"
    problem = build_problem(cfg["problem"])
    return problem.defaults.get("activation", "tanh")


def _record_block_edges(path, job):
    import zarr

    from pipeline.pde.evolution import Evolution

    ev = Evolution(build_problem(job.member.config["problem"]), seed=job.member.seed, **job.settings)
    zarr.open_group(str(path), mode="r+")["state"].attrs["block_edges"] = json.dumps(ev.block_edges.tolist())


def _metrics(path, kind, results, info, total) -> dict:
    import xarray as xr

    members = [r for r in results]
    out = {"kind": kind, "members": len(members), "wall_seconds": total[0], "cpu_seconds_client": total[1]}
    diag = xr.open_zarr(path, group="diagnostics", consolidated=False)
    rel = diag["rel_l2"].values
    out["per_member"] = [{"member": i, "rel_l2": None if np.isnan(rel[i]) else float(rel[i]),
                          "wall_seconds": dict(zip(diag["stage"].values.tolist(),
                                                   [None if np.isnan(v) else float(v) for v in diag["wall_seconds"].values[i]])),
                          "cpu_seconds": dict(zip(diag["stage"].values.tolist(),
                                                  [None if np.isnan(v) else float(v) for v in diag["cpu_seconds"].values[i]]))}
                         for i in range(len(rel))]
    for r in results:
        for key in ("accuracy", "energy_drift", "energy_drift_exact", "error_estimate", "method", "simulate_seconds", "reference_seconds"):
            if key in r:
                out["per_member"][r["member"]][key] = r[key]
    drifts = [r["energy_drift"] for r in results if "energy_drift" in r]
    if drifts:
        out["energy_drift_max"] = float(np.max(drifts))
        out["energy_drift_exact_max"] = float(np.max([r["energy_drift_exact"] for r in results]))
    estimates = [r["error_estimate"] for r in results if "error_estimate" in r]
    if estimates:
        out["error_estimate_max"] = float(np.max(estimates))
    pairs = [(r["reference_seconds"], r["simulate_seconds"]) for r in results
             if np.isfinite(r.get("reference_seconds", np.nan))]
    if pairs:
        out["speedup_vs_lsim_min"] = float(min(a / b for a, b in pairs))
    root = xr.open_zarr(path, consolidated=False)
    if "u_exact" in root and np.isfinite(rel).any():
        u = root["u"].astype("float64")
        ref = root["u_exact"].astype("float64")
        groups = root["sweep_point"].values
        mean_err, spreads, errors = [], [], []
        for g in np.unique(groups):
            members_g = np.flatnonzero(groups == g)
            mean = u.isel(member=members_g).mean("member")
            ref_g = ref.isel(member=members_g[0])
            mean_err.append(float(np.sqrt(((mean - ref_g) ** 2).sum()) / np.sqrt((ref_g**2).sum())))
            if len(members_g) > 1:
                spreads.append(u.isel(member=members_g).std("member", ddof=1).values.ravel())
                errors.append(np.abs(mean - ref_g).values.ravel())
        if all((groups == g).sum() == 1 for g in np.unique(groups)):
            mean_err = [float(rel[np.flatnonzero(groups == g)[0]]) for g in np.unique(groups)]  # float64, exact
        out["rel_l2"] = float(np.max(mean_err))
        out["rel_l2_per_sweep_point"] = mean_err
        out["rel_l2_members_mean"] = float(np.nanmean(rel))
        if spreads:
            spread, err = np.concatenate(spreads), np.concatenate(errors)
            out["spread_rms"] = float(np.sqrt(np.mean(spread**2)))
            out["error_rms"] = float(np.sqrt(np.mean(err**2)))
            out["spread_error_correlation"] = float(np.corrcoef(spread, err)[0, 1])
    accuracies = [r["accuracy"] for r in results if "accuracy" in r]
    if accuracies:
        out["accuracy_members_mean"] = float(np.mean(accuracies))
    return out
