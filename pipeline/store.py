"""The result store: one zarr (format 3) store per run, written through xarray (DESIGN.md §4).

Layout (``m`` members, ``T`` output times for time-dependent runs, ``P`` output points):

    /                u, u_exact (member[, time], point); u_mean, u_std (ensemble[, time], point)
                     over the replicates of each sweep point; coordinates time, x (point, dim),
                     the members' sweep values and sweep point;
                     attributes: the validated workflow (YAML), version, kind, problem, metrics
    /coefficients    c (member[, time], coefficient)      basis coefficients [c | c0 | enrichments]
    /basis           weights (member, block, neuron, dim), biases, curvature (member, block, neuron)
    /state           y (member, window, state), rank, block (member, window)   reduced ODE states
    /diagnostics     rank, singular_values (member, block, …), rel_l2, wall/cpu seconds per stage
    /progress        done (member, window)                written last, after a window's data

Hamiltonian runs store H on the test states as ``u``/``u_exact`` (``x`` holds the states) and
add ``/rollout`` (trajectory, trajectory_exact, energy, energy_drift); LTI runs store the
outputs as ``u``/``u_exact`` (member, time, output), no sampled basis, and each member's
constructed network in ``/network/<member>``.

The store is created as a template (``to_zarr(compute=False)``: metadata only), then every
member region-writes its own slices from whatever worker runs it: chunks never straddle two
writers, so writes need no locks, and a window is marked done only after its data is in
place — a run killed at any moment resumes at the first window not marked done.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

__all__ = ["Layout", "Result", "StoreExists", "basis_variables", "create_store", "open_result", "progress",
           "stored_layer", "write"]

#: Version of this layout, stored with every run.
LAYOUT_VERSION = 1


class StoreExists(ValueError):
    """The output store exists and neither ``overwrite`` nor ``resume`` was asked for."""


@dataclass
class Layout:
    kind: str  # "static", "evolution", "supervised", "hamiltonian" or "lti"
    members: int
    points: np.ndarray | None  # (P, d) output points; None: the field axis is not spatial
    times: np.ndarray | None  # (T,) output times (evolution)
    coefficients: int  # basis coefficients per member
    width: int
    dim: int
    blocks: int = 1
    windows: int = 1
    state: int = 1
    singular_values: int = 1
    stages: tuple = ("sample", "project", "integrate", "write")
    dtype: str = "float32"
    sweep: dict = field(default_factory=dict)  # coordinate name -> values per member
    sweep_point: np.ndarray | None = None  # member -> index of its sweep point (replicates share one)
    u_exact: np.ndarray | None = None  # (member[, time], point)
    exact_by_members: bool = False  # u_exact is written by the members (it depends on their inputs)
    field_axis: str = "point"  # name of the last dimension of u
    field_size: int = 0  # its length where there are no points
    time_chunk: int | None = None  # output times per chunk (default 1: written window by window)
    sampled_basis: bool = True  # coefficients, basis weights, ranks and singular values
    extra: dict = field(default_factory=dict)  # further groups: name -> lazy xr.Dataset


def _zeros(shape, chunks, dtype):
    return da.zeros(shape, chunks=chunks, dtype=dtype)


def _nan(shape, chunks):
    return da.full(shape, np.nan, chunks=chunks, dtype="float64")


def _template(layout: Layout) -> dict[str, xr.Dataset]:
    m = layout.members
    p = len(layout.points) if layout.points is not None else layout.field_size
    timed = layout.times is not None
    t = len(layout.times) if timed else 0
    axis = layout.field_axis
    field_dims = ("member", "time", axis) if timed else ("member", axis)
    field_shape = (m, t, p) if timed else (m, p)
    field_chunks = (1, layout.time_chunk or 1, p) if timed else (1, p)
    groups_of = np.zeros(m, dtype=int) if layout.sweep_point is None else np.asarray(layout.sweep_point)
    n_groups = int(groups_of.max()) + 1
    coords = {"member": np.arange(m), "sweep_point": ("member", groups_of)}
    if layout.points is not None:
        coords["x"] = ((axis, "dim"), layout.points)
    else:
        coords[axis] = np.arange(p)
    if timed:
        coords["time"] = ("time", layout.times, {"standard_name": "time", "long_name": "time", "axis": "T"})
    for name, values in layout.sweep.items():
        coords[name] = ("member", np.asarray(values))
    root = xr.Dataset(
        {"u": (field_dims, _nan(field_shape, field_chunks).astype(layout.dtype),
               {"long_name": "solution", "units": "1"})},
        coords=coords,
    )
    if layout.u_exact is not None:
        root["u_exact"] = (field_dims, da.from_array(layout.u_exact.astype(layout.dtype), chunks=field_chunks),
                           {"long_name": "exact or reference solution"})
    elif layout.exact_by_members:
        root["u_exact"] = (field_dims, _nan(field_shape, field_chunks).astype(layout.dtype),
                           {"long_name": "reference solution"})
    agg_dims = ("ensemble",) + field_dims[1:]
    agg_shape = (n_groups,) + field_shape[1:]
    root["u_mean"] = (agg_dims, _nan(agg_shape, field_chunks).astype(layout.dtype),
                      {"long_name": "mean over the replicates of each sweep point"})
    root["u_std"] = (agg_dims, _nan(agg_shape, field_chunks).astype(layout.dtype),
                     {"long_name": "standard deviation over the replicates of each sweep point"})
    n_c = layout.coefficients
    c_dims = ("member", "time", "coefficient") if timed else ("member", "coefficient")
    c_shape = (m, t, n_c) if timed else (m, n_c)
    groups = {
        "": root,
        "coefficients": xr.Dataset({"c": (c_dims, _nan(c_shape, c_shape[:-1] and (1,) * (len(c_shape) - 1) + (n_c,)))}),
        "basis": xr.Dataset({
            "weights": (("member", "block", "neuron", "dim"),
                        _nan((m, layout.blocks, layout.width, layout.dim), (1, 1, layout.width, layout.dim))),
            "biases": (("member", "block", "neuron"), _nan((m, layout.blocks, layout.width), (1, 1, layout.width))),
            "curvature": (("member", "block", "neuron"), _nan((m, layout.blocks, layout.width), (1, 1, layout.width)),
                          {"long_name": "a of quadratic neurons σ(w·x + a||x||² + b) (0: ridge neurons)"}),
        }),
        "diagnostics": xr.Dataset({
            "rank": (("member", "block"), _zeros((m, layout.blocks), (1, layout.blocks), "int64")),
            "singular_values": (("member", "block", "sv"),
                                _nan((m, layout.blocks, layout.singular_values), (1, 1, layout.singular_values))),
            "rel_l2": (("member",), _nan((m,), (1,))),
            "wall_seconds": (("member", "stage"), _nan((m, len(layout.stages)), (1, len(layout.stages)))),
            "cpu_seconds": (("member", "stage"), _nan((m, len(layout.stages)), (1, len(layout.stages)))),
        }, coords={"stage": list(layout.stages)}),
        "progress": xr.Dataset({"done": (("member", "window"), _zeros((m, layout.windows), (1, 1), "int8"))}),
    }
    if not layout.sampled_basis:
        del groups["coefficients"], groups["basis"]
        groups["diagnostics"] = groups["diagnostics"].drop_vars(["rank", "singular_values"])
    groups.update(layout.extra)
    if timed:
        groups["state"] = xr.Dataset({
            "y": (("member", "window", "state"), _nan((m, layout.windows, layout.state), (1, 1, layout.state))),
            # the same state as basis coefficients [a | a_t], independent of the reduced coordinates
            "c_end": (("member", "window", "state"), _nan((m, layout.windows, layout.state), (1, 1, layout.state))),
            "fingerprint": (("member", "window"), _zeros((m, layout.windows), (1, 1), "int64")),
            "rank": (("member", "window"), _zeros((m, layout.windows), (1, 1), "int64")),
            "block": (("member", "window"), _zeros((m, layout.windows), (1, 1), "int64")),
            # float64 sums of squared error and reference per window: exact metrics however the
            # fields are stored, and kept across resumption
            "error_squared": (("member", "window"), _nan((m, layout.windows), (1, 1))),
            "reference_squared": (("member", "window"), _nan((m, layout.windows), (1, 1))),
        })
    return groups


def create_store(path, layout: Layout, attrs: dict, *, overwrite: bool = False) -> None:
    """Write the template (metadata and coordinates only) of a new store."""
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise StoreExists(f"the output store {str(path)!r} exists; pass --overwrite to replace it "
                              "or --resume to continue it")
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    groups = _template(layout)
    groups[""].attrs.update({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in attrs.items()})
    groups[""].attrs["layout_version"] = LAYOUT_VERSION
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, ds in groups.items():
            known = "u_exact" in ds and layout.u_exact is not None
            lazy = ds.drop_vars(["u_exact"]) if known else ds
            lazy.to_zarr(path, group=name or None, mode="w-", compute=False, consolidated=False, zarr_format=3)
            if known:  # known before the run: written now
                exact = ds[["u_exact"]]
                exact.drop_vars(list(exact.coords)).to_zarr(path, mode="a", consolidated=False)


def basis_variables(layer, width: int) -> dict:
    """``weights``, ``biases`` and ``curvature`` of a layer, padded with NaN to ``width`` neurons."""
    def padded(values):
        out = np.full((width,) + np.shape(values)[1:], np.nan)
        out[: len(values)] = values
        return out[None, None]

    curvature = np.zeros(layer.width) if layer.curvature is None else layer.curvature
    return {"weights": (("member", "block", "neuron", "dim"), padded(layer.weights)),
            "biases": (("member", "block", "neuron"), padded(layer.biases)),
            "curvature": (("member", "block", "neuron"), padded(curvature))}


def stored_layer(basis: xr.Dataset, m: int, block: int, activation):
    """The layer of member ``m``, block ``block`` from a store's ``/basis`` group."""
    from pipeline.nn import DenseLayer

    biases = basis["biases"].values[m, block]
    keep = np.isfinite(biases)
    curvature = basis["curvature"].values[m, block][keep] if "curvature" in basis else None
    return DenseLayer(basis["weights"].values[m, block][keep], biases[keep], activation, curvature)


def write(path, group: str, variables: dict, region: dict) -> None:
    """Region-write ``{name: (dims, values)}`` into ``group`` (``""``: the root)."""
    ds = xr.Dataset({k: (dims, np.asarray(v)) for k, (dims, v) in variables.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, group=group or None, region=region, consolidated=False)


def progress(path) -> np.ndarray:
    """``done`` flags ``(member, window)`` of a store."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_zarr(path, group="progress", consolidated=False)["done"].values


def read_attrs(path) -> dict:
    import zarr

    return dict(zarr.open_group(str(path), mode="r").attrs)


def finalize(path, metrics: dict) -> None:
    """Ensemble mean and spread (computed out of core from the store), metrics, consolidation."""
    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = xr.open_zarr(path, consolidated=False)
        root = root.assign_coords(sweep_point=root["sweep_point"].load())
        u = root["u"].astype("float64")
        groups = u.groupby("sweep_point")
        replicates = int(np.bincount(root["sweep_point"].values).min())
        stats = xr.Dataset({"u_mean": groups.mean("member").astype(root["u"].dtype),
                            "u_std": groups.std("member", ddof=1 if replicates > 1 else 0).astype(root["u"].dtype)})
        stats = stats.rename({"sweep_point": "ensemble"}).drop_vars(list(stats.coords), errors="ignore")
        stats = stats.drop_vars([c for c in stats.coords])
        stats.to_zarr(path, region={d: slice(None) for d in stats["u_mean"].dims}, consolidated=False)
        group = zarr.open_group(str(path), mode="r+")
        group.attrs["metrics"] = json.dumps(metrics)
        zarr.consolidate_metadata(str(path))


@dataclass
class Result:
    """A run's store: the xarray tree and re-evaluation of the stored networks."""

    path: Path
    tree: xr.DataTree

    @property
    def attrs(self) -> dict:
        return dict(self.tree.attrs)

    @property
    def metrics(self) -> dict:
        return json.loads(self.tree.attrs.get("metrics", "{}"))

    @property
    def workflow(self) -> str:
        return self.tree.attrs.get("workflow", "")

    def evaluate(self, points, times=None) -> xr.DataArray:
        """``u`` of every member at ``points`` ``(n, d)`` (paired with ``times`` ``(n,)``).

        Rebuilt from the stored networks, so any point works.  For time-dependent runs the
        member's projection is rebuilt from its stored basis and integrated from the stored
        state at the start of the window holding each requested time (no interpolation).
        """
        from pipeline.nn import SampledNetwork

        if self.tree.attrs["kind"] == "lti":
            raise ValueError("an LTI run has no spatial basis: its outputs are u (member, time, output) in the "
                             "tree and its network is in /network/<member>")
        points = np.atleast_2d(np.asarray(points, dtype=float))
        basis = self.tree["basis"].to_dataset()
        dim = basis.sizes["dim"]
        if points.shape[1] != dim:
            raise ValueError(f"points must have {dim} coordinates, got shape {points.shape}")
        kind = self.tree.attrs["kind"]
        members = self.tree["/"].sizes["member"]
        out = np.empty((members, len(points)))
        if kind != "evolution":
            coef = self.tree["coefficients"].to_dataset()["c"].values
            width = int(np.count_nonzero(np.isfinite(basis["biases"].values[0, 0])))
            if coef.shape[1] - width - 1 > 0 and np.isfinite(coef[0, width + 1:]).any():
                raise ValueError("evaluate() cannot rebuild enrichment functions; read u from the tree instead")
            flow_step = float(self.tree.attrs.get("flow_step", 0.0)) if kind == "hamiltonian" else 0.0
            for m in range(members):
                layer = stored_layer(basis, m, 0, self.tree.attrs["activation"])
                c = coef[m, : layer.width]
                out[m] = SampledNetwork((layer,))(points) @ c + coef[m, layer.width]
                if flow_step:  # H̃ = Ĥ + (Δt/2) ∂_qĤ · ∂_pĤ of a flow-map fit
                    g = layer.gradient(points, c)
                    n = dim // 2
                    out[m] += 0.5 * flow_step * np.sum(g[:, :n] * g[:, n:], axis=1)
            return xr.DataArray(out, dims=("member", "point"))
        if times is None:
            raise ValueError("this run is time-dependent: pass times (one per point)")
        times = np.asarray(times, dtype=float).reshape(-1)
        if times.shape[0] != points.shape[0]:
            raise ValueError(f"times must have one entry per point ({points.shape[0]}), got {times.shape[0]}")
        from pipeline.runner import replay_member

        for m in range(members):
            out[m] = replay_member(self, m, points, times)
        return xr.DataArray(out, dims=("member", "point"))


def open_result(path) -> Result:
    """Open a run's store: ``result.tree`` (xarray DataTree), ``result.evaluate(points, times)``."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no result store at {str(path)!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = xr.open_datatree(path, engine="zarr")
    return Result(path, tree)
