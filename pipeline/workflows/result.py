"""Opening a run's store: the xarray tree, its metrics, and the stored networks re-evaluated.

``open_result(path).tree`` is the plain :class:`xarray.DataTree` of the store (what
``xr.open_datatree(path, engine="zarr")`` gives); :meth:`Result.evaluate` asks the run's
workflow kind to evaluate every member's stored network at new points (and times).  ``path``
is a local path or an fsspec URL (``s3://bucket/run.zarr``, credentials from the environment).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from pipeline.store import LAYOUT_VERSION, exists, is_url, zarr_store
from pipeline.workflows.registry import get_kind

__all__ = ["Result", "open_result"]


@dataclass
class Result:
    """A run's store: the xarray tree and re-evaluation of the stored networks."""

    path: Path | str  # a URL stays a string
    tree: xr.DataTree

    @property
    def attrs(self) -> dict:
        return dict(self.tree.attrs)

    @property
    def dataset(self) -> xr.Dataset:
        """The root group: fields, references, ensemble statistics, coordinates."""
        return self.tree["/"].to_dataset()

    @property
    def metrics(self) -> dict:
        return json.loads(self.tree.attrs.get("metrics", "{}"))

    @property
    def workflow(self) -> str:
        return self.tree.attrs.get("workflow", "")

    @property
    def member_dims(self) -> tuple:
        """The sweep dimensions and ``member`` (replicates): every member-indexed variable starts with them."""
        return tuple(json.loads(self.tree.attrs.get("member_dims", '["member"]')))

    @property
    def members(self) -> int:
        return int(np.prod([self.tree["/"].sizes[d] for d in self.member_dims]))

    def position(self, m: int) -> dict:
        """Flat member index -> its index along every member dimension."""
        sizes = [self.tree["/"].sizes[d] for d in self.member_dims]
        return dict(zip(self.member_dims, np.unravel_index(m, sizes)))

    def sweep_point(self, m: int) -> dict:
        """``sweep key -> (coordinate name, value)`` of member ``m``'s sweep point (a swept null: None)."""
        root, position = self.tree["/"], self.position(m)
        out = {}
        for name, coord in root.coords.items():
            if "sweep_key" in coord.attrs:
                value = coord.isel({d: int(position[d]) for d in coord.dims}).item()
                null = value == "null" or (isinstance(value, float) and np.isnan(value))  # how ensemble stores null
                out[coord.attrs["sweep_key"]] = name, None if null else value
        return out

    def member_label(self, m: int) -> str:
        """``member 3 (beta=40, width=200)``: a flat member index with its sweep point."""
        parts = [f"{name}={'null' if v is None else (f'{v:g}' if isinstance(v, float) else v)}"
                 for name, v in self.sweep_point(m).values()]
        return f"member {m}" + (f" ({', '.join(parts)})" if parts else "")

    def member_dataset(self, group: str, m: int) -> xr.Dataset:
        """Member ``m`` (flat index) of a group, lazily."""
        return self.tree[group].to_dataset().isel({d: int(i) for d, i in self.position(m).items()})

    def member_values(self, group: str, m: int) -> dict:
        return {k: v.values for k, v in self.member_dataset(group, m).data_vars.items()}

    def plot(self, output=None) -> Path:
        """Write a PNG summarising the run (the kind's figure; needs matplotlib); returns its path.

        Default: beside a local store (``run.zarr.png``); for a store at a URL, in the current
        directory under the store's name.
        """
        from pipeline.workflows.plots import pyplot

        self.check_layout()
        plt = pyplot()
        fig = get_kind(self.tree.attrs["kind"]).plot(self, plt)
        fig.tight_layout()
        default = str(self.path).rstrip("/") + ".png"
        out = Path(output) if output else Path(default.rsplit("/", 1)[-1] if is_url(self.path) else default)
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out

    def check_layout(self) -> None:
        version = int(self.tree.attrs.get("layout_version", 1))
        if version != LAYOUT_VERSION:
            raise ValueError(
                f"the store {str(self.path)!r} has layout version {version} (written by swim-pipeline "
                f"{self.tree.attrs.get('version', '0.1')}); this version reads layout {LAYOUT_VERSION}. Its arrays "
                "still open with xarray (result.tree), but evaluate() and plots need a re-run: pipeline run "
                "WORKFLOW --overwrite")

    def evaluate(self, points, times=None) -> xr.DataArray:
        """Every member's ``u`` at ``points`` ``(n, d)`` (paired with ``times`` ``(n,)`` for
        time-dependent runs), as ``(sweep dims…, member, point)`` (systems: ``(…, member,
        field, point)``).

        The stored networks are evaluated directly; time-dependent runs interpolate the stored
        dense coefficient trajectory (no integration).
        """
        self.check_layout()
        kind = get_kind(self.tree.attrs["kind"])
        points = np.atleast_2d(np.asarray(points, dtype=float))
        dim = int(self.tree.attrs.get("dim", points.shape[1]))
        if points.shape[1] != dim:
            raise ValueError(f"points must have {dim} coordinates, got shape {points.shape}")
        try:
            values = kind.evaluate(self, points, times)
        except (ValueError, ImportError):
            raise
        except Exception as err:  # noqa: BLE001 - a chunk that does not decode: damage, not a crash
            raise ValueError(f"a stored network of {str(self.path)!r} cannot be read ({type(err).__name__}: "
                             f"{str(err)[:120]}): the store is damaged; check it with: pipeline inspect "
                             f"{self.path} --verify") from None
        flat = values.reshape(values.shape[0], -1)
        for m in np.flatnonzero(~np.isfinite(flat).all(axis=1)):  # never NaN in place of a damaged network
            bad = int((~np.isfinite(flat[m])).sum())
            raise ValueError(f"{self.member_label(int(m))}: its stored network (basis, coefficients or "
                             f"trajectory) gives NaN at {bad} of {len(points)} points: the store is damaged or "
                             f"incomplete; check it with: pipeline inspect {self.path} --verify")
        root = self.tree["/"]
        sizes = [root.sizes[d] for d in self.member_dims]
        coords = {name: root[name] for name in root.coords if set(root[name].dims) <= set(self.member_dims)}
        if values.ndim == 3:  # a system: every field
            coords["field"] = root["field"]
            return xr.DataArray(values.reshape(sizes + list(values.shape[1:])),
                                dims=self.member_dims + ("field", "point"), coords=coords)
        return xr.DataArray(values.reshape(sizes + [len(points)]), dims=self.member_dims + ("point",),
                            coords=coords)


def open_result(path, verify: bool = False) -> Result:
    """Open a run's store: ``result.tree`` (xarray DataTree), ``result.evaluate(points, times)``.

    ``verify``: first check every chunk and metadata document (:func:`pipeline.integrity.verify`)
    and raise ValueError with the report when the store is damaged.
    """
    path = str(path) if is_url(path) else Path(path)
    if not exists(path):
        raise ValueError(f"no result store at {str(path)!r}")
    if verify:
        from pipeline.integrity import verify as check

        report = check(path)
        if not report.ok:
            raise ValueError(f"{report}\n(pipeline run WORKFLOW --resume repairs it)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = xr.open_datatree(zarr_store(path, read_only=True), engine="zarr")
    except Exception as err:  # noqa: BLE001 - a truncated zarr.json, an undecodable node: one message
        raise ValueError(f"the store {str(path)!r} cannot be opened ({type(err).__name__}: {str(err)[:120]}); "
                         f"check it with: pipeline inspect {path} --verify") from None
    return Result(path, tree)
