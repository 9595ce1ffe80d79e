"""Running a workflow: members as independent Dask tasks writing one zarr store.

Generic over the workflow kinds (:mod:`pipeline.workflows.registry`): the kind plans the run
(typed settings per member, the store's variables); this module checks that every key set
takes effect, creates or resumes the store, runs one task per member on the chosen
scheduler, shows progress, and computes the metrics (docs/design.md
§5.1).  Only small metrics travel back to the client.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time

import yaml

from pipeline._version import __version__
from pipeline.cluster import connect, exclusive, inline, on_cluster, resolve_scheduler, single_blas_thread
from pipeline.clusters import check_cluster
from pipeline.config import ConfigError
from pipeline.ensemble import expand_members
from pipeline.locks import acquire
from pipeline.store import check_location
from pipeline.workflows.base import MemberTask, Plan, WorkflowKind, check_keys
from pipeline.workflows.limits import check_resolved_width, check_sizes
from pipeline.workflows.metrics import add_ensemble_variables, finalize, run_metrics
from pipeline.workflows.output import check_target, discard_if_empty, open_store
from pipeline.workflows.progress import Progress
from pipeline.workflows.registry import get_kind, kind_for, kinds

__all__ = ["prepare", "run_member", "run_workflow", "split_members"]


def run_member(task: MemberTask) -> dict:
    """One member, start to end (or from its first window not yet done); returns its metrics.

    A split member's own graphs use the whole machine or cluster: on a distributed cluster its
    task secedes from its worker's thread pool (``worker_client``) while the sampling,
    assembly and TSQR tasks it submits run on every worker; on the threaded scheduler they run
    on a thread pool of their own. Any other member's graphs run synchronously in its task.
    """
    if task.split and _on_a_worker():
        from distributed import worker_client

        with worker_client() as client, on_cluster(client):
            return get_kind(task.kind).run(task)
    if task.split:  # threaded scheduler: nested graphs get their own pool, large factors every core
        with exclusive():
            return get_kind(task.kind).run(task)
    with inline():
        return get_kind(task.kind).run(task)


def _on_a_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
        return True
    except (ImportError, ValueError):
        return False


def split_members(kind: WorkflowKind, tasks: list, client, setting, scheduler: str | None = None) -> list:
    """The tasks, marked ``split`` where a member's graphs should use the whole cluster.

    ``auto``: on a distributed cluster of two or more workers, when there are fewer members
    than workers (the rest of the cluster would idle) or a member's design matrix, if it were
    formed, exceeds a quarter of a worker's memory limit; on the threaded scheduler, when
    there are fewer members than cores; ``true`` / ``false`` force it.
    """
    if not kind.splittable or setting is False or (client is None and scheduler != "threads"):
        return tasks
    if setting != "auto":
        split = [True] * len(tasks)
    elif client is None:
        split = [len(tasks) < (os.cpu_count() or 1)] * len(tasks)
    else:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        if len(workers) < 2:
            return tasks
        limit = min((w.get("memory_limit") or float("inf")) for w in workers)
        split = [len(tasks) < len(workers) or t.assembly_bytes > limit / 4 for t in tasks]
    return [dataclasses.replace(t, split=s) for t, s in zip(tasks, split)]


def workflow_hash(cfg: dict) -> str:
    """What decides the results: everything but where they are computed (``compute``), so a
    run may be resumed on another cluster."""
    decisive = {k: v for k, v in cfg.items() if k != "compute"}
    return hashlib.sha256(json.dumps(decisive, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare(cfg: dict, raw: dict, *, output: str | None, quiet: bool = True) -> tuple[WorkflowKind, Plan]:
    """The kind and plan of a validated workflow, every input checked before any work."""
    path = output or cfg["output"]["path"]
    if not path:
        raise ConfigError("output.path is not set: give it in the workflow or with --output")
    for location in {cfg["output"]["path"], path} - {None}:  # credentials in a URL, a missing s3fs: before any work
        check_location(location)
    check_sizes(cfg)  # before the problem is built: a size that cannot fit is refused at once
    kind = kind_for(cfg)
    check_keys(raw, kind, kinds())
    members, grid = expand_members(cfg, raw)
    plan = kind.plan(cfg, members, grid, str(path), quiet)
    check_resolved_width(cfg, plan.info.get("settings"))  # a width from the problem's defaults
    add_ensemble_variables(plan.spec)
    if "settings" not in plan.info and dataclasses.is_dataclass(plan.tasks[0].settings):
        plan.info["settings"] = json.dumps(dataclasses.asdict(plan.tasks[0].settings), default=str)
    plan.spec.attrs.update({
        "workflow": yaml.safe_dump(cfg, sort_keys=False), "workflow_hash": workflow_hash(cfg), "version": __version__,
        "kind": kind.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seed": cfg["basis"]["seed"],
        "members": len(members), "member_dims": list(grid.dims), "Conventions": "CF-1.10",
        "title": f"{plan.info.get('problem', kind.name)} ({kind.label})",
        "source": f"swim-pipeline {__version__}", **plan.info})
    return kind, plan


class SchedulerLost(ConnectionError):
    """The client lost its Dask scheduler in the middle of a run."""


def _lost(client) -> SchedulerLost:
    return SchedulerLost(f"lost the Dask scheduler {client.scheduler.address} (the client is {client.status}); "
                         "every finished window is in the store: once the scheduler is back, run again with --resume")


def _compute(client, tasks, progress: Progress, timeout: float = 10.0) -> list:
    """Run the member tasks, polling the store for progress until they finish.

    A client that loses its scheduler for ``timeout`` seconds (``compute.timeout``) gives up
    with :class:`SchedulerLost`; the store keeps every finished window for ``--resume``.
    """
    import dask

    graph = [dask.delayed(run_member, pure=False)(t) for t in tasks]
    if client is not None:
        from distributed import wait

        futures = client.compute(graph)
        since = None
        while not all(f.done() for f in futures):
            try:  # returns the moment the last member ends (a plain sleep lost up to its length per run)
                wait(futures, timeout=0.5)
            except TimeoutError:
                pass
            except Exception:  # noqa: BLE001 - futures cancelled by a lost scheduler: told apart below
                time.sleep(0.5)
            progress.poll()
            if client.status == "running":
                since = None
                continue
            since = since or time.monotonic()
            if client.status in ("closing", "closed", "failed") or time.monotonic() - since > timeout:
                raise _lost(client)
        try:
            return client.gather(futures)
        except Exception as err:  # the futures of a lost scheduler end cancelled
            if client.status != "running" or "connection-lost" in str(err):
                raise _lost(client) from None
            raise
    box: dict = {}

    def work():
        try:  # one BLAS thread: the members are the parallelism (docs/design.md §7)
            with single_blas_thread():
                box["results"] = list(dask.compute(*graph))
        except BaseException as err:  # noqa: BLE001 - re-raised in the calling thread
            box["error"] = err

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
        progress.poll()
    if "error" in box:
        raise box["error"]
    return box["results"]


def run_workflow(cfg: dict, raw: dict, *, output=None, overwrite=False, resume=False, scheduler=None, workers=None,
                 quiet=False, log=print) -> dict:
    """Run a workflow into its store; returns the metrics (also stored in the root attributes).

    Every check comes first: the settings, what is at the output path, the cluster (reached,
    with workers); only then is the store's lock taken and the store created, replaced or
    resumed, so a refused run leaves nothing behind (docs/design.md §5.1).
    """
    check_cluster(cfg["compute"], scheduler)
    kind, plan = prepare(cfg, raw, output=output, quiet=quiet)
    path = plan.tasks[0].path
    check_target(path, plan, overwrite=overwrite, resume=resume)
    start = time.perf_counter(), time.process_time()
    with connect(cfg["compute"], scheduler=scheduler, workers=workers) as client, acquire(path) as lock:
        open_store(path, plan, overwrite=overwrite, resume=resume, log=log)
        log(f"{len(plan.tasks)} member(s) of {plan.info.get('problem', '')} ({kind.label}) -> {path}")
        link = getattr(client, "dashboard_link", None) if client is not None else None
        if link and cfg["compute"]["dashboard"]:
            log(f"dashboard: {link}")
        tasks = [dataclasses.replace(t, run=lock.run) for t in plan.tasks]
        tasks = split_members(kind, tasks, client, cfg["compute"]["split_members"],
                              resolve_scheduler(cfg["compute"]["scheduler"], scheduler, cfg["compute"]["cluster"]))
        if any(t.split for t in tasks) and client is not None:
            log(f"{sum(t.split for t in tasks)} member(s) split over the cluster's workers")
        progress = Progress(path, tasks, quiet=quiet)
        try:
            results = _compute(client, tasks, progress, cfg["compute"]["timeout"])
        except Exception as err:
            if not resume:
                discard_if_empty(path, err)
            raise
        finally:
            progress.close()
        seconds = time.perf_counter() - start[0], time.process_time() - start[1]
        metrics = {"kind": kind.name,
                   **run_metrics(path, plan.tasks[0].grid.dims, results, kind.summary(results), seconds)}
        finalize(path, metrics)
    return metrics
