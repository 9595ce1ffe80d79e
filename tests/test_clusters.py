"""Cluster kinds of the workflow (``compute.cluster``): validation, precedence, missing extras,
and the Kubernetes path through a stand-in for the operator's ``KubeCluster``.

The real Slurm runs are in ``test_deploy_slurm.py``; the manifests in ``test_deploy_kubernetes.py``.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.cluster import resolve_scheduler
from pipeline.config import ConfigError, load_workflow

WORKFLOW = Path(__file__).resolve().parent.parent / "workflows" / "quickstart.yaml"


@pytest.mark.parametrize("sets, message", [
    (["compute.cluster.kind=address"], "compute.cluster.kind 'address' needs compute.cluster.address"),
    (["compute.cluster.kind=moon"], "compute.cluster.kind must be one of local, address, slurm, kubernetes"),
    (["compute.cluster.address=http://host:80"], "compute.cluster.address must be a scheduler address"),
    (["compute.cluster.slurm.adaptive.minimum=2"], "needs both minimum and maximum"),
    (["compute.cluster.slurm.adaptive={minimum: 3, maximum: 2}"], "minimum (3) exceeds maximum (2)"),
    (["compute.cluster.slurm.cores=4", "compute.cluster.slurm.processes=3"], "processes (3) must divide"),
    (["compute.cluster.slurm.memory=lots"], "compute.cluster.slurm.memory must be an amount"),
    (["compute.cluster.slurm.walltime=soon"], "compute.cluster.slurm.walltime must be a Slurm time"),
    (["compute.cluster.slurm.job_extra_directives=[1]"], "job_extra_directives must be a list of strings"),
    (["compute.cluster.kubernetes.resources={requests: {cpu: [1]}}"], "compute.cluster.kubernetes.resources"),
    (["compute.cluster.kubernetes.resources={wants: {}}"], "may only hold 'requests' and 'limits'"),
    (["compute.scheduler=tcp://a:1", "compute.cluster.kind=slurm"], "choose one"),
])
def test_cluster_settings_are_checked_before_work(sets, message):
    with pytest.raises(ConfigError) as err:
        load_workflow(WORKFLOW, sets)
    assert message in str(err.value)


def test_the_scheduler_precedence(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    local, slurm = {"kind": "local"}, {"kind": "slurm"}
    address = {"kind": "address", "address": "tls://head:8786"}
    assert resolve_scheduler("local", None, local) == "local"
    assert resolve_scheduler("local", None, address) == "tls://head:8786"
    assert resolve_scheduler("threads", None, local) == "threads"
    assert resolve_scheduler("local", "tcp://flag:1", address) == "tcp://flag:1"  # --scheduler wins
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://job-pod:8786")
    assert resolve_scheduler("local", None, local) == "tcp://job-pod:8786"  # a DaskJob's runner pod
    assert resolve_scheduler("local", None, slurm) == "local"  # an explicit kind is not overridden


@pytest.mark.parametrize("kind, package", [("slurm", "dask-jobqueue"), ("kubernetes", "dask-kubernetes")])
def test_a_missing_extra_is_one_clear_error_before_any_store(tmp_path, capsys, monkeypatch, kind, package):
    module = package.replace("-", "_")
    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError, as if not installed
    store = tmp_path / "never.zarr"
    assert main(["run", str(WORKFLOW), "--output", str(store), "--cluster", kind]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"pipeline: error: compute.cluster.kind={kind} needs {package}: pip install 'swim-pipeline[{kind}]'"
    assert not store.exists()


def _install_operator(monkeypatch, kube_cluster) -> None:
    """A stand-in ``dask_kubernetes.operator`` whose ``KubeCluster`` is ``kube_cluster``."""
    operator = types.ModuleType("dask_kubernetes.operator")
    operator.KubeCluster = kube_cluster
    package = types.ModuleType("dask_kubernetes")
    package.operator = operator
    monkeypatch.setitem(sys.modules, "dask_kubernetes", package)
    monkeypatch.setitem(sys.modules, "dask_kubernetes.operator", operator)


def test_kubernetes_kind_creates_the_operator_cluster_it_is_configured_for(tmp_path, monkeypatch, capsys):
    """``KubeCluster`` is replaced by a local cluster that records what it was asked for: the
    run goes through the same client, scaling and wait as on Kubernetes."""
    from distributed import LocalCluster

    asked = {}

    class StandIn(LocalCluster):
        def __init__(self, *, name, namespace, image, n_workers, resources, env, worker_command, resource_timeout):
            asked.update(name=name, namespace=namespace, image=image, n_workers=n_workers, resources=resources,
                         env=env, worker_command=worker_command, resource_timeout=resource_timeout)
            preload = worker_command[worker_command.index("--preload") + 1]
            super().__init__(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                             preload=[preload])

    _install_operator(monkeypatch, StandIn)
    store = tmp_path / "k8s.zarr"
    assert main(["run", str(WORKFLOW), "--output", str(store), "--cluster", "kubernetes", "--quiet",
                 "--set", "compute.cluster.kubernetes.resources={limits: {cpu: 1, memory: 2Gi}}",
                 "--set", "compute.cluster.kubernetes.env={PIPELINE_TAG: ci}"]) == 0, capsys.readouterr().err
    assert asked["image"] == "ghcr.io/swim-pipeline/swim-pipeline:0.1.0" and asked["n_workers"] == 2
    # quantities as strings (the operator's CRD types them so), one BLAS thread per worker
    assert asked["resources"] == {"limits": {"cpu": "1", "memory": "2Gi"}}
    assert asked["env"]["OMP_NUM_THREADS"] == "1" and asked["env"]["PIPELINE_TAG"] == "ci"
    assert asked["worker_command"] == ["dask", "worker", "--preload", "pipeline.preload"]  # imports as it starts
    assert "rel_l2" in capsys.readouterr().out


def test_slurm_needs_cores_and_memory_from_the_workflow_or_jobqueue_yaml():
    import dask

    from pipeline.clusters import check_cluster

    pytest.importorskip("dask_jobqueue")
    cfg, _ = load_workflow(WORKFLOW, ["compute.cluster.kind=slurm"])
    with dask.config.set({"jobqueue.slurm.cores": None, "jobqueue.slurm.memory": None}):
        with pytest.raises(ConfigError, match="compute.cluster.slurm.cores is set neither in the workflow nor"):
            check_cluster(cfg["compute"])
    with dask.config.set({"jobqueue.slurm.cores": 4, "jobqueue.slurm.memory": "8GB"}):  # a site's jobqueue.yaml
        check_cluster(cfg["compute"])
    cfg, _ = load_workflow(WORKFLOW, ["compute.cluster.kind=slurm", "compute.cluster.slurm.cores=2",
                                      "compute.cluster.slurm.memory=4GB"])
    with dask.config.set({"jobqueue.slurm.cores": None, "jobqueue.slurm.memory": None}):
        check_cluster(cfg["compute"])


def test_kubernetes_kind_takes_a_cluster_manifest(tmp_path, monkeypatch, capsys):
    """With ``cluster_spec`` the operator gets the manifest (volumes for the stores and all)."""
    from distributed import LocalCluster

    asked = {}

    class StandIn(LocalCluster):
        def __init__(self, *, custom_cluster_spec, namespace, resource_timeout):
            asked.update(spec=custom_cluster_spec, namespace=namespace)
            super().__init__(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)

    _install_operator(monkeypatch, StandIn)
    manifest = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes" / "daskcluster.yaml"
    missing = tmp_path / "nowhere.yaml"
    assert main(["run", str(WORKFLOW), "--output", str(tmp_path / "no.zarr"), "--cluster", "kubernetes",
                 "--set", f"compute.cluster.kubernetes.cluster_spec={missing}"]) == 2
    assert "compute.cluster.kubernetes.cluster_spec: no manifest at" in capsys.readouterr().err
    assert not (tmp_path / "no.zarr").exists()
    assert main(["run", str(WORKFLOW), "--output", str(tmp_path / "k8s.zarr"), "--cluster", "kubernetes", "--quiet",
                 "--set", f"compute.cluster.kubernetes.cluster_spec={manifest}",
                 "--set", "compute.cluster.kubernetes.namespace=science"]) == 0, capsys.readouterr().err
    assert asked == {"spec": str(manifest), "namespace": "science"}


def test_workers_of_a_local_cluster_import_the_library_as_they_start():
    """``pipeline.preload``: the member code is imported before any task reaches a worker, so a
    cluster's first workflow does not pay ~1 s per worker inside its members."""
    from pipeline.cluster import connect

    def loaded():
        return "pipeline.workflows.runner" in sys.modules and "pipeline.workflows.evolution" in sys.modules

    with connect({"scheduler": "local", "workers": 2, "dashboard": False}) as client:
        assert set(client.run(loaded).values()) == {True}


def test_slurm_worker_jobs_import_the_library_as_they_start(monkeypatch):
    """The worker jobs' command adds ``--preload pipeline.preload`` to the site's own extra arguments."""
    jobqueue = pytest.importorskip("dask_jobqueue")
    import dask

    from pipeline import clusters

    scripts = []

    class Refused(RuntimeError):
        pass

    class Recording(jobqueue.SLURMCluster):  # reads the job script, then stops before any job
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            scripts.append(self.job_script())
            self.close()
            raise Refused

    monkeypatch.setattr(jobqueue, "SLURMCluster", Recording)
    cfg, _ = load_workflow(WORKFLOW, ["compute.cluster.kind=slurm", "compute.cluster.slurm.cores=1",
                                      "compute.cluster.slurm.memory=2GB"])
    with dask.config.set({"jobqueue.slurm.worker-extra-args": ["--lifetime", "1h"]}), pytest.raises(Refused):
        with clusters.slurm_cluster(cfg["compute"]["cluster"]):
            pass
    assert "--lifetime 1h --preload pipeline.preload" in scripts[0], scripts
