"""Boundary conditions: the rows they add to the least-squares problem.

Each condition owns a part of the boundary (``on``: all of it, part names such as ``"x0-"``,
or a predicate on the points) and turns boundary points into weighted rows
``κ [ (B Φ)(x) | B1(x) | g(x) ]``.  ``weight`` is the penalty κ; left ``None`` the solver
balances it: ``κ = sqrt(n_interior / n_rows) · rms(L Φ) / rms(B Φ)``, so that the boundary
rows weigh as much in the objective as the interior ones.

Periodic conditions pair points on opposite faces of a box: rows ``u(x) - u(x + L e_i)``
and the same for the derivatives up to ``derivatives`` (1 by default: values and slopes).

Every boundary part needs a condition (:func:`check_boundary_coverage`): a part that none
covers would be silently unconstrained.  The rule, applied by static and time-dependent
problems alike:

* a problem without any condition is exempt (a pure initial-value problem, a basis that
  satisfies the conditions by construction, or a domain with nothing to impose);
* otherwise every part of ``domain.part_names`` must be covered: by a condition with
  ``on=None`` (the whole boundary), by name (``on="x0-"``, a group name such as ``"hole"``),
  by a :class:`Periodic` condition (the faces ``x{axis}-``/``x{axis}+``), or point by point by
  predicates (checked on a fixed sample of boundary points);
* a part left free on purpose (an outflow boundary, say) is named in ``free_boundary``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.pde.domains import Box, BoundarySample, Domain
from pipeline.pde.operators import LinearOperator, derivative, identity, normal_derivative

__all__ = [
    "BoundaryCondition",
    "Condition",
    "Dirichlet",
    "Neumann",
    "Periodic",
    "Robin",
    "check_boundary_coverage",
    "uncovered_parts",
]


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
        on: ``None`` (whole boundary), a part name or list of names (``domain.part_names``;
            a group name such as ``"hole"`` selects ``"hole.…"``), or
            ``predicate(points) -> bool mask``.
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
        try:
            wanted = domain.part_indices(self.on)
        except ValueError as error:
            raise ValueError(f"condition {self.name!r}: {error}") from None
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


#: boundary points on which predicate conditions (``on=callable``) are checked
COVERAGE_PROBE_POINTS = 2000


def _names(free_boundary) -> tuple[str, ...]:
    if free_boundary is None:
        return ()
    return (free_boundary,) if isinstance(free_boundary, str) else tuple(free_boundary)


def uncovered_parts(domain: Domain, conditions, free_boundary=()) -> dict[str, float]:
    """The boundary parts no condition covers, each with the share of its points left free.

    ``{}`` when every part is covered or listed in ``free_boundary``, and for a problem
    without conditions (see the module docstring for the rule).  Parts covered by name count
    whole (share 1.0 when none covers them); predicates are evaluated on
    :data:`COVERAGE_PROBE_POINTS` boundary points of a fixed seed, so a part a predicate
    covers only in part shows the share it leaves.  A part of a set operation that no probe
    point lies on is taken to be hidden inside the other operand (not part of the boundary).
    """
    conditions = tuple(conditions)
    names = tuple(domain.part_names)
    try:
        free = set(domain.part_indices(_names(free_boundary))) if _names(free_boundary) else set()
    except ValueError as error:
        raise ValueError(f"free_boundary: {error}") from None
    if not conditions:
        return {}
    covered: dict[int, str] = {}  # part label -> the condition covering it
    predicates = []
    for c in conditions:
        label = getattr(c, "name", type(c).__name__)
        if isinstance(c, Periodic):
            for face in (f"x{c.axis}-", f"x{c.axis}+"):
                if face in names:
                    covered.setdefault(names.index(face), label)
            continue
        on = getattr(c, "on", None)
        if on is None:
            covered.update({k: label for k in range(len(names)) if k not in covered})
        elif callable(on):
            predicates.append(on)
        else:
            try:
                parts = domain.part_indices(on)
            except ValueError as error:
                raise ValueError(f"condition {label!r}: {error}") from None
            for k in parts:
                covered.setdefault(k, label)
    both = sorted(free & set(covered))
    if both:
        clash = ", ".join(f"{names[k]!r} (by {covered[k]!r})" for k in both)
        raise ValueError(f"free_boundary lists parts that a condition constrains: {clash}; "
                         "drop them from free_boundary or from the condition")
    open_parts = [k for k in range(len(names)) if k not in covered and k not in free]
    if not open_parts:
        return {}
    if not predicates and not domain.parts_may_be_hidden:
        return {names[k]: 1.0 for k in open_parts}
    probe = domain.sample_boundary(COVERAGE_PROBE_POINTS, seed=np.random.SeedSequence(20240531))
    hit = np.zeros(len(probe), dtype=bool)
    for predicate in predicates:
        hit |= np.asarray(predicate(probe.points), dtype=bool).reshape(-1)
    out = {}
    for k in open_parts:
        on_part = probe.parts == k
        if not on_part.any():
            if not domain.parts_may_be_hidden:
                out[names[k]] = 1.0  # too small for the probe: cannot be shown covered
            continue
        share = float(np.mean(~hit[on_part]))
        if share > 0:
            out[names[k]] = share
    return out


def check_boundary_coverage(domain: Domain, conditions, free_boundary=(), *, problem: str = "") -> None:
    """Raise a ValueError naming the boundary parts that no condition covers.

    Static problems call it on construction; a time-dependent problem calls it the same way
    (``check_boundary_coverage(self.domain, self.conditions, self.free_boundary,
    problem=self.name)``).  ``free_boundary``: part names deliberately left without a
    condition.  See :func:`uncovered_parts` and the module docstring for the rule.
    """
    missing = uncovered_parts(domain, conditions, free_boundary)
    if not missing:
        return
    parts = ", ".join(repr(p) if share >= 1.0 else f"{p!r} ({max(share, 0.01):.0%} of its points)"
                      for p, share in missing.items())
    plain = tuple(missing)
    who = f"problem {problem!r}: " if problem else ""
    raise ValueError(
        f"{who}no boundary condition on the boundary part{'s' if len(missing) > 1 else ''} {parts}, which would "
        f"be left unconstrained (this domain's parts: {', '.join(domain.part_names)}). Add a condition for "
        f"{'them' if len(missing) > 1 else 'it'} (e.g. Dirichlet(g, on={plain if len(plain) > 1 else plain[0]!r})), "
        f"or, if a part is free on purpose (an outflow boundary, say), pass free_boundary={plain!r} to the problem"
    )
