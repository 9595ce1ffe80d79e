"""Where graphs run: computing with one BLAS thread per worker thread.

Every stage builds Dask graph pieces; this module is where they are computed.  Whatever the
scheduler (synchronous, threads, a ``LocalCluster`` or a remote one), heavy kernels are
BLAS/LAPACK calls inside tasks, and the parallelism must come from Dask, not from BLAS threads
fighting over the same cores: two OpenBLAS threads inside each of two Dask threads on a
2-core machine ran a small solve ~27x slower (docs/design.md §7).  Distributed workers started by
a nanny already get ``OMP_NUM_THREADS=1`` and friends; in-process schedulers get the limit
from :func:`compute`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from contextlib import contextmanager

import dask

__all__ = ["blas_limited", "compute", "exclusive", "inline", "large_dense_step", "on_cluster", "persist",
           "single_blas_thread"]

_LOCAL = threading.local()


_CONTROLLER = None


def _controller():
    """One ``ThreadpoolController``, made on first use (the libraries are loaded by then):
    entering a limit then costs ~15 µs instead of ~0.5 ms for a fresh ``threadpool_limits``."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def single_blas_thread():
    """Context manager pinning BLAS/OpenMP pools of this process to one thread."""
    return _controller().limit(limits=1)


def exclusive():
    """This thread's task has the machine to itself (a member split on the threaded scheduler):
    its few large dense steps may use every core (:func:`large_dense_step`)."""
    return _in_this_thread("exclusive", True)


def large_dense_step():
    """BLAS threads for one large dense step (the SVD of a wide factor): every core inside
    :func:`exclusive`, else unchanged; the loops around it stay on one thread."""
    if getattr(_LOCAL, "exclusive", False):
        return _controller().limit(limits=os.cpu_count() or 1)
    return contextlib.nullcontext()


def blas_limited(function):
    """Decorate a public entry point so its BLAS calls use one thread.

    Their heavy graphs already run under :func:`compute`; what is left in the calling thread
    are loops over small matrices (the right-hand sides of a projected ODE, exponentials and
    SVDs of k × k factors), where more BLAS threads only fight over the cores: Burgers took
    215 s wall with two OpenBLAS threads on a loaded two-core machine and 13 s with one
    (``python benchmarks/blas_threads.py`` measures it).
    """
    @functools.wraps(function)
    def limited(*args, **kwargs):
        with single_blas_thread():
            return function(*args, **kwargs)

    return limited


@contextmanager
def _in_this_thread(name: str, value):
    """Set a thread-local setting of :func:`compute` for the duration of a ``with`` block."""
    previous = getattr(_LOCAL, name, None)
    setattr(_LOCAL, name, value)
    try:
        yield
    finally:
        setattr(_LOCAL, name, previous)


def inline():
    """Run nested computations synchronously in this thread.

    Used inside a task that is itself one unit of parallelism (an ensemble member): its
    graphs run in place instead of being sent back to a scheduler that may have no free
    worker, and BLAS limits are left to whoever started the outer computation.
    """
    return _in_this_thread("inline", True)


def on_cluster(client):
    """Send the nested computations of this thread to the cluster of ``client``.

    Used inside a task that is too large for one worker (a split member, docs/design.md §5.1):
    its sampling blocks, assembly row blocks and TSQR leaves become tasks of the whole
    cluster, and only the small factors come back to this task (it runs seceded from its
    worker's thread pool, inside ``distributed.worker_client``).
    """
    return _in_this_thread("client", client)


def compute(*collections, **kwargs):
    """``dask.compute`` with BLAS pinned to one thread in this process.

    The scheduler is whatever Dask would use (an active distributed ``Client``, the
    ``scheduler=`` keyword, or ``dask.config``); keyword arguments go to ``dask.compute``.
    Inside :func:`inline` the graph runs synchronously in the calling thread; inside
    :func:`on_cluster` it runs on that cluster.
    """
    client = getattr(_LOCAL, "client", None)
    if client is not None:
        return tuple(client.gather(client.compute(list(collections), **kwargs)))
    if getattr(_LOCAL, "inline", False):
        kwargs.setdefault("scheduler", "synchronous")
        return dask.compute(*collections, **kwargs)
    with single_blas_thread():
        return dask.compute(*collections, **kwargs)


def persist(*collections, **kwargs):
    """``dask.persist`` under the same rules as :func:`compute`: on a cluster the results stay in
    the workers' memory (a later graph on them moves only what it returns); in-process they
    are computed here."""
    client = getattr(_LOCAL, "client", None)
    if client is not None:
        return tuple(client.persist(list(collections), **kwargs))
    if getattr(_LOCAL, "inline", False):
        kwargs.setdefault("scheduler", "synchronous")
        return dask.persist(*collections, **kwargs)
    with single_blas_thread():
        return dask.persist(*collections, **kwargs)


def scatter(values: list) -> list:
    """``values`` for the tasks of the next computations: sent to the workers ahead as futures
    where this thread's computations run on a cluster (:func:`on_cluster`), so that large arrays
    do not travel inside the graph (Dask warns above 10 MB, and the scheduler holds the graph);
    elsewhere the values themselves.  Tasks take the futures as arguments."""
    client = getattr(_LOCAL, "client", None)
    return list(client.scatter(list(values))) if client is not None and values else list(values)


class SchedulerUnreachable(ConnectionError):
    """No Dask scheduler answered at the given address in time."""


def _security(tls: dict | None):
    if not tls or not any(tls.values()):
        return None
    from distributed.security import Security

    missing = [k for k in ("ca_file", "cert_file", "key_file") if not tls.get(k)]
    if missing:
        raise ValueError(f"compute.tls needs ca_file, cert_file and key_file; missing: {', '.join(missing)}")
    return Security(tls_ca_file=tls["ca_file"], tls_client_cert=tls["cert_file"], tls_client_key=tls["key_file"],
                    require_encryption=True)


def resolve_scheduler(configured: str, override: str | None = None, cluster: dict | None = None) -> str:
    """The scheduler to use: ``--scheduler`` beats the workflow's ``compute.scheduler``, which
    beats ``compute.cluster`` when it says ``local`` (the default): kind ``address`` gives its
    address, kind ``local`` gives ``DASK_SCHEDULER_ADDRESS`` when that is set (a DaskJob's pod,
    a batch script), and ``local`` otherwise (start the cluster of ``compute.cluster.kind``)."""
    import os

    if override:
        return override
    if configured != "local":
        return configured
    kind = (cluster or {}).get("kind", "local")
    if kind == "address":
        return cluster["address"]
    env = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if kind == "local" and env:
        return env
    return configured


def local_cluster(workers: int, threads: int = 1, dashboard: str | None = None, *, preload: bool = True):
    """The ``LocalCluster`` of ``compute.scheduler: local``: worker processes of ``threads``
    threads each, which import the library as they start (:mod:`pipeline.preload`; ``preload=False``
    leaves that to their first task, as a baseline for benchmarks)."""
    from distributed import LocalCluster

    from pipeline.preload import MODULE

    return LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=dashboard,
                        preload=[MODULE] if preload else [])


@contextmanager
def connect(compute_cfg: dict, *, scheduler: str | None = None, workers: int | None = None):
    """Where a workflow's graph runs; yields a distributed ``Client`` or ``None`` (in-process).

    ``local`` starts the cluster of ``compute.cluster.kind``: a ``LocalCluster`` of worker
    processes with ``threads`` threads each (one BLAS thread per worker: the nanny sets
    ``OMP_NUM_THREADS=1``), Slurm jobs or Kubernetes pods (:mod:`pipeline.clusters`);
    ``threads`` and ``synchronous`` run in this process; anything else is a scheduler address
    (``tcp://…``, ``tls://…``), reached within ``timeout`` seconds with the TLS certificates of ``tls``
    and with at least one worker joined within the same time.
    """
    import os

    cluster_cfg = compute_cfg.get("cluster") or {"kind": "local"}
    choice = resolve_scheduler(compute_cfg["scheduler"], scheduler, cluster_cfg)
    if choice in ("threads", "synchronous"):
        with dask.config.set(scheduler=choice):
            yield None
        return
    from distributed import Client

    if choice == "local" and cluster_cfg["kind"] in ("slurm", "kubernetes"):
        from pipeline import clusters

        start = clusters.slurm_cluster if cluster_cfg["kind"] == "slurm" else clusters.kubernetes_cluster
        with start(cluster_cfg) as client:
            yield client
        return
    if choice == "local":
        n = workers or compute_cfg.get("workers") or os.cpu_count() or 1
        # the dashboard on a free port (":0"): several runs on one machine never collide
        dashboard = ":0" if compute_cfg.get("dashboard", True) else None
        with local_cluster(n, compute_cfg.get("threads", 1), dashboard) as cluster, Client(cluster) as client:
            yield client
        return
    timeout = compute_cfg.get("timeout", 10.0)
    security = _security(compute_cfg.get("tls"))
    if choice.startswith("tls://") and security is None:
        raise ValueError(f"the scheduler {choice!r} speaks TLS: set compute.tls (ca_file, cert_file, key_file)")
    try:
        client = Client(choice, timeout=timeout, security=security)
    except TypeError as err:  # a protocol distributed knows but cannot use here (ucx:// without ucx-py, …)
        raise SchedulerUnreachable(f"cannot connect to the Dask scheduler at {choice!r}: {err}") from None
    except (OSError, TimeoutError) as err:
        raise SchedulerUnreachable(
            f"could not reach the Dask scheduler at {choice!r} within {timeout:g} s ({err}); start it, fix the "
            "address, or use --scheduler local"
        ) from None
    with client:
        try:  # a scheduler without workers would take the members and wait forever, silently
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            raise SchedulerUnreachable(
                f"the Dask scheduler at {choice!r} has no workers: none joined within {timeout:g} s "
                "(compute.timeout); start workers for it (dask worker ADDRESS), or raise compute.timeout"
            ) from None
        yield client
