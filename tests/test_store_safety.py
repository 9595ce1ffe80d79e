"""A store is touched only by the run holding its lock, only after every runtime check, and
never runs code: the lock, the store marker, creation order, half-created stores, a scheduler
without workers, and a store whose recorded module path was edited."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_stores_equal

from pipeline import open_result
from pipeline.cli import main
from pipeline.locks import LOCK_NAME, RunAbandoned, StoreLocked, acquire, check_owner
from pipeline.store import read_attrs, write_attrs

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "workflows" / "quickstart.yaml"
FAST = ["--set", "compute.scheduler=synchronous", "--set", "time.windows=2", "--set", "ensemble.members=1",
        "--quiet"]


def _run(store, *extra, workflow=QUICKSTART) -> int:
    return main(["run", str(workflow), "--output", str(store), *FAST, *extra])


def _hold_lock(store: Path) -> subprocess.Popen:
    """Another process holding the store's lock until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pipeline.locks import acquire
        acquire({str(store)!r}); print("held", flush=True); time.sleep(600)""")],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_run_on_a_locked_store_is_refused_and_a_killed_holder_is_stale(tmp_path, capsys):
    store = tmp_path / "run.zarr"
    holder = _hold_lock(store)
    try:
        for extra in ((), ("--overwrite",), ("--resume",)):
            assert _run(store, *extra) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and ("in use by another run" in err or "no store" in err), err
        assert sorted(p.name for p in store.iterdir()) == [LOCK_NAME]  # nothing written beside the lock
    finally:
        holder.kill()
        holder.wait()
    assert _run(store) == 0  # the holder is gone: its lock is stale and taken over
    assert not (store / LOCK_NAME).exists()  # released at the end
    assert open_result(store).metrics["rel_l2"] < 1e-6


def test_the_lock_names_its_run_and_tasks_of_a_released_run_stop_writing(tmp_path):
    store = tmp_path / "s.zarr"
    with acquire(store) as lock:
        check_owner(store, lock.run)
        with pytest.raises(StoreLocked, match="in use by another run"):
            # same process, another run: a live holder (this pid) is never taken over
            acquire(store)
        record = json.loads((store / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid() and record["run"] == lock.run
    with pytest.raises(RunAbandoned, match="no longer holds"):
        check_owner(store, lock.run)
    assert not store.exists()  # the lock made the directory; nothing else was written, so it is gone


def test_overwrite_and_resume_touch_only_stores_this_tool_wrote(tmp_path, capsys):
    mine = tmp_path / "user"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    for flag in ("--overwrite", "--resume"):
        assert _run(mine, flag) == 2
        assert "not a store written by swim-pipeline" in capsys.readouterr().err
    assert (mine / "thesis.tex").read_text() == "years of work" and len(list(mine.iterdir())) == 1


def test_a_store_killed_while_being_created_is_resumed(tmp_path, capsys):
    store, reference = tmp_path / "half.zarr", tmp_path / "ref.zarr"
    assert _run(reference) == 0
    assert _run(store) == 0
    # what a kill during creation leaves: the root written, state "creating", groups missing
    write_attrs(store, {"store_state": "creating"})
    for group in ("state", "trajectory", "progress"):
        import shutil

        shutil.rmtree(store / group)
    assert _run(store) == 2 and "--resume" in capsys.readouterr().err  # a plain rerun says what to do
    assert _run(store, "--resume") == 0
    assert read_attrs(store)["store_state"] == "complete"
    assert_stores_equal(reference, store)


def test_an_unreachable_scheduler_or_one_without_workers_leaves_no_store(tmp_path, capsys):
    store = tmp_path / "never.zarr"
    unreachable = ["--set", "compute.scheduler=tcp://127.0.0.1:9", "--set", "compute.timeout=2"]
    assert main(["run", str(QUICKSTART), "--output", str(store), "--quiet", *unreachable]) == 2
    assert "could not reach" in capsys.readouterr().err and not store.exists()

    scheduler_file = tmp_path / "scheduler.json"
    proc = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file",
                             str(scheduler_file), "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        start = time.monotonic()
        code = main(["run", str(QUICKSTART), "--output", str(store), "--quiet", "--scheduler", address,
                     "--set", "compute.timeout=2"])
        err = capsys.readouterr().err
        assert code == 2 and "has no workers" in err and err.count("\n") == 1, err
        assert time.monotonic() - start < 60  # it gave up (compute.timeout), it did not wait forever
        assert not store.exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


USER_MODULE = '''
import numpy as np
from pipeline.pde import get_problem


def problem(beta=2.0):
    return get_problem("advection", beta=beta)
'''

EVIL_MODULE = '''
from pathlib import Path
Path(__file__).with_name("ran").write_text("the store ran this file")


def problem(beta=2.0):
    raise SystemExit("never")
'''


def test_evaluate_never_runs_the_module_path_recorded_in_a_store(tmp_path):
    (tmp_path / "mine.py").write_text(USER_MODULE)
    (tmp_path / "evil.py").write_text(EVIL_MODULE)
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(textwrap.dedent("""
        version: 1
        problem: {module: "mine.py:problem", params: {beta: 2.0}}
        basis: {width: 120}
        collocation: {n_interior: 300}
        time: {outputs: 5}
        compute: {scheduler: synchronous}
    """))
    store = tmp_path / "run.zarr"
    assert main(["run", str(workflow), "--output", str(store), "--quiet"]) == 0
    points, times = np.array([[0.3], [1.1]]), np.array([0.25, 0.75])
    before = open_result(store).evaluate(points, times).values
    attrs = read_attrs(store)
    edited = attrs["workflow"].replace(str(tmp_path / "mine.py"), str(tmp_path / "evil.py"))
    assert edited != attrs["workflow"]
    write_attrs(store, {"workflow": edited})
    from pipeline.store import consolidate

    consolidate(store)
    after = open_result(store).evaluate(points, times).values
    assert not (tmp_path / "ran").exists()  # evaluate rebuilt the networks from the stored data only
    np.testing.assert_array_equal(before, after)
    from pipeline.pde import get_problem

    truth = get_problem("advection", beta=2.0).truth
    exact = np.array([truth(points[i:i + 1], t)[0] for i, t in enumerate(times)])
    assert np.max(np.abs(after[0] - exact)) < 1e-3
