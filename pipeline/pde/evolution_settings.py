"""Settings of time-dependent solves (:class:`pipeline.pde.evolution.Evolution`): defaults and validation."""

from __future__ import annotations

import numpy as np

from pipeline.backend import DEVICES
from pipeline.linalg import check_regularisation
from pipeline.pde.domains import METHODS as POINT_METHODS
from pipeline.pde.integrators import METHODS

__all__ = ["GLOBAL_DEFAULTS", "resolve_settings"]

GLOBAL_DEFAULTS = {
    "width": 400,
    "activation": "tanh",
    "sampler": "uswim",
    "weight_scale": 1.0,
    "bias_scale": 1.0,
    "curvature_scale": 0.0,
    "n_interior": 1000,
    "n_boundary": 100,
    "points": "uniform",
    "rcond": 1e-10,
    "kappa": 1.0,
    "relaxation": None,
    "boundary": "penalty",
    "method": None,
    "rtol": 1e-10,
    "atol": 1e-12,
    "blocks": 1,
    "adaptive_points": 0.0,
    "windows": 1,
    "pool_size": 2000,
    "seed": 0,
    "chunk_rows": None,
    "device": "cpu",
    "hyper_reduction": None,
    "hyper_oversampling": None,
    "hyper_basis": None,
    "prune": None,
}


#: windows and time blocks of one member: beyond these, the bookkeeping alone takes minutes
MAX_WINDOWS = 10_000
MAX_BLOCKS = 1_000


def resolve_settings(problem, overrides: dict) -> dict:
    """The settings of a run: the overrides, the problem's ``defaults``, then :data:`GLOBAL_DEFAULTS` (validated)."""
    unknown = sorted(set(overrides) - set(GLOBAL_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown evolution setting {unknown[0]!r}; allowed: {', '.join(GLOBAL_DEFAULTS)}")
    s = {**GLOBAL_DEFAULTS, **problem.defaults, **{k: v for k, v in overrides.items() if v is not None}}
    for key in ("width", "n_interior", "blocks", "windows", "pool_size"):
        v = s[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{key} must be a positive integer, got {v!r}")
    for key, most in (("windows", MAX_WINDOWS), ("blocks", MAX_BLOCKS)):
        if s[key] > most:  # the problem's own default can ask for this (advection: one window per 4000 β·T)
            raise ValueError(f"{key}={s[key]} (given, or the problem's default for its parameters) is more than "
                             f"{most}: one member would take days; shorten the span or lower the parameters")
    if s["n_interior"] < 2:  # one point: no pair to sample a neuron from, a rank-one fit of anything
        raise ValueError(f"n_interior must be at least 2 collocation points, got {s['n_interior']}")
    if s["points"] not in POINT_METHODS:
        raise ValueError(f"points must be one of {POINT_METHODS}, got {s['points']!r}")
    if not (0.0 <= float(s["adaptive_points"]) < 1.0):
        raise ValueError(f"adaptive_points (the share of points re-drawn by |∇u|) must lie in [0, 1), "
                         f"got {s['adaptive_points']!r}")
    if s["boundary"] not in ("penalty", "compliant"):
        raise ValueError(f"boundary must be 'penalty' or 'compliant', got {s['boundary']!r}")
    v = s["chunk_rows"]
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
        raise ValueError(f"chunk_rows must be a positive integer or None (automatic), got {v!r}")
    if s["device"] not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {s['device']!r}")
    if s["hyper_reduction"] is not None and not isinstance(s["hyper_reduction"], (bool, np.bool_)):
        raise ValueError(f"hyper_reduction must be true, false or None (on for nonlinear problems), "
                         f"got {s['hyper_reduction']!r}")
    if s["hyper_basis"] not in (None, "gradients", "values"):
        raise ValueError(f"hyper_basis must be 'gradients' (the fields N reads and every first derivative) or "
                         f"'values' (the fields N reads), got {s['hyper_basis']!r}")
    v = s["hyper_oversampling"]
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.number))
                          or not (np.isfinite(v) and v >= 1)):
        raise ValueError(f"hyper_oversampling (interpolation rows per column of the interpolation basis) must be a "
                         f"number >= 1 or None (automatic), got {v!r}")
    v = s["prune"]
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not 0.0 <= v < 1.0):
        raise ValueError(f"prune (the relative pivot threshold for dropping dependent features; 0 keeps them all) "
                         f"must be a number in [0, 1) or None, got {v!r}")
    check_regularisation(s["rcond"], None)
    if s["rcond"] is None:
        raise ValueError("rcond must be set for time-dependent problems")
    if not (np.isfinite(s["kappa"]) and s["kappa"] > 0):
        raise ValueError(f"kappa must be a positive number, got {s['kappa']!r}")
    if s["relaxation"] is not None and not (np.isfinite(s["relaxation"]) and s["relaxation"] > 0):
        raise ValueError(f"relaxation (the boundary rate λ) must be a positive number, got {s['relaxation']!r}")
    method = s["method"] or ("exact" if problem.linear and problem.autonomous else "DOP853")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "exact" and not problem.linear:  # forcing that depends on time: a series (projection.py)
        raise ValueError("method 'exact' needs a linear autonomous problem, or a linear one whose forcing is "
                         "smooth in time; use 'DOP853', 'BDF' or 'Radau'")
    s["method"] = method
    if problem.conditions and s["n_boundary"] < 1:
        raise ValueError(f"problem {problem.name!r} has boundary conditions, so n_boundary must be positive")
    return s
