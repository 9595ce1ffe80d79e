"""Workflows: YAML-described runs of one workflow kind, members on a Dask cluster, one zarr store.

``run_workflow(cfg, raw, ...)`` runs a validated workflow (:func:`pipeline.config.load_workflow`);
``open_result(path)`` opens its store.  The kinds (static and time-dependent PDEs, supervised,
Hamiltonian, LTI) live in one module each behind :class:`~pipeline.workflows.base.WorkflowKind`
and are listed in :mod:`pipeline.workflows.registry` (docs/design.md §5.2).
"""

from pipeline.workflows.result import Result, open_result
from pipeline.workflows.runner import run_workflow

__all__ = ["Result", "open_result", "run_workflow"]
