"""Registered time-dependent systems (kind ``"system_evolution"``), with independent references.

Each is a :class:`~pipeline.pde.system_evolution.SystemEvolutionProblem` whose ``defaults``
meet the targets of ``benchmarks/system_evolution.py`` on two cores; the references are
computed by Fourier methods (:mod:`pipeline.pde.system_references`).
"""

from __future__ import annotations

import numpy as np

from pipeline.pde.conditions import Periodic
from pipeline.pde.domains import Box
from pipeline.pde.problems import _positive, register
from pipeline.pde.system_evolution import SystemEvolutionProblem
from pipeline.pde.system_references import (
    NLS_HI,
    NLS_LO,
    NLS_T,
    brusselator_initial,
    brusselator_reference,
    nls_reference,
)

__all__ = ["BRUSSELATOR_CONSTANTS", "brusselator", "brusselator_grid", "brusselator_rhs", "schrodinger"]


def brusselator_rhs():
    """The Brusselator's right-hand sides ``{field: F(x, U, p)}`` (parameters ``D_u, D_v, a, b``)."""
    return {
        "u": lambda x, U, p: p["D_u"] * U["u_xx"] + p["a"] - (p["b"] + 1.0) * U["u"] + U["u"] ** 2 * U["v"],
        "v": lambda x, U, p: p["D_v"] * U["v_xx"] + p["b"] * U["u"] - U["u"] ** 2 * U["v"],
    }


@register("brusselator", params={"D_u": 0.1, "D_v": 0.05, "a": 1.0, "b": 1.7, "T": 2.0}, truth="reference",
          kind="system_evolution")
def brusselator(D_u=0.1, D_v=0.05, a=1.0, b=1.7, T=2.0):
    """Brusselator u_t = D_u u_xx + a - (b+1)u + u²v, v_t = D_v v_xx + bu - u²v on [0, 2π] periodic; Fourier reference."""
    d_u, d_v, a, b, T = (_positive(n, v) for n, v in (("D_u", D_u), ("D_v", D_v), ("a", a), ("b", b), ("T", T)))
    ref = {"d_u": d_u, "d_v": d_v, "a": a, "b": b, "t_end": T}
    return SystemEvolutionProblem(
        "brusselator", Box([0.0], [2 * np.pi]), ("u", "v"), brusselator_rhs(),
        {"u": lambda x: brusselator_initial(x[:, 0])[0], "v": lambda x: brusselator_initial(x[:, 0])[1]},
        (0.0, T), conditions=(Periodic(axis=0, derivatives=2),),
        reference={"u": lambda x, t: brusselator_reference(x[:, 0], t, **ref)[0],
                   "v": lambda x, t: brusselator_reference(x[:, 0], t, **ref)[1]},
        params={"D_u": d_u, "D_v": d_v, "a": a, "b": b}, description=brusselator.__doc__,
        evaluation=lambda: (np.linspace(0.0, 2 * np.pi, 201)[:, None] + 0.0, np.linspace(0.0, T, 11)),
        defaults={"width": 160, "n_interior": 400, "sampler": "uswim", "rcond": 1e-10, "method": "DOP853",
                  "rtol": 1e-10, "atol": 1e-12},
    )


def _nls_rhs():
    # h = u + i v, i h_t + ½ h_xx + |h|² h = 0:  u_t = -½ v_xx - |h|² v,  v_t = ½ u_xx + |h|² u
    return {"u": lambda x, U, p: -0.5 * U["v_xx"] - (U["u"] ** 2 + U["v"] ** 2) * U["v"],
            "v": lambda x, U, p: 0.5 * U["u_xx"] + (U["u"] ** 2 + U["v"] ** 2) * U["u"]}


def _nls_grid():
    # 256 points offset from any collocation grid (the method never sees them), 21 times
    x = np.linspace(NLS_LO, NLS_HI, 257)[:-1] + 0.0123
    return x[:, None], np.linspace(0.0, NLS_T, 21)


@register("schrodinger", params={}, truth="reference", kind="system_evolution")
def schrodinger():
    """Cubic Schrödinger i h_t + ½ h_xx + |h|² h = 0 on [-5, 5] periodic, h(0, x) = 2 sech x, t ∈ [0, π/2]; (u, v) = (Re h, Im h)."""

    def part(which):
        return lambda x, t: getattr(nls_reference(x[:, 0], t), which)

    return SystemEvolutionProblem(
        "schrodinger", Box([NLS_LO], [NLS_HI]), ("u", "v"), _nls_rhs(),
        {"u": lambda x: 2.0 / np.cosh(x[:, 0]), "v": lambda x: np.zeros(len(x))},
        (0.0, NLS_T), conditions=(Periodic(axis=0, derivatives=2),),
        reference={"u": part("real"), "v": part("imag")},
        derived={"h_abs": lambda F: np.sqrt(F["u"] ** 2 + F["v"] ** 2)},
        description=schrodinger.__doc__, evaluation=_nls_grid,
        # ELM features of slope ~3 (centres spread over the domain by bias_scale 15) resolve the peak
        # of |h| = 4 at t = π/4: seeds 0–7 5.9e-5 median, 6.3e-5 worst in ~1 CPU-s each; U-SWIM at
        # width 400 gave 1.1e-4 … 1.2e-3 (rank ~85: too few steep features), ELM at width 400,
        # n_interior 1000, rcond 1e-10 4.0e-5 / 4.3e-5 in 4.5 CPU-s.
        defaults={"width": 300, "n_interior": 600, "sampler": "elm", "weight_scale": 3.0, "bias_scale": 15.0,
                  "rcond": 1e-8, "method": "DOP853", "rtol": 1e-8, "atol": 1e-10},
    )



#: the Brusselator's registry constants: the truth of the inverse benchmark, test and workflow
BRUSSELATOR_CONSTANTS = {"D_u": 0.1, "D_v": 0.05, "a": 1.0, "b": 1.7}


def brusselator_grid(noise: float = 0.0, t_end: float = 2.0, seed: int = 0, n_points: int = 32, n_times: int = 10):
    """Synthetic observations: ``(t, x, {field: values})`` of the Fourier reference at the registry
    constants, ``n_points`` points (offset from any collocation grid) × ``n_times`` times of
    ``(0, t_end]``, each field with Gaussian noise of ``noise`` times its root mean square."""
    x = np.linspace(0, 2 * np.pi, n_points + 1)[:-1] + 0.05
    t = np.linspace(0.0, t_end, n_times + 1)[1:]
    c = BRUSSELATOR_CONSTANTS
    ref = {"d_u": c["D_u"], "d_v": c["D_v"], "a": c["a"], "b": c["b"], "t_end": t_end}
    values = {f: np.array([brusselator_reference(x, tt, **ref)[i] for tt in t]) for i, f in enumerate("uv")}
    rng = np.random.default_rng(seed)
    values = {f: v + noise * np.sqrt(np.mean(v ** 2)) * rng.standard_normal(v.shape) for f, v in values.items()}
    return t, x[:, None], values
