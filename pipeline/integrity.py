"""Integrity of a run's store: what is missing, unreadable or broken, and the repair after which
``--resume`` recomputes exactly that (docs/design.md, "Integrity and repair").

Why: chunk writes are atomic, yet a store can be damaged afterwards (a lost object, an
interrupted copy, a truncated file, an edit).  Zarr reads a missing chunk as its fill value, so
damage would surface silently as NaN or a wrong ensemble mean.  :func:`verify` reads every
node's ``zarr.json`` and decodes every chunk; :func:`repair` rewrites what the run's template
knows and clears the ``done`` marks of damaged windows, so the resumed run recomputes them.

Damage: broken metadata (missing, not JSON, not zarr); a chunk that does not decode; a chunk
that must hold data and is absent.  Zarr never writes a chunk whose values all equal the fill
value, so absence is damage only where data must exist: a member's chunk of a window marked
done, template data (written at creation), ``u_mean``/``u_std`` once ``metrics`` exist.  Never
damage: integer chunks (fill 0 is a value) but ``fingerprint`` and ``rank``; trajectory pieces
past the first chunk; NaN by design (errors without a reference, windows without output
times); a supervised member's network when it stores none.  Which window owns a chunk: its
``window``; its times' (``progress/window_of_time``); its block's; else the member's last.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync as _sync
from zarr.storage import LocalStore, MemoryStore

from pipeline.store import StoreSpec, exists, is_url, write_template, zarr_store

__all__ = ["IntegrityReport", "Problem", "repair", "verify"]

_CHUNK = re.compile(r"^(.*)/(c(?:/\d+)*)$")
_FINAL = {"u_mean", "u_std"}
_NONZERO = {"state/fingerprint", "state/rank", "diagnostics/rank"}  # integers that are never 0 where written
_BY_TRUTH = {"diagnostics/rel_l2", "state/error_squared", "state/reference_squared", "u_exact"}
_NETWORK = ("coefficients/", "basis/", "diagnostics/rank", "diagnostics/singular_values")


@dataclass(frozen=True)
class Problem:
    """One damaged thing: ``array`` (node path, ``""`` the root), ``chunk`` key (None: metadata)."""

    array: str
    chunk: str | None
    reason: str
    members: tuple = ()
    windows: tuple = ()

    def __str__(self) -> str:
        who = "".join(f"{sep}{name} {', '.join(map(str, v))}" for sep, name, v in
                      (("; ", "member", self.members), (", ", "window", self.windows)) if v)
        return f"{self.array or '/'}{f' chunk {self.chunk}' if self.chunk else ''}: {self.reason}{who}"


@dataclass
class IntegrityReport:
    """What :func:`verify` found: ``problems`` (one :class:`Problem` each), chunks read, pending chunks."""

    path: str
    problems: list = field(default_factory=list)
    chunks: int = 0  # chunks read and decoded
    pending: int = 0  # absent chunks of windows not yet done
    remaining: list = field(default_factory=list)  # repair(): the problems it could not repair

    ok = property(lambda self: not self.problems)
    metadata = property(lambda self: [p.array for p in self.problems if p.chunk is None], doc="broken nodes")

    @property
    def restart(self) -> dict:
        """Flat member index -> its first damaged window (where a resumed run starts it again)."""
        out: dict = {}
        for p in (p for p in self.problems if p.array not in _FINAL):
            out.update({m: min(out.get(m, 10**9), *(p.windows or (0,))) for m in p.members})
        return dict(sorted(out.items()))

    def summary(self) -> str:
        kinds = {r: sum(p.reason.startswith(r) for p in self.problems) for r in ("missing", "unreadable", "metadata")}
        return f"{len(self.problems)} problems (" + ", ".join(f"{n} {k}" for k, n in kinds.items() if n) + ")"

    def __str__(self) -> str:
        if self.ok:
            return f"{self.path}: intact ({self.chunks} chunks read, {self.pending} pending)"
        return "\n".join([f"{self.path}: damaged, {self.summary()}"] + [str(p) for p in self.problems])


# ----------------------------------------------------------------------------- the store as keys
def _open(path, read_only=True):  # zarr's store API: a LocalStore, or an FsspecStore for a URL
    return zarr_store(path, read_only=read_only) if is_url(path) else LocalStore(str(path), read_only=read_only)


async def _list(store) -> set:
    return {k async for k in store.list()}


def _get(store, key):
    buf = _sync(store.get(key, prototype=default_buffer_prototype()))
    return None if buf is None else buf.to_bytes()


def _set(store, key, data: bytes) -> None:
    _sync(store.set(key, default_buffer_prototype().buffer.from_bytes(data)))


def _chunks_of(keys, node) -> set:
    return {k for k in keys if (m := _CHUNK.match(k)) and m.group(1) == node}


def _node_problem(store, node: str, data):
    if data is None:
        return "metadata missing (its chunks are there)"
    try:
        array = json.loads(data).get("node_type") == "array"
        (zarr.open_array if array else zarr.open_group)(store, path=node, mode="r")
    except Exception as err:  # noqa: BLE001 - any failure is a broken node
        return f"metadata unreadable ({type(err).__name__}: {str(err)[:80]})"


# ----------------------------------------------------------------------------- verify
def verify(path, spec: StoreSpec | None = None, *, _template_keys=None) -> IntegrityReport:
    """Check every node's metadata and every chunk of the store at ``path`` (``spec``: its template)."""
    if not exists(path):
        raise ValueError(f"no store at {str(path)!r}")
    store, report = _open(path), IntegrityReport(str(path))
    keys = _sync(_list(store))
    nodes = {k[: -len("zarr.json")].rstrip("/") for k in keys if k.rsplit("/", 1)[-1] == "zarr.json"}
    nodes |= {m.group(1) for k in keys if (m := _CHUNK.match(k))} | {""}  # a node without zarr.json too
    nodes |= {"/".join(n.split("/")[:i]) for n in nodes for i in range(n.count("/") + 1)}  # and its parents
    arrays, attrs = {}, {}
    for node in sorted(nodes):
        reason = _node_problem(store, node, _get(store, f"{node}/zarr.json".lstrip("/")))
        if reason:
            lti = re.match(r"^network/(\d+)(/|$)", node)  # an LTI member's own group: the member rewrites it
            report.problems.append(Problem(node, None, reason, *(((int(lti.group(1)),), (0,)) if lti else ())))
        elif json.loads(_get(store, f"{node}/zarr.json".lstrip("/"))).get("node_type") == "array":
            arrays[node] = zarr.open_array(store, path=node, mode="r")
        elif node == "":
            attrs = dict(zarr.open_group(store, mode="r", use_consolidated=False).attrs)
    tkeys = _template_keys if _template_keys is not None else (
        _sync(_list(_template_store(spec))) if spec is not None else set())
    status, values = _decode(arrays, keys, report)
    mdims = tuple(json.loads(attrs["member_dims"])) if "member_dims" in attrs else (
        tuple(arrays["progress/done"].metadata.dimension_names[:-1]) if "progress/done" in arrays else ("member",))
    done = values.get("progress/done")
    shape = done.shape[:-1] if done is not None else None
    done, wot, blocks = (v.reshape(-1, v.shape[-1]) if v is not None and v.shape[:-1] == shape else None
                         for v in (done, values.get("progress/window_of_time"), values.get("state/block")))
    nwin = (wot.max(axis=1) + 1) if wot is not None else (
        np.full(len(done), done.shape[1]) if done is not None else None)  # each member's windows
    ctx = {"arrays": arrays, "status": status, "done": done, "wot": wot, "blocks": blocks, "nwin": nwin, "attrs": attrs,
           "template": spec is not None and _template_names(spec), "tkeys": tkeys, "mdims": mdims, "shape": shape}
    for (node, idx), state in ((k, v) for k, v in status.items() if v != "ok"):
        role, members, windows, required = _owner(node, idx, ctx)
        key = arrays[node].metadata.encode_chunk_key(idx)
        if state == "unreadable":
            report.problems.append(Problem(node, key, "unreadable (does not decode)", members,
                                           tuple(sorted(windows)) or ((0,) if members else ())))
        elif not required:
            report.pending += role == "member"
        elif not _may_be_empty(node, idx, role, members, windows, ctx):
            report.problems.append(Problem(node, key, "missing" + (" (template data)" if role == "template" else ""),
                                           members, tuple(sorted(windows))))
    return report


def _decode(arrays: dict, keys: set, report: IntegrityReport):
    """``(node, chunk index) -> ok | missing | unreadable``, and the arrays that map chunks to windows."""
    status, values = {}, {}
    for node, arr in arrays.items():
        keep = node in ("progress/done", "progress/window_of_time", "state/block")
        out = np.full(arr.shape, arr.fill_value, dtype=arr.dtype) if keep else None
        for idx in np.ndindex(*arr.cdata_shape):
            status[node, idx] = "missing"
            if f"{node}/{arr.metadata.encode_chunk_key(idx)}" in keys:
                try:
                    block = arr.blocks[idx]
                except Exception:  # noqa: BLE001 - a chunk that does not decode
                    status[node, idx] = "unreadable"
                    continue
                report.chunks, status[node, idx] = report.chunks + 1, "ok"
                if keep:
                    out[tuple(slice(i * c, i * c + n) for i, c, n in zip(idx, arr.chunks, block.shape))] = block
        values[node] = out
    return status, values


def _template_names(spec: StoreSpec) -> set:  # coordinates and data known at creation
    return set(spec.coords) | {f"{g}/{k}" for g, cs in spec.group_coords.items() for k in cs} | {
        f"{g}/{k}".lstrip("/") for g, vs in spec.groups.items() for k, v in vs.items() if v.data is not None}


def _owner(node, idx, ctx):
    """(role, members, windows, required) of one chunk."""
    arr, mdims, done = ctx["arrays"][node], ctx["mdims"], ctx["done"]
    dims = tuple(arr.metadata.dimension_names or ())
    lti = re.match(r"^network/(\d+)/", node)
    template = ctx["template"] if ctx["template"] is not False else {"progress/window_of_time"}
    if node in _FINAL:
        return "final", (), (), "metrics" in ctx["attrs"]
    if node in template or (not lti and dims[: len(mdims)] != mdims):
        return "template", (), (), True
    if done is None:  # progress/done unreadable: its metadata problem is reported
        return "member", (), (), False
    if lti:
        return "member", (int(lti.group(1)),), {0}, bool(done[int(lti.group(1)) % len(done), 0])
    m = int(np.ravel_multi_index(idx[: len(mdims)], ctx["shape"]))
    last, flags = int(ctx["nwin"][m]) - 1, done[m]
    if "window" in dims:
        windows = {idx[dims.index("window")]}
    elif "time" in dims and ctx["wot"] is not None:
        c = arr.chunks[dims.index("time")]
        windows = set(ctx["wot"][m, idx[dims.index("time")] * c:(idx[dims.index("time")] + 1) * c].tolist())
    elif "block" in dims and ctx["blocks"] is not None and node.startswith(("basis/", "diagnostics/")):
        b = idx[dims.index("block")]
        windows = {w for w in range(last + 1) if flags[w] and ctx["blocks"][m, w] == b}  # none: an unused block
    elif "time" in dims:  # no window_of_time: the whole member, once it is finished
        return "member", (m,), {0}, bool(flags[last])
    else:
        windows = {last}
    return "member", (m,), windows, any(bool(flags[w]) for w in windows if w < len(flags))


def _may_be_empty(node, idx, role, members, windows, ctx) -> bool:
    """Whether a chunk that must be written may still be absent: all its values equal the fill value."""
    arr, attrs, wot = ctx["arrays"][node], ctx["attrs"], ctx["wot"]
    dims, lead = tuple(arr.metadata.dimension_names or ()), idx[: len(ctx["mdims"])]
    if role != "member":  # template data: where the template has no chunk (without it: integers, fill 0)
        return role == "template" and (f"{node}/{arr.metadata.encode_chunk_key(idx)}" not in ctx["tkeys"]
                                       if ctx["tkeys"] else arr.dtype.kind in "iub")
    network = [n for n in ("coefficients/c", "basis/weights", "basis/biases") if n in ctx["arrays"]]
    return bool((arr.dtype.kind in "iub" and node not in _NONZERO)
                or ("piece" in dims and idx[dims.index("piece")] > 0)
                or (node in _BY_TRUTH and (not attrs.get("has_truth") or attrs.get("kind") == "lti"))
                or (node.endswith("_squared") and wot is not None and not set(windows) & set(wot[members[0]].tolist()))
                or (attrs.get("kind", "supervised") == "supervised" and node.startswith(_NETWORK) and all(
                    ctx["status"].get((n, lead + (0,) * (ctx["arrays"][n].ndim - len(lead)))) in (None, "missing")
                    for n in network)))


# ----------------------------------------------------------------------------- repair
def _template_store(spec: StoreSpec):
    """The run's template in memory: what :func:`pipeline.store.create_store` writes."""
    mem = MemoryStore()
    write_template(mem, spec, {**spec.attrs, "store_state": "complete"})
    return mem


def repair(path, spec: StoreSpec, report: IntegrityReport | None = None) -> IntegrityReport:
    """Make the store at ``path`` consistent with its ``done`` marks; returns the report of the
    damage found (``ok``: there was none), with ``remaining``: what it could not repair.

    Broken metadata is rewritten from the template (the node's chunks are kept), unreadable
    chunks are deleted, damaged template data is rewritten, and each damaged member's ``done``
    marks are cleared from its first damaged window on: ``--resume`` recomputes exactly those.
    """
    template = _template_store(spec)
    names, tkeys = _template_names(spec), _sync(_list(template))
    report = report if report is not None else verify(path, spec, _template_keys=tkeys)
    if report.ok:
        return report
    store, found = _open(path, read_only=False), [p for p in report.problems if p.chunk is None]
    for data, p in ((_get(template, f"{p.array}/zarr.json".lstrip("/")), p) for p in found):
        if data is not None:  # the node's chunks stay
            _set(store, f"{p.array}/zarr.json".lstrip("/"), data)
    second = verify(path, spec, _template_keys=tkeys)  # the repaired nodes' chunks are now checked too
    for node in {p.array for p in second.problems if p.array in names}:  # template data: as created
        for key in _chunks_of(_sync(_list(store)), node) - tkeys:
            _sync(store.delete(key))
        for key in _chunks_of(tkeys, node):
            _set(store, key, _get(template, key))
    for p in second.problems:
        if p.reason.startswith("unreadable") and p.array not in names:
            _sync(store.delete(f"{p.array}/{p.chunk}"))
    if any(p.array in _FINAL for p in second.problems):  # finalisation is pending again: every run ends with it
        zarr.open_group(store, mode="r+", use_consolidated=False).attrs.pop("metrics", None)
    if second.restart:
        done = zarr.open_array(store, path="progress/done", mode="r+")
        for m, w in second.restart.items():
            done[np.unravel_index(m, done.shape[:-1]) + (slice(w, None),)] = 0
    after = verify(path, spec, _template_keys=tkeys)
    problems = list(dict.fromkeys(found + second.problems))
    return IntegrityReport(str(path), problems, second.chunks, after.pending, after.problems)
