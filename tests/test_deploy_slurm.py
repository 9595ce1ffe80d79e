"""Workflows on a real Slurm: worker jobs through ``compute.cluster.kind: slurm`` (dask-jobqueue)
and a whole workflow as one batch job (``deploy/slurm/run-workflow.sbatch``).

``.ci/run`` starts a one-node Slurm first (``deploy/slurm/setup-local-slurm.sh``, as root);
elsewhere these tests skip unless a Slurm answers here.  Each run is compared bitwise with a
run on a local cluster of as many workers: the members (more of them than workers, so none is
split) are computed the same way wherever they run.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import assert_stores_equal

from pipeline.cli import main

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "workflows" / "quickstart.yaml"  # 4 members (2 speeds × 2 seeds), 4 windows


def _slurm_state() -> str | None:
    """Why Slurm cannot be used here, or None when a node is up."""
    if shutil.which("sbatch") is None or shutil.which("sacct") is None:
        return "Slurm is not installed (run deploy/slurm/setup-local-slurm.sh as root; .ci/run does)"
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20).stdout.split()
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sinfo failed: {err}"
    if not any(s.rstrip("*~#") in ("idle", "mix", "alloc") for s in states):
        return f"no Slurm node is up (sinfo: {states or 'no answer'}); run deploy/slurm/setup-local-slurm.sh as root"
    probe = subprocess.run(["sacct", "-n", "-X", "-o", "JobID"], capture_output=True, text=True, timeout=20)
    if probe.returncode != 0:
        return f"Slurm accounting (sacct) is not available: {probe.stderr.strip()}"
    return None


pytestmark = [pytest.mark.cluster, pytest.mark.skipif(_slurm_state() is not None, reason=str(_slurm_state()))]


def _jobs(name: str, since: str, done, timeout: float = 90.0) -> list[tuple[str, str, str]]:
    """The jobs of ``name`` that sacct reports since ``since``, once ``done(jobs)`` holds.

    slurmctld hands job records to slurmdbd through a queue, so a job that has just ended may
    be missing from sacct (or still RUNNING there) for a while: poll, and return what sacct
    last said when ``timeout`` passes (the caller's assertion then shows it).
    """
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State,Elapsed", "--name", name, "-S", since],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        jobs = [tuple(line.split("|")) for line in out.splitlines() if line.strip()]
        if done(jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(1.0)


def _local_reference(tmp_path: Path) -> Path:
    store = tmp_path / "local.zarr"
    assert main(["run", str(WORKFLOW), "--output", str(store), "--workers", "2", "--quiet",
                 "--set", "compute.dashboard=false"]) == 0
    return store


def _slurm_clock() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 2))


def test_worker_jobs_of_slurm_cluster_run_the_workflow_bitwise_like_a_local_cluster(tmp_path, capsys):
    reference = _local_reference(tmp_path)
    since = _slurm_clock()
    store = tmp_path / "slurm.zarr"
    assert main(["run", str(WORKFLOW), "--output", str(store), "--cluster", "slurm", "--quiet",
                 "--set", "compute.cluster.slurm.jobs=2", "--set", "compute.cluster.slurm.cores=1",
                 "--set", "compute.cluster.slurm.memory=2GB",
                 "--set", "compute.cluster.slurm.walltime=00:10:00",
                 "--set", "compute.cluster.startup_timeout=120",
                 "--set", f"compute.cluster.slurm.log_directory={tmp_path / 'logs'}"]) == 0, capsys.readouterr().err
    jobs = _jobs("swim-pipeline", since, done=lambda jobs: len(jobs) >= 2)
    assert len(jobs) >= 2, jobs  # two worker jobs ran (and were ended by the cluster's close)
    assert all(state.split()[0] in ("COMPLETED", "CANCELLED", "RUNNING") for _, state, _ in jobs), jobs
    assert len(list((tmp_path / "logs").glob("*.err"))) >= 2  # the worker jobs' own logs
    assert assert_stores_equal(reference, store) > 20


def test_the_batch_script_runs_a_whole_workflow_as_one_job_bitwise_like_a_local_cluster(tmp_path):
    reference = _local_reference(tmp_path)
    since = _slurm_clock()
    store, log = tmp_path / "batch.zarr", tmp_path / "job.log"
    done = subprocess.run(["sbatch", "--wait", "--ntasks=2", f"--output={log}", "--chdir", str(tmp_path),
                           str(ROOT / "deploy" / "slurm" / "run-workflow.sbatch"), str(WORKFLOW), str(store), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stderr, log.read_text() if log.exists() else "no log")
    jobs = _jobs("swim-pipeline-run", since, done=lambda jobs: [s for _, s, _ in jobs] == ["COMPLETED"])
    assert [state for _, state, _ in jobs] == ["COMPLETED"], jobs
    assert "scheduler tcp://" in log.read_text() and "rel_l2" in log.read_text()
    assert assert_stores_equal(reference, store) > 20
