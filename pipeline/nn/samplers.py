"""Samplers of hidden weights and biases, one *weight block* (a slice of neurons) at a time.

- :class:`ELMSampler` — random features: ``w ~ N(0, σ² I)``, ``b ~ U[-η, η]``, data-agnostic.
- :class:`SWIMSampler` — *sample where it matters*: each neuron comes from a pair of points
  ``(x1, x2)`` (``w = s1 (x2 - x1) / ||x2 - x1||²``, ``b = -<w, x1> - s2``), drawn with
  probability proportional to ``max_k |y_k(x2) - y_k(x1)| / ||x2 - x1||``.
  ``mode="uniform"`` (U-SWIM) draws pairs uniformly; ``mode="adaptive"`` (A-SWIM) is U-SWIM
  first, then SWIM with the fitted function as ``y`` — the estimators and solvers run the
  two passes, the sampler only says which pass needs which values.

Pairs with ``x1 == x2`` (duplicate points) or ``y(x1) == y(x2)`` get probability 0 — the
``swimnetworks`` reference clips the distance instead, which turns every neuron constant on
data with duplicates — and when every pair has ``Δy = 0`` the draw falls back to uniform.
Candidate pairs come from a *pool* (a fixed subsample of the data, see
:mod:`pipeline.nn.sampling`), so the cost of sampling does not grow with the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.nn.activations import Activation

__all__ = ["ELMSampler", "SWIMSampler", "SAMPLERS", "get_sampler", "swim_parameters"]


def swim_parameters(x_from: np.ndarray, x_to: np.ndarray, s1: float, s2: float):
    """Weights ``(n, d)`` and biases ``(n,)`` of the neurons built on the pairs ``(x_from, x_to)``.

    The pre-activation is ``-s2`` at ``x_from`` and ``s1 - s2`` at ``x_to``.
    """
    delta = x_to - x_from
    dist = np.linalg.norm(delta, axis=1, keepdims=True)
    weights = s1 * (delta / dist) / dist
    biases = -np.sum(weights * x_from, axis=1) - s2
    return weights, biases


@dataclass(frozen=True)
class ELMSampler:
    """Random features: ``w ~ N(0, weight_scale² I)``, ``b ~ U[-bias_scale, bias_scale]``.

    ``curvature_scale > 0`` adds a curvature ``a ~ U[-curvature_scale, curvature_scale]`` per
    neuron: quadratic neurons ``σ(w·x + a ||x||² + b)`` (see :class:`DenseLayer`), drawn after
    ``w`` and ``b`` so the ridge part is the same as without it.

    ``directions`` ``(d, k)`` (orthonormal columns, e.g. an active subspace) add
    ``Σ_i g_i v_i`` with ``g_i ~ N(0, direction_scale²)`` to every weight vector: in high
    dimensions random directions are nearly orthogonal to any given one, so the few directions
    a solution varies along must be put into the weights explicitly.
    """

    weight_scale: float = 1.0
    bias_scale: float = 1.0
    curvature_scale: float = 0.0
    directions: np.ndarray | None = field(default=None, compare=False)
    direction_scale: float = 1.0

    name = "elm"
    #: passes of the sampling procedure; ELM needs no data values
    passes = ("agnostic",)

    def __post_init__(self):
        for key in ("weight_scale", "bias_scale", "curvature_scale", "direction_scale"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float, np.floating)) and np.isfinite(value) and value >= 0):
                raise ValueError(f"ELMSampler {key} must be a finite non-negative float, got {value!r}")
        if self.directions is not None:
            directions = np.atleast_2d(np.asarray(self.directions, dtype=float))
            if directions.ndim != 2 or not np.isfinite(directions).all():
                raise ValueError(f"ELMSampler directions must be a finite (d, k) array, got shape {directions.shape}")
            object.__setattr__(self, "directions", directions)

    def sample_block(self, n_neurons: int, x_pool, y_pool, rng: np.random.Generator, activation: Activation):
        d = x_pool.shape[1]
        weights = self.weight_scale * rng.standard_normal((n_neurons, d))
        biases = rng.uniform(-self.bias_scale, self.bias_scale, size=n_neurons)
        curvature = rng.uniform(-self.curvature_scale, self.curvature_scale, size=n_neurons) \
            if self.curvature_scale > 0 else None
        if self.directions is not None:
            if self.directions.shape[0] != d:
                raise ValueError(f"ELMSampler directions have {self.directions.shape[0]} rows but the data {d} columns")
            weights += (self.direction_scale * rng.standard_normal((n_neurons, self.directions.shape[1]))) \
                @ self.directions.T
        return (weights, biases) if curvature is None else (weights, biases, curvature)


@dataclass(frozen=True)
class SWIMSampler:
    """Sample where it matters.

    Args:
        mode: ``"data"`` (SWIM with the given ``y``), ``"uniform"`` (U-SWIM) or
            ``"adaptive"`` (A-SWIM: a U-SWIM pass, then SWIM on the fitted values).
        constants: ``(s1, s2)`` overriding the activation's own (the hook for custom
            activations or scalings).
        candidates_per_neuron: candidate pairs drawn per neuron of a block; more candidates
            resolve the pair density more finely.
        local_fraction: share of candidate pairs drawn between a point and one of its
            ``neighbours`` nearest pool points instead of uniformly.  Uniform pairs are mostly
            far apart, so steep features (a shock a few hundredths wide) are almost never
            straddled by a candidate; local pairs put such neurons within reach of the density.
            0 reproduces plain SWIM.
        neighbours: how many nearest neighbours local pairs choose from.
    """

    mode: str = "data"
    constants: tuple[float, float] | None = None
    candidates_per_neuron: int = 16
    local_fraction: float = 0.0
    neighbours: int = 8

    name = "swim"
    MODES = ("data", "uniform", "adaptive")

    def __post_init__(self):
        if self.mode not in self.MODES:
            raise ValueError(f"SWIMSampler mode must be one of {self.MODES}, got {self.mode!r}")
        if self.constants is not None:
            c = tuple(self.constants)
            if len(c) != 2 or not all(np.isfinite(v) for v in c) or c[0] == 0:
                raise ValueError(f"SWIMSampler constants must be two finite floats (s1 != 0), got {self.constants!r}")
        if not (isinstance(self.candidates_per_neuron, (int, np.integer)) and self.candidates_per_neuron >= 1):
            raise ValueError(
                f"candidates_per_neuron must be a positive integer, got {self.candidates_per_neuron!r}"
            )
        if not (0.0 <= float(self.local_fraction) <= 1.0):
            raise ValueError(f"local_fraction must lie in [0, 1], got {self.local_fraction!r}")
        if not (isinstance(self.neighbours, (int, np.integer)) and self.neighbours >= 1):
            raise ValueError(f"neighbours must be a positive integer, got {self.neighbours!r}")

    @property
    def passes(self) -> tuple[str, ...]:
        """Which values each sampling pass draws pairs by: none, the data, or the fit."""
        return {"data": ("data",), "uniform": ("uniform",), "adaptive": ("uniform", "fitted")}[self.mode]

    def constants_for(self, activation: Activation) -> tuple[float, float]:
        """``(s1, s2)``: the override if given, else the activation's own."""
        return tuple(self.constants) if self.constants is not None else activation.swim_constants

    def sample_pairs(self, n_neurons: int, x_pool, y_pool, rng: np.random.Generator):
        """Indices ``(idx_from, idx_to)`` into the pool of the pairs of ``n_neurons`` neurons."""
        n_pool = x_pool.shape[0]
        if n_pool < 2:
            raise ValueError(
                f"SWIM sampling needs pairs of points, but the pool has n_samples = {n_pool}; "
                "provide at least two distinct points"
            )
        n_candidates = self.candidates_per_neuron * n_neurons
        idx_from = rng.integers(0, n_pool, size=n_candidates)
        idx_to = (idx_from + rng.integers(1, n_pool, size=n_candidates)) % n_pool
        n_local = int(round(self.local_fraction * n_candidates))
        if n_local:
            k = min(self.neighbours, n_pool - 1)
            idx_to[:n_local] = _nearest(x_pool, idx_from[:n_local], k)[np.arange(n_local),
                                                                       rng.integers(0, k, size=n_local)]
        dist = np.linalg.norm(x_pool[idx_to] - x_pool[idx_from], axis=1)
        distinct = dist > 0
        if not distinct.any():
            raise ValueError(
                "SWIM sampling found no pair of distinct points (all candidate pairs coincide); "
                "X needs at least two distinct rows"
            )
        density = distinct.astype(np.float64)
        if y_pool is not None:
            dy = np.abs(y_pool[idx_to] - y_pool[idx_from]).reshape(n_candidates, -1).max(axis=1)
            grad = np.divide(dy, dist, out=np.zeros_like(dist), where=distinct)
            if grad.sum() > 0:  # otherwise every Δy = 0: fall back to uniform
                density = grad
        chosen = rng.choice(n_candidates, size=n_neurons, replace=True, p=density / density.sum())
        return idx_from[chosen], idx_to[chosen]

    def sample_block(self, n_neurons: int, x_pool, y_pool, rng: np.random.Generator, activation: Activation):
        idx_from, idx_to = self.sample_pairs(n_neurons, x_pool, y_pool, rng)
        return swim_parameters(x_pool[idx_from], x_pool[idx_to], *self.constants_for(activation))


def _nearest(x_pool: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` nearest other pool points of the pool points ``rows``."""
    from scipy.spatial import cKDTree

    _, idx = cKDTree(x_pool).query(x_pool[rows], k=k + 1)
    return idx[:, 1:]


#: samplers by name: the estimators, the PDE solvers and the workflows' ``basis.sampler`` take these
SAMPLERS = {
    "swim": lambda: SWIMSampler("data"),
    "uswim": lambda: SWIMSampler("uniform"),
    "aswim": lambda: SWIMSampler("adaptive"),
    "elm": lambda: ELMSampler(),
}


def get_sampler(sampler) -> ELMSampler | SWIMSampler:
    """A sampler from its name (``elm``, ``swim``, ``uswim``, ``aswim``) or the instance (any
    object with ``passes`` and ``sample_block``)."""
    if hasattr(sampler, "sample_block") and hasattr(sampler, "passes"):
        return sampler
    try:
        return SAMPLERS[sampler]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown sampler {sampler!r}; known samplers: {', '.join(SAMPLERS)} "
            "(or pass an ELMSampler / SWIMSampler instance)"
        ) from None
