"""The Kubernetes manifests in ``deploy/kubernetes/``, checked without a cluster.

* Every ``DaskCluster`` / ``DaskWorkerGroup`` / ``DaskJob`` document is validated against the
  ``openAPIV3Schema`` of version ``v1`` of the CRDs shipped inside the installed
  ``dask_kubernetes`` package (the operator's Helm chart), translated to JSON Schema by
  :func:`crd_to_jsonschema`; broken manifests must fail that validation.
* ``daskcluster.yaml`` keeps the structure of ``dask_kubernetes.operator.make_cluster_spec``.
* Semantics the schema cannot see: one shared PVC at one path, one BLAS thread per worker
  thread, a job command that names an existing workflow and parses.

Needs ``dask-kubernetes`` and ``jsonschema``; no network, no cluster.
"""

import copy
from functools import cache
from pathlib import Path

import pytest
import yaml

dask_kubernetes = pytest.importorskip(
    "dask_kubernetes", reason="dask-kubernetes is not installed: its CRDs and make_cluster_spec are the reference "
                              "(pip install dask-kubernetes)")
jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed (pip install jsonschema)")

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "kubernetes"
WORKFLOWS = ROOT / "workflows"
CRDS = Path(dask_kubernetes.__file__).parent / "operator" / "deployment" / "helm" / "dask-kubernetes-operator" / "crds"
GROUP = "kubernetes.dask.org"
KINDS = ("DaskCluster", "DaskWorkerGroup", "DaskJob")

IMAGE = "ghcr.io/swim-pipeline/swim-pipeline:0.1.0"
CUDA_IMAGE = "ghcr.io/swim-pipeline/swim-pipeline-cuda:0.1.0"
BLAS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
WORKER_RESOURCES = {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "1", "memory": "4Gi"}}
STORE_MOUNT = "/stores"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are ~0.9 MB of YAML


# --------------------------------------------------------------------------- schema translation

def crd_to_jsonschema(node, *, strict=True):
    """A Kubernetes structural OpenAPI v3 schema (a CRD's ``openAPIV3Schema``) as JSON Schema.

    The two are close; what differs is translated like this:

    * ``x-kubernetes-int-or-string: true`` (no ``type`` given) -> ``anyOf: [integer, string]``.
      The operator's CRDs do not use it: they spell IntOrString fields (``targetPort``,
      ``httpGet.port``) as ``type: string`` + ``format: int-or-string``; formats are not checked
      (no format checker is passed), so ``type: string`` holds there and an unquoted number is
      rejected, the stricter of the two readings.
    * ``x-kubernetes-preserve-unknown-fields: true`` -> unknown fields allowed in that object.
    * ``nullable: true`` -> ``null`` allowed besides the declared type.
    * Unknown fields: the API server prunes fields that its schema does not declare, and refuses
      them under strict field validation (``kubectl apply --validate=strict``, kubectl's default).
      With ``strict`` an object that lists ``properties`` gets ``additionalProperties: false``
      (unless it preserves unknown fields), so a misspelt key fails here instead of vanishing.
    * ``x-kubernetes-list-type`` / ``-list-map-keys`` / ``-map-type`` / ``-embedded-resource``
      and ``default`` are dropped: they govern merging and defaulting, not validity (the key
      uniqueness of ``list-type: map`` lists is not checked).
    """
    if isinstance(node, list):
        return [crd_to_jsonschema(x, strict=strict) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "default"):
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: crd_to_jsonschema(v, strict=strict) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = crd_to_jsonschema(value, strict=strict)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields", False)
    if preserve:
        out.pop("additionalProperties", None)
    elif strict and "properties" in node and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


def resource_schema(crd: dict, version: str = "v1") -> dict:
    """JSON Schema of a whole custom resource: the CRD's schema plus the fields every object has
    (``apiVersion`` and ``kind`` fixed to this CRD, ``metadata`` with a ``name``)."""
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = crd_to_jsonschema(entry["schema"]["openAPIV3Schema"])
    strings = {"type": "object", "additionalProperties": {"type": "string"}}
    schema["properties"] = {
        "apiVersion": {"const": f"{crd['spec']['group']}/{version}"},
        "kind": {"const": crd["spec"]["names"]["kind"]},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                                    "namespace": {"type": "string"}, "labels": strings, "annotations": strings}},
        **schema.get("properties", {}),
    }
    schema["required"] = sorted({"apiVersion", "kind", "metadata", *schema.get("required", ())})
    return schema


@cache
def validators() -> dict:
    """kind -> a JSON Schema validator built from the installed operator's CRD."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.load(path.read_text(), Loader=_Loader)
        if crd.get("kind") == "CustomResourceDefinition" and crd["spec"]["names"]["kind"] in KINDS:
            schema = resource_schema(crd)
            jsonschema.Draft7Validator.check_schema(schema)
            out[crd["spec"]["names"]["kind"]] = jsonschema.Draft7Validator(schema)
    return out


def errors(doc: dict) -> list[str]:
    """Every schema violation of a manifest, as 'path: message'."""
    validator = validators()[doc["kind"]]
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc))


# --------------------------------------------------------------------------- the manifests

def _documents():
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


DOCUMENTS = _documents()
DASK_DOCUMENTS = [(f, d) for f, d in DOCUMENTS if str(d.get("apiVersion", "")).startswith(GROUP + "/")]


def one(kind: str) -> dict:
    (doc,) = [d for _, d in DOCUMENTS if d.get("kind") == kind]
    return copy.deepcopy(doc)


def worker_pods():
    """(where, pod spec) of every Dask worker pod the manifests describe."""
    cluster, job, group = one("DaskCluster"), one("DaskJob"), one("DaskWorkerGroup")
    return [("DaskCluster worker", cluster["spec"]["worker"]["spec"]),
            ("DaskJob worker", job["spec"]["cluster"]["spec"]["worker"]["spec"]),
            ("DaskWorkerGroup worker", group["spec"]["worker"]["spec"])]


def all_pods():
    cluster, job = one("DaskCluster"), one("DaskJob")
    return [("DaskCluster scheduler", cluster["spec"]["scheduler"]["spec"]),
            ("DaskJob scheduler", job["spec"]["cluster"]["spec"]["scheduler"]["spec"]),
            ("DaskJob job", job["spec"]["job"]["spec"]), *worker_pods()]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env") or []}


# --------------------------------------------------------------------------- validation

def test_the_operator_crds_are_found():
    assert set(validators()) == set(KINDS), f"CRDs for {KINDS} expected in {CRDS}"


def test_every_kind_has_a_manifest():
    assert sorted({d["kind"] for _, d in DASK_DOCUMENTS}) == sorted(KINDS)


@pytest.mark.parametrize("doc", [d for _, d in DASK_DOCUMENTS],
                         ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in DASK_DOCUMENTS])
def test_manifest_is_valid_against_the_operator_crd(doc):
    assert errors(doc) == []


def test_the_operators_own_spec_is_valid():
    """Calibration: what make_cluster_spec writes passes (the translation is not too strict)."""
    from dask_kubernetes.operator import make_cluster_spec

    spec = make_cluster_spec(name="calibration", image=IMAGE, n_workers=2, resources=WORKER_RESOURCES,
                             env=dict.fromkeys(BLAS, "1"))
    assert errors(spec) == []


def _replicas_as_text(d):
    d["spec"]["worker"]["replicas"] = "two"


def _worker_without_pod_spec(d):
    del d["spec"]["worker"]["spec"]


def _misspelt_field(d):
    d["spec"]["worker"]["replica"] = d["spec"]["worker"].pop("replicas")


def _unquoted_cpu(d):
    d["spec"]["worker"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 1


def _container_without_name(d):
    del d["spec"]["scheduler"]["spec"]["containers"][0]["name"]


def _scheduler_without_service(d):
    del d["spec"]["scheduler"]["service"]


def _wrong_api_version(d):
    d["apiVersion"] = "kubernetes.dask.org/v1alpha1"


@pytest.mark.parametrize("break_it, path, validator", [
    (_replicas_as_text, "spec.worker.replicas", "type"),
    (_worker_without_pod_spec, "spec.worker", "required"),
    (_misspelt_field, "spec.worker", "additionalProperties"),
    (_unquoted_cpu, "spec.worker.spec.containers.0.resources.limits.cpu", "type"),
    (_container_without_name, "spec.scheduler.spec.containers.0", "required"),
    (_scheduler_without_service, "spec.scheduler", "required"),
    (_wrong_api_version, "apiVersion", "const"),
], ids=lambda x: x.__name__.strip("_") if callable(x) else None)
def test_a_broken_cluster_fails_validation(break_it, path, validator):
    doc = one("DaskCluster")
    break_it(doc)
    found = [(".".join(map(str, e.absolute_path)), e.validator) for e in validators()["DaskCluster"].iter_errors(doc)]
    assert (path, validator) in found, found


def test_a_job_without_cluster_and_a_group_without_cluster_name_fail():
    job = one("DaskJob")
    del job["spec"]["cluster"]
    assert any("'cluster' is a required property" in e for e in errors(job))
    group = one("DaskWorkerGroup")
    del group["spec"]["cluster"]
    assert any("'cluster' is a required property" in e for e in errors(group))


def test_translation_of_kubernetes_extensions():
    raw = {"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": True},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                 "properties": {"a": {"type": "string"}}},
        "maybe": {"type": "string", "nullable": True},
        "fixed": {"type": "object", "properties": {"a": {"type": "string"}}},
    }}
    check = jsonschema.Draft7Validator(crd_to_jsonschema(raw)).is_valid
    assert check({"port": 8786}) and check({"port": "tcp-comm"}) and not check({"port": 1.5})
    assert check({"free": {"a": "x", "anything": [1, {"b": 2}]}}) and not check({"free": {"a": 1}})
    assert check({"maybe": None}) and check({"maybe": "x"}) and not check({"maybe": 3})
    assert check({"fixed": {"a": "x"}}) and not check({"fixed": {"a": "x", "typo": 1}})
    assert not check({"unknown": 1})
    assert jsonschema.Draft7Validator(crd_to_jsonschema(raw, strict=False)).is_valid({"unknown": 1})


# --------------------------------------------------------------------------- structure

def test_cluster_follows_make_cluster_spec():
    from dask_kubernetes.operator import make_cluster_spec

    ours = one("DaskCluster")
    name = ours["metadata"]["name"]
    ref = make_cluster_spec(name=name, image=IMAGE, n_workers=2, resources=WORKER_RESOURCES,
                            env=dict.fromkeys(BLAS, "1"), worker_command="dask worker --preload pipeline.preload")
    assert ours["apiVersion"] == ref["apiVersion"] and ours["kind"] == ref["kind"]
    assert set(ours["spec"]) == set(ref["spec"])
    assert ours["spec"]["idleTimeout"] == ref["spec"]["idleTimeout"]
    # scheduler: same keys, same service, same container apart from `dask scheduler` and its resources
    assert set(ours["spec"]["scheduler"]) == set(ref["spec"]["scheduler"])
    assert ours["spec"]["scheduler"]["service"] == ref["spec"]["scheduler"]["service"]
    added = {"imagePullPolicy", "volumeMounts"}  # on purpose
    for role in ("scheduler", "worker"):
        (mine,) = ours["spec"][role]["spec"]["containers"]
        (theirs,) = ref["spec"][role]["spec"]["containers"]
        assert set(theirs) <= set(mine) and set(mine) - set(theirs) <= added, role
        assert set(ours["spec"][role]["spec"]) - set(ref["spec"][role]["spec"]) <= {"volumes", "securityContext"}, role
        for key in ("name", "image", "env", "ports", "readinessProbe", "livenessProbe"):
            assert mine.get(key) == theirs.get(key), (role, key)
    (sched,) = ours["spec"]["scheduler"]["spec"]["containers"]
    (ref_sched,) = ref["spec"]["scheduler"]["spec"]["containers"]
    assert sched["args"] == ["dask", "scheduler", *ref_sched["args"][1:]]  # dask-scheduler is deprecated
    assert ref_sched["args"][0] == "dask-scheduler"
    # worker: same replicas, resources and args, plus --nthreads 1 (one BLAS thread per worker thread)
    assert set(ours["spec"]["worker"]) == set(ref["spec"]["worker"])
    assert ours["spec"]["worker"]["replicas"] == ref["spec"]["worker"]["replicas"] == 2
    (worker,) = ours["spec"]["worker"]["spec"]["containers"]
    (ref_worker,) = ref["spec"]["worker"]["spec"]["containers"]
    assert worker["resources"] == ref_worker["resources"] == WORKER_RESOURCES
    assert worker["args"] == [*ref_worker["args"], "--nthreads", "1"]


def test_the_job_embeds_the_cluster_spec():
    """daskjob.yaml runs on the cluster of daskcluster.yaml; only the selector names the job."""
    cluster, job = one("DaskCluster"), one("DaskJob")
    embedded = job["spec"]["cluster"]["spec"]
    assert embedded["scheduler"]["service"]["selector"]["dask.org/cluster-name"] == job["metadata"]["name"]
    embedded["scheduler"]["service"]["selector"]["dask.org/cluster-name"] = cluster["metadata"]["name"]
    assert embedded == cluster["spec"]


def test_selectors_and_group_name_the_cluster():
    cluster, group = one("DaskCluster"), one("DaskWorkerGroup")
    selector = cluster["spec"]["scheduler"]["service"]["selector"]
    assert selector == {"dask.org/cluster-name": cluster["metadata"]["name"], "dask.org/component": "scheduler"}
    assert group["spec"]["cluster"] == cluster["metadata"]["name"]


# --------------------------------------------------------------------------- semantics

def test_blas_is_single_threaded_in_every_container():
    for where, pod in all_pods():
        for container in pod["containers"]:
            env = env_of(container)
            assert {k: env.get(k) for k in BLAS} == dict.fromkeys(BLAS, "1"), where


def test_every_worker_runs_one_thread():
    for where, pod in worker_pods():
        (container,) = pod["containers"]
        args = container["args"]
        assert args[:2] == ["dask", "worker"], where
        assert args[args.index("--nthreads") + 1] == "1", where
        assert "$(DASK_WORKER_NAME)" in args, where
        assert args[args.index("--preload") + 1] == "pipeline.preload", where  # imports as it starts


def _store_claim() -> str:
    (pvc,) = [d for _, d in DOCUMENTS if d.get("kind") == "PersistentVolumeClaim"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], "workers on several nodes write one store"
    return pvc["metadata"]["name"]


def _mounts_of(pod: dict, container: dict) -> dict:
    """mount path -> (volume source kind, source name) of one container."""
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    out = {}
    for m in container.get("volumeMounts", []):
        vol = volumes[m["name"]]
        if "persistentVolumeClaim" in vol:
            out[m["mountPath"]] = ("pvc", vol["persistentVolumeClaim"]["claimName"])
        elif "configMap" in vol:
            out[m["mountPath"]] = ("configMap", vol["configMap"]["name"])
        else:
            out[m["mountPath"]] = ("other", m["name"])
    return out


def test_workers_and_job_share_one_store_volume():
    claim = _store_claim()
    job = one("DaskJob")["spec"]["job"]["spec"]
    for where, pod in [*worker_pods(), ("DaskJob job", job)]:
        for container in pod["containers"]:
            assert _mounts_of(pod, container).get(STORE_MOUNT) == ("pvc", claim), where


def test_store_volume_is_writable_by_the_images_user():
    """Pods that mount /stores get fsGroup = the image's numeric USER (deploy/docker/Dockerfile*)."""
    job = one("DaskJob")["spec"]["job"]["spec"]
    groups = {pod.get("securityContext", {}).get("fsGroup") for _, pod in [*worker_pods(), ("job", job)]}
    assert len(groups) == 1 and isinstance(next(iter(groups)), int), groups
    dockerfiles = sorted((ROOT / "deploy" / "docker").glob("Dockerfile*"))
    users = {line.split()[1] for f in dockerfiles if not f.name.endswith(".dockerignore")
             for line in f.read_text().splitlines() if line.startswith("USER ")}
    if not users:
        pytest.skip("no deploy/docker/Dockerfile with a USER line to compare with")
    assert {u.partition(":")[2] or u for u in users} == {str(g) for g in groups}


def _job_container() -> tuple[dict, dict]:
    pod = one("DaskJob")["spec"]["job"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def test_the_job_runs_an_existing_workflow_into_the_shared_store():
    pod, container = _job_container()
    assert pod.get("restartPolicy") == "Never", "a finished run must end the job pod"
    args = container.get("command", []) + container["args"]
    assert args[:2] == ["pipeline", "run"]
    workflow, output = Path(args[2]), Path(args[args.index("--output") + 1])
    assert (WORKFLOWS / workflow.name).is_file(), f"{workflow.name} is not in workflows/"
    mounts = _mounts_of(pod, container)
    kind, configmap = mounts[str(workflow.parent)]
    assert kind == "configMap"
    (cm,) = [d for _, d in DOCUMENTS if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == configmap]
    assert cm["data"][workflow.name] == (WORKFLOWS / workflow.name).read_text(), "ConfigMap copy is out of date"
    assert output.parent == Path(STORE_MOUNT) and output.suffix == ".zarr"
    assert "DASK_SCHEDULER_ADDRESS" not in env_of(container), "the operator sets it to the job's scheduler"


def test_the_job_command_parses_with_the_pipeline_cli():
    from pipeline.cli import _parser
    from pipeline.config import load_workflow

    _, container = _job_container()
    args = _parser().parse_args(container["args"][1:])
    assert args.command == "run"
    cfg, _ = load_workflow(WORKFLOWS / Path(args.workflow).name, args.overrides)
    assert cfg["compute"]["scheduler"] == "local", "only 'local' lets DASK_SCHEDULER_ADDRESS choose the scheduler"
    assert cfg["compute"]["timeout"] >= 60, "the scheduler starts together with the job pod"


def test_images_and_gpu_workers():
    for where, pod in all_pods():
        if where != "DaskWorkerGroup worker":
            assert {c["image"] for c in pod["containers"]} == {IMAGE}, where
    (gpu,) = one("DaskWorkerGroup")["spec"]["worker"]["spec"]["containers"]
    assert gpu["image"] == CUDA_IMAGE
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu["args"][gpu["args"].index("--resources") + 1] == "GPU=1"
