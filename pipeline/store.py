"""The zarr store of a run: a template of declared variables, region writes, point grids.

This module knows nothing about workflow kinds.  A kind declares its variables
(:class:`Variable`: dimensions, dtype, attributes, chunks, optionally data known before the
run) in a :class:`StoreSpec`; :func:`create_store` writes the template (metadata, coordinates
and the known data only) and every member task then region-writes its own slices with
:func:`write`.  Zarr chunks never straddle two members, so no two writers ever touch one
chunk and writes need no locks; chunk writes are atomic (temporary file and rename; one PUT on object storage), so a
run killed at any moment loses at most the window being written (docs/design.md §5.3).

A store is a local path or an fsspec URL (``s3://bucket/run.zarr``): :func:`zarr_store` gives
what zarr and xarray open — the local path as it is, or zarr's own ``FsspecStore`` built in
the calling process from its environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_ENDPOINT_URL[_S3]``, ``AWS_DEFAULT_REGION``: what s3fs and botocore read), so every
worker builds its own filesystem and no credential is ever written down or sent anywhere.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr
# imported here, once, when a worker unpickles its first task: a first import of zarr from two
# task threads at once trips over zarr's internal import cycle ("partially initialized module")
import zarr

__all__ = ["LAYOUT_VERSION", "LOCK_NAME", "PointLayout", "StoreExists", "StoreSpec", "Variable", "check_bucket",
           "check_location", "check_replaceable", "clear", "create_store", "exists", "has_contents", "is_url", "location_problem",
           "open_group", "point_layout", "progress", "read_attrs", "store_marker", "write", "write_template", "zarr_store"]

#: Version of the store layout, kept in every store's attributes (1: swim-pipeline 0.1 before
#: the analysis-ready layout; 2: sweep dimensions, gridded fields, dense trajectories).
LAYOUT_VERSION = 2

#: target size of one field chunk: analysis reads whole MB, not one output time at a time
CHUNK_BYTES = 8 * 2**20


class StoreExists(ValueError):
    """The output store exists and neither ``overwrite`` nor ``resume`` was asked for."""


# ----------------------------------------------------------------------------- where a store lives
#: the package each object-storage protocol needs, and the extra that brings it
_EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3")}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
#: protocols whose first path component is a bucket (or container): a store is a key inside it
_BUCKETS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
#: fsspec options of every store at a URL: workers write it while the client polls it and
#: ``--overwrite`` removes it, so no process may answer from a cached listing.  Nothing else:
#: credentials and endpoint come from each process's environment, never from here.
STORAGE_OPTIONS = {"use_listings_cache": False}


def is_url(path) -> bool:
    """An fsspec URL (``s3://bucket/run.zarr``, also chained ``simplecache::s3://…``), not a local path."""
    return any(_URL.match(part) for part in str(path).split("::"))


def location_problem(path) -> str | None:
    """Why ``path`` may not be a store, or None: a URL with credentials or a query string (the message never
    shows them), or a whole bucket."""
    if path is None or not is_url(path):
        return None
    for part in str(path).split("::"):
        scheme, _, rest = part.partition("://")
        authority = rest.split("/", 1)[0]
        if "@" in authority:
            shown = f"{scheme}://***@{authority.rpartition('@')[2]}/{rest.partition('/')[2]}"
            return (f"output.path: the store URL {shown!r} embeds credentials; a store URL takes them from the "
                    "environment only (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_DEFAULT_REGION): "
                    "remove them from the URL")
        if "?" in rest or "#" in rest:
            shown = f"{scheme}://{re.split(r'[?#]', rest)[0]}"
            return (f"output.path: the store URL {shown!r} has a query string or fragment, which may carry secrets; "
                    "give the bucket and key only, with credentials and endpoint in the environment (AWS_*)")
        if scheme in _BUCKETS and not rest.partition("/")[2].strip("/"):  # --overwrite would empty the bucket
            return (f"output.path: {part!r} names a bucket, not a store in it: give a key such as "
                    f"{part.rstrip('/') + '/run.zarr'!r}")
    return None


def check_location(path) -> None:
    """Refuse a URL with credentials (ConfigError) or a protocol whose package is missing (ImportError), before any work."""
    problem = location_problem(path)
    if problem:
        from pipeline.config import ConfigError

        raise ConfigError(problem)
    if is_url(path):
        _filesystem_class(str(path).split("::")[-1].partition("://")[0])


def _filesystem_class(protocol: str):
    import fsspec

    try:
        return fsspec.get_filesystem_class(protocol)
    except ImportError as err:
        package, extra = _EXTRAS.get(protocol, (None, None))
        if package:
            raise ImportError(f"a store at {protocol}:// needs {package}: pip install 'swim-pipeline[{extra}]'") from None
        raise ImportError(f"a store at {protocol}:// needs a package fsspec names: {err}") from None
    except ValueError as err:
        raise ValueError(f"output.path: {protocol}:// is not a protocol fsspec knows ({err})") from None


def zarr_store(path, *, read_only: bool = False):
    """What zarr and xarray open: a local path as it is, a URL as zarr's ``FsspecStore`` (env credentials)."""
    if not is_url(path):
        return path
    from zarr.storage import FsspecStore

    check_location(path)
    return FsspecStore.from_url(str(path), storage_options=dict(STORAGE_OPTIONS), read_only=read_only)


def _filesystem(path):
    """The synchronous fsspec filesystem of a URL and the path in it (listing, existence, removal)."""
    import fsspec

    check_location(path)
    return fsspec.url_to_fs(str(path), **STORAGE_OPTIONS)


def exists(path) -> bool:
    """Whether anything is at ``path``: a file or directory, or an object or prefix of a bucket."""
    if not is_url(path):
        return Path(path).exists()
    fs, key = _filesystem(path)
    return fs.exists(key)


#: the lock object of a running workflow (:mod:`pipeline.locks`): never part of the store's data
LOCK_NAME = "pipeline.lock"


def _entries(path) -> list:
    """What is at ``path`` besides the lock (an empty list: a new store, or only its lock)."""
    if not is_url(path):
        return [p for p in Path(path).iterdir() if p.name != LOCK_NAME] if Path(path).is_dir() else [Path(path)]
    fs, key = _filesystem(path)
    return [e for e in fs.ls(key, detail=False) if e.rstrip("/").rsplit("/", 1)[-1] != LOCK_NAME]


def clear(path) -> None:
    """Remove a store's contents, keeping its lock (the run replacing it holds that)."""
    if not is_url(path):
        for entry in _entries(path):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        return
    fs, _ = _filesystem(path)
    for entry in _entries(path):
        fs.rm(entry, recursive=True)


@dataclass
class Variable:
    """One array of the store: its dimensions, dtype, attributes and chunking.

    ``chunks`` maps a dimension to its chunk size (absent: the whole dimension, except the
    member dimensions of the spec, which are always chunked by one).  ``data`` is written
    with the template (values known before the run, e.g. an exact solution).
    """

    dims: tuple
    dtype: str = "float64"
    attrs: dict = field(default_factory=dict)
    chunks: dict = field(default_factory=dict)
    data: np.ndarray | None = None


@dataclass
class StoreSpec:
    """Everything :func:`create_store` writes: sizes, coordinates, groups of variables, attributes."""

    sizes: dict  # dimension -> length
    member_dims: tuple  # chunked by one: one writer per chunk
    coords: dict  # name -> (dims, values, attrs), on the root group
    groups: dict  # group name ("" is the root) -> {name: Variable}
    attrs: dict = field(default_factory=dict)
    group_coords: dict = field(default_factory=dict)  # group -> {name: (dims, values, attrs)}


@dataclass
class PointLayout:
    """Where output points go in the store: on their grid, or along ``point`` with coordinates.

    Points that fill (most of) a tensor grid are stored on it — a 2-D problem's field is
    ``(…, y, x)`` and plots as an image; grid nodes outside the domain hold NaN.  Anything
    else is scattered: dimension ``point`` with one coordinate per axis attached.
    """

    dims: tuple
    shape: tuple
    coords: dict
    index: np.ndarray | None  # flat grid position of every point (None: scattered)

    def to_grid(self, values) -> np.ndarray:
        """``(…, P)`` values of the points -> ``(…, *shape)`` store layout."""
        values = np.asarray(values)
        if self.index is None:
            return values
        out = np.full(values.shape[:-1] + (int(np.prod(self.shape)),), np.nan, dtype=np.result_type(values, np.float32))
        out[..., self.index] = values
        return out.reshape(values.shape[:-1] + self.shape)

    def from_grid(self, values) -> np.ndarray:
        """The inverse of :meth:`to_grid`: ``(…, *shape)`` -> ``(…, P)``."""
        values = np.asarray(values)
        if self.index is None:
            return values
        return values.reshape(values.shape[: values.ndim - len(self.shape)] + (-1,))[..., self.index]


def _axis_names(dim: int, names=None) -> list[str]:
    if names is not None:
        return list(names)
    return ["x", "y", "z"][:dim] if dim <= 3 else [f"x{i}" for i in range(dim)]


def point_layout(points: np.ndarray, names=None, *, max_fill: float = 4.0) -> PointLayout:
    """The store layout of output points ``(P, d)``; ``names`` of the axes (default x, y, z or x0…).

    Gridded when ``d <= 3`` and the points are nodes of the tensor grid of their distinct
    coordinates with at most ``max_fill`` grid nodes per point.
    """
    points = np.asarray(points, dtype=float)
    n, dim = points.shape
    names = _axis_names(dim, names)
    attrs = [{"long_name": f"coordinate {name}", "units": "1"} for name in names]
    if dim <= 3 and n:
        axes = [np.unique(points[:, i]) for i in range(dim)]
        shape = tuple(len(a) for a in axes)
        if np.prod(shape, dtype=float) <= max_fill * n:
            positions = [np.searchsorted(a, points[:, i]) for i, a in enumerate(axes)]
            # store dimensions in reverse order (z, y, x): images draw x across
            flat = np.ravel_multi_index(tuple(positions[::-1]), shape[::-1])
            if len(np.unique(flat)) == n:
                dims = tuple(names[::-1])
                coords = {name: ((name,), axes[i], {**attrs[i], "axis": name.upper() if name in "xyz" else ""})
                          for i, name in enumerate(names)}
                return PointLayout(dims, shape[::-1], coords, flat)
    coords = {name: (("point",), points[:, i], attrs[i]) for i, name in enumerate(names)}
    return PointLayout(("point",), (n,), coords, None)


def _chunks(var: Variable, sizes: dict, member_dims) -> tuple:
    return tuple(1 if d in member_dims else min(var.chunks.get(d, sizes[d]), sizes[d]) or 1 for d in var.dims)


def field_time_chunk(times: int, values_per_time: int, itemsize: int) -> int:
    """Output times per chunk of a field: about :data:`CHUNK_BYTES` per chunk."""
    return int(max(1, min(times, CHUNK_BYTES // max(values_per_time * itemsize, 1))))


def _template(spec: StoreSpec, name: str) -> xr.Dataset:
    variables = {}
    for key, var in spec.groups[name].items():
        shape = tuple(spec.sizes[d] for d in var.dims)
        dtype = np.dtype(var.dtype)
        fill = np.nan if dtype.kind == "f" else 0
        # one Dask chunk, never computed (the template is written with compute=False): the zarr
        # chunks come from the encoding, so the graph xarray builds has one task per variable
        # instead of one per zarr chunk (thousands for an ensemble: 0.5 s of a run's serial time)
        variables[key] = (var.dims, da.full(shape, fill, chunks=-1, dtype=dtype), var.attrs)
    coords = spec.coords if name == "" else spec.group_coords.get(name, {})
    return xr.Dataset(variables, coords={k: (d, _text_as_objects(v), a) for k, (d, v, a) in coords.items()})


def _text_as_objects(values):
    """Text coordinates as variable-length strings: zarr 3 has a specification for those only."""
    values = np.asarray(values)
    return values.astype(object) if values.dtype.kind == "U" else values


def store_marker(path) -> dict | None:
    """The attributes that mark a store this tool wrote (format, tool version, workflow
    fingerprint), or None for anything else: only such a store is replaced or resumed."""
    try:
        attrs = read_attrs(path)
    except Exception:  # noqa: BLE001 - not a zarr group at all, or its metadata is unreadable
        return None
    if "layout_version" not in attrs or not ({"workflow_hash", "workflow"} & set(attrs)):
        return None
    return {k: attrs.get(k) for k in ("layout_version", "version", "workflow_hash", "store_state")}


def check_bucket(path) -> None:
    """Object storage has no directories to make: the bucket of a store at a URL must exist."""
    if not is_url(path):
        return
    fs, key = _filesystem(path)
    bucket = key.split("/", 1)[0]
    if not fs.exists(bucket):
        raise ValueError(f"the bucket {bucket!r} of {str(path)!r} does not exist, or the credentials in the "
                         "environment cannot see it: create it first")


def has_contents(path) -> bool:
    """Whether anything but a run's lock is at ``path``."""
    return exists(path) and bool(_entries(path))


def check_replaceable(path) -> None:
    """``--overwrite`` replaces only a store this tool wrote; anything else is left alone."""
    if has_contents(path) and store_marker(path) is None:
        raise StoreExists(f"{str(path)!r} exists and is not a store written by swim-pipeline; it is left as it is: "
                          "choose another output path")


def write_template(store, spec: StoreSpec, attrs: dict) -> None:
    """Every group's template (metadata, coordinates, known data) into an empty zarr ``store``;
    ``attrs`` (with ``layout_version`` added) on the root."""
    attrs = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in attrs.items()}
    attrs["layout_version"] = LAYOUT_VERSION
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in spec.groups:
            ds = _template(spec, name)
            if name == "":
                ds.attrs.update(attrs)
            # "a", not "w-": a store being created holds the run's lock already (nothing else)
            encoding = {k: {"chunks": _chunks(v, spec.sizes, spec.member_dims)} for k, v in spec.groups[name].items()}
            ds.to_zarr(store, group=name or None, mode="a", compute=False, consolidated=False, zarr_format=3,
                       encoding=encoding)
            known = {k: v for k, v in spec.groups[name].items() if v.data is not None}
            if known:
                data = xr.Dataset({k: (v.dims, np.asarray(v.data, dtype=v.dtype)) for k, v in known.items()})
                data.to_zarr(store, group=name or None, region={d: slice(None) for d in data.dims},
                             consolidated=False)


def create_store(path, spec: StoreSpec, *, overwrite: bool = False) -> None:
    """Write the template (metadata, coordinates and known data) of a new store.

    The root's ``store_state`` attribute is ``creating`` until every group is written, then
    ``complete``: a store killed while being created is recognised and created again.
    """
    path = str(path) if is_url(path) else Path(path)
    if has_contents(path):
        if not overwrite:
            raise StoreExists(f"the output store {str(path)!r} exists; pass --overwrite to replace it "
                              "or --resume to continue it")
        check_replaceable(path)
        clear(path)
    if not is_url(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        check_bucket(path)
    write_template(zarr_store(path), spec, {**spec.attrs, "store_state": "creating"})
    write_attrs(path, {"store_state": "complete"})


def write(path, group: str, variables: dict, region: dict) -> None:
    """Region-write ``{name: (dims, values)}`` into ``group`` (``""``: the root)."""
    ds = xr.Dataset({k: (dims, np.asarray(v)) for k, (dims, v) in variables.items()})
    region = {d: region.get(d, slice(None)) for d in ds.dims}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(zarr_store(path), group=group or None, region=region, consolidated=False, zarr_format=3)


def open_group(path, group: str = "", *, dask: bool = True) -> xr.Dataset:
    """One group of a store as a lazy dataset (unconsolidated: it may be being written).

    ``dask=False``: lazily indexed NumPy instead of Dask arrays, for the small reads of a member
    task. Computing a Dask array inside a task on a worker sends its graph to the cluster (the
    worker's client) and secedes the task, so every read of a member's flags cost a round trip
    through the scheduler and let another member start on the same core.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_zarr(zarr_store(path, read_only=True), group=group or None, consolidated=False,
                            **({} if dask else {"chunks": None}))


def _zarr_location(path, read_only: bool = False):
    return zarr_store(path, read_only=read_only) if is_url(path) else str(path)


def read_attrs(path) -> dict:
    return dict(zarr.open_group(_zarr_location(path, read_only=True), mode="r").attrs)


def write_attrs(path, attrs: dict, group: str = "") -> None:
    node = zarr.open_group(_zarr_location(path), mode="r+")
    node = node[group] if group else node
    node.attrs.update({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in attrs.items()})


def consolidate(path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(_zarr_location(path))


def progress(path) -> np.ndarray:
    """``done`` flags of a store, one row per member (flat order) and one column per window.

    Read with zarr directly: one small array, no Dask graph (a client polls it every 0.5 s).
    """

    done = zarr.open_array(_zarr_location(path, read_only=True), path="progress/done", mode="r")[...]
    return np.asarray(done).reshape((-1, done.shape[-1]))
