"""A grid of subdomain boxes over a domain, their interfaces and their points (docs/design.md §1.5).

A large domain is cut into ``counts[a]`` equal boxes along each axis of its bounding box.  Each
box carries its own local basis; neighbouring boxes meet on a *face* (the two boxes, the axis,
the coordinate), where continuity rows glue their bases.  Boxes the domain does not reach are
dropped.  Everything here is geometry and point sets: vectorised over points, a loop over
subdomains at most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.nn.seeding import child_seed

__all__ = ["Face", "Partition", "as_counts"]

#: boxes along one axis at most
MAX_PER_AXIS = 65_536


def as_counts(partition, dim: int) -> tuple[int, ...]:
    """Subdomains per axis from an int (every axis) or one int per axis, checked."""
    counts = (partition,) * dim if isinstance(partition, (int, np.integer)) and not isinstance(partition, bool) \
        else tuple(partition) if isinstance(partition, (list, tuple)) else None
    if counts is None or len(counts) != dim or any(
            isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 1 <= c <= MAX_PER_AXIS for c in counts):
        raise ValueError(f"partition must be a positive integer or a list of {dim} positive integers "
                         f"(subdomains per axis, at most {MAX_PER_AXIS}), got {partition!r}")
    return tuple(int(c) for c in counts)


@dataclass(frozen=True)
class Face:
    """The interface between subdomain ``lower`` and ``upper``, normal to ``axis`` at ``position``.

    A periodic face (``period > 0``) joins the last box along the axis to the first: the upper
    side's points are the lower side's shifted back by ``period``.
    """

    lower: int
    upper: int
    axis: int
    position: float
    period: float = 0.0


@dataclass(frozen=True, eq=False)
class Partition:
    """``counts[a]`` equal boxes per axis of ``[lo, hi]``; subdomain ``i`` is grid cell ``unravel(i)``."""

    lo: np.ndarray
    hi: np.ndarray
    counts: tuple[int, ...]

    def __post_init__(self):
        lo, hi = np.asarray(self.lo, dtype=float).ravel(), np.asarray(self.hi, dtype=float).ravel()
        if lo.shape != hi.shape or lo.shape != (len(self.counts),) or not np.all(hi > lo):
            raise ValueError(f"a partition needs lo < hi with one count per axis, got lo={lo}, hi={hi}, "
                             f"counts={self.counts}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @classmethod
    def of(cls, domain, partition) -> "Partition":
        """The partition of a domain's bounding box into ``partition`` boxes per axis."""
        lo, hi = domain.bounds
        return cls(np.asarray(lo, dtype=float), np.asarray(hi, dtype=float), as_counts(partition, domain.dim))

    @property
    def dim(self) -> int:
        return len(self.counts)

    @property
    def size(self) -> int:
        return math.prod(self.counts)  # Python integers: no overflow before the size check

    @property
    def spacing(self) -> np.ndarray:
        return (self.hi - self.lo) / np.asarray(self.counts)

    def cells(self) -> np.ndarray:
        """``(size, d)`` grid indices of every subdomain, C order."""
        return np.stack(np.unravel_index(np.arange(self.size), self.counts), axis=1)

    def boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners ``(size, d)`` of every box."""
        lo = self.lo + self.cells() * self.spacing
        return lo, lo + self.spacing

    def meeting(self, domain) -> np.ndarray:
        """Indices of the boxes whose inside the domain meets, judged on a cell-centred grid of
        about 256 points per box: a deterministic count for sizing the local bases before any
        point is drawn (a box the domain only touches along its edge does not count)."""
        probes = max(2, int(round(256 ** (1.0 / self.dim))))
        ticks = (np.arange(probes) + 0.5) / probes
        unit = np.stack(np.meshgrid(*[ticks] * self.dim, indexing="ij"), axis=-1).reshape(-1, self.dim)
        lo, _ = self.boxes()
        points = (lo[:, None, :] + unit * self.spacing).reshape(-1, self.dim)
        return np.flatnonzero(domain.contains(points).reshape(self.size, -1).any(axis=1))

    def width_per_box(self, domain, width: int) -> int:
        """Neurons of each local basis for ``width`` in all: shared by the boxes the domain meets."""
        return max(1, int(round(width / max(1, len(self.meeting(domain))))))

    def locate(self, x) -> np.ndarray:
        """The subdomain of each point ``(n, d)`` (a point on a face goes to the upper box; the
        outer faces to the boxes they bound)."""
        x = np.asarray(x, dtype=float)
        cell = np.floor((x - self.lo) / self.spacing).astype(np.int64)
        cell = np.clip(cell, 0, np.asarray(self.counts) - 1)
        return np.ravel_multi_index(tuple(cell.T), self.counts)

    def owner(self, x, kept: np.ndarray) -> np.ndarray:
        """The kept box of each point (``kept``: a boolean mask over the boxes), -1 for none.

        A point on a face belongs to the upper box (:meth:`locate`); where that box is not kept
        (the domain's edge runs along the face), to the kept box across the face.
        """
        x = np.asarray(x, dtype=float)
        out = self.locate(x)
        for axis in range(self.dim):
            bad = ~kept[out]
            if not bad.any():
                break
            for step in (-1e-9, 1e-9):
                nudged = x[bad].copy()
                nudged[:, axis] += step * self.spacing[axis]
                other = self.locate(nudged)
                good = kept[other] & ~kept[out[bad]]
                out[np.flatnonzero(bad)[good]] = other[good]
                bad = ~kept[out]
        return np.where(kept[out], out, -1)

    def faces(self, periodic=()) -> list[Face]:
        """Every interior interface of the grid; along the ``periodic`` axes also the faces that
        join the last box to the first."""
        cells, out = self.cells(), []
        for axis in periodic:
            last = cells[cells[:, axis] == self.counts[axis] - 1]
            first = last.copy()
            first[:, axis] = 0
            lows = np.ravel_multi_index(tuple(last.T), self.counts)
            ups = np.ravel_multi_index(tuple(first.T), self.counts)
            out += [Face(int(i), int(j), axis, float(self.hi[axis]), float(self.hi[axis] - self.lo[axis]))
                    for i, j in zip(lows, ups, strict=True)]
        for axis, count in enumerate(self.counts):
            lower = cells[cells[:, axis] < count - 1]
            upper = lower.copy()
            upper[:, axis] += 1
            lows = np.ravel_multi_index(tuple(lower.T), self.counts)
            ups = np.ravel_multi_index(tuple(upper.T), self.counts)
            positions = self.lo[axis] + (lower[:, axis] + 1) * self.spacing[axis]
            out += [Face(int(i), int(j), axis, float(p)) for i, j, p in zip(lows, ups, positions, strict=True)]
        return out

    def interior_points(self, domain, n: int, method: str, seed) -> list[np.ndarray]:
        """About ``n`` points of the domain, drawn box by box: one array per subdomain.

        ``uniform``: ``n / size`` uniform points per box; ``grid``: a cell-centred grid per box.
        Points outside the domain are dropped, so a box the domain covers partly gets fewer.
        """
        per_box = max(1, int(round(n / self.size)))
        if method == "grid":
            side = max(1, int(round(per_box ** (1.0 / self.dim))))
            ticks = (np.arange(side) + 0.5) / side
            unit = np.stack(np.meshgrid(*[ticks] * self.dim, indexing="ij"), axis=-1).reshape(-1, self.dim)
            unit = np.broadcast_to(unit, (self.size,) + unit.shape)
        elif method == "uniform":
            unit = np.random.default_rng(seed).random((self.size, per_box, self.dim))
        else:
            raise ValueError(f"points must be 'uniform' or 'grid' with a partition, got {method!r}")
        lo, _ = self.boxes()
        points = lo[:, None, :] + unit * self.spacing
        inside = domain.contains(points.reshape(-1, self.dim)).reshape(self.size, -1)
        return [points[i][inside[i]] for i in range(self.size)]

    def face_points(self, domain, face: Face, n: int, seed) -> np.ndarray:
        """``n`` evenly spread points of a face (jittered grid in 3-D and above) inside the domain."""
        lo, hi = self.boxes()
        a, box_lo, box_hi = face.axis, lo[face.lower], hi[face.lower]
        free = [k for k in range(self.dim) if k != a]
        if not free:
            points = np.array([[face.position]])
        else:
            side = max(1, int(np.ceil(n ** (1.0 / len(free)))))
            ticks = (np.arange(side) + 0.5) / side
            unit = np.stack(np.meshgrid(*[ticks] * len(free), indexing="ij"), axis=-1).reshape(-1, len(free))
            if len(free) > 1:
                rng = np.random.default_rng(child_seed(seed, face.lower, face.upper))
                unit = unit + (rng.random(unit.shape) - 0.5) / side
            points = np.empty((len(unit), self.dim))
            points[:, free] = box_lo[free] + unit * (box_hi[free] - box_lo[free])
            points[:, a] = face.position
        return points[domain.contains(points)]
