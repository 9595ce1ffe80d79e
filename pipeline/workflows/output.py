"""Where a run writes: the output path checked, then the store created, replaced, resumed or repaired.

:func:`check_target` runs before any cluster starts: what is at the path may be created (nothing
there but perhaps a run's lock), replaced (``--overwrite``: only a store this tool wrote, by its
marker attributes) or resumed (``--resume``: a store of this very workflow, by its fingerprint).
:func:`open_store` runs once the run holds the store's lock (:mod:`pipeline.locks`): it
writes the template, or repairs a store being resumed (:mod:`pipeline.integrity`) so that
exactly its damaged windows run again (docs/design.md §5.1, §5.3).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.config import ConfigError
from pipeline.store import (LAYOUT_VERSION, StoreExists, check_bucket, check_replaceable, create_store,
                            has_contents, is_url, store_marker, zarr_store)
from pipeline.workflows.base import Plan

__all__ = ["check_target", "discard_if_empty", "open_store"]


def check_target(path: str, plan: Plan, *, overwrite: bool, resume: bool) -> None:
    """What is at ``path`` may be created, replaced or resumed: checked before any cluster starts."""
    if overwrite and resume:
        raise ConfigError("--overwrite and --resume exclude each other")
    check_bucket(path)
    _check_creatable(path)
    if resume:
        if not has_contents(path):
            raise ConfigError(f"--resume: there is no store at {path!r} to resume")
        marker = store_marker(path)
        if marker is None:
            if _done_flags_match(path, plan):  # ours, with its root metadata damaged: repaired on resume
                return
            raise ConfigError(f"--resume: {path!r} is not a store written by swim-pipeline, or not by this "
                              f"workflow (pipeline inspect {path} --verify); it is left as it is")
        if marker["layout_version"] != LAYOUT_VERSION:
            raise ConfigError(f"--resume: the store at {path!r} has layout version {marker['layout_version']} "
                              f"(this version writes {LAYOUT_VERSION}); run it again with --overwrite")
        if marker["workflow_hash"] != plan.spec.attrs["workflow_hash"]:
            raise ConfigError(f"--resume: the store at {path!r} was written by another workflow "
                              "(its settings differ); use a new --output or --overwrite")
        return
    try:
        if has_contents(path) and not overwrite:
            raise StoreExists(f"the output store {path!r} exists; pass --overwrite to replace it "
                              "or --resume to continue it")
        if overwrite:
            check_replaceable(path)
    except StoreExists as err:
        raise ConfigError(str(err)) from None


def _check_creatable(path: str) -> None:
    """A local output path that is, or can become, a directory of this user's: one line otherwise."""
    if is_url(path):
        return
    target = Path(path)
    try:
        if target.exists():
            if not target.is_dir():
                raise ConfigError(f"output path {path!r} is a file, not a store; choose another output path")
            return
        ancestor = next(p for p in target.parents if p.exists())
        if not ancestor.is_dir():
            raise ConfigError(f"output path {path!r}: {str(ancestor)!r} is a file, not a directory")
        limit = os.pathconf(ancestor, "PC_NAME_MAX")
        long = [part for part in target.relative_to(ancestor).parts if len(os.fsencode(part)) > limit]
        if long:
            raise ConfigError(f"output path {path!r}: the name {long[0][:40]!r}… is longer than the file system "
                              f"allows ({limit} bytes)")
        if not os.access(ancestor, os.W_OK | os.X_OK) or str(ancestor.resolve()).startswith(("/proc", "/sys")):
            raise ConfigError(f"output path {path!r}: cannot create it in {str(ancestor)!r} (not writable)")
    except OSError as err:
        raise ConfigError(f"output path {path!r}: {err.strerror or err}") from None


def _done_flags_match(path: str, plan: Plan) -> bool:
    """Whether a store whose root attributes cannot be read has this plan's done flags (its layout)."""
    import zarr

    try:
        done = zarr.open_array(zarr_store(path, read_only=True), path="progress/done", mode="r")
    except Exception:  # noqa: BLE001 - not ours at all
        return False
    var = plan.spec.groups["progress"]["done"]
    return tuple(done.shape) == tuple(plan.spec.sizes[d] for d in var.dims)


def open_store(path: str, plan: Plan, *, overwrite: bool, resume: bool, log) -> None:
    """Create, replace or resume the store (its lock held)."""
    if resume and (store_marker(path) or {}).get("store_state") != "creating":
        from pipeline.integrity import repair

        report = repair(path, plan.spec)
        if report.remaining:
            raise ConfigError(f"--resume: the store at {path!r} could not be repaired: {report.remaining}")
        if not report.ok:
            log(f"repaired the store ({report.summary()}); the damaged windows run again")
        return
    try:  # a store killed while being created is created again by --resume
        create_store(path, plan.spec, overwrite=overwrite or resume)
    except StoreExists as err:
        raise ConfigError(str(err)) from None


def discard_if_empty(path: str, err: Exception) -> None:
    """A store this run created that holds no finished window is removed when the run fails
    (a member's error, not a divergence or a lost scheduler: those keep what they have for
    ``--resume``): the corrected rerun then needs no ``--overwrite``."""
    from pipeline.pde.integrators import DivergenceError
    from pipeline.store import clear, progress

    if isinstance(err, (DivergenceError, ConnectionError)):
        return
    try:
        if progress(path).any():
            return
    except Exception:  # noqa: BLE001 - an unreadable store of this run's own making: nothing worth keeping
        pass
    clear(path)
