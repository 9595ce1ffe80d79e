"""Losing a worker or the scheduler mid-run: a killed worker is survived with results — fields and
metrics — bitwise equal to an undisturbed run; a lost scheduler ends the client with one line,
the surviving workers stop writing, and ``--resume`` on a new cluster completes the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import assert_stores_equal

from pipeline import open_result
from pipeline.config import load_workflow
from pipeline.store import progress
from pipeline.workflows import run_workflow

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.cluster


def _workflow(tmp_path: Path) -> Path:
    """Burgers, 2 members × 20 windows: long enough (several seconds a member) to be hit mid-run
    (at 10 windows of width 200 both members could finish before the scheduler's kill took hold)."""
    cfg = {"version": 1, "problem": {"name": "burgers"}, "time": {"windows": 20, "outputs": 41},
           "basis": {"width": 400}, "collocation": {"n_interior": 1200}, "ensemble": {"members": 2},
           "compute": {"dashboard": False, "timeout": 5}}
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _untimed(metrics: dict) -> dict:
    """The metrics without wall and CPU seconds, which differ between any two runs."""
    out = {k: v for k, v in metrics.items() if k not in ("wall_seconds", "cpu_seconds_client")}
    out["per_member"] = [{k: v for k, v in m.items() if k not in ("wall_seconds", "cpu_seconds")}
                         for m in metrics["per_member"]]
    return out


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)  # polling interval; the deadline bounds the wait
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _partly_done(store: Path):
    try:
        done = progress(store)
    except Exception:  # noqa: BLE001 - the template may not exist yet
        return None
    return done if 2 <= done.sum() < done.size - 4 else None


def test_a_killed_worker_is_survived_with_fields_and_metrics_bitwise_equal(tmp_path):
    from distributed import Client, LocalCluster

    cfg, raw = load_workflow(_workflow(tmp_path))
    reference, disturbed = tmp_path / "reference.zarr", tmp_path / "disturbed.zarr"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        expected = run_workflow(cfg, raw, output=str(reference), scheduler=cluster.scheduler_address, quiet=True,
                                log=lambda *a, **k: None)
        box: dict = {}

        def run():
            try:
                box["metrics"] = run_workflow(cfg, raw, output=str(disturbed), scheduler=cluster.scheduler_address,
                                              quiet=True, log=lambda *a, **k: None)
            except BaseException as err:  # noqa: BLE001 - re-raised below
                box["error"] = err

        thread = threading.Thread(target=run)
        thread.start()
        _wait_for(lambda: _partly_done(disturbed) is not None, 300, "a few finished windows")
        busy = [w for w, tasks in client.processing().items() if tasks]
        pids = client.run(os.getpid, workers=busy[:1])
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # the nanny starts a new worker; Dask reruns the task
        thread.join(600)
        assert not thread.is_alive() and "error" not in box, box.get("error")
        assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2
    assert progress(disturbed).all()
    assert assert_stores_equal(reference, disturbed) > 20
    assert _untimed(box["metrics"]) == _untimed(expected)
    assert _untimed(open_result(disturbed).metrics) == _untimed(open_result(reference).metrics)


def _start(args, log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=log.parent,
                            start_new_session=True)


def _cluster(tmp_path: Path, name: str) -> tuple[str, list]:
    scheduler_file = tmp_path / f"{name}.json"
    procs = [_start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file),
                     "--host", "127.0.0.1", "--port", "0", "--no-dashboard"], tmp_path / f"{name}-scheduler.log")]
    _wait_for(scheduler_file.exists, 60, "the scheduler file")
    address = json.loads(scheduler_file.read_text())["address"]
    procs.append(_start([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
                         "--nthreads", "1", "--no-dashboard"], tmp_path / f"{name}-workers.log"))
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    return address, procs


def _stop(procs) -> None:
    for p in procs[::-1]:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_a_lost_scheduler_is_one_line_workers_stop_writing_and_resume_completes(tmp_path):
    workflow = _workflow(tmp_path)
    reference, store = tmp_path / "reference.zarr", tmp_path / "lost.zarr"
    address, procs = _cluster(tmp_path, "first")
    try:
        client = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", str(workflow), "--output", str(store),
                                   "--scheduler", address, "--quiet"], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        _wait_for(lambda: _partly_done(store) is not None, 300, "a few finished windows")
        os.killpg(procs[0].pid, signal.SIGKILL)  # the scheduler, hard
        out, err = client.communicate(timeout=120)
        assert client.returncode == 2, (out, err)
        assert err.count("\n") == 1 and "lost the Dask scheduler" in err and "--resume" in err, err
        time.sleep(2)  # a window being computed when the lock was released is dropped at its first write
        snapshot = progress(store).copy()
        time.sleep(8)  # the workers outlive the client: they must not write any more
        assert (progress(store) == snapshot).all(), "workers kept writing after their run gave up"
        assert 0 < snapshot.sum() < snapshot.size
    finally:
        _stop(procs)
    address, procs = _cluster(tmp_path, "second")
    try:
        for target, extra in ((store, ["--resume"]), (reference, [])):
            done = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(workflow), "--output", str(target),
                                   "--scheduler", address, "--quiet", *extra], cwd=ROOT, capture_output=True,
                                  text=True, timeout=600)
            assert done.returncode == 0, done.stderr
    finally:
        _stop(procs)
    assert progress(store).all()
    assert assert_stores_equal(reference, store) > 20
    assert _untimed(open_result(store).metrics)["per_member"] == _untimed(open_result(reference).metrics)["per_member"]
