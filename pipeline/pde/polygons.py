"""Polygons (any simple polygon, edges ``edge0``, …), the L-shape, and domains given by the user's samplers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from pipeline.nn.seeding import child_seed
from pipeline.pde.domains import BoundarySample, Domain, _apportion, _seed, unit_cube_points

__all__ = ["LShape", "Polygon", "UserDomain"]


@dataclass(frozen=True, eq=False)
class Polygon(Domain):
    """A simple polygon in 2-D given by its vertices (either orientation); edges are parts."""

    vertices: np.ndarray

    def __post_init__(self):
        v = np.asarray(self.vertices, dtype=float)
        if v.ndim != 2 or v.shape[1] != 2 or len(v) < 3 or not np.isfinite(v).all():
            raise ValueError(f"Polygon needs at least 3 finite 2-D vertices, got shape {v.shape}")
        area2 = np.sum(v[:, 0] * np.roll(v[:, 1], -1) - np.roll(v[:, 0], -1) * v[:, 1])
        if area2 == 0:
            raise ValueError("Polygon vertices enclose no area")
        object.__setattr__(self, "vertices", v if area2 > 0 else v[::-1].copy())  # counter-clockwise

    dim = 2

    @property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        return self.vertices, np.roll(self.vertices, -1, axis=0)

    @property
    def part_names(self):
        return tuple(f"edge{i}" for i in range(len(self.vertices)))

    @property
    def bounds(self):
        return self.vertices.min(0), self.vertices.max(0)

    def _on_boundary(self, x, tol=1e-12):
        a, b = self.edges
        ab = b - a
        t = np.clip(((x[:, None, :] - a[None]) * ab[None]).sum(-1) / (ab * ab).sum(-1)[None], 0, 1)
        closest = a[None] + t[..., None] * ab[None]
        scale = max(1.0, float(np.abs(self.vertices).max()))
        return (np.linalg.norm(x[:, None, :] - closest, axis=-1) <= tol * scale).any(axis=1)

    def contains(self, x, *, strict=False):
        x = np.asarray(x, dtype=float)
        a, b = self.edges
        # Even-odd ray casting, all points against all edges at once.
        px, py = x[:, 0:1], x[:, 1:2]
        crosses = ((a[None, :, 1] > py) != (b[None, :, 1] > py))
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = a[None, :, 0] + (py - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) / (b[None, :, 1] - a[None, :, 1])
        inside = (crosses & (px < x_cross)).sum(axis=1) % 2 == 1
        on = self._on_boundary(x)
        return (inside & ~on) if strict else (inside | on)

    def boundary_measure(self):
        a, b = self.edges
        return float(np.linalg.norm(b - a, axis=1).sum())

    def _sample_boundary(self, n, method, seed):
        a, b = self.edges
        lengths = np.linalg.norm(b - a, axis=1)
        counts = _apportion(n, lengths)
        seed = _seed(seed)
        samples = []
        for i, count in enumerate(counts):
            if count == 0:
                continue
            t = unit_cube_points(count, 1, method, child_seed(seed, i))[:, 0]
            pts = a[i] + t[:, None] * (b[i] - a[i])
            tangent = (b[i] - a[i]) / lengths[i]
            normal = np.array([tangent[1], -tangent[0]])  # outward for counter-clockwise order
            samples.append(BoundarySample(pts, np.tile(normal, (len(pts), 1)), np.full(len(pts), i)))
        return BoundarySample.concatenate(samples)


def LShape() -> Polygon:
    """``(-1, 1)² \\ [0, 1) × (-1, 0]``: the re-entrant corner (angle 3π/2) is at the origin."""
    return Polygon(np.array([[-1.0, -1.0], [0.0, -1.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [-1.0, 1.0]]))


@dataclass(frozen=True, eq=False)
class UserDomain(Domain):
    """A domain given by the user's samplers.

    Args:
        dim: dimension.
        interior: ``interior(n, rng) -> (n, dim)`` points.
        boundary: ``boundary(n, rng) -> (points, normals)``.
        contains: optional ``contains(x) -> bool (n,)`` (needed for set operations only).
        bounds: optional ``(lo, hi)``.
    """

    dim: int
    interior: Callable
    boundary: Callable
    contains_fn: Callable | None = None
    box: tuple | None = field(default=None)

    def contains(self, x, *, strict=False):
        if self.contains_fn is None:
            raise ValueError("this UserDomain was given no `contains_fn`; set operations need one")
        return np.asarray(self.contains_fn(np.asarray(x)), dtype=bool)

    @property
    def bounds(self):
        if self.box is None:
            raise ValueError("this UserDomain was given no bounding `box`")
        return np.asarray(self.box[0], float), np.asarray(self.box[1], float)

    def boundary_measure(self):
        return 1.0

    def _sample_interior(self, n, method, seed):
        pts = np.asarray(self.interior(n, np.random.default_rng(_seed(seed))), dtype=float)
        if pts.shape != (n, self.dim):
            raise ValueError(f"the interior sampler returned shape {pts.shape}, expected {(n, self.dim)}")
        return pts

    def _sample_boundary(self, n, method, seed):
        pts, normals = self.boundary(n, np.random.default_rng(_seed(seed)))
        pts, normals = np.asarray(pts, float), np.asarray(normals, float)
        if pts.shape != (n, self.dim) or normals.shape != pts.shape:
            raise ValueError(f"the boundary sampler must return two ({n}, {self.dim}) arrays")
        return BoundarySample(pts, normals, np.zeros(n, dtype=int))
