"""Activation functions with derivatives of any order, evaluated on whole blocks.

PDE operators need derivatives of the hidden features of arbitrary order (a biharmonic needs
the fourth, a beam in time the fourth in space).  Never differentiate numerically: for tanh
and the logistic function every derivative is a polynomial in the function value itself,

    d/dz P(tanh z)  = P'(tanh z) (1 - tanh² z)
    d/dz P(σ(z))    = P'(σ(z)) σ(z) (1 - σ(z)),

so one transcendental evaluation per entry serves all orders (docs/design.md §3.1).  The
polynomials are built once per order by that recurrence and evaluated by Horner's rule on
whole arrays.  Every function works on NumPy or CuPy arrays alike.

Each activation also carries its SWIM constants ``(s1, s2)``: a neuron sampled from the pair
``(x1, x2)`` has ``w = s1 (x2 - x1) / ||x2 - x1||²`` and ``b = -<w, x1> - s2``, so its
pre-activation is ``-s2`` at ``x1`` and ``s1 - s2`` at ``x2``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.polynomial import polynomial as npoly

from pipeline.backend import namespace_of

__all__ = [
    "Activation",
    "Logistic",
    "ReLU",
    "Sin",
    "Tanh",
    "ACTIVATIONS",
    "get_activation",
]


class Activation:
    """Base class: a scalar function applied entry-wise, with derivatives.

    Subclasses implement :meth:`derivative`.  ``max_order`` is the highest derivative order
    that carries information (``None``: any order).  Every evaluation takes an optional
    ``out`` array, which may be ``z`` itself: the assembly kernels evaluate in place, because
    fresh allocations of feature-block size cost more than the arithmetic (page faults).
    """

    name: str = "activation"
    max_order: int | None = None
    #: (s1, s2) of the SWIM construction, see the module docstring.
    swim_constants: tuple[float, float] = (1.0, 0.0)

    def __call__(self, z, out=None):
        return self.derivative(z, 0, out=out)

    def check_order(self, order: int) -> None:
        """Raise a ValueError naming ``order`` when it is not available."""
        if int(order) != order or order < 0:
            raise ValueError(f"derivative order must be a non-negative integer, got {order!r}")
        if self.max_order is not None and order > self.max_order:
            raise ValueError(
                f"activation {self.name!r} provides derivatives up to order {self.max_order}, "
                f"but order {order} was requested; use a smooth activation such as 'tanh' "
                "or 'sin' for higher-order operators"
            )

    def derivative(self, z, order: int = 1, out=None):
        """The ``order``-th derivative at ``z`` (order 0 is the function itself)."""
        raise NotImplementedError

    def derivatives(self, z, orders) -> list:
        """Several derivative orders at once, sharing the transcendental evaluation."""
        return [self.derivative(z, k) for k in orders]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


def _horner(coefficients: np.ndarray, s, out=None):
    """Evaluate the polynomial with ascending ``coefficients`` at every entry of ``s``.

    ``out`` must not be ``s``.
    """
    xp = namespace_of(s)
    if out is None:
        out = xp.empty_like(s)
    out[...] = coefficients[-1]
    for c in coefficients[-2::-1]:
        out *= s
        if c:
            out += c
    return out


class _PolynomialActivation(Activation):
    """Activations whose derivatives are polynomials in the function value."""

    #: d/dz of the function value, as a polynomial in that value (ascending coefficients).
    _chain: tuple[float, ...] = ()

    def _value(self, z, out=None):
        raise NotImplementedError

    @classmethod
    @lru_cache(maxsize=64)
    def polynomial(cls, order: int) -> np.ndarray:
        """Ascending coefficients of the ``order``-th derivative as a polynomial in the value."""
        if order == 0:
            return np.array([0.0, 1.0])
        return npoly.polymul(npoly.polyder(cls.polynomial(order - 1)), cls._chain)

    def derivative(self, z, order: int = 1, out=None):
        self.check_order(order)
        if order == 0:
            return self._value(z, out=out)
        return _horner(self.polynomial(order), self._value(z), out=out)

    def derivatives(self, z, orders) -> list:
        for k in orders:
            self.check_order(k)
        s = self._value(z)
        return [s if k == 0 else _horner(self.polynomial(k), s) for k in orders]


def _tanh(z, out=None):
    xp = namespace_of(z)
    if xp is not np:
        return xp.tanh(z, out=out)
    # NumPy's tanh is not vectorised for float64 and costs ~8x the SIMD exp.  This form is
    # accurate to 3.3e-16 absolute (measured against np.tanh), the scale every feature lives
    # on, and needs no temporary: exp overflows to inf for z < -354, giving exactly -1.
    out = np.multiply(z, -2.0, out=out)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    np.divide(2.0, out, out=out)
    out -= 1.0
    return out


class Tanh(_PolynomialActivation):
    name = "tanh"
    _chain = (1.0, 0.0, -1.0)  # d tanh / dz = 1 - tanh²
    # The neuron is -1/2 at x1 and +1/2 at x2: s2 = artanh(1/2) = ln(3)/2, s1 = 2 s2.
    swim_constants = (math.log(3.0), math.log(3.0) / 2.0)

    def _value(self, z, out=None):
        return _tanh(z, out=out)


def _logistic(z, out=None):
    xp = namespace_of(z)
    out = xp.negative(z, out=out)
    with np.errstate(over="ignore"):
        xp.exp(out, out=out)
    out += 1.0
    return xp.reciprocal(out, out=out)


class Logistic(_PolynomialActivation):
    name = "logistic"
    _chain = (0.0, 1.0, -1.0)  # dσ/dz = σ (1 - σ)
    # logistic(z) = (1 + tanh(z/2)) / 2: the tanh construction at twice the scale, so the
    # neuron is 1/4 at x1 and 3/4 at x2.
    swim_constants = (2.0 * math.log(3.0), math.log(3.0))

    def _value(self, z, out=None):
        return _logistic(z, out=out)


class Sin(Activation):
    name = "sin"
    # The neuron rises monotonically from -1 at x1 to +1 at x2 (a half period).
    swim_constants = (math.pi, math.pi / 2.0)

    def derivative(self, z, order: int = 1, out=None):
        self.check_order(order)
        xp = namespace_of(z)
        base = xp.sin(z, out=out) if order % 2 == 0 else xp.cos(z, out=out)
        if order % 4 in (2, 3):
            xp.negative(base, out=base)
        return base

    def derivatives(self, z, orders) -> list:
        for k in orders:
            self.check_order(k)
        xp = namespace_of(z)
        sin = xp.sin(z) if any(k % 2 == 0 for k in orders) else None
        cos = xp.cos(z) if any(k % 2 == 1 for k in orders) else None
        out = []
        for k in orders:
            base = sin if k % 2 == 0 else cos
            out.append(-base if k % 4 in (2, 3) else base)
        return out


class ReLU(Activation):
    name = "relu"
    max_order = 1
    # The neuron is 0 at x1 and 1 at x2 (the swimnetworks construction).
    swim_constants = (1.0, 0.0)

    def derivative(self, z, order: int = 1, out=None):
        self.check_order(order)
        xp = namespace_of(z)
        if order == 0:
            return xp.maximum(z, 0.0, out=out)
        step = z > 0
        if out is None:
            return step.astype(z.dtype)
        out[...] = step
        return out


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Tanh, Sin, ReLU, Logistic)
}


def get_activation(activation: str | Activation) -> Activation:
    """An :class:`Activation` from its name, or the instance itself."""
    if isinstance(activation, Activation):
        return activation
    try:
        return ACTIVATIONS[activation]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {activation!r}; known activations: "
            f"{', '.join(sorted(ACTIVATIONS))} (or pass an Activation instance)"
        ) from None
