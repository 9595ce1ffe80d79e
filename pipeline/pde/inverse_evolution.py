"""Constant parameters of a system (time-dependent, or static) estimated from observations of its fields.

A static :class:`~pipeline.pde.systems.SystemProblem` works the same way, each residual one
Gauss–Newton solve (:func:`~pipeline.pde.gauss_newton.solve_system`) with the same seed, so
the same basis and points (observations without times).

Observations are :class:`~pipeline.pde.observations.Observations` with times (points
``(x_i, t_i)`` and the observed fields' values there; read from CSV / NetCDF / zarr by
``load_observations``, or built from a grid by :func:`gridded_observations`).  The unknowns
``θ`` (a few scalar parameters of the right-hand sides) minimise the output error

    ‖r(θ)‖²,    r = [(u_f(x_i, t_i; θ) − d_fi) / s_f]_{f, i},   s_f = rms(d_f),

by Levenberg–Marquardt, each residual one forward solve of
:class:`~pipeline.pde.system_evolution.SystemEvolution` on the same sampled basis and
collocation points (the basis does not depend on ``θ``, so ``r`` is a smooth function of ``θ``
and the projection is built once).  The Jacobian comes from forward differences in the scaled
parameters ``θ_j / |θ_j⁰|`` (relative step ``1e-6``; the forward model is integrated at
``rtol`` 1e-10, so the differences carry ~1e-4 relative error, which slows Gauss–Newton only
by that factor per step).  A step that does not lower the residual is retried with the damping
``μ`` raised (×10, on ``diag(JᵀJ)``); none lowering it is a divergence, unless the undamped
step is already below the tolerance (the iteration stagnated at the optimum).

At the estimate, ``Cov θ = σ² (JᵀJ)⁻¹`` with ``σ² = ‖r‖² / (m − p)`` gives the standard errors
(``m`` observations, ``p`` parameters).  The columns of ``J`` are normalised and its singular
values checked at every iteration: a relative singular value below ``rank_tolerance`` means a
combination of parameters the observations do not determine (two that enter only as a product,
one that enters nowhere) — an :class:`IdentifiabilityError` names them.

No parameter of these systems enters the *observations* linearly (the fields depend
nonlinearly on every rate and diffusivity), so there is nothing for variable projection to
eliminate here; all parameters are Gauss–Newton unknowns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from pipeline.pde.integrators import DivergenceError
from pipeline.pde.observations import Observations
from pipeline.pde.system_evolution import SystemEvolution, SystemEvolutionProblem
from pipeline.pde.systems import ConvergenceError, SystemProblem

__all__ = ["IdentifiabilityError", "InverseResult", "estimate_parameters", "gridded_observations"]

#: the largest change of a parameter in one step, relative to its size (or its start scale): a
#: linearisation far from the data can propose steps into regions where the forward model is
#: stiff or ill-posed (a 950-fold step of a diffusivity, measured), which cost minutes to reject
MAX_STEP = 0.5
#: a Gauss–Newton step below this fraction of every standard error is converged: with noisy data
#: the differenced Jacobian's error (~1e-4) times the residual moves the optimum by more than
#: any fixed relative tolerance, and by far less than the estimates' uncertainty
#: a step that no damping makes useful, below this share of the standard errors: converged
STAGNATION = 0.1
STATISTICAL_TOLERANCE = 1e-3


class IdentifiabilityError(ValueError):
    """The observations do not determine some parameters; ``parameters`` names them."""

    def __init__(self, message, parameters):
        super().__init__(message)
        self.parameters = tuple(parameters)


def gridded_observations(times, points, values: dict, noise: float | None = None) -> Observations:
    """:class:`~pipeline.pde.observations.Observations` of fields on a grid: ``values[field]`` is
    ``(len(times), len(points))``; one observation per (time, point)."""
    times = np.asarray(times, dtype=float).reshape(-1)
    points = np.asarray(points, dtype=float)
    points = points[:, None] if points.ndim == 1 else points
    if not isinstance(values, dict) or not values:
        raise ValueError("gridded observations need values {field: (n_times, n_points) array} for at least one field")
    columns = []
    for name, v in values.items():
        v = np.asarray(v, dtype=float)
        if v.shape != (len(times), len(points)):
            raise ValueError(f"observations of {name!r} must be (n_times, n_points) = ({len(times)}, {len(points)}), "
                             f"got {v.shape}")
        columns.append(v.reshape(-1))
    return Observations(np.tile(points, (len(times), 1)), np.stack(columns, axis=1), tuple(values), noise,
                        np.repeat(times, len(points)))


@dataclass
class InverseResult:
    """Estimates, their standard errors and the iteration's record."""

    estimates: dict
    standard_errors: dict
    covariance: np.ndarray
    sigma: float  # residual standard deviation (relative to each field's RMS)
    residual_norm: float
    iterations: int
    forward_solves: int
    history: list
    cpu_s: float
    wall_s: float
    start: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"estimates": dict(self.estimates), "standard_errors": dict(self.standard_errors),
                "sigma": self.sigma, "iterations": self.iterations, "forward_solves": self.forward_solves,
                "cpu_s": self.cpu_s, "wall_s": self.wall_s}


class _Model:
    """The scaled residual ``r(z)`` with ``θ = z ⊙ scale``; counts forward solves."""

    def __init__(self, evolution, observations, names, scale):
        self.evolution, self.obs, self.names, self.scale = evolution, observations, names, scale
        values = observations.values
        self.weights = 1.0 / np.maximum(np.sqrt(np.mean(values ** 2, axis=0)), 1e-300)  # per observed field
        self.columns = [evolution.problem.fields.index(f) for f in observations.fields]
        self.evaluators: dict = {}  # projection fingerprint -> E_f at the observation points
        self.solves = 0

    def params(self, z) -> dict:
        return {n: float(v) for n, v in zip(self.names, z * self.scale)}

    def residual(self, z) -> np.ndarray | None:
        """``None`` when the forward solve diverges or is not finite."""
        self.solves += 1
        try:
            proj, states, _ = self.evolution.states(self.obs.times, self.params(z))
        except DivergenceError:
            return None
        if proj.fingerprint not in self.evaluators:
            self.evaluators[proj.fingerprint] = proj.evaluators(self.obs.points)
        evaluators = self.evaluators[proj.fingerprint]
        parts = []
        for k, f in enumerate(self.columns):  # u_f(x_i, t_i) = E_f[i] · y_f(t_i), row by row
            model = np.einsum("ik,ik->i", evaluators[f], states[:, proj.offsets[f]:proj.offsets[f + 1]])
            parts.append((model - self.obs.values[:, k]) * self.weights[k])
        r = np.concatenate(parts)
        return r if np.all(np.isfinite(r)) else None

    def jacobian(self, z, r, step):
        columns = []
        for j in range(len(z)):
            h = step * max(abs(z[j]), 1.0)
            shifted = z.copy()
            shifted[j] += h
            r_j = self.residual(shifted)
            if r_j is None:  # at the edge of stability: the other side
                shifted[j] = z[j] - h
                r_j = self.residual(shifted)
                if r_j is None:
                    raise ConvergenceError(f"the forward solve diverges on both sides of {self.names[j]} = "
                                           f"{z[j] * self.scale[j]:g}; the iteration cannot continue", [])
                h = -h
            columns.append((r_j - r) / h)
        return np.column_stack(columns)


class _StaticModel(_Model):
    """The residual of a static system: one Gauss–Newton solve per evaluation (same seed, same basis)."""

    def __init__(self, problem, observations, names, scale, settings):
        self.problem, self.settings = problem, dict(settings or {})
        self.obs, self.names, self.scale = observations, names, scale
        self.weights = 1.0 / np.maximum(np.sqrt(np.mean(observations.values ** 2, axis=0)), 1e-300)
        self.columns = [problem.fields.index(f) for f in observations.fields]
        self.solves = 0

    def residual(self, z) -> np.ndarray | None:
        from dataclasses import replace

        from pipeline.pde.gauss_newton import solve_system

        self.solves += 1
        problem = replace(self.problem, params={**self.problem.params, **self.params(z)})
        try:
            values = solve_system(problem, **self.settings)(self.obs.points)
        except ConvergenceError:
            return None
        r = np.concatenate([(values[:, f] - self.obs.values[:, k]) * self.weights[k]
                            for k, f in enumerate(self.columns)])
        return r if np.all(np.isfinite(r)) else None


def check_identifiable(jac: np.ndarray, names, tolerance: float) -> None:
    """Raise :class:`IdentifiabilityError` naming the parameters of the near-null space of ``J``."""
    norms = np.linalg.norm(jac, axis=0)
    dead = [n for n, v in zip(names, norms) if not v > 0]
    if dead:
        raise IdentifiabilityError(f"parameter(s) {dead} are not identifiable from these observations: the "
                                   "observations do not depend on them at all", dead)
    _, s, vt = np.linalg.svd(jac / norms, full_matrices=False)
    small = s < tolerance * s[0]
    if not small.any():
        return
    null = vt[small]
    weight = np.max(np.abs(null), axis=0)
    involved = [n for n, w in zip(names, weight) if w > 0.1]
    rank = int(np.count_nonzero(~small))
    raise IdentifiabilityError(
        f"parameters {involved} are not identifiable from these observations: the Jacobian of the observations "
        f"has rank {rank} of {len(names)} (relative singular values {np.array2string(s / s[0], precision=1)}); "
        "they enter only in a combination (e.g. as a product) — fix all but one of them or add observations "
        "that separate them", involved)


def _unknowns(problem, start):
    if isinstance(start, (list, tuple)):
        start = {n: problem.params.get(n) for n in start}
    if not isinstance(start, dict) or not start:
        raise ValueError("unknown parameters must be a non-empty {name: start value} dict")
    bad = sorted(set(start) - set(problem.params))
    if bad:
        raise ValueError(f"problem {problem.name!r} has no parameter(s) {bad}; its parameters: "
                         f"{sorted(problem.params)}")
    for n, v in start.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ValueError(f"the start value of {n!r} must be a finite number, got {v!r}")
    return dict(start)


def estimate_parameters(problem: SystemEvolutionProblem | SystemProblem, observations: Observations, unknown, *,
                        settings: dict | None = None, max_iterations: int = 30, tolerance: float = 1e-7,
                        step: float = 1e-6, rank_tolerance: float = 1e-6, evolution: SystemEvolution | None = None
                        ) -> InverseResult:
    """Estimate ``unknown`` parameters (``{name: start value}``, or names: start at the
    problem's values) from ``observations`` by Levenberg–Marquardt over forward solves.

    ``settings``: solver settings of the forward model (the problem's defaults otherwise).
    Converged when the largest relative parameter change is below ``tolerance``.  Raises
    :class:`IdentifiabilityError` (rank-deficient Jacobian, naming the parameters) and
    :class:`~pipeline.pde.systems.ConvergenceError` (the forward solve diverges at the start,
    no damped step lowers the residual, or no convergence within ``max_iterations``).
    """
    wall, cpu = time.perf_counter(), time.process_time()
    start = _unknowns(problem, unknown)
    if not isinstance(observations, Observations):
        raise TypeError(f"observations must be a pipeline.pde.observations.Observations (see gridded_observations), "
                        f"got {type(observations).__name__}")
    static = isinstance(problem, SystemProblem)
    observations.check(problem.domain, fields=problem.fields, span=None if static else problem.t_span)
    names = tuple(start)
    if observations.values.size <= len(names):
        raise ValueError(f"{observations.values.size} observations cannot determine {len(names)} parameters")
    scale = np.array([abs(v) if v != 0 else 1.0 for v in start.values()])
    if static:
        model = _StaticModel(problem, observations, names, scale, settings)
    else:
        evolution = evolution or SystemEvolution(problem, **(settings or {}))
        model = _Model(evolution, observations, names, scale)
    z = np.array([v for v in start.values()], dtype=float) / scale
    r = model.residual(z)
    if r is None:
        raise ConvergenceError(f"the forward solve diverges at the start values {model.params(z)}: the iteration "
                               "cannot start; choose start values closer to the truth", [])
    history, mu, converged = [], 0.0, False
    for iteration in range(max_iterations):
        jac = model.jacobian(z, r, step)
        check_identifiable(jac, names, rank_tolerance)
        cost = float(r @ r)
        u, s, vt = np.linalg.svd(jac, full_matrices=False)
        gn = -(vt.T @ ((u.T @ r) / s))
        diag = np.maximum(np.sum(jac ** 2, axis=0), 1e-300)
        accepted = None
        for attempt in range(12):
            delta = gn if mu == 0 else np.linalg.solve(jac.T @ jac + mu * np.diag(diag), -jac.T @ r)
            delta = delta * min(1.0, MAX_STEP / float(np.max(np.abs(delta) / np.maximum(np.abs(z), 1.0))))
            r_new = model.residual(z + delta)
            if r_new is not None and float(r_new @ r_new) < cost:
                accepted = delta
                break
            mu = max(mu * 10.0, 1e-4)
        change = float(np.max(np.abs(gn) / np.maximum(np.abs(z), 1e-300)))
        # the step against the standard errors at this point: below 1e-3 of them it is noise
        se_z = np.sqrt(cost / max(len(r) - len(z), 1) * np.sum((vt.T / s) ** 2, axis=1))
        significance = float(np.max(np.abs(gn) / np.maximum(se_z, 1e-300)))
        insignificant = significance < STATISTICAL_TOLERANCE
        history.append({"iteration": iteration, "residual": float(np.sqrt(cost)), "damping": mu,
                        "params": model.params(z), "step": change})
        if accepted is None:
            # stagnated at the optimum: the full step would move no estimate by a tenth of its standard
            # error, and no damped one lowers the residual (the forward model's own noise)
            if change < 100 * tolerance or significance < STAGNATION:
                converged = True
                break
            raise ConvergenceError(
                f"the Gauss–Newton iteration diverged at iteration {iteration}: no damped step lowers the residual "
                f"{np.sqrt(cost):.3e} (parameters {model.params(z)})", history)
        z, r = z + accepted, r_new
        mu = mu / 10.0 if mu > 1e-4 else 0.0
        if float(np.max(np.abs(accepted) / np.maximum(np.abs(z), 1e-300))) < tolerance or insignificant:
            converged = True
            break
    if not converged:
        raise ConvergenceError(f"the Gauss–Newton iteration did not converge in {max_iterations} iteration(s) (last "
                               f"relative step {history[-1]['step']:.1e}, tolerance {tolerance:.0e})", history)
    jac = model.jacobian(z, r, step)
    check_identifiable(jac, names, rank_tolerance)
    m, p = len(r), len(names)
    sigma2 = float(r @ r) / max(m - p, 1)
    u, s, vt = np.linalg.svd(jac, full_matrices=False)
    cov_z = sigma2 * (vt.T / s ** 2) @ vt
    cov = cov_z * np.outer(scale, scale)
    estimates = model.params(z)
    errors = {n: float(np.sqrt(cov[j, j])) for j, n in enumerate(names)}
    return InverseResult(estimates, errors, cov, float(np.sqrt(sigma2)), float(np.linalg.norm(r)), len(history),
                         model.solves, history, time.process_time() - cpu, time.perf_counter() - wall, start)
