"""Hamiltonian systems with exact Hamiltonians, for training data and tests.

A state is ``x = (q, p)`` with ``n`` degrees of freedom (``2n`` columns); ``vector_field``
returns Hamilton's equations ``(q̇, ṗ) = (∂H/∂p, -∂H/∂q)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.models._registry import build_named

__all__ = ["HamiltonianSystem", "SYSTEMS", "get_system"]


@dataclass(frozen=True)
class HamiltonianSystem:
    name: str
    dof: int
    hamiltonian: Callable  # H(x) -> (N,)
    gradient: Callable  # ∇H(x) -> (N, 2n), [∂H/∂q | ∂H/∂p]
    lower: np.ndarray
    upper: np.ndarray
    description: str = ""

    def vector_field(self, x: np.ndarray) -> np.ndarray:
        g = self.gradient(x)
        n = self.dof
        return np.concatenate([g[:, n:], -g[:, :n]], axis=1)

    def flow(self, x: np.ndarray, dt: float) -> np.ndarray:
        """The exact flow map after ``dt`` (DOP853 at tolerance 1e-12), all states at once."""
        import scipy.integrate

        dim = 2 * self.dof
        solution = scipy.integrate.solve_ivp(lambda t, y: self.vector_field(y.reshape(-1, dim)).ravel(), (0.0, dt),
                                             np.asarray(x, dtype=float).ravel(), method="DOP853", rtol=1e-12,
                                             atol=1e-12)
        if not solution.success:
            raise RuntimeError(f"the exact flow of {self.name} failed: {solution.message}")
        return solution.y[:, -1].reshape(-1, dim)

    def sample(self, n_points: int, seed=0) -> tuple[np.ndarray, np.ndarray]:
        """``(x, ẋ)`` at uniform points of the domain box."""
        rng = np.random.default_rng(seed)
        x = self.lower + (self.upper - self.lower) * rng.random((n_points, 2 * self.dof))
        return x, self.vector_field(x)


def _pendulum():
    def h(x):
        return 0.5 * x[:, 1] ** 2 + (1 - np.cos(x[:, 0]))

    def g(x):
        return np.stack([np.sin(x[:, 0]), x[:, 1]], axis=1)

    return HamiltonianSystem("pendulum", 1, h, g, np.array([-2 * np.pi, -1.0]), np.array([2 * np.pi, 1.0]),
                             "single pendulum H = p²/2 + 1 - cos q on [-2π, 2π] × [-1, 1]")


def _lotka_volterra():
    # canonical coordinates q = ln x, p = ln y of x' = x(1 - y), y' = y(x - 2):
    # H = p - e^p + 2q - e^q, so q' = 1 - e^p and p' = e^q - 2
    def h(x):
        return x[:, 1] - np.exp(x[:, 1]) + 2 * x[:, 0] - np.exp(x[:, 0])

    def g(x):
        return np.stack([2 - np.exp(x[:, 0]), 1 - np.exp(x[:, 1])], axis=1)

    return HamiltonianSystem("lotka_volterra", 1, h, g, np.array([0.0, 0.0]), np.array([8.0, 8.0]),
                             "Lotka–Volterra in canonical form H = p - e^p + 2q - e^q on [0, 8]²")


def _henon_heiles():
    def h(x):
        q1, q2, p1, p2 = x.T
        return 0.5 * (p1**2 + p2**2) + 0.5 * (q1**2 + q2**2) + q1**2 * q2 - q2**3 / 3

    def g(x):
        q1, q2, p1, p2 = x.T
        return np.stack([q1 + 2 * q1 * q2, q2 + q1**2 - q2**2, p1, p2], axis=1)

    return HamiltonianSystem("henon_heiles", 2, h, g, np.full(4, -5.0), np.full(4, 5.0),
                             "Hénon–Heiles on [-5, 5]⁴")


def _double_pendulum():
    # unit masses, lengths and gravity
    def parts(x):
        q1, q2, p1, p2 = x.T
        d = q1 - q2
        den = 1 + np.sin(d) ** 2
        return q1, q2, p1, p2, d, den

    def h(x):
        q1, q2, p1, p2, d, den = parts(x)
        return (p1**2 + 2 * p2**2 - 2 * p1 * p2 * np.cos(d)) / (2 * den) - 2 * np.cos(q1) - np.cos(q2)

    def g(x):
        q1, q2, p1, p2, d, den = parts(x)
        num = p1**2 + 2 * p2**2 - 2 * p1 * p2 * np.cos(d)
        dnum_dd = 2 * p1 * p2 * np.sin(d)
        dden_dd = 2 * np.sin(d) * np.cos(d)
        dt_dd = (dnum_dd * den - num * dden_dd) / (2 * den**2)
        return np.stack([dt_dd + 2 * np.sin(q1), -dt_dd + np.sin(q2),
                         (p1 - p2 * np.cos(d)) / den, (2 * p2 - p1 * np.cos(d)) / den], axis=1)

    box = np.array([np.pi / 2, np.pi / 2, 1.0, 1.0])
    return HamiltonianSystem("double_pendulum", 2, h, g, -box, box,
                             "double pendulum (unit masses and lengths) on [-π/2, π/2]² × [-1, 1]²")


def _coupled_oscillators(dof=10):
    # a chain of unit masses and springs with fixed ends and a quartic on-site term
    def h(x):
        q, p = x[:, :dof], x[:, dof:]
        stretch = np.diff(np.pad(q, ((0, 0), (1, 1))), axis=1)
        return 0.5 * (p**2).sum(1) + 0.5 * (stretch**2).sum(1) + 0.25 * (q**4).sum(1)

    def g(x):
        q, p = x[:, :dof], x[:, dof:]
        padded = np.pad(q, ((0, 0), (1, 1)))
        dq = 2 * q - padded[:, :-2] - padded[:, 2:] + q**3
        return np.concatenate([dq, p], axis=1)

    return HamiltonianSystem(f"chain_{dof}", dof, h, g, np.full(2 * dof, -1.0), np.full(2 * dof, 1.0),
                             f"chain of {dof} coupled anharmonic oscillators on [-1, 1]^{2 * dof}")


SYSTEMS = {
    "pendulum": _pendulum,
    "lotka_volterra": _lotka_volterra,
    "henon_heiles": _henon_heiles,
    "double_pendulum": _double_pendulum,
    "coupled_oscillators": _coupled_oscillators,
}


def get_system(name: str, **params) -> HamiltonianSystem:
    """A named system; unknown names and parameters are errors naming the known ones."""
    return build_named(SYSTEMS, name, params, "Hamiltonian system")
