"""Where graphs run: computing with one BLAS thread per worker thread.

Every stage builds Dask graph pieces; this module is where they are computed.  Whatever the
scheduler (synchronous, threads, a ``LocalCluster`` or a remote one), heavy kernels are
BLAS/LAPACK calls inside tasks, and the parallelism must come from Dask, not from BLAS threads
fighting over the same cores: two OpenBLAS threads inside each of two Dask threads on a
2-core machine ran a small solve ~27x slower (DESIGN.md §7).  Distributed workers started by
a nanny already get ``OMP_NUM_THREADS=1`` and friends; in-process schedulers get the limit
from :func:`compute`.
"""

from __future__ import annotations

import dask
from threadpoolctl import threadpool_limits

__all__ = ["compute", "single_blas_thread"]


def single_blas_thread():
    """Context manager pinning BLAS/OpenMP pools of this process to one thread."""
    return threadpool_limits(limits=1)


def compute(*collections, **kwargs):
    """``dask.compute`` with BLAS pinned to one thread in this process.

    The scheduler is whatever Dask would use (an active distributed ``Client``, the
    ``scheduler=`` keyword, or ``dask.config``); keyword arguments go to ``dask.compute``.
    """
    with single_blas_thread():
        return dask.compute(*collections, **kwargs)
