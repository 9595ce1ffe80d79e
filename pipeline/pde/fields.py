"""Several fields on one sampled basis: jets, point-wise residuals and their linearisation.

A system's unknown is a tuple of fields ``u_f(x) = Φ(x) c_f + c0_f`` sharing one sampled
basis ``Φ`` (docs/design.md §1.4).  Equations are point-wise residuals ``r(x, U, p)`` of the
fields' values and derivatives, the *jet* ``U``: ``U["u"]``, ``U["u_x"]``, ``U["p_yy"]`` (axis
letters ``x, y, z`` up to three dimensions) or ``U["u", (1, 0)]`` in any dimension, and of the
problem's parameters ``p``.  Nothing but the residual is written by the user: its partial
derivatives with respect to every jet entry come from the **complex step**,
``∂r/∂U_k = Im r(U + i h e_k) / h`` with ``h = 1e-30`` — exact to rounding, with no
subtraction, for residuals built from analytic NumPy operations (``+ - * / **``, ``exp``,
``sin``, …; not ``abs``, ``maximum`` or comparisons, which :func:`inspect_residual` detects).

The linearised rows of an equation are then ``Σ_k ∂r/∂U_k ⊙ [∂^{α_k} Φ | ∂^{α_k} 1]`` in the
columns of the field of ``U_k``: one GEMM per distinct multi-index for the whole block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.backend import COMPUTE_DTYPE
from pipeline.pde.operators import derivative

__all__ = ["AXES", "Equation", "Jet", "JetRecorder", "field_jets", "inspect_residual", "jet_key", "linearise"]

AXES = "xyz"
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
#: the complex step: far below rounding of any value, far above the smallest double
STEP = 1e-30


def check_field_names(fields) -> tuple[str, ...]:
    fields = (fields,) if isinstance(fields, str) else tuple(fields)
    if not fields:
        raise ValueError("a system needs at least one field")
    for f in fields:
        if not isinstance(f, str) or not _FIELD_NAME.match(f):
            raise ValueError(f"field names must be letters and digits starting with a letter (no '_', which "
                             f"separates the derivative axes as in 'u_xx'), got {f!r}")
    if len(set(fields)) != len(fields):
        raise ValueError(f"field names must be distinct, got {list(fields)}")
    return fields


def jet_key(key, fields, dim: int) -> tuple[str, tuple[int, ...]]:
    """``(field, alpha)`` of a jet key: ``"u"``, ``"u_xy"`` or ``("u", (1, 1))``."""
    if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str):
        name, alpha = key[0], tuple(int(a) for a in key[1])
        if len(alpha) != dim or any(a < 0 for a in alpha):
            raise KeyError(f"{key!r}: the multi-index needs {dim} non-negative entries")
    elif isinstance(key, str):
        name, _, axes = key.partition("_")
        alpha = [0] * dim
        for letter in axes:
            axis = AXES.find(letter)
            if axis < 0 or axis >= dim:
                raise KeyError(f"{key!r}: derivative axes are the letters {AXES[:dim]!r} in {dim} dimensions "
                               f"(use (field, alpha) tuples beyond three)")
            alpha[axis] += 1
        alpha = tuple(alpha)
    else:
        raise KeyError(f"{key!r}: a jet key is a string like 'u_xx' or a tuple (field, alpha)")
    if name not in fields:
        raise KeyError(f"{key!r}: no field {name!r}; the fields are {list(fields)}")
    return name, alpha


class Jet:
    """The values and derivatives of the fields at a block of points (read by residuals).

    ``U[key]`` is an ``(n,)`` array; ``U.normal`` the outward normals at boundary points
    (``None`` in the interior); ``U.x`` the points.
    """

    def __init__(self, values: dict, fields, dim: int, x=None, normal=None):
        self._values, self.fields, self.dim, self.x, self.normal = values, tuple(fields), dim, x, normal

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 2 and not isinstance(key[1], (tuple, list, np.ndarray)):
            raise KeyError(f"{key!r}: write U['u', (1, 0)] with a multi-index tuple")
        canonical = jet_key(key, self.fields, self.dim)
        try:
            return self._values[canonical]
        except KeyError:
            raise KeyError(f"jet entry {key!r} was not prepared (the residual asked for it only on some calls)") \
                from None

    def replaced(self, key, value) -> "Jet":
        values = dict(self._values)
        values[key] = value
        return Jet(values, self.fields, self.dim, self.x, self.normal)


class JetRecorder(Jet):
    """A jet that records which entries a residual reads (each is a vector of ones)."""

    def __init__(self, fields, dim: int, n: int, x=None, normal=None, rng=None):
        super().__init__({}, fields, dim, x, normal)
        self.n, self.read, self._rng = n, [], rng

    def __getitem__(self, key):
        canonical = jet_key(key, self.fields, self.dim)
        if canonical not in self._values:
            self.read.append(canonical)
            self._values[canonical] = (self._rng.uniform(0.5, 1.5, self.n) if self._rng is not None
                                       else np.ones(self.n))
        return self._values[canonical]


@dataclass(frozen=True)
class Equation:
    """A point-wise residual ``r(x, U, p) = 0`` in the interior or on part of the boundary.

    Args:
        residual: ``r(x, U, p) -> (n,)`` (``x`` ``(n, d)``, ``U`` a :class:`Jet`, ``p`` the
            problem's parameters).  Must be built from analytic operations (complex step).
        on: ``"interior"`` (default), or a boundary selection as for boundary conditions:
            ``None`` (the whole boundary), part names, or ``predicate(points) -> mask``.
        name: for diagnostics and the residual history.
        weight: penalty of boundary rows (``None``: balanced automatically).
    """

    residual: Callable
    on: object = "interior"
    name: str = "equation"
    weight: float | None = None

    @property
    def interior(self) -> bool:
        return isinstance(self.on, str) and self.on == "interior"


def _probe(x, normal, residual, fields, dim, params, rng):
    jet = JetRecorder(fields, dim, len(x), x, normal, rng)
    with np.errstate(all="ignore"):
        r = np.asarray(residual(x, jet, params))
    return jet, r


def inspect_residual(equation: Equation, fields, dim: int, params: dict, x: np.ndarray, normal=None) -> dict:
    """What a residual reads and whether it is linear, checked on a few probe points.

    Returns ``{"keys": [(field, alpha), …], "linear": bool}``.  Raises a ``ValueError``
    naming the equation when it fails, returns the wrong shape, reads nothing, or is not
    complex-step differentiable (its complex-step slopes disagree with finite differences).
    """
    rng = np.random.default_rng(0)
    try:
        jet, r = _probe(x, normal, equation.residual, fields, dim, params, rng)
    except KeyError as error:
        raise ValueError(f"equation {equation.name!r}: {error.args[0]}") from None
    except Exception as error:  # a user function: report which one failed
        raise ValueError(f"equation {equation.name!r} failed on probe points: {type(error).__name__}: {error}") \
            from None
    if r.shape != (len(x),):
        raise ValueError(f"equation {equation.name!r} must return one value per point, shape ({len(x)},), "
                         f"got {r.shape}")
    if not jet.read:
        raise ValueError(f"equation {equation.name!r} reads no field: it does not constrain the solution")
    keys = list(jet.read)
    values = dict(jet._values)
    base = Jet(values, fields, dim, x, normal)
    slopes = linearise(equation.residual, base, keys, params)[1]
    for k, key in enumerate(keys):  # complex step against a central difference
        h = 1e-6
        up = np.asarray(equation.residual(x, base.replaced(key, values[key] + h), params), dtype=float)
        down = np.asarray(equation.residual(x, base.replaced(key, values[key] - h), params), dtype=float)
        fd = (up - down) / (2 * h)
        scale = max(float(np.max(np.abs(fd))), float(np.max(np.abs(slopes[k]))), 1.0)
        if not np.all(np.isfinite(slopes[k])) or np.max(np.abs(fd - slopes[k])) > 1e-5 * scale:
            raise ValueError(f"equation {equation.name!r} is not differentiable by complex step in {key[0]} "
                             f"{key[1]}: build it from analytic operations (+ - * / **, exp, sin, …), "
                             "not abs, maximum, comparisons or real parts")
    other = Jet({key: rng.uniform(-2.0, 2.0, len(x)) for key in keys}, fields, dim, x, normal)
    slopes_other = linearise(equation.residual, other, keys, params)[1]
    linear = all(np.allclose(a, b, rtol=1e-10, atol=1e-12 * max(1.0, float(np.max(np.abs(a)))))
                 for a, b in zip(slopes, slopes_other))
    return {"keys": keys, "linear": linear}


def linearise(residual: Callable, jet: Jet, keys, params) -> tuple[np.ndarray, list[np.ndarray]]:
    """``r`` and ``[∂r/∂U_k]`` at the jet, by one complex-step evaluation per key."""
    x = jet.x
    r = np.asarray(residual(x, jet, params), dtype=COMPUTE_DTYPE)
    slopes = []
    for key in keys:
        value = jet._values[key]
        shifted = jet.replaced(key, value + 1j * STEP)
        slopes.append(np.asarray(np.imag(residual(x, shifted, params)), dtype=COMPUTE_DTYPE) / STEP)
    return r, slopes


def basis_derivatives(layer, x, alphas) -> dict:
    """``{alpha: [∂^α Φ | ∂^α 1]}`` at the points: one GEMM and one activation pass per alpha."""
    out = {}
    for alpha in alphas:
        if any(alpha):
            block = derivative(alpha).features(layer, x)
            const = np.zeros((x.shape[0], 1), dtype=COMPUTE_DTYPE)
        else:
            block = layer(x)
            const = np.ones((x.shape[0], 1), dtype=COMPUTE_DTYPE)
        out[alpha] = np.concatenate([block, const], axis=1)
    return out


def field_jets(features: dict, coef: np.ndarray, fields, keys, dim: int, x, normal=None) -> Jet:
    """The jet of the fields ``coef`` (``(n_fields, width + 1)``) from prepared features."""
    index = {f: i for i, f in enumerate(fields)}
    values = {key: features[key[1]] @ coef[index[key[0]]] for key in keys}
    return Jet(values, fields, dim, x, normal)
