"""Sizes checked from the settings alone, before anything is built, allocated or written.

Every size-like key of a validated workflow (its own value and every swept one) gets an
estimate of the memory it needs and of the number of tasks it makes, compared with a limit:
``compute.memory_limit`` if set, else this machine's memory.  A key out of bounds is one
:class:`~pipeline.config.ConfigError` naming it, the estimate and the limit, raised before the
problem is built or the store is created (docs/design.md §5.1).  The estimates are lower
bounds of what the run must hold at once (the points of the collocation set on the client, the
triangular factor and its SVD on a worker), so a run refused here could not have finished.
"""

from __future__ import annotations

import json
import math
import os

from dask.utils import parse_bytes  # '8GB' → 8e9, '16GiB' → 16·2³⁰ (the forms dask and Slurm use)

from pipeline.config import ConfigError
from pipeline.pde.evolution_settings import MAX_BLOCKS, MAX_WINDOWS

__all__ = ["check_resolved_width", "check_sizes", "machine_memory"]

#: tasks of one row-block graph: beyond this the scheduler spends minutes on the graph alone
MAX_ROW_BLOCKS = 1_000_000
MAX_OUTPUTS = 100_000  # output times of one member
MAX_LAYERS = 64
MAX_NAMES = 10_000  # input columns of a data file
MAX_STATES = 20_000  # states of an LTI system: its dense eigendecomposition costs ~N³ (hours beyond)
MAX_STEPS = 100_000_000  # LTI simulation steps, Hamiltonian rollout steps


def machine_memory() -> int | None:
    """This machine's physical memory in bytes (None where it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return None


def _gb(n: float) -> str:
    return f"{min(n, 10**300) / 1e9:.3g} GB"  # a width of 10**600 is still one line, not an OverflowError


def _values(cfg: dict, dotted: str) -> list:
    """The value of ``dotted`` and every value the sweep gives it (ints only, Nones dropped)."""
    node = cfg
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    out = [node] + list(cfg["ensemble"]["sweep"].get(dotted, []))
    flat = []
    for v in out:
        flat.extend(v if isinstance(v, list) else [v])
    return [v for v in flat if isinstance(v, int) and not isinstance(v, bool)]


def _limit(cfg: dict) -> tuple[int | None, str]:
    given = cfg["compute"].get("memory_limit")
    if given:
        return parse_bytes(given), "compute.memory_limit"
    memory = machine_memory()
    return memory, "this machine's memory; compute.memory_limit overrides"


def check_sizes(cfg: dict) -> None:
    """Refuse, before any work, a workflow whose sizes cannot fit or would take the scheduler down."""
    limit, source = _limit(cfg)

    def refuse(key, value, need, what):
        raise ConfigError(f"{key} = {value}: {what} need {_gb(need)}, more than {_gb(limit)} ({source})")

    for key, cap, what in (("time.outputs", MAX_OUTPUTS, "output times"), ("time.windows", MAX_WINDOWS, "windows"),
                           ("time.blocks", MAX_BLOCKS, "time blocks"), ("lti.steps", MAX_STEPS, "steps"),
                           ("hamiltonian.rollout_steps", MAX_STEPS, "rollout steps")):
        for value in _values(cfg, key):
            if value > cap:
                raise ConfigError(f"{key} = {value}: at most {cap} {what} per member")
    _check_lti(cfg, limit, refuse)
    names = (cfg.get("data") or {}).get("inputs") or []
    if len(names) > MAX_NAMES:
        raise ConfigError(f"data.inputs names {len(names)} columns; at most {MAX_NAMES}")
    layers = [v for v in [(cfg.get("model") or {}).get("hidden_layer_sizes")] + list(
        cfg["ensemble"]["sweep"].get("model.hidden_layer_sizes", [])) if isinstance(v, list)]
    if any(len(v) > MAX_LAYERS for v in layers):
        raise ConfigError(f"model.hidden_layer_sizes has {max(len(v) for v in layers)} layers; at most {MAX_LAYERS}")
    widths = _values(cfg, "basis.width") + _values(cfg, "model.hidden_layer_sizes")
    width = max(widths, default=0)
    key = "basis.width" if width in _values(cfg, "basis.width") else "model.hidden_layer_sizes"
    _check_width(cfg, width, key, limit, refuse)
    dim = max(_values(cfg, "problem.params.dim") + [3])
    for key in ("collocation.n_interior", "collocation.n_boundary", "data.n_train", "data.n_test",
                "hamiltonian.n_train", "hamiltonian.n_test"):
        for rows in _values(cfg, key):
            need = 8 * rows * (dim + 2)  # the point set, held by the client that plans the run
            if limit is not None and need > limit:
                refuse(key, rows, need, "the points alone")
            chunk = cfg["compute"].get("chunk_rows") or max(1, (64 << 20) // (8 * (width + 2 or 1)))
            if rows / chunk > MAX_ROW_BLOCKS:
                raise ConfigError(f"{key} = {rows}: {rows // chunk} row blocks of {chunk} rows; at most "
                                  f"{MAX_ROW_BLOCKS} tasks per graph (raise compute.chunk_rows)")


def _check_width(cfg: dict, width: int, key: str, limit, refuse) -> None:
    partitions = [p for p in _values(cfg, "basis.partition") if p is not None]
    if limit is None or not width:
        return
    if partitions:
        # a partition factors each box's basis alone; the member then holds, for every box, its
        # P (width × per box), orthonormal traces and coarse vectors (about as much again)
        # (docs/design.md §1.5). An integer partition counts as a square grid for this check.
        boxes = max(1, min(math.prod(p) if isinstance(p, list) else p * p for p in partitions))
        per_box = -(-width // boxes)
        need = max(4 * 8 * (per_box + 2) ** 2, 3 * 8 * width * (per_box + 2))
        if need > limit:
            refuse(key, width, need, f"the factors of {boxes} boxes")
    else:
        need = 4 * 8 * (width + 2) ** 2  # the triangular factor, and U, Vᵀ and workspace of its SVD
        if need > limit:
            refuse(key, width, need, "the least-squares factor and its SVD")


def check_resolved_width(cfg: dict, settings: str | None) -> None:
    """The width a problem's own defaults gave (``settings``: the plan's resolved settings, JSON),
    where the workflow set none, under the same limit as :func:`check_sizes` (which runs before
    the problem is built): ``advection_diffusion`` without its partition is 6000 global neurons."""
    if _values(cfg, "basis.width") or not settings:
        return
    width = json.loads(settings).get("width")
    if isinstance(width, int) and not isinstance(width, bool):
        limit, source = _limit(cfg)

        def refuse(key, value, need, what):
            raise ConfigError(f"{key} = {value} (the problem's default): {what} need {_gb(need)}, more than "
                              f"{_gb(limit)} ({source}); set a smaller basis.width (or a partition)")

        _check_width(cfg, width, "basis.width", limit, refuse)


def _check_lti(cfg: dict, limit, refuse) -> None:
    """An LTI system's states N: its dense eigendecomposition holds ~4 N² floats and costs ~N³."""
    from pipeline.models.lti_systems import lti_states

    lti = cfg.get("lti")
    if not isinstance(lti, dict):
        return
    sweep = cfg["ensemble"]["sweep"]
    for n in [lti.get("params", {}).get("n")] + list(sweep.get("lti.params.n", [])):
        params = {**lti.get("params", {})}
        if n is not None:
            params["n"] = n
        states = lti_states(lti.get("system"), params)
        if states is None:
            continue
        if states > MAX_STATES:
            raise ConfigError(f"lti.params = {params}: {states} states; at most {MAX_STATES} (a dense "
                              "eigendecomposition of N states costs ~N³)")
        if limit is not None and 4 * 8 * states**2 > limit:
            refuse("lti.params", params, 4 * 8 * states**2, f"the {states} × {states} eigendecomposition and its "
                   "eigenvectors")
