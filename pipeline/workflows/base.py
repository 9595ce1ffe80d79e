"""The interface every workflow kind implements, and the member bookkeeping they share.

A *workflow kind* (static or time-dependent PDE, supervised, Hamiltonian, LTI) is one module
with a :class:`WorkflowKind` subclass: which config keys take effect for it, which devices it
runs on, how it plans a run (typed settings per member and the store's variables), how one
member runs, how a stored member is evaluated, its extra metrics and its plot.  The generic
runner (:mod:`pipeline.workflows.runner`) does everything else: members, the store, the
cluster, progress, resumption and metrics (docs/design.md §5.2).

Member tasks run on workers; everything a task needs travels in its :class:`MemberTask`
(picklable), and the task writes its own regions of the store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.config import ALWAYS_APPLIES, SCHEMA, ConfigError, Section
from pipeline.ensemble import Member, MemberGrid
from pipeline.locks import check_owner
from pipeline.store import StoreSpec, Variable, open_group, write

__all__ = ["Clock", "MemberTask", "Plan", "WorkflowKind", "check_keys", "padded", "set_keys"]


# ----------------------------------------------------------------------------- timing
class Clock:
    """Wall and CPU seconds of named stages (accumulated)."""

    def __init__(self):
        self.stages: dict[str, tuple[float, float]] = {}

    def start(self):
        return time.perf_counter(), time.process_time()

    def stop(self, stage: str, start) -> None:
        wall, cpu = time.perf_counter() - start[0], time.process_time() - start[1]
        w, c = self.stages.get(stage, (0.0, 0.0))
        self.stages[stage] = (w + wall, c + cpu)

    def add(self, stage: str, wall: float, cpu: float = np.nan) -> None:
        w, c = self.stages.get(stage, (0.0, 0.0))
        self.stages[stage] = (w + wall, c + cpu)


def padded(values, size: int) -> np.ndarray:
    """``values`` padded with NaN along the first axis to ``size`` (swept widths share a store)."""
    values = np.asarray(values, dtype=float)
    out = np.full((size,) + values.shape[1:], np.nan)
    out[: len(values)] = values
    return out


# ----------------------------------------------------------------------------- member tasks
@dataclass(frozen=True)
class MemberTask:
    """One member's work: sent to a worker, it writes its own regions of the store."""

    kind: str
    path: str
    member: Member
    grid: MemberGrid
    settings: Any  # the kind's typed settings of this member
    shared: Any  # what every member of the plan needs (output points, times, store sizes)
    windows: int = 1
    stages: tuple = ()
    quiet: bool = True
    assembly_bytes: int = 0  # the member's design matrix if it were formed (decides splitting)
    split: bool = False  # its own graphs run on the whole cluster (docs/design.md §5.1)
    run: str | None = None  # the run holding the store's lock: a task of a run that gave up stops writing

    @property
    def index(self) -> int:
        return self.member.index

    @property
    def region(self) -> dict:
        return self.grid.region(self.member)

    def write(self, group: str, variables: dict, region: dict | None = None) -> None:
        """Region-write ``{name: (dims, values)}`` of this member; ``dims`` omit the member dimensions."""
        check_owner(self.path, self.run)
        lead = (1,) * len(self.grid.dims)
        full = {k: (self.grid.dims + tuple(dims), np.asarray(v).reshape(lead + np.shape(v)))
                for k, (dims, v) in variables.items()}
        write(self.path, group, full, {**self.region, **(region or {})})

    def log(self, message: str) -> None:
        if not self.quiet:
            print(f"  [{self.member.index}] {message}", flush=True)

    def read(self, group: str) -> dict:
        """This member's variables of ``group`` as arrays (without the member dimensions)."""
        where = dict(zip(self.grid.dims, self.grid.position(self.member)))
        ds = open_group(self.path, group, dask=False).isel(where)
        return {k: v.values for k, v in ds.data_vars.items()}

    def done(self) -> np.ndarray:
        """This member's ``done`` flag per window (resumption)."""
        where = dict(zip(self.grid.dims, self.grid.position(self.member)))
        flags = open_group(self.path, "progress", dask=False)["done"].isel(where)
        return flags.values[: self.windows].astype(bool)

    def first_pending(self) -> int:
        """The first window not marked done (``windows`` when the member is finished)."""
        done = self.done()
        return int(np.argmin(done)) if not done.all() else len(done)

    def mark_done(self, window: int) -> None:
        """Mark a window done, after its data is written: a killed run resumes after it."""
        self.write("progress", {"done": (("window",), np.ones(1, dtype="int8"))},
                   {"window": slice(window, window + 1)})

    def write_diagnostics(self, clock: Clock, rel_l2: float | None) -> None:
        """``rel_l2`` and the wall and CPU seconds of each of the kind's stages."""
        wall = [clock.stages.get(s, (np.nan, np.nan))[0] for s in self.stages]
        cpu = [clock.stages.get(s, (np.nan, np.nan))[1] for s in self.stages]
        self.write("diagnostics", {"rel_l2": ((), np.nan if rel_l2 is None else rel_l2),
                                   "wall_seconds": (("stage",), wall), "cpu_seconds": (("stage",), cpu)})


@dataclass
class Plan:
    """A kind's plan of a run: the member tasks and the store's variables."""

    tasks: list[MemberTask]
    spec: StoreSpec
    info: dict = field(default_factory=dict)  # run attributes (problem, params, activation, …)


def member_variables(grid: MemberGrid, stages: tuple, windows: int) -> dict:
    """The groups every kind's store has: ``diagnostics`` (errors, seconds) and ``progress``."""
    g = grid.dims
    return {
        "diagnostics": {
            "rel_l2": Variable(g, attrs={"long_name": "relative L2 error on the output points"}),
            "wall_seconds": Variable(g + ("stage",), attrs={"long_name": "wall-clock seconds per stage", "units": "s"}),
            "cpu_seconds": Variable(g + ("stage",), attrs={"long_name": "CPU seconds per stage", "units": "s"}),
        },
        "progress": {"done": Variable(g + ("window",), "int8", {"long_name": "1 once the window is written"},
                                      chunks={"window": 1})},
    }


# ----------------------------------------------------------------------------- kinds
class WorkflowKind:
    """A workflow kind (think xarray's ``BackendEntrypoint``): subclass and register it.

    Attributes:
        name: stored as the run's ``kind`` attribute; selects the kind when a store is opened.
        label: how messages name it.
        section: the config section that selects it (``problem``, ``data``, ``hamiltonian``, ``lti``).
        sections: the config sections the kind brings (its ``section`` and any other, e.g.
            ``model`` with ``data``): registered into :data:`pipeline.config.SCHEMA`.
        task: what the task section describes, for messages ("a PDE").
        keys: ``section -> keys`` that take effect for this kind, besides the keys every kind
            honours (:data:`pipeline.config.ALWAYS_APPLIES`); any other key set in a workflow
            is refused before work.
        devices: where it computes (``compute.device``).
        stages: timed stages of a member (``diagnostics/wall_seconds``).
        splittable: a member's sampling, assembly and TSQR are Dask graphs that may run on the
            whole cluster (``compute.split_members``) instead of inline in the member's task.
    """

    name: str = ""
    label: str = ""
    section: str = ""
    sections: dict = {}
    task: str = ""
    keys: dict = {}
    devices: tuple = ("cpu",)
    stages: tuple = ()
    splittable: bool = False

    def plan(self, cfg: dict, members: list[Member], grid: MemberGrid, path: str, quiet: bool) -> Plan:
        raise NotImplementedError

    def run(self, task: MemberTask) -> dict:
        """Run (or finish) one member; returns its small metrics (``member``, ``rel_l2``, …)."""
        raise NotImplementedError

    def evaluate(self, result, points: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        """Every member's output at ``points`` (and ``times``): ``(members, n)`` in member order."""
        raise ValueError(f"a {self.label} run cannot be re-evaluated at new points")

    def summary(self, results: list[dict]) -> dict:
        """Metrics beyond the generic ones, from the members' returned metrics."""
        return {}

    def plot(self, result, plt):
        raise ValueError(f"no plot for {self.label} runs")


def set_keys(raw: dict) -> list[str]:
    """Dotted keys a raw workflow sets to something other than their default (sweeps included)."""
    out = []

    def walk(section: Section, node, prefix):
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            spec = section.fields.get(key)
            dotted = f"{prefix}{key}"
            if isinstance(spec, Section):
                walk(spec, value, dotted + ".")
            elif spec is not None and value is not None and value != spec.default:
                out.append(dotted)

    walk(SCHEMA, raw, "")
    ensemble = raw.get("ensemble")
    sweep = ensemble.get("sweep") if isinstance(ensemble, dict) else None
    if isinstance(sweep, dict):
        out += list(sweep)
    return out


def _applies(kind: WorkflowKind, dotted: str) -> bool:
    section, _, rest = dotted.partition(".")
    parts = dotted.split(".")
    if section == kind.section or any(".".join(parts[:i]) in ALWAYS_APPLIES for i in range(1, len(parts) + 1)):
        return True
    key = rest.split(".")[0]
    return key in kind.keys.get(section, ())


def check_keys(raw: dict, kind: WorkflowKind, kinds: list[WorkflowKind]) -> None:
    """Refuse every key set in ``raw`` that does not take effect for ``kind``, naming the kinds
    it applies to; and a device the kind cannot use."""
    for dotted in set_keys(raw):
        if dotted.startswith("ensemble.") or dotted == "compute.device" or _applies(kind, dotted):
            continue
        where = [k.label for k in kinds if _applies(k, dotted)]
        raise ConfigError(f"{dotted} does not apply to {kind.label} workflows"
                          + (f"; it applies to: {', '.join(where)}" if where else "") + ". Remove it.")
    device = (raw.get("compute") or {}).get("device") if isinstance(raw.get("compute"), dict) else None
    if device is not None and device not in kind.devices:
        raise ConfigError(f"compute.device={device}: {kind.label} workflows run on the "
                          f"{' or '.join(d.upper() for d in kind.devices)} only; the GPU path is not built for them "
                          "(use --device cpu)")
