"""Collocation point rules on the unit cube and boundary samples (used by every domain).

A draw is a pure function of its seed: pseudo-random (``"uniform"``), quasi-random
(``"sobol"``, ``"halton"``, scrambled, from ``scipy.stats.qmc``) or ``"grid"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BoundarySample", "METHODS", "unit_cube_points"]

METHODS = ("uniform", "sobol", "halton", "grid")


def _seed(seed) -> np.random.SeedSequence:
    return seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)


def _check_count(n, name="n"):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")


def unit_cube_points(n: int, dim: int, method: str = "uniform", seed=None) -> np.ndarray:
    """``n`` points in ``[0, 1]^dim`` by one of :data:`METHODS`.

    ``"grid"`` gives the ``m^dim`` cell-centred tensor grid with the largest ``m`` such that
    ``m^dim <= n`` (at least 2 per axis).
    """
    _check_count(n)
    if method not in METHODS:
        raise ValueError(f"point method must be one of {METHODS}, got {method!r}")
    if n == 0:
        return np.empty((0, dim))
    if method == "uniform":
        return np.random.default_rng(_seed(seed)).random((n, dim))
    if method == "grid":
        m = max(2, int(math.floor(n ** (1.0 / dim) + 1e-9)))
        axis = (np.arange(m) + 0.5) / m
        return np.stack(np.meshgrid(*([axis] * dim), indexing="ij"), axis=-1).reshape(-1, dim)
    from scipy.stats import qmc  # here: scipy.stats takes 0.5 s to import, which a worker may never need

    rng = np.random.default_rng(_seed(seed))
    engine = qmc.Sobol(dim, scramble=True, seed=rng) if method == "sobol" else qmc.Halton(dim, scramble=True, seed=rng)
    if method == "sobol":
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():  # balance warning for n not a power of two
                warnings.simplefilter("ignore", UserWarning)
                return engine.random(n)
    return engine.random(n)


@dataclass(frozen=True)
class BoundarySample:
    """Boundary points, their outward unit normals and the part of the boundary each is on."""

    points: np.ndarray
    normals: np.ndarray
    parts: np.ndarray  # integer label per point, see Domain.part_names

    def __len__(self) -> int:
        return len(self.points)

    def select(self, mask) -> "BoundarySample":
        return BoundarySample(self.points[mask], self.normals[mask], self.parts[mask])

    @staticmethod
    def concatenate(samples) -> "BoundarySample":
        samples = list(samples)
        return BoundarySample(
            np.concatenate([s.points for s in samples]),
            np.concatenate([s.normals for s in samples]),
            np.concatenate([s.parts for s in samples]),
        )
