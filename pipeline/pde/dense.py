"""Dense output of coefficient trajectories: piecewise Chebyshev interpolants (DESIGN.md §3.3).

A window's trajectory ``a(t)`` (basis coefficients, ``u(x, t) = Ψ(x) a(t)``) is stored as its
values at the ``NODES`` Chebyshev points of the second kind (Chebyshev–Lobatto: both ends of a
piece are nodes) of ``pieces`` equal sub-intervals.  Evaluation at any times is a barycentric
interpolation — a sparse ``(times × pieces·NODES)`` matrix with ``NODES`` entries per row —
times the stacked values: one sparse–dense product, no Python loop over times or pieces, and a
pure function of the three arrays (:func:`evaluate_pieces`), so a store can keep the arrays and
evaluate without the network or the integrator.  The field is then one GEMM,
``Ψ(points) @ a(t)ᵀ`` (:func:`evaluate_field`).

Why Lobatto points: the ends of every piece are nodes, so neighbouring pieces agree exactly at
their common boundary and the interpolant reproduces the window's start state; the
interpolation is stable (Lebesgue constant < 3 for 17 nodes) and the barycentric weights are
explicit, ``(-1)^j`` halved at the ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse

__all__ = ["DenseTrajectory", "MAX_PIECES", "NODES", "estimate_pieces", "evaluate_field", "evaluate_pieces",
           "fit_dense"]

#: Nodes per piece (degree 16).  For an oscillation e^{iωt} the interpolation error on a piece
#: of length h is about 2 J_17(ωh/2) ≈ 2 (ωh/4)^17 / 17!, so at a relative tolerance of 1e-10
#: a piece may span ωh ≈ 7 rad, i.e. ~14 stored values per period of the fastest resolved mode
#: (degree 8: ~43 per period; degree 32: ~8, but then coarse pieces waste more of a store's
#: fixed layout on slow windows and every evaluation touches 33 values).  16 is the knee.
NODES = 17

#: Most pieces one window may use (the piece axis of a store's fixed layout).  A window that
#: needs more is too long for its dynamics: use more windows.
MAX_PIECES = 1024

_DEGREE = NODES - 1
#: The nodes on [-1, 1] in increasing order, and their barycentric weights.
_X = -np.cos(np.pi * np.arange(NODES) / _DEGREE)
_W = (-1.0) ** np.arange(NODES)
_W[[0, -1]] *= 0.5
#: Check points: the angular midpoints between neighbouring nodes, where |∏(x - x_j)| (and the
#: interpolation error of a resolved function) peaks.
_CHECK = -np.cos(np.pi * (np.arange(_DEGREE) + 0.5) / _DEGREE)


def _barycentric(s: np.ndarray) -> np.ndarray:
    """``(len(s), NODES)`` interpolation weights at local coordinates ``s`` in [-1, 1]."""
    d = s[:, None] - _X[None, :]
    hit = d == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        q = _W / d
    rows = hit.any(axis=1)
    if rows.any():  # a time on a node takes the node's value (the formula would divide 0 by 0)
        q[rows] = hit[rows]
    return q / q.sum(axis=1, keepdims=True)


_CHECK_WEIGHTS = _barycentric(_CHECK)  # (NODES - 1, NODES): the same at every piece


def evaluate_pieces(starts, ends, values, t) -> np.ndarray:
    """Values at times ``t`` of the piecewise interpolant: ``(len(t), n)``.

    Args:
        starts, ends: ``(pieces,)`` contiguous piece bounds sorted by start (pieces of several
            windows may be concatenated).  Entries with a NaN start (padding of a store with
            fewer pieces than its capacity) are ignored.
        values: ``(pieces, NODES, n)``: values at the Chebyshev–Lobatto points
            ``(start + end)/2 - (end - start)/2 · cos(πj / (NODES - 1))`` of each piece.
        t: times in ``[starts[0], ends[-1]]`` (a ValueError otherwise).
    """
    starts = np.asarray(starts, dtype=float)
    ends = np.asarray(ends, dtype=float)
    values = np.asarray(values, dtype=float)
    if values.ndim != 3 or values.shape[1] != NODES or starts.shape != ends.shape \
            or starts.shape != values.shape[:1]:
        raise ValueError(f"expected starts, ends (pieces,) and values (pieces, {NODES}, n); got shapes "
                         f"{starts.shape}, {ends.shape}, {values.shape}")
    keep = ~np.isnan(starts)
    if not keep.all():
        starts, ends, values = starts[keep], ends[keep], values[keep]
    if starts.size == 0:
        raise ValueError("the dense trajectory has no pieces")
    t = np.asarray(t, dtype=float)
    if t.ndim != 1:
        raise ValueError(f"times must be a 1-D array, got shape {t.shape}")
    n = values.shape[2]
    if t.size == 0:
        return np.empty((0, n))
    lo, hi = starts[0], ends[-1]
    outside = ~((t >= lo) & (t <= hi))  # also catches NaN
    if outside.any():
        raise ValueError(f"times {t[outside][:3].tolist()} lie outside the dense trajectory's span [{lo!r}, {hi!r}]")
    piece = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
    a, b = starts[piece], ends[piece]
    s = np.clip(2.0 * ((t - a) / (b - a)) - 1.0, -1.0, 1.0)  # exactly ∓1 at a piece's ends
    weights = _barycentric(s)
    # Row i of the sparse matrix holds the NODES weights of time i in the columns of its piece.
    columns = piece[:, None] * NODES + np.arange(NODES)[None, :]
    matrix = scipy.sparse.csr_matrix((weights.ravel(), columns.ravel(), np.arange(0, t.size * NODES + 1, NODES)),
                                     shape=(t.size, len(starts) * NODES))
    return np.asarray(matrix @ values.reshape(-1, n))


@dataclass
class DenseTrajectory:
    """``a(t)`` on one window: ``values[p, j]`` at the j-th Chebyshev–Lobatto point of piece p.

    ``block`` is the time block whose network the coefficients belong to; ``error`` is the
    largest interpolation error measured at the check points relative to the fit's scale.
    Arrays padded with NaN pieces (a store's fixed layout) evaluate the same.
    """

    starts: np.ndarray  # (pieces,)
    ends: np.ndarray  # (pieces,)
    values: np.ndarray  # (pieces, NODES, n)
    block: int = 0
    error: float = float("nan")

    def __call__(self, t) -> np.ndarray:
        """``(len(t), n)`` at times ``t`` (a scalar gives ``(n,)``)."""
        scalar = np.ndim(t) == 0
        out = evaluate_pieces(self.starts, self.ends, self.values, np.atleast_1d(np.asarray(t, dtype=float)))
        return out[0] if scalar else out

    @property
    def pieces(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.starts)))

    @property
    def span(self) -> tuple[float, float]:
        keep = ~np.isnan(self.starts)
        return float(self.starts[keep][0]), float(self.ends[keep][-1])

    def padded(self, capacity: int = MAX_PIECES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(starts, ends, values)`` padded with NaN to ``capacity`` pieces (a store's fixed layout)."""
        p = self.pieces
        if p > capacity:
            raise ValueError(f"{p} pieces do not fit a capacity of {capacity}")
        keep = ~np.isnan(self.starts)
        starts = np.full(capacity, np.nan)
        ends = np.full(capacity, np.nan)
        values = np.full((capacity, NODES, self.values.shape[2]), np.nan)
        starts[:p], ends[:p], values[:p] = self.starts[keep], self.ends[keep], self.values[keep]
        return starts, ends, values


def evaluate_field(dense: DenseTrajectory, network, points, t) -> np.ndarray:
    """``u(points, t)``: ``(len(t), len(points))`` = ``a(t) [Φ(points) | 1]ᵀ`` — one GEMM."""
    a = dense(np.atleast_1d(np.asarray(t, dtype=float)))
    features = np.asarray(network(np.asarray(points, dtype=float)))
    return a[:, :-1] @ features.T + a[:, -1:]


def estimate_pieces(span: float, tol: float, rate, amplitude=1.0, scale: float = 1.0) -> int:
    """Equal pieces for modes ``v e^{λt}`` with ``|λ| = rate`` and amplitudes ``|v|`` to be
    interpolated within ``tol · max(1, scale)`` (vectorised over modes; the largest wins;
    modes below that threshold are ignored).

    From the Chebyshev coefficients of an exponential, the error on a piece of length ``h`` is
    about ``2 amplitude (rate h / 4)^NODES / NODES!``.
    """
    rate = np.abs(np.atleast_1d(np.asarray(rate, dtype=float)))
    amplitude = np.broadcast_to(np.abs(np.asarray(amplitude, dtype=float)), rate.shape)
    threshold = tol * max(1.0, scale)
    live = (rate > 0) & (amplitude > threshold) & np.isfinite(rate) & np.isfinite(amplitude)
    if not live.any():
        return 1
    log_fact = math.lgamma(NODES + 1)
    # rate h / 4 = (threshold N! / (2 amplitude))^(1/N)
    h = 4.0 / rate[live] * np.exp((np.log(threshold / (2.0 * amplitude[live])) + log_fact) / NODES)
    pieces = float(span) / float(np.min(h))
    return int(min(max(math.ceil(pieces), 1), MAX_PIECES))


def _sample_grid(sample, t0: float, t1: float, pieces: int, offsets: np.ndarray) -> np.ndarray:
    """``(pieces, len(offsets), n)``: samples at ``t0 + p h + offsets`` (``h = (t1 - t0)/pieces``)."""
    h = (t1 - t0) / pieces
    grid = getattr(sample, "grid", None)
    if grid is not None:  # samplers that propagate piece to piece (fixed offsets: few exponentials)
        return np.asarray(grid(t0, h, pieces, offsets), dtype=float)
    starts = t0 + (t1 - t0) * np.arange(pieces) / pieces
    times = np.clip(starts[:, None] + offsets[None, :], t0, t1)
    values = np.asarray(sample(times.ravel()), dtype=float)
    return values.reshape(pieces, len(offsets), -1)


def fit_dense(sample: Callable, t0: float, t1: float, tol: float, *, pieces: int | None = None,
              rate: float | None = None, output: np.ndarray | None = None, endpoints=None,
              block: int = 0) -> DenseTrajectory:
    """Piecewise Chebyshev interpolant of ``sample`` on ``[t0, t1]`` within a relative tolerance.

    Args:
        sample: ``sample(times) -> (len(times), n)`` at any times in ``[t0, t1]`` (vectorised).
            A sampler with ``grid(t0, h, pieces, offsets) -> (pieces, len(offsets), n)`` (values
            at ``t0 + p h + offsets``) is sampled through it.
        tol: the largest error at the check points (the angular midpoints between nodes) must be
            at most ``tol · max(1, max_t ‖sample(t)‖)`` — Euclidean norms over the components,
            measured in the sampled space (for reduced coordinates with orthonormal rows, the
            relative L2 error of the field).
        pieces: initial number of equal pieces (e.g. from the solver's steps); else from ``rate``
            (the fastest rate |λ| of the dynamics, :func:`estimate_pieces`); else 1.
        output: ``(n_out, n)``: store ``values @ outputᵀ`` instead (e.g. reduced coordinates →
            basis coefficients; the error is controlled where the sampled space is well scaled).
        endpoints: ``(value at t0, value at t1)`` known exactly (an integrator's stored states): they
            replace the samples there, so consecutive windows join exactly.

    The search doubles the pieces until the tolerance is met; when the first try already meets
    it, it halves while it still does (fewer pieces, smaller stores); then one more try at the
    count the error's ``pieces^-NODES`` decay predicts between the last failing and the passing
    count.  More than :data:`MAX_PIECES` raises a ValueError: the window is too long for its
    dynamics.  ``DenseTrajectory.error`` is the measured relative error.
    """
    t0, t1 = float(t0), float(t1)
    if not (np.isfinite(t0) and np.isfinite(t1) and t1 > t0):
        raise ValueError(f"the dense output needs an increasing span, got [{t0}, {t1}]")
    if pieces is None:
        pieces = estimate_pieces(t1 - t0, tol, rate) if rate is not None else 1
    pieces = int(min(max(int(pieces), 1), MAX_PIECES))
    offsets_unit = np.concatenate([(_X + 1.0) / 2.0, (_CHECK + 1.0) / 2.0])

    def attempt(p):
        h = (t1 - t0) / p
        offsets = offsets_unit * h
        offsets[NODES - 1] = h
        grid = _sample_grid(sample, t0, t1, p, offsets)
        nodes, checks = grid[:, :NODES], grid[:, NODES:]
        nodes[:-1, -1] = nodes[1:, 0]  # shared boundaries: one value (exact continuity)
        if endpoints is not None:
            nodes[0, 0], nodes[-1, -1] = endpoints
        err = float(np.max(np.linalg.norm(np.matmul(_CHECK_WEIGHTS, nodes) - checks, axis=-1)))
        scale = max(1.0, float(np.max(np.linalg.norm(grid, axis=-1))))
        if not np.isfinite(err):
            raise ValueError(f"the trajectory is not finite on [{t0}, {t1}]")
        return nodes, err / scale

    found, tried = None, {}
    while True:
        nodes, err = tried[pieces] = attempt(pieces)
        if err <= tol:
            found = pieces
            break
        if pieces >= MAX_PIECES:
            raise ValueError(
                f"the trajectory on [{t0:g}, {t1:g}] needs more than {MAX_PIECES} pieces of {NODES} Chebyshev nodes "
                f"for a relative error of {tol:.1e} (measured {err:.1e} with {MAX_PIECES}); use more windows "
                "(setting `windows`, config `time.windows`)")
        pieces = min(2 * pieces, MAX_PIECES)
    if len(tried) == 1:  # the first guess met the tolerance: halve while it still does
        while pieces > 1:
            tried[pieces // 2] = attempt(pieces // 2)
            if tried[pieces // 2][1] > tol:
                break
            pieces //= 2
            found = pieces
    # Between the largest failing and the passing count, the error falls like pieces^-NODES once
    # resolved: one more try at the predicted count (+10%) saves up to half the pieces.
    failed = [p for p, (_, e) in tried.items() if e > tol and p < found]
    if failed:
        p_fail = max(failed)
        ratio = tried[p_fail][1] / tol
        guess = math.ceil(1.1 * p_fail * ratio ** (1.0 / NODES))
        if p_fail < guess < found and ratio < 1e6:  # only in the asymptotic regime
            tried[guess] = attempt(guess)
            if tried[guess][1] <= tol:
                found = guess
    nodes, err = tried[found]
    starts = t0 + (t1 - t0) * np.arange(found) / found
    values = nodes if output is None else np.matmul(nodes, np.asarray(output, dtype=float).T)
    return DenseTrajectory(starts, np.append(starts[1:], t1), np.ascontiguousarray(values), block=block, error=err)
