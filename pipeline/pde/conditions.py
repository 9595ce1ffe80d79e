"""Boundary conditions: the rows they add to the least-squares problem.

Each condition owns a part of the boundary (``on``: all of it, part names such as ``"x0-"``,
or a predicate on the points) and turns boundary points into weighted rows
``κ [ (B Φ)(x) | B1(x) | g(x) ]``.  ``weight`` is the penalty κ; left ``None`` the solver
balances it: ``κ = sqrt(n_interior / n_rows) · rms(L Φ) / rms(B Φ)``, so that the boundary
rows weigh as much in the objective as the interior ones.

Periodic conditions pair points on opposite faces of a box: rows ``u(x) - u(x + L e_i)``
and the same for the derivatives up to ``derivatives`` (1 by default: values and slopes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.pde.domains import Box, BoundarySample, Domain
from pipeline.pde.operators import LinearOperator, derivative, identity, normal_derivative

__all__ = ["BoundaryCondition", "Condition", "Dirichlet", "Neumann", "Periodic", "Robin"]


def _value_fn(value) -> Callable:
    if callable(value):
        return value
    v = float(value)
    return lambda x, data=None: np.full(x.shape[0], v)


def _check_weight(weight):
    if weight is not None and not (np.isfinite(weight) and weight > 0):
        raise ValueError(f"a condition's weight (penalty κ) must be a positive number, got {weight!r}")


class Condition:
    """Base of all conditions: they contribute rows through their operators."""

    weight: float | None
    name: str

    def operators(self, dim: int) -> list[LinearOperator]:
        raise NotImplementedError

    def max_order(self, dim: int) -> int:
        return max(op.order for op in self.operators(dim))


@dataclass(frozen=True)
class BoundaryCondition(Condition):
    """``B u = g`` on part of the boundary, for any linear operator ``B``.

    Args:
        operator: the operator ``B`` (a :class:`LinearOperator`).
        value: ``g`` as a number or ``g(x, data)`` (``data["normal"]``: the outward normals).
        on: ``None`` (whole boundary), a part name or list of names (``domain.part_names``),
            or ``predicate(points) -> bool mask``.
        weight: penalty κ (``None``: balanced automatically).
        name: for diagnostics.
    """

    boundary_operator: LinearOperator = None
    value: float | Callable = 0.0
    on: object = None
    weight: float | None = None
    name: str = "condition"

    def __post_init__(self):
        _check_weight(self.weight)
        if not isinstance(self.boundary_operator, LinearOperator):
            raise ValueError("BoundaryCondition needs a LinearOperator as `boundary_operator`")

    def operators(self, dim: int) -> list[LinearOperator]:
        return [self.boundary_operator]

    def rhs(self, x, data=None):
        """``g`` at boundary points; callables are called as ``g(x, data)``."""
        return np.asarray(_value_fn(self.value)(x, data or {}), dtype=float).reshape(-1)

    def select(self, domain: Domain, sample: BoundarySample) -> BoundarySample:
        """The boundary points this condition owns."""
        if self.on is None:
            return sample
        if callable(self.on):
            return sample.select(np.asarray(self.on(sample.points), dtype=bool))
        names = [self.on] if isinstance(self.on, str) else list(self.on)
        unknown = [n for n in names if n not in domain.part_names]
        if unknown:
            raise ValueError(
                f"condition {self.name!r}: unknown boundary part {unknown[0]!r}; "
                f"this domain's parts: {', '.join(domain.part_names)}"
            )
        wanted = [domain.part_names.index(n) for n in names]
        return sample.select(np.isin(sample.parts, wanted))


def Dirichlet(value=0.0, *, on=None, weight=None) -> BoundaryCondition:
    """``u = g``."""
    return BoundaryCondition(identity(1.0), value, on, weight, "dirichlet")


def Neumann(value=0.0, *, on=None, weight=None) -> BoundaryCondition:
    """``∂u/∂n = g`` (outward normal)."""
    return BoundaryCondition(normal_derivative(), value, on, weight, "neumann")


def Robin(alpha: float, beta: float, value=0.0, *, on=None, weight=None) -> BoundaryCondition:
    """``α u + β ∂u/∂n = g``."""
    if not (np.isfinite(alpha) and np.isfinite(beta)) or (alpha == 0 and beta == 0):
        raise ValueError(f"Robin needs finite alpha, beta not both zero, got {alpha!r}, {beta!r}")
    return BoundaryCondition(identity(float(alpha)) + normal_derivative() * float(beta), value, on, weight, "robin")


@dataclass(frozen=True)
class Periodic(Condition):
    """``u`` (and its derivatives along ``axis`` up to ``derivatives``) equal on opposite faces.

    Only on a :class:`Box`; pairs ``x`` on the face ``x_axis = lo`` with ``x + (hi - lo) e_axis``.
    """

    axis: int = 0
    derivatives: int = 1
    weight: float | None = None
    name: str = "periodic"

    def __post_init__(self):
        _check_weight(self.weight)
        if not isinstance(self.derivatives, int) or self.derivatives < 0:
            raise ValueError(f"Periodic derivatives must be a non-negative integer, got {self.derivatives!r}")

    def operators(self, dim: int) -> list[LinearOperator]:
        ops = [identity(1.0, dim)]
        for k in range(1, self.derivatives + 1):
            alpha = [0] * dim
            alpha[self.axis] = k
            ops.append(derivative(alpha))
        return ops

    def pairs(self, domain: Domain, n: int, method: str, seed) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(domain, Box):
            raise ValueError("Periodic conditions need a Box domain")
        if not 0 <= self.axis < domain.dim:
            raise ValueError(f"Periodic axis must lie in [0, {domain.dim}), got {self.axis}")
        face = Box(domain.lo, domain.hi).sample_boundary(
            n * 2 * domain.dim, method=method, seed=seed
        )
        lo_face = face.select(face.parts == 2 * self.axis).points[:n]
        if len(lo_face) == 0 and domain.dim == 1:
            lo_face = domain.lo[None, :].copy()
        shift = np.zeros(domain.dim)
        shift[self.axis] = domain.hi[self.axis] - domain.lo[self.axis]
        return lo_face, lo_face + shift
