"""Linear differential operators as data, applied to a sampled basis without autodiff.

For a neuron ``φ(x) = σ(w·x + b)``, every derivative is ``∂^α φ = σ^(|α|)(z) w^α``, so any
linear operator with (possibly variable) coefficients is a sum of *terms*

    σ^(k)(z) ⊙ M,     M[p, j] = c(x_p) · f(w_j)        (scalar coefficient × neuron factor)
                  or  M[p, j] = V(x_p) · g(w_j)        (a vector field against a neuron vector)

For the Laplacian ``f(w) = ||w||²``; for ``∂²/∂x_0∂x_1`` ``f(w) = w_0 w_1``; for ``a·∇`` the
directional form with ``V = a(x)`` and ``g(w) = w``; a Neumann condition is the directional
form with the boundary normals.  One GEMM gives ``z`` for a block of points, each derivative
order is evaluated once, and the terms of that order are summed on the whole block.

Coefficients are numbers or callables ``c(x, data)`` of the points ``x`` (``(n, d)``) and the
per-point ``data`` (a dict, e.g. ``{"normal": (n, d)}``), returning ``(n,)`` (``(n, d)`` for
vector fields).
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.backend import COMPUTE_DTYPE, namespace_of

__all__ = [
    "LinearOperator",
    "Term",
    "advection",
    "biharmonic",
    "derivative",
    "directional",
    "gradient",
    "helmholtz",
    "identity",
    "laplacian",
    "normal_derivative",
]


def _prod_powers(alpha):
    alpha = tuple(alpha)

    def factor(w):
        xp = namespace_of(w)
        out = xp.ones(w.shape[0], dtype=w.dtype)
        for i, a in enumerate(alpha):
            if a:
                out = out * w[:, i] ** a
        return out

    return factor


def _squared_norm(w):
    return (w * w).sum(axis=1)


@dataclass(frozen=True)
class Term:
    """``σ^(order)(z) ⊙ M`` with ``M`` from a coefficient and a neuron factor.

    Args:
        order: derivative order of the activation.
        factor: ``f(W) -> (width,)`` (scalar kind) or ``g(W) -> (width, d)`` (vector kind).
        coefficient: number or ``c(x, data)``; ``(n,)`` for scalar, ``(n, d)`` for vector kind.
        vector: whether the term is ``V(x) · g(w)``.
        label: for printing.
    """

    order: int
    factor: Callable
    coefficient: float | Callable = 1.0
    vector: bool = False
    label: str = ""
    #: what the term is, for functions other than the basis (enrichments) that must apply it:
    #: "identity", "derivative" (with ``alpha``), "laplacian", "biharmonic", "directional".
    kind: str = "custom"
    alpha: tuple[int, ...] | None = None

    def scaled(self, c: float) -> "Term":
        coef = self.coefficient
        if callable(coef):
            new = lambda x, data, _c=coef, _s=c: _s * np.asarray(_c(x, data))  # noqa: E731
        else:
            new = c * coef
        return Term(self.order, self.factor, new, self.vector, self.label, self.kind, self.alpha)

    def modulation(self, weights, x, data):
        """``M`` for the points ``x`` (``(n, width)``, or ``(1, width)`` when constant)."""
        xp = namespace_of(x)
        w = xp.asarray(weights, dtype=COMPUTE_DTYPE)
        f = self.factor(w)
        coef = self.coefficient
        if self.vector:
            v = coef(x, data) if callable(coef) else xp.broadcast_to(xp.asarray(coef, dtype=COMPUTE_DTYPE), x.shape)
            return xp.asarray(v, dtype=COMPUTE_DTYPE) @ f.T
        if callable(coef):
            c = xp.asarray(coef(x, data), dtype=COMPUTE_DTYPE).reshape(-1, 1)
            return c * f[None, :]
        return (coef * f)[None, :]

    def constant_value(self, x, data):
        """The term applied to the constant function 1 (non-zero only for order 0)."""
        xp = namespace_of(x)
        if self.order != 0 or self.vector:
            return xp.zeros(x.shape[0], dtype=COMPUTE_DTYPE)
        coef = self.coefficient
        c = coef(x, data) if callable(coef) else coef
        return xp.broadcast_to(xp.asarray(c, dtype=COMPUTE_DTYPE), (x.shape[0],))


@dataclass(frozen=True)
class LinearOperator:
    """A sum of :class:`Term` s acting on functions of ``dim`` variables (``None``: any)."""

    terms: tuple[Term, ...]
    dim: int | None = None
    name: str = "L"

    @property
    def order(self) -> int:
        return max((t.order for t in self.terms), default=0)

    def check_dim(self, dim: int, what: str = "the domain") -> None:
        if self.dim is not None and self.dim != dim:
            raise ValueError(f"operator {self.name!r} acts in {self.dim} dimensions but {what} has {dim}")

    def __add__(self, other: "LinearOperator") -> "LinearOperator":
        if not isinstance(other, LinearOperator):
            return NotImplemented
        if self.dim is not None and other.dim is not None and self.dim != other.dim:
            raise ValueError(f"cannot add operators of dimensions {self.dim} and {other.dim}")
        return LinearOperator(self.terms + other.terms, self.dim or other.dim, f"{self.name} + {other.name}")

    def __mul__(self, c) -> "LinearOperator":
        if not isinstance(c, numbers.Real):
            return NotImplemented
        return LinearOperator(tuple(t.scaled(float(c)) for t in self.terms), self.dim, f"{c}·{self.name}")

    __rmul__ = __mul__

    def __neg__(self) -> "LinearOperator":
        return self * -1.0

    def __sub__(self, other: "LinearOperator") -> "LinearOperator":
        return self + (-other)

    def features(self, layer, x, data=None):
        """``(L φ_j)(x_p)`` for every point and neuron of a :class:`DenseLayer`: ``(n, width)``."""
        data = data or {}
        layer.activation.check_order(self.order)
        if x.shape[1] != layer.input_dim:
            raise ValueError(f"points have {x.shape[1]} coordinates but the basis expects {layer.input_dim}")
        self.check_dim(layer.input_dim, "the basis")
        xp = namespace_of(x)
        if getattr(layer, "quadratic", False):
            return self._quadratic_features(layer, x, data)
        z = layer.preactivation(x)
        orders = sorted({t.order for t in self.terms})
        out = xp.zeros(z.shape, dtype=COMPUTE_DTYPE, order="F")
        for k in orders:
            terms = [t for t in self.terms if t.order == k]
            modulation = terms[0].modulation(layer.weights, x, data)
            for t in terms[1:]:
                modulation = modulation + t.modulation(layer.weights, x, data)
            sigma = layer.activation.derivative(z, k, out=z if k == orders[-1] else None)
            sigma *= modulation
            out += sigma
        return out

    def _quadratic_features(self, layer, x, data):
        """Term by term for quadratic neurons, whose derivatives are not ``σ^(k)(z) f(w)``."""
        xp = namespace_of(x)
        out = xp.zeros((x.shape[0], layer.width), dtype=COMPUTE_DTYPE, order="F")
        for t in self.terms:
            coef = t.coefficient
            if t.vector:
                v = coef(x, data) if callable(coef) else xp.broadcast_to(xp.asarray(coef, dtype=COMPUTE_DTYPE), x.shape)
                if t.order != 1:
                    raise ValueError(f"quadratic neurons cannot apply the vector term {t.label!r} of order {t.order}")
                out += layer.directional_features(x, v)
                continue
            if t.kind == "laplacian":
                block = layer.laplacian_features(x)
            elif t.kind == "derivative":
                block = layer.derivative_features(x, t.alpha)
            elif t.order == 0:
                block = layer(x) * t.factor(xp.asarray(layer.weights, dtype=COMPUTE_DTYPE))[None, :]
            else:
                raise ValueError(f"quadratic neurons (curvature) support identity, derivative, Laplacian and "
                                 f"directional terms up to second order; {t.label!r} is a {t.kind} term of order "
                                 f"{t.order}: use curvature_scale 0 for it")
            c = xp.asarray(coef(x, data), dtype=COMPUTE_DTYPE).reshape(-1, 1) if callable(coef) else coef
            out += c * block
        return out

    def constant_column(self, x, data=None):
        """``L 1`` at the points (the column of the constant ``c0`` in ``u = Φ c + c0``)."""
        data = data or {}
        xp = namespace_of(x)
        out = xp.zeros(x.shape[0], dtype=COMPUTE_DTYPE)
        for t in self.terms:
            out = out + t.constant_value(x, data)
        return out


def _check_dim(dim):
    if dim is not None and (not isinstance(dim, (int, np.integer)) or dim < 1):
        raise ValueError(f"dim must be a positive integer, got {dim!r}")


def identity(coefficient: float | Callable = 1.0, dim: int | None = None) -> LinearOperator:
    """``c(x) u`` (a reaction term)."""
    return LinearOperator((Term(0, lambda w: namespace_of(w).ones(w.shape[0], dtype=w.dtype), coefficient, label="u",
                                kind="identity"),), dim, "I")


def derivative(alpha, coefficient: float | Callable = 1.0) -> LinearOperator:
    """``c(x) ∂^α u`` for a multi-index ``alpha`` (one non-negative entry per dimension)."""
    alpha = tuple(int(a) for a in alpha)
    if not alpha or any(a < 0 for a in alpha):
        raise ValueError(f"alpha must be a non-empty multi-index of non-negative integers, got {alpha}")
    return LinearOperator((Term(sum(alpha), _prod_powers(alpha), coefficient, label=f"d{alpha}", kind="derivative",
                                alpha=alpha),), len(alpha), f"∂^{alpha}")


def gradient(i: int, dim: int, coefficient: float | Callable = 1.0) -> LinearOperator:
    """``c(x) ∂u/∂x_i``."""
    _check_dim(dim)
    if not 0 <= i < dim:
        raise ValueError(f"gradient component i must lie in [0, {dim}), got {i}")
    alpha = [0] * dim
    alpha[i] = 1
    return derivative(alpha, coefficient)


def laplacian(dim: int | None = None, coefficient: float | Callable = 1.0) -> LinearOperator:
    """``c(x) Δu``: one term, ``σ''(z) ||w||²``, in any dimension."""
    _check_dim(dim)
    return LinearOperator((Term(2, _squared_norm, coefficient, label="Δ", kind="laplacian"),), dim, "Δ")


def biharmonic(dim: int | None = None, coefficient: float | Callable = 1.0) -> LinearOperator:
    """``c(x) Δ²u``: ``σ''''(z) ||w||⁴``."""
    _check_dim(dim)
    return LinearOperator((Term(4, lambda w: _squared_norm(w) ** 2, coefficient, label="Δ²", kind="biharmonic"),),
                          dim, "Δ²")


def helmholtz(k: float, dim: int | None = None) -> LinearOperator:
    """``Δu + k² u``."""
    if not np.isfinite(k):
        raise ValueError(f"the wave number k must be finite, got {k!r}")
    op = laplacian(dim) + identity(float(k) ** 2, dim)
    return LinearOperator(op.terms, dim, f"Δ + {k}²")


def directional(field: Callable | np.ndarray, dim: int | None = None, name: str = "V·∇") -> LinearOperator:
    """``V(x)·∇u`` for a vector field ``V`` (a constant vector or ``V(x, data) -> (n, d)``)."""
    if not callable(field):
        field = _as_field(field)
        dim = dim or field.shape[0]
    return LinearOperator((Term(1, lambda w: w, field, vector=True, label=name, kind="directional"),), dim, name)


def advection(velocity, dim: int | None = None) -> LinearOperator:
    """``a(x)·∇u`` (constant vector ``a`` or a callable field)."""
    return directional(velocity, dim, "a·∇")


def normal_derivative(dim: int | None = None) -> LinearOperator:
    """``n·∇u`` with the outward normals carried by boundary points (``data["normal"]``)."""
    return directional(lambda x, data: data["normal"], dim, "∂n")


def _as_field(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise ValueError(f"a constant vector field must be a finite 1-D vector, got {v!r}")
    return v


def multi_indices(dim: int, order: int):
    """All multi-indices of ``dim`` entries summing to ``order`` (for building operators)."""
    for combo in itertools.combinations_with_replacement(range(dim), order):
        alpha = [0] * dim
        for i in combo:
            alpha[i] += 1
        yield tuple(alpha)
