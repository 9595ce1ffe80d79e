"""A Dask worker preload: the worker imports the library while it starts.

Imported on a worker's first member task instead, the library costs that task about a second
(NumPy, SciPy, dask.array, xarray, zarr and every workflow kind): once per worker process, so a
cluster's first workflow loses a second per worker at its start, which scales badly with the
number of members per worker (docs/design.md §5).  The clusters that ``pipeline run`` starts
(local, Slurm, Kubernetes) load this module in each worker process; workers started by hand take
it as ``dask worker ADDRESS --preload pipeline.preload``.

scikit-learn stays lazy (~0.8 s): only supervised members import it.
"""

from __future__ import annotations

import importlib

#: the module Dask's ``--preload`` (or ``preload=``) is given
MODULE = __name__


def dask_setup(worker) -> None:
    """Called by the worker as it starts: import every workflow kind's member code."""
    importlib.import_module("pipeline.workflows.runner")  # run_member and, through it, every kind
