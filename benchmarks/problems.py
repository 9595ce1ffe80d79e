"""The problems the benchmarks share: sampled tanh features of sin(πx)·cos(πy) on [-1, 1]²."""

from __future__ import annotations

import numpy as np


def points(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, 2))


def target(x: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1])


def sampled_network(width: int, seed: int = 1):
    """A SWIM tanh layer of ``width`` neurons sampled on 20 000 points (the same in every process)."""
    from pipeline.nn import root_seed, sample_network

    x = points(20_000, seed=seed + 100)
    return sample_network(x, target(x)[:, None], widths=[width], activation="tanh", sampler="swim",
                          seed=root_seed(seed)).compute(scheduler="synchronous")


def dense_features(network, x: np.ndarray) -> np.ndarray:
    """The feature matrix ``[tanh(x Wᵀ + b) | 1]`` as a plain NumPy user would build it."""
    layer = network.layers[0]
    return np.column_stack([np.tanh(x @ layer.weights.T + layer.biases), np.ones(len(x))])


def streamed_residual(network, coef: np.ndarray, x: np.ndarray, y: np.ndarray, rows: int = 20_000) -> float:
    """``||[Φ | 1] c - y||`` evaluated block by block (never forming the matrix)."""
    total = 0.0
    for i in range(0, len(x), rows):
        phi = network(x[i : i + rows])
        r = phi @ coef[:-1] + coef[-1] - y[i : i + rows]
        total += float(r @ r)
    return total**0.5
