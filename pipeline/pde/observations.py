"""Observations of fields for inverse problems: points, values, noise; read from CSV, NetCDF or zarr.

A file holds one row (CSV) or one grid point (NetCDF / zarr, through xarray) per observation:
coordinates named ``x``, ``y``, ``z`` (or ``x0``, ``x1``, … in more dimensions), optionally
``t``, and one column or variable per observed field.  Gridded data are flattened; missing
values (NaN) are dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = ["Observations", "coordinate_names", "load_observations"]


def coordinate_names(dim: int) -> tuple[str, ...]:
    return tuple("xyz"[:dim]) if dim <= 3 else tuple(f"x{i}" for i in range(dim))


@dataclass(frozen=True)
class Observations:
    """``values[i, k]``: field ``fields[k]`` at ``points[i]`` (and ``times[i]``, if given).

    ``noise``: the standard deviation of the observation errors, if known.
    """

    points: np.ndarray
    values: np.ndarray
    fields: tuple = ("u",)
    noise: float | None = None
    times: np.ndarray | None = None

    def __post_init__(self):
        points = np.asarray(self.points, dtype=float)
        values = np.asarray(self.values, dtype=float)
        if points.ndim != 2:
            raise ValueError(f"observation points must be (n, d), got shape {points.shape}")
        values = values[:, None] if values.ndim == 1 else values
        fields = (self.fields,) if isinstance(self.fields, str) else tuple(self.fields)
        if values.shape != (len(points), len(fields)):
            raise ValueError(f"observation values must be (n_points, n_fields) = ({len(points)}, {len(fields)}) "
                             f"for the fields {list(fields)}, got {values.shape}")
        if not (np.isfinite(points).all() and np.isfinite(values).all()):
            raise ValueError("observations must be finite (drop missing values first)")
        if self.noise is not None and not (isinstance(self.noise, (int, float)) and np.isfinite(self.noise)
                                           and self.noise >= 0):
            raise ValueError(f"observation noise must be a non-negative number, got {self.noise!r}")
        times = None if self.times is None else np.asarray(self.times, dtype=float).reshape(-1)
        if times is not None and len(times) != len(points):
            raise ValueError(f"observation times must have one entry per point ({len(points)}), got {len(times)}")
        object.__setattr__(self, "points", points)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "noise", None if not self.noise else float(self.noise))
        object.__setattr__(self, "times", times)

    def __len__(self) -> int:
        return len(self.points)

    def check(self, domain, *, fields=None, span=None) -> None:
        """Raise a ``ValueError`` for points outside the domain (or times outside ``span``) or
        fields the problem does not have."""
        if self.points.shape[1] != domain.dim:
            raise ValueError(f"observations have {self.points.shape[1]} coordinates but the domain has {domain.dim}")
        outside = ~domain.contains(self.points)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(f"{int(outside.sum())} of {len(self)} observation points lie outside the domain "
                             f"(the first: {self.points[i].tolist()})")
        if fields is not None:
            unknown = [f for f in self.fields if f not in fields]
            if unknown:
                raise ValueError(f"observations of unknown field(s) {unknown}; the problem's fields are {list(fields)}")
        if span is not None:
            if self.times is None:
                raise ValueError("observations of a time-dependent problem need times (a 't' coordinate)")
            bad = (self.times < span[0]) | (self.times > span[1])
            if bad.any():
                raise ValueError(f"{int(bad.sum())} observation times lie outside the time span {list(span)}")


def load_observations(path, *, dim: int, fields, noise=None, time: bool = False) -> Observations:
    """Read observations from ``.csv``, ``.nc`` (NetCDF) or ``.zarr`` (see the module docstring)."""
    path = os.fspath(path)
    fields = (fields,) if isinstance(fields, str) else tuple(fields)
    coords = coordinate_names(dim) + (("t",) if time else ())
    if not os.path.exists(path):
        raise ValueError(f"observations file {path!r} does not exist")
    if path.endswith(".csv"):
        table = np.genfromtxt(path, delimiter=",", names=True, dtype=float, encoding="utf-8")
        names = table.dtype.names or ()
        columns = {n: np.atleast_1d(table[n]) for n in names}
    elif path.endswith((".nc", ".zarr")) or os.path.isdir(path):
        import xarray as xr

        ds = xr.open_zarr(path, consolidated=None) if path.endswith(".zarr") or os.path.isdir(path) \
            else xr.open_dataset(path)
        missing = [f for f in fields if f not in ds.data_vars]
        if missing:
            raise ValueError(f"observations file {path!r} has no variable(s) {missing}; it has {list(ds.data_vars)}")
        flat = ds[list(fields)].to_dataframe().reset_index()
        columns = {n: flat[n].to_numpy(dtype=float) for n in flat.columns if n in coords + fields}
    else:
        raise ValueError(f"observations file {path!r}: use .csv, .nc or .zarr")
    missing = [n for n in coords + fields if n not in columns]
    if missing:
        raise ValueError(f"observations file {path!r} lacks column(s) {missing}; it needs {list(coords + fields)}")
    points = np.stack([columns[c] for c in coordinate_names(dim)], axis=1)
    values = np.stack([columns[f] for f in fields], axis=1)
    keep = np.isfinite(values).all(axis=1) & np.isfinite(points).all(axis=1)
    times = columns["t"][keep] if time else None
    return Observations(points[keep], values[keep], fields, noise, times)
