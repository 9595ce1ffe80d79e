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
