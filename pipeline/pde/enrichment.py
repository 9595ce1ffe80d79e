"""Enrichment: known singular functions added to the sampled basis.

A smooth basis converges slowly where the solution is singular — at a re-entrant corner of
angle ω the solution behaves like ``r^{π/ω} sin(π θ/ω)`` (``r^{2/3}`` for the L-shape), and
ridge functions resolve it only algebraically (the L-shape benchmark measures the rate).
Adding that singular function as one more column of the least-squares problem captures the
singular part exactly; the basis then approximates a smoother remainder.  An enrichment
function supplies its value and the derivatives the operators need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.pde.operators import LinearOperator

__all__ = ["Enrichment", "corner_singularity"]


@dataclass(frozen=True)
class Enrichment:
    """An extra basis function ``s(x)`` with the derivatives operators may ask for.

    Args:
        name: for diagnostics.
        value: ``s(x) -> (n,)``.
        gradient: ``∇s(x) -> (n, d)`` (for first-order and normal-derivative terms).
        laplacian: ``Δs(x) -> (n,)``.
        derivative: ``∂^α s(x)`` as ``derivative(x, alpha) -> (n,)``, for any other term.
    """

    name: str
    value: Callable
    gradient: Callable | None = None
    laplacian: Callable | None = None
    derivative: Callable | None = None

    def _missing(self, what: str):
        raise ValueError(f"enrichment {self.name!r} cannot apply {what}: give it that derivative")

    def apply(self, operator: LinearOperator, x, data=None) -> np.ndarray:
        """``(L s)(x)``."""
        data = data or {}
        out = np.zeros(x.shape[0])
        for term in operator.terms:
            coef = term.coefficient(x, data) if callable(term.coefficient) else term.coefficient
            if term.kind == "identity":
                out += np.asarray(coef) * self.value(x)
            elif term.kind == "laplacian":
                lap = self.laplacian(x) if self.laplacian is not None else self._missing("a Laplacian")
                out += np.asarray(coef) * lap
            elif term.kind == "directional":
                grad = self.gradient(x) if self.gradient is not None else self._missing("a directional derivative")
                field = np.broadcast_to(np.asarray(coef, dtype=float), x.shape)
                out += (field * grad).sum(axis=1)
            elif term.kind == "derivative":
                if self.derivative is not None:
                    out += np.asarray(coef) * self.derivative(x, term.alpha)
                elif sum(term.alpha) == 1 and self.gradient is not None:
                    out += np.asarray(coef) * self.gradient(x)[:, term.alpha.index(1)]
                else:
                    self._missing(f"the derivative {term.alpha}")
            else:
                self._missing(f"a {term.kind} term")
        return out


def corner_singularity(corner, angle_from: float, opening: float, *, power: float | None = None) -> Enrichment:
    """``r^λ sin(λ (θ - θ0))`` with ``λ = π / opening``: harmonic, zero on both corner edges.

    ``corner`` is the vertex, ``angle_from`` the direction θ0 of the first edge, and the
    domain opens counter-clockwise by ``opening`` (3π/2 for the L-shape's re-entrant corner).
    """
    corner = np.asarray(corner, dtype=float)
    lam = power if power is not None else np.pi / opening

    def polar(x):
        d = x - corner
        r = np.hypot(d[:, 0], d[:, 1])
        theta = np.mod(np.arctan2(d[:, 1], d[:, 0]) - angle_from, 2 * np.pi)
        return r, theta

    def value(x):
        r, theta = polar(x)
        return r**lam * np.sin(lam * theta)

    def gradient(x):
        r, theta = polar(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            dr = lam * r ** (lam - 1) * np.sin(lam * theta)
            dtheta = lam * r ** (lam - 1) * np.cos(lam * theta)  # (1/r) ∂s/∂θ
        c, s = np.cos(theta + angle_from), np.sin(theta + angle_from)
        g = np.stack([dr * c - dtheta * s, dr * s + dtheta * c], axis=1)
        return np.where(r[:, None] > 0, g, 0.0)

    return Enrichment(f"corner r^{lam:.3g}", value, gradient, lambda x: np.zeros(x.shape[0]))
