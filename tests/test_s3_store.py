"""Stores on object storage: a run to ``s3://…`` (moto's S3 server on loopback) behaves like a local one.

Credentials and the endpoint come from the environment only (AWS_*, set with monkeypatch; every
Dask worker process inherits them and builds its own filesystem).  The cluster tests compare the
S3 stores with a local run of the same workflow array by array, bit for bit.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

import boto3
import zarr
from moto.server import ThreadedMotoServer

from pipeline import open_result
from pipeline.cli import main
from pipeline.config import ConfigError, load_workflow
from pipeline.store import progress

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "workflows" / "quickstart.yaml"
#: the only arrays two runs may differ in: measured seconds
TIMINGS = {"diagnostics/wall_seconds", "diagnostics/cpu_seconds"}


def _clear_filesystem_cache():
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # instances remember the endpoint of an earlier server


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """moto's S3 server on a free loopback port, bucket ``bucket``, fake credentials in the environment."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-secret",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}",
           "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    _clear_filesystem_cache()
    client = boto3.client("s3")
    client.create_bucket(Bucket="bucket")
    try:
        yield client
    finally:
        _clear_filesystem_cache()
        server.stop()


def _objects(client, prefix="") -> dict:
    """Every object of the bucket under ``prefix``: key -> ETag (its content's hash)."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="bucket", Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def _arrays(store) -> dict:
    """Every array of a store (all groups), by path, read with plain zarr (a URL: fsspec from the environment)."""
    url = str(store).startswith("s3://")
    root = zarr.open_group(str(store), mode="r", storage_options={"use_listings_cache": False} if url else None)
    return {name: node for name, node in root.members(max_depth=None) if isinstance(node, zarr.Array)}


def assert_bitwise_equal(a, b) -> None:
    """The same arrays, dtypes, shapes and bytes (NaN payloads included), measured seconds aside."""
    arrays_a, arrays_b = _arrays(a), _arrays(b)
    assert set(arrays_a) == set(arrays_b)
    assert "u" in arrays_a and "progress/done" in arrays_a and "u_mean" in arrays_a
    for name in sorted(set(arrays_a) - TIMINGS):
        x, y = np.asarray(arrays_a[name][...]), np.asarray(arrays_b[name][...])
        assert (x.dtype, x.shape) == (y.dtype, y.shape), name
        if x.dtype == object:
            assert x.tolist() == y.tolist(), name
        else:
            assert x.tobytes() == y.tobytes(), f"{name} differs"


def _run(output, *extra) -> int:
    return main(["run", str(QUICKSTART), "--output", str(output), "--quiet", *extra])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The quickstart run (4 members, 4 windows) to a local directory on a local cluster of 2 workers."""
    store = tmp_path_factory.mktemp("local") / "run.zarr"
    assert _run(store, "--workers", "2") == 0
    return store


# ----------------------------------------------------------------------------- refused before any work
@pytest.mark.parametrize("url", ["s3://AKIAEXAMPLE:wJalrSECRET@bucket/run.zarr",
                                 "s3://bucket/run.zarr?X-Amz-Signature=wJalrSECRET"])
def test_urls_carrying_secrets_are_refused_before_any_work(s3, url, tmp_path, monkeypatch, capsys):
    from pipeline.workflows import runner

    def no_work(*args, **kwargs):
        raise AssertionError("the workflow was planned although its output.path is refused")

    monkeypatch.setattr(runner, "kind_for", no_work)
    assert _run(url, "--scheduler", "threads") == 2
    err = capsys.readouterr().err
    assert "output.path" in err and "environment" in err and "wJalrSECRET" not in err and "Traceback" not in err
    # the same from the workflow file's own output.path
    workflow = tmp_path / "w.yaml"
    workflow.write_text(QUICKSTART.read_text().replace("results/quickstart.zarr", url))
    cfg, raw = load_workflow(workflow)
    with pytest.raises(ConfigError, match="output.path") as refused:
        runner.run_workflow(cfg, raw, scheduler="threads", quiet=True)
    assert "wJalrSECRET" not in str(refused.value)
    assert _objects(s3) == {}


def test_a_missing_s3fs_is_one_clear_error_naming_the_extra(monkeypatch, capsys):
    import importlib

    registry = importlib.import_module("fsspec.registry")  # (fsspec.registry is also the name of a mapping)
    monkeypatch.setitem(sys.modules, "s3fs", None)  # `import s3fs` fails as if it were not installed
    monkeypatch.delitem(registry._registry, "s3", raising=False)
    assert _run("s3://bucket/run.zarr", "--scheduler", "threads") == 2
    err = capsys.readouterr().err
    assert "s3fs" in err and "pip install 'swim-pipeline[s3]'" in err and "Traceback" not in err


def test_overwrite_refuses_a_prefix_this_tool_did_not_write(s3, capsys):
    s3.put_object(Bucket="bucket", Key="data.zarr/measurements.csv", Body=b"t,u\n0,1\n")
    foreign = zarr.open_group("s3://bucket/data.zarr", mode="a")  # a zarr store of someone else's
    foreign.create_array("x", shape=(3,), dtype="f8")[...] = [1.0, 2.0, 3.0]
    s3.put_object(Bucket="bucket", Key="data.zarr2/keep.txt", Body=b"a neighbour with the same prefix")
    before = _objects(s3)
    assert "data.zarr/zarr.json" in before and "data.zarr/measurements.csv" in before
    assert _run("s3://bucket/data.zarr", "--scheduler", "threads", "--overwrite") == 2
    err = capsys.readouterr().err
    assert "not a store written by swim-pipeline" in err and "left as it is" in err
    assert _objects(s3) == before  # nothing deleted, nothing written
    assert _run("s3://bucket/data.zarr", "--scheduler", "threads") == 2
    assert "exists" in capsys.readouterr().err
    assert _run("s3://bucket/absent.zarr", "--scheduler", "threads", "--resume") == 2
    assert "no store" in capsys.readouterr().err
    assert _objects(s3) == before


def test_a_missing_bucket_or_a_bare_bucket_is_one_clear_error(s3, capsys):
    assert _run("s3://nobucket/run.zarr", "--scheduler", "threads") == 2
    err = capsys.readouterr().err
    assert "the bucket 'nobucket'" in err and "Traceback" not in err
    assert main(["inspect", "s3://nobucket/run.zarr"]) == 2
    assert "no result store" in capsys.readouterr().err
    assert _run("s3://bucket", "--scheduler", "threads", "--overwrite") == 2  # a store is a key, not a whole bucket
    assert "names a bucket" in capsys.readouterr().err


def test_a_small_s3_run_opens_inspects_and_is_overwritten_in_place(s3, capsys):
    """``open_result`` and ``pipeline inspect`` read the S3 store; ``--overwrite`` replaces exactly its prefix."""
    url, small = "s3://bucket/small.zarr", ("--scheduler", "threads", "--set", "ensemble.members=1")
    assert _run(url, *small) == 0
    result = open_result(url)
    assert result.path == url and result.attrs["kind"] == "evolution" and progress(url).all()
    assert result.metrics["members"] == 2 and result.metrics["rel_l2"] < 1e-6
    assert result.tree["/"].to_dataset()["u"].dims == ("beta", "member", "time", "x")
    points, times = np.array([[0.5], [2.0]]), np.array([0.25, 0.75])
    values = result.evaluate(points, times)
    np.testing.assert_allclose(values.sel(beta=40.0).values[0], np.sin(points[:, 0] - 40.0 * times), atol=1e-6)
    capsys.readouterr()
    assert main(["inspect", url]) == 0
    shown = capsys.readouterr().out
    assert f"store     {url}" in shown and "evolution" in shown and "rel_l2" in shown
    # --overwrite of a store this tool wrote: the whole prefix is replaced, its neighbours stay
    s3.put_object(Bucket="bucket", Key="small.zarr/stray.txt", Body=b"left by someone")
    s3.put_object(Bucket="bucket", Key="small.zarr2/keep.txt", Body=b"a neighbour")
    assert _run(url, *small) == 2  # exists
    assert _run(url, *small, "--overwrite") == 0
    keys = set(_objects(s3))
    assert "small.zarr/stray.txt" not in keys and "small.zarr2/keep.txt" in keys and "small.zarr/zarr.json" in keys
    assert open_result(url).metrics["members"] == 2


# ----------------------------------------------------------------------------- runs on a local cluster
@pytest.mark.cluster
def test_a_run_to_s3_equals_the_local_run_bitwise(s3, reference):
    url = "s3://bucket/run.zarr"
    assert _run(url, "--workers", "2") == 0
    assert_bitwise_equal(reference, url)
    local, remote = open_result(reference), open_result(url)
    assert {k: v for k, v in remote.attrs.items() if k not in ("created", "metrics")} == \
        {k: v for k, v in local.attrs.items() if k not in ("created", "metrics")}
    assert [m["rel_l2"] for m in remote.metrics["per_member"]] == [m["rel_l2"] for m in local.metrics["per_member"]]
    assert remote.metrics["rel_l2"] == local.metrics["rel_l2"]
    # finalised as on disk: consolidated metadata in the root's zarr.json
    assert "consolidated_metadata" in json.loads(s3.get_object(Bucket="bucket", Key="run.zarr/zarr.json")["Body"].read())


def _alive(procs) -> list:
    """The processes still running (a zombie whose parent was killed counts as gone)."""
    import psutil

    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.mark.cluster
@pytest.mark.slow  # 30–70 s: resume is tested on disk in the default run, S3 writes by the bitwise S3 run
def test_resume_after_a_killed_client_equals_the_uninterrupted_run(s3, reference):
    url = "s3://bucket/killed.zarr"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", str(QUICKSTART), "--output", url,
                             "--workers", "2", "--quiet"], cwd=ROOT, env=dict(os.environ), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, done = time.monotonic() + 300, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                done = progress(url)  # the done flags, as the client's progress display reads them
            except Exception:  # noqa: BLE001 - the template may not exist yet
                done = None
            if done is not None and 0 < done.sum() < done.size:
                break
            time.sleep(0.1)  # polling interval, not synchronisation: the deadline bounds the wait
    finally:
        import psutil

        try:
            descendants = psutil.Process(proc.pid).children(recursive=True)  # the LocalCluster's processes
        except psutil.NoSuchProcess:
            descendants = []
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the client's whole process group, hard
        except ProcessLookupError:  # it had ended already (the assertion below says so)
            pass
        proc.wait(timeout=60)
        deadline = time.monotonic() + 60
        while _alive(descendants) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = _alive(descendants)
        for p in survivors:  # never leave one behind, even when the assertion below fails
            p.kill()
    assert len(descendants) >= 2 and not survivors, f"processes of the killed client survived: {survivors}"
    done = progress(url)
    assert 0 < done.sum() < done.size, f"the run was not interrupted mid-way: {done.sum()} of {done.size} windows"
    assert _run(url, "--workers", "2", "--resume") == 0
    assert progress(url).all()
    assert_bitwise_equal(reference, url)
    metrics, expected = open_result(url).metrics, open_result(reference).metrics
    assert metrics["members"] == 4 and len(metrics["per_member"]) == 4
    assert [m["rel_l2"] for m in metrics["per_member"]] == [m["rel_l2"] for m in expected["per_member"]]
    assert all(m["rel_l2"] is not None for m in metrics["per_member"])
