"""Cluster kinds of a workflow run: Slurm jobs (dask-jobqueue) and Kubernetes pods (dask-kubernetes).

``compute.cluster.kind`` chooses where the workers come from when ``compute.scheduler`` is left
at ``local`` (docs/design.md §5.2): ``local`` starts a ``LocalCluster`` (:func:`pipeline.cluster.connect`),
``address`` joins a running scheduler, ``slurm`` submits worker jobs through dask-jobqueue's
``SLURMCluster`` (the scheduler runs in this process, the workers in the jobs), ``kubernetes``
creates a ``DaskCluster`` through the dask-kubernetes operator's ``KubeCluster``.  Both are
optional dependencies (extras ``slurm`` and ``kubernetes``); :func:`check_cluster` names the
missing one before any store is written.

Workers keep one BLAS thread per Dask thread: the nanny of every ``dask worker`` sets
``OMP_NUM_THREADS=1`` and friends, and the Kubernetes pods get them in their environment too.
Every worker imports the library as it starts (``--preload pipeline.preload``).
"""

from __future__ import annotations

import importlib
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from pipeline.errors import ConfigError
from pipeline.preload import MODULE as PRELOAD

__all__ = ["BLAS_ENV", "ClusterStartError", "check_cluster", "kubernetes_cluster", "slurm_cluster", "wait_for_workers"]

#: one BLAS thread per Dask worker thread (docs/design.md §7)
BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

_EXTRAS = {"slurm": ("dask_jobqueue", "dask-jobqueue"), "kubernetes": ("dask_kubernetes", "dask-kubernetes")}


class ClusterStartError(ConnectionError):
    """The workers asked of a batch system or of Kubernetes did not come up in time."""


def check_cluster(compute_cfg: dict, scheduler: str | None = None) -> None:
    """Refuse, before any work, a cluster kind whose optional dependency is missing."""
    kind = compute_cfg["cluster"]["kind"]
    if scheduler or compute_cfg["scheduler"] != "local" or kind not in _EXTRAS:
        return
    module, package = _EXTRAS[kind]
    try:
        importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"compute.cluster.kind={kind} needs {package}: pip install 'swim-pipeline[{kind}]'") from None
    spec = compute_cfg["cluster"]["kubernetes"]["cluster_spec"]
    if kind == "kubernetes" and spec is not None and not Path(spec).is_file():
        raise ConfigError(f"compute.cluster.kubernetes.cluster_spec: no manifest at {spec!r}")
    if kind == "slurm":
        for key in ("cores", "memory"):
            if _slurm_setting(compute_cfg["cluster"]["slurm"], key) is None:
                raise ConfigError(f"compute.cluster.slurm.{key} is set neither in the workflow nor in dask-jobqueue's "
                                  f"configuration (jobqueue.slurm.{key}; deploy/slurm/jobqueue.yaml)")


def _slurm_setting(slurm: dict, key: str):
    """A Slurm setting of the workflow, else of dask-jobqueue's configuration (``jobqueue.yaml``)."""
    import dask

    value = slurm.get(key)
    return value if value is not None else dask.config.get(f"jobqueue.slurm.{key}", default=None)


def wait_for_workers(client, n: int, timeout: float, what: str) -> None:
    """Block until ``n`` workers joined, or raise :class:`ClusterStartError` naming ``what``."""
    if n <= 0:
        return
    try:
        client.wait_for_workers(n, timeout=timeout)
    except TimeoutError:
        joined = len(client.scheduler_info(n_workers=-1)["workers"])
        raise ClusterStartError(
            f"{joined} of {n} {what} workers joined within {timeout:g} s (compute.cluster.startup_timeout); "
            "the jobs may be waiting in the queue: check them, or raise the timeout") from None


@contextmanager
def slurm_cluster(cluster_cfg: dict):
    """A ``SLURMCluster`` scaled to ``jobs`` (or adaptive), with a client; yields the client.

    Each job runs ``processes`` worker processes (default: one per core, one thread each).
    The scheduler runs in this process: the compute nodes must reach it (``interface``).
    """
    import dask
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    s = cluster_cfg["slurm"]
    cores = _slurm_setting(s, "cores")
    processes = _slurm_setting(s, "processes") or cores  # one single-threaded worker per core
    # null keys are left out, so that dask-jobqueue's configuration (jobqueue.yaml) fills them
    given = {key: s[key] for key in ("memory", "queue", "account", "walltime", "interface", "local_directory",
                                     "log_directory") if s[key] is not None}
    extra = {"job_extra_directives": list(s["job_extra_directives"])} if s["job_extra_directives"] else {}
    # each worker imports the library as its job starts, not in its first member (pipeline/preload.py)
    worker_args = [*(dask.config.get("jobqueue.slurm.worker-extra-args", default=[]) or []), "--preload", PRELOAD]
    prologue = [*(s["job_script_prologue"] or dask.config.get("jobqueue.slurm.job-script-prologue", default=[]) or []),
                *(f"export {k}={v}" for k, v in BLAS_ENV.items())]
    with SLURMCluster(
        cores=cores, processes=processes, job_script_prologue=prologue, python=s["python"] or sys.executable,
        job_name="swim-pipeline", worker_extra_args=worker_args,
        scheduler_options={"interface": s["interface"]} if s["interface"] else None,
        **given, **extra,
    ) as cluster, Client(cluster) as client:
        adaptive = s["adaptive"]
        if adaptive["maximum"] is not None:
            cluster.adapt(minimum_jobs=adaptive["minimum"], maximum_jobs=adaptive["maximum"])
            wanted = adaptive["minimum"] * processes
        else:
            cluster.scale(jobs=s["jobs"])
            wanted = s["jobs"] * processes
        wait_for_workers(client, wanted, cluster_cfg["startup_timeout"], "Slurm")
        yield client


@contextmanager
def kubernetes_cluster(cluster_cfg: dict):
    """A ``DaskCluster`` created through the dask-kubernetes operator, with a client."""
    from dask_kubernetes.operator import KubeCluster
    from distributed import Client

    k = cluster_cfg["kubernetes"]
    if k["cluster_spec"] is not None:  # the manifest holds the image, workers, resources, volumes
        with KubeCluster(custom_cluster_spec=k["cluster_spec"], namespace=k["namespace"],
                         resource_timeout=int(cluster_cfg["startup_timeout"])) as cluster, Client(cluster) as client:
            workers = yaml.safe_load(Path(k["cluster_spec"]).read_text())["spec"]["worker"].get("replicas", 1)
            wait_for_workers(client, workers, cluster_cfg["startup_timeout"], "Kubernetes")
            yield client
        return
    env = {**BLAS_ENV, **{name: str(value) for name, value in k["env"].items()}}
    # the operator's CRD types quantities as strings (cpu: "1"): YAML's numbers are turned into them
    resources = {part: {name: str(v) for name, v in amounts.items()} for part, amounts in k["resources"].items()}
    with KubeCluster(name=k["name"], namespace=k["namespace"], image=k["image"], n_workers=k["n_workers"],
                     resources=resources, env=env, worker_command=["dask", "worker", "--preload", PRELOAD],
                     resource_timeout=int(cluster_cfg["startup_timeout"])) as cluster, Client(cluster) as client:
        wait_for_workers(client, k["n_workers"], cluster_cfg["startup_timeout"], "Kubernetes")
        yield client
