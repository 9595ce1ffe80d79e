"""Registered systems and nonlinear static problems (kind ``"system"``), with exact solutions.

Each is a :class:`~pipeline.pde.systems.SystemProblem`: fields, point-wise residuals, and
solver defaults measured to meet the targets of ``benchmarks/systems.py`` on two cores.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize

from pipeline.pde.domains import Box
from pipeline.pde.fields import Equation
from pipeline.pde.problems import _positive, register
from pipeline.pde.systems import SystemProblem

__all__ = ["BRATU_CRITICAL", "bratu_theta"]

#: the fold of the 1-D Bratu problem: λ_c = max θ² / (2 cosh²(θ/4)), at θ_c ≈ 4.7987
THETA_CRITICAL = float(scipy.optimize.brentq(lambda t: 1.0 - (t / 4.0) * math.tanh(t / 4.0), 1.0, 10.0))
BRATU_CRITICAL = THETA_CRITICAL ** 2 / (2.0 * math.cosh(THETA_CRITICAL / 4.0) ** 2)


def bratu_theta(lam: float, branch: str) -> float:
    """θ of ``u = -2 ln(cosh((x - 1/2) θ/2) / cosh(θ/4))``: the root of ``θ = sqrt(2λ) cosh(θ/4)``."""
    g = lambda t: t - math.sqrt(2.0 * lam) * math.cosh(t / 4.0)  # noqa: E731
    if branch == "lower":
        return float(scipy.optimize.brentq(g, 0.0, THETA_CRITICAL))
    return float(scipy.optimize.brentq(g, THETA_CRITICAL, 60.0))


@register("bratu", params={"lam": 1.0, "branch": "lower"}, truth="exact", kind="system")
def bratu(lam=1.0, branch="lower"):
    """Bratu u'' + λ e^u = 0 on [0, 1], u(0) = u(1) = 0 (both branches for 0 < λ < λ_c ≈ 3.5138)."""
    lam = _positive("lam", lam)
    if branch not in ("lower", "upper"):
        raise ValueError(f"parameter branch must be 'lower' or 'upper', got {branch!r}")
    if lam >= BRATU_CRITICAL:
        raise ValueError(f"parameter lam must lie below the fold λ_c = {BRATU_CRITICAL:.6f} (no solution beyond), "
                         f"got {lam}")
    theta = bratu_theta(lam, branch)

    def exact(x):
        return -2.0 * np.log(np.cosh((x[:, 0] - 0.5) * theta / 2.0) / math.cosh(theta / 4.0))

    # the upper branch starts from a large bump and follows λ from 1 down the branch
    initial = {"u": lambda x: 4.0 * np.sin(np.pi * x[:, 0])} if branch == "upper" else None
    defaults = {"width": 200, "n_interior": 1000, "n_boundary": 2}
    if branch == "upper" and lam != 1.0:
        defaults["continuation"] = {"param": "lam", "values": [1.0]}
    return SystemProblem(
        "bratu", Box([0.0], [1.0]), ("u",),
        (Equation(lambda x, U, p: U["u_xx"] + p["lam"] * np.exp(U["u"]), name="pde"),
         Equation(lambda x, U, p: U["u"], on=None, name="dirichlet")),
        exact={"u": exact}, initial=initial, params={"lam": lam, "branch": branch}, defaults=defaults,
        description=f"Bratu, λ = {lam}, {branch} branch")


@register("nonlinear_poisson", params={}, truth="exact", kind="system")
def nonlinear_poisson():
    """-Δu + u³ = f on [0, 1]², Dirichlet, exact u = sin(πx) sin(πy) + x y."""

    def exact(x):
        return np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]) + x[:, 0] * x[:, 1]

    def source(x):
        s = np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1])
        return 2 * np.pi ** 2 * s + exact(x) ** 3

    return SystemProblem(
        "nonlinear_poisson", Box([0.0, 0.0], [1.0, 1.0]), ("u",),
        (Equation(lambda x, U, p: -U["u_xx"] - U["u_yy"] + U["u"] ** 3 - source(x), name="pde"),
         Equation(lambda x, U, p: U["u"] - exact(x), on=None, name="dirichlet")),
        exact={"u": exact}, defaults={"width": 800, "n_interior": 3000, "n_boundary": 600})


@register("elasticity_2d", params={"lame": 1.0, "shear": 0.5}, truth="exact", kind="system")
def elasticity_2d(lame=1.0, shear=0.5):
    """Linear elasticity μΔu + (λ+μ)∇(∇·u) + f = 0 on [0, 1]²: clamped, traction on x = 1; exact u."""
    lam, mu = _positive("lame", lame), _positive("shear", shear)
    pi = np.pi

    def parts(x):
        X, Y = x[:, 0], x[:, 1]
        u1, u2 = np.sin(pi * X) * np.sin(pi * Y), 0.5 * np.sin(2 * pi * X) * np.sin(pi * Y)
        d = {"u1": u1, "u2": u2,
             "u1_x": pi * np.cos(pi * X) * np.sin(pi * Y), "u1_y": pi * np.sin(pi * X) * np.cos(pi * Y),
             "u2_x": pi * np.cos(2 * pi * X) * np.sin(pi * Y), "u2_y": 0.5 * pi * np.sin(2 * pi * X) * np.cos(pi * Y),
             "u1_xx": -pi ** 2 * u1, "u1_yy": -pi ** 2 * u1, "u1_xy": pi ** 2 * np.cos(pi * X) * np.cos(pi * Y),
             "u2_xx": -4 * pi ** 2 * u2, "u2_yy": -pi ** 2 * u2, "u2_xy": pi ** 2 * np.cos(2 * pi * X) * np.cos(pi * Y)}
        return d

    def momentum(U, i):
        a, b = ("u1", "u2") if i == 0 else ("u2", "u1")
        ax, cross = ("x", "y") if i == 0 else ("y", "x")
        return (mu * (U[f"{a}_xx"] + U[f"{a}_yy"])
                + (lam + mu) * (U[f"{a}_{ax}{ax}"] + U[f"{b}_xy"]))

    def force(x, i):
        return -momentum(parts(x), i)

    def traction(U):  # σ·n on x = 1 (n = e_x): σ_xx = (λ + 2μ) u1_x + λ u2_y, σ_yx = μ (u1_y + u2_x)
        return (lam + 2 * mu) * U["u1_x"] + lam * U["u2_y"], mu * (U["u1_y"] + U["u2_x"])

    clamped = ["x0-", "x1-", "x1+"]
    eqs = (
        Equation(lambda x, U, p: momentum(U, 0) + force(x, 0), name="momentum_x"),
        Equation(lambda x, U, p: momentum(U, 1) + force(x, 1), name="momentum_y"),
        Equation(lambda x, U, p: U["u1"] - parts(x)["u1"], on=clamped, name="clamped_x"),
        Equation(lambda x, U, p: U["u2"] - parts(x)["u2"], on=clamped, name="clamped_y"),
        Equation(lambda x, U, p: traction(U)[0] - traction(parts(x))[0], on="x0+", name="traction_x"),
        Equation(lambda x, U, p: traction(U)[1] - traction(parts(x))[1], on="x0+", name="traction_y"),
    )
    return SystemProblem(
        "elasticity_2d", Box([0.0, 0.0], [1.0, 1.0]), ("u1", "u2"), eqs,
        exact={"u1": lambda x: parts(x)["u1"], "u2": lambda x: parts(x)["u2"]},
        params={"lame": lam, "shear": mu}, defaults={"width": 900, "n_interior": 3000, "n_boundary": 800})


@register("kovasznay", params={"reynolds": 20.0}, truth="exact", kind="system")
def kovasznay(reynolds=20.0):
    """Steady incompressible Navier–Stokes, Kovasznay flow on [-0.5, 1] × [-0.5, 1.5] (u, v, p)."""
    re = _positive("reynolds", reynolds)
    nu = 1.0 / re
    lam = re / 2.0 - math.sqrt(re ** 2 / 4.0 + 4.0 * math.pi ** 2)

    def u(x):
        return 1.0 - np.exp(lam * x[:, 0]) * np.cos(2 * np.pi * x[:, 1])

    def v(x):
        return lam / (2 * np.pi) * np.exp(lam * x[:, 0]) * np.sin(2 * np.pi * x[:, 1])

    def p(x):
        return 0.5 * (1.0 - np.exp(2 * lam * x[:, 0]))

    eqs = (
        Equation(lambda x, U, q: U["u"] * U["u_x"] + U["v"] * U["u_y"] + U["p_x"] - nu * (U["u_xx"] + U["u_yy"]),
                 name="momentum_x"),
        Equation(lambda x, U, q: U["u"] * U["v_x"] + U["v"] * U["v_y"] + U["p_y"] - nu * (U["v_xx"] + U["v_yy"]),
                 name="momentum_y"),
        Equation(lambda x, U, q: U["u_x"] + U["v_y"], name="continuity"),
        Equation(lambda x, U, q: U["u"] - u(x), on=None, name="inflow_u"),
        Equation(lambda x, U, q: U["v"] - v(x), on=None, name="inflow_v"),
    )
    return SystemProblem(
        "kovasznay", Box([-0.5, -0.5], [1.0, 1.5]), ("u", "v", "p"), eqs,
        exact={"u": u, "v": v, "p": p}, gauge=("p",), params={"reynolds": re},
        defaults={"width": 400, "n_interior": 1500, "n_boundary": 500})
