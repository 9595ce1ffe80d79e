"""Example LTI systems ``(A, B, C, D)`` for the continuous-time networks, tests and benchmarks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from pipeline.models._registry import build_named

__all__ = ["LTI_SYSTEMS", "convection_diffusion", "diffusion_2d", "get_lti_system", "jordan_system",
           "lti_states", "mass_spring_chain"]


def diffusion_2d(n: int = 60):
    """Heat equation on the unit square, n × n interior grid (n² states), Dirichlet walls.

    Input: a heat source on the square [0.2, 0.4]²; outputs: the mean temperature over
    [0.6, 0.8]² and the temperature at the centre.
    """
    h = 1.0 / (n + 1)
    t = sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n, n)) / h**2
    a = sp.kronsum(t, t, format="csr")
    axis = np.arange(1, n + 1) * h
    X, Y = np.meshgrid(axis, axis, indexing="ij")
    source = ((X >= 0.2) & (X <= 0.4) & (Y >= 0.2) & (Y <= 0.4)).ravel().astype(float)
    sensor = ((X >= 0.6) & (X <= 0.8) & (Y >= 0.6) & (Y <= 0.8)).ravel().astype(float)
    centre = np.zeros(n * n)
    centre[np.argmin((X.ravel() - 0.5) ** 2 + (Y.ravel() - 0.5) ** 2)] = 1.0
    b = 100.0 * source[:, None]
    c = np.vstack([sensor / sensor.sum(), centre])
    return a, b, c, np.zeros((2, 1))


def convection_diffusion(n: int = 100, peclet: float = 0.97, nu: float = 1e-2):
    """1-D ``u_t = ν u_xx - a u_x`` on [0, 1], Dirichlet, central differences at cell Péclet
    number ``a h / (2ν) = peclet``: the eigenvector matrix grows like ((1+Pe)/(1-Pe))^{n/2}."""
    h = 1.0 / (n + 1)
    velocity = 2 * nu * peclet / h
    lower = nu / h**2 + velocity / (2 * h)
    upper = nu / h**2 - velocity / (2 * h)
    a = sp.diags([lower, -2 * nu / h**2, upper], [-1, 0, 1], shape=(n, n), format="csr")
    x = np.arange(1, n + 1) * h
    b = np.exp(-((x - 0.2) ** 2) / 0.005)[:, None]
    c = np.vstack([(x > 0.7).astype(float) * h, np.exp(-((x - 0.5) ** 2) / 0.01) * h])
    return a, b, c, np.zeros((2, 1))


def mass_spring_chain(n: int = 50, damping: float = 0.02):
    """A chain of ``n`` unit masses and springs (fixed ends), lightly damped; force on the first
    mass, output the displacement of the last: complex mode pairs (second-order neurons)."""
    k = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n)).toarray()
    a = np.block([[np.zeros((n, n)), np.eye(n)], [-k, -damping * np.eye(n)]])
    b = np.zeros((2 * n, 1))
    b[n, 0] = 1.0
    c = np.zeros((1, 2 * n))
    c[0, n - 1] = 1.0
    return a, b, c, np.zeros((1, 1))


def jordan_system():
    """A defective system: a 4 × 4 Jordan block at -1, a damped oscillation and a fast mode."""
    a = np.zeros((7, 7))
    a[:4, :4] = -np.eye(4) + np.diag(np.ones(3), 1)
    a[4:6, 4:6] = [[-0.5, 2.0], [-2.0, -0.5]]
    a[6, 6] = -3.0
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(7, 7)))[0]  # hide the structure behind an orthogonal change of basis
    b = rng.normal(size=(7, 2))
    c = rng.normal(size=(2, 7))
    return q @ a @ q.T, q @ b, c @ q.T, np.array([[0.1, 0.0], [0.0, -0.2]])


#: the named systems of workflows (``lti.system``)
LTI_SYSTEMS = {
    "diffusion_2d": diffusion_2d,
    "convection_diffusion": convection_diffusion,
    "mass_spring_chain": mass_spring_chain,
    "jordan": jordan_system,
}


#: the state dimension of each named system from its parameters, without building it
_STATES = {
    "diffusion_2d": lambda n=60: n * n,
    "convection_diffusion": lambda n=100, **_: n,
    "mass_spring_chain": lambda n=50, **_: 2 * n,
    "jordan": lambda: 7,
}


def lti_states(name: str, params: dict) -> int | None:
    """How many states the named system has with ``params`` (None: unknown name or parameters,
    which :func:`get_lti_system` reports)."""
    try:
        n = _STATES[name](**params)
    except (KeyError, TypeError):
        return None
    return int(n) if isinstance(n, (int, np.integer)) else None


def get_lti_system(name: str, **params):
    """``(A, B, C, D)`` of a named system; unknown names and parameters are errors naming them."""
    return build_named(LTI_SYSTEMS, name, params, "LTI system")
