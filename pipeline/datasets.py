"""Named synthetic data sets for supervised workflows, examples and benchmarks.

Each entry draws ``(X, y)`` reproducibly from a seed; regression sets are noise-free
functions (noise is added by the caller where asked), so test errors measure the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["DATASETS", "Dataset", "make_dataset"]


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # "regression" or "classification"
    n_features: int
    draw: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]
    description: str


def _sin_cos(n, rng):
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    return x, np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1])


def _gaussian_bumps(n, rng):
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    centres = np.array([[-0.5, -0.3], [0.4, 0.5], [0.3, -0.6]])
    r2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    return x, np.exp(-r2 / 0.05).sum(1)


def _friedman1(n, rng):
    x = rng.uniform(0.0, 1.0, size=(n, 5))
    y = 10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4]
    return x, y


def _spirals(n, rng):
    label = rng.integers(0, 2, size=n)
    t = rng.uniform(0.25, 1.0, size=n) * 3 * np.pi
    radius = t / (3 * np.pi)
    angle = t + np.pi * label
    x = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    x += rng.normal(scale=0.01, size=x.shape)
    return x, label


DATASETS = {
    d.name: d
    for d in (
        Dataset("sin_cos", "regression", 2, _sin_cos, "sin(πx)·cos(πy) on [-1, 1]²"),
        Dataset("gaussian_bumps", "regression", 2, _gaussian_bumps, "three Gaussian bumps (width 0.16) on [-1, 1]²"),
        Dataset("friedman1", "regression", 5, _friedman1, "Friedman #1 on [0, 1]⁵ (no noise dimensions)"),
        Dataset("spirals", "classification", 2, _spirals, "two interleaved spirals, 1.5 turns each"),
    )
}


def make_dataset(name: str, n_samples: int, seed: int = 0):
    """``(X, y, dataset)`` for a named data set."""
    try:
        dataset = DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data function {name!r}; known: {', '.join(DATASETS)}") from None
    x, y = dataset.draw(int(n_samples), np.random.default_rng(seed))
    return x, y, dataset


def load_table(path: str, columns: list[str]) -> np.ndarray:
    """Columns of a CSV file, or 1-D variables of a NetCDF file or zarr store, as ``(n, k)``."""
    from pathlib import Path

    file = Path(path)
    if not file.exists():
        raise ValueError(f"data.path: {path!r} does not exist")
    suffix = file.suffix.lower()
    if suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(file)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"data: column {missing[0]!r} is not in {path!r}; columns: {', '.join(frame.columns)}")
        return frame[columns].to_numpy(dtype=float)
    if suffix in (".nc", ".zarr"):
        import xarray as xr

        ds = xr.open_zarr(file) if suffix == ".zarr" else xr.open_dataset(file)
        missing = [c for c in columns if c not in ds.variables]
        if missing:
            raise ValueError(f"data: variable {missing[0]!r} is not in {path!r}; variables: {', '.join(map(str, ds.variables))}")
        arrays = [np.asarray(ds[c].values, dtype=float) for c in columns]
        if any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays):
            raise ValueError("data: the input and target variables must be 1-D over one sample dimension")
        return np.column_stack(arrays)
    raise ValueError(f"data.path must be a .csv, .nc or .zarr file, got {path!r}")


def workflow_data(data: dict):
    """``(x_train, y_train, x_test, y_test, task)`` of a workflow's ``data`` section."""
    if data.get("path"):
        table = load_table(data["path"], list(data["inputs"]) + [data["target"]])
        if not np.isfinite(table).all():
            raise ValueError(f"data: {data['path']!r} contains NaN or infinite values")
        order = np.random.default_rng(data["seed"]).permutation(len(table))
        n_test = max(1, int(round(data["test_fraction"] * len(table))))
        if len(table) - n_test < 2:
            raise ValueError(f"data: {data['path']!r} has {len(table)} rows, too few to split for training")
        test, train = order[:n_test], order[n_test:]
        x, y = table[:, :-1], table[:, -1]
        task = data["task"]
        if task == "classification":
            y = y.astype(int)
        return x[train], y[train], x[test], y[test], task
    x, y, dataset = make_dataset(data["function"], data["n_train"], data["seed"])
    if data["noise"] and dataset.task == "regression":
        y = y + np.random.default_rng(data["seed"] + 2).normal(scale=data["noise"], size=y.shape)
    x_test, y_test, _ = make_dataset(data["function"], data["n_test"], data["seed"] + 1)
    return x, y, x_test, y_test, dataset.task
