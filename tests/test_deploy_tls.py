"""A workflow across hosts over TLS: network namespaces as the hosts.

Three test hosts, each a network namespace joined to a fourth (the switch: a bridge) by veth
pairs on addresses of this test's own (10.254.<n>.0/24): the scheduler on one, two worker
processes on another, the client (`pipeline run`) on a third. Certificates come from a CA the
test makes with ``openssl``. The run must equal a local run bitwise, every member must have run
on the worker host, and a plain-TCP client and a client with a certificate from another CA
must be refused. Skips, saying why, where namespaces cannot be made (not root, no ``ip``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import assert_stores_equal

from pipeline.cli import main

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "workflows" / "quickstart.yaml"  # 4 members, 4 windows
SUBNET = 10 + os.getpid() % 200  # 10.254.SUBNET.0/24: a subnet of this test run's own
HOSTS = {"sched": 1, "work": 2, "client": 3}


def _cannot_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("openssl") is None:
        return "needs iproute2's ip and openssl"
    name = f"plprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


pytestmark = [pytest.mark.cluster, pytest.mark.skipif(_cannot_make_namespaces() is not None,
                                                      reason=str(_cannot_make_namespaces()))]


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


@pytest.fixture
def network():
    """Namespaces ``{role}{tag}`` joined by a bridge in ``sw{tag}``; removed afterwards."""
    tag = f"{os.getpid() % 100000}"
    names = {role: f"pl{role[:2]}{tag}" for role in HOSTS}
    switch = f"plsw{tag}"
    made = []
    try:
        for ns in (switch, *names.values()):
            _sh("ip", "netns", "add", ns)
            made.append(ns)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        _sh("ip", "-n", switch, "link", "set", "br0", "up")
        for role, ns in names.items():
            host, port = f"h{role[:2]}{tag}"[:15], f"s{role[:2]}{tag}"[:15]
            _sh("ip", "link", "add", host, "type", "veth", "peer", "name", port)
            _sh("ip", "link", "set", host, "netns", ns)
            _sh("ip", "link", "set", port, "netns", switch)
            _sh("ip", "-n", switch, "link", "set", port, "master", "br0", "up")
            _sh("ip", "-n", ns, "addr", "add", f"10.254.{SUBNET}.{HOSTS[role]}/24", "dev", host)
            _sh("ip", "-n", ns, "link", "set", host, "up")
        yield names
    finally:
        for ns in made:  # deleting a namespace deletes its end of every veth pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _certificates(directory: Path, name: str) -> dict:
    """A CA and one certificate it signed (used by every host, as a site would do per service)."""
    directory.mkdir()
    ca, ca_key, key, csr, cert = (directory / f for f in ("ca.pem", "ca.key", "node.key", "node.csr", "node.pem"))
    _sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "1", "-subj", f"/CN={name} CA")
    _sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", f"/CN={name} node")
    _sh("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "1")
    return {"ca_file": str(ca), "cert_file": str(cert), "key_file": str(key)}


def _start(namespace: str, args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", namespace, *args], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _in_namespace(namespace: str, script: str, timeout: float = 300) -> dict:
    done = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_workflow_runs_across_hosts_over_tls_and_other_connections_are_refused(network, tmp_path):
    good, rogue = _certificates(tmp_path / "site", "site"), _certificates(tmp_path / "rogue", "rogue")
    scheduler = f"tls://10.254.{SUBNET}.1:8786"
    tls = ["--tls-ca-file", good["ca_file"], "--tls-cert", good["cert_file"], "--tls-key", good["key_file"]]
    procs = [
        _start(network["sched"], [sys.executable, "-m", "dask", "scheduler", "--protocol", "tls", "--host",
                                  f"10.254.{SUBNET}.1", "--port", "8786", "--no-dashboard", *tls],
               tmp_path / "scheduler.log"),
        _start(network["work"], [sys.executable, "-m", "dask", "worker", scheduler, "--host", f"10.254.{SUBNET}.2",
                                 "--nworkers", "2", "--nthreads", "1", "--no-dashboard", *tls], tmp_path / "workers.log"),
    ]
    try:
        store = tmp_path / "tls.zarr"
        ran = _in_namespace(network["client"], f"""
            import collections, json
            from distributed import Client, get_task_stream
            from distributed.security import Security
            from pipeline.cli import main
            security = Security(tls_ca_file={good['ca_file']!r}, tls_client_cert={good['cert_file']!r},
                                tls_client_key={good['key_file']!r}, require_encryption=True)
            with Client({scheduler!r}, security=security, timeout=60) as client:
                client.wait_for_workers(2, timeout=120)
                with get_task_stream(client) as stream:  # every task of the cluster, the run's included
                    code = main(["run", {str(WORKFLOW)!r}, "--output", {str(store)!r}, "--quiet",
                                 "--set", "compute.cluster.kind=address",
                                 "--set", "compute.cluster.address={scheduler}", "--set", "compute.timeout=60",
                                 "--set", "compute.tls.ca_file={good['ca_file']}",
                                 "--set", "compute.tls.cert_file={good['cert_file']}",
                                 "--set", "compute.tls.key_file={good['key_file']}"])
                workers = {{w: info["host"] for w, info in client.scheduler_info(n_workers=-1)["workers"].items()}}
            members = collections.Counter(workers[t["worker"]] for t in stream.data if "run_member" in str(t["key"]))
            print(json.dumps({{"code": code, "members_per_host": members}}))
        """)
        assert ran["code"] == 0
        assert ran["members_per_host"] == {f"10.254.{SUBNET}.2": 4}  # all four members on the worker host

        refused = _in_namespace(network["client"], f"""
            import json
            from distributed import Client
            from distributed.security import Security
            outcome = {{}}
            def attempt(name, address, security=None):
                try:
                    Client(address, security=security, timeout=5).close()
                    outcome[name] = "connected"
                except (OSError, TimeoutError) as err:
                    outcome[name] = "refused: " + type(err).__name__
            attempt("plain tcp", "tcp://10.254.{SUBNET}.1:8786")
            attempt("another CA", {scheduler!r}, Security(tls_ca_file={rogue['ca_file']!r},
                    tls_client_cert={rogue['cert_file']!r}, tls_client_key={rogue['key_file']!r}, require_encryption=True))
            print(json.dumps(outcome))
        """, timeout=120)
        assert all(v.startswith("refused") for v in refused.values()), refused
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    local = tmp_path / "local.zarr"
    assert main(["run", str(WORKFLOW), "--output", str(local), "--workers", "2", "--quiet",
                 "--set", "compute.dashboard=false"]) == 0
    assert assert_stores_equal(local, store) > 20
