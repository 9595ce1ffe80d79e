"""Time-dependent PDEs by a neural method of lines (docs/design.md §1.3, §3.3).

``u(x, t) = Ψ(x) a(t)`` with ``Ψ = [Φ | 1]`` a sampled basis fixed per time block.  At every
instant the PDE ``u_t = L u + N(u) + f`` (or ``u_tt = …``) is imposed in the least-squares sense
on collocation points, together with boundary rows:

    M a' = K a + [N(u_X); 0] + F(t),     M = [Ψ_X; κ B Ψ_B],   K = [(L Ψ)_X; -λ κ B Ψ_B],
                                         F = [f_X(t); κ (g_t + λ g)(t)]

(penalty rows: the boundary values relax to the data at rate λ), or with a boundary-compliant
basis ``Ψ N`` whose coefficients satisfy homogeneous conditions by construction (``N`` spans the
null space of the boundary rows).  One TSQR of ``[M | K | F]`` gives ``R = U S Vᵀ`` and
``Z = Qᵀ [K | F]``; in the coordinates ``y = S_k V_kᵀ a`` (orthonormal on the rows: ``M a = Q U_k
y``) the ODE is small and well conditioned:

    y' = A y + U_kᵀ Qᵀ (…),   A = U_kᵀ Z_K V_k S_k⁻¹.

Nonlinear terms are evaluated point-wise from the reduced matrices ``D̂_α = (∂^α Ψ)_X V_k S_k⁻¹``
and projected with ``M̂ = M V_k S_k⁻¹ = Q U_k`` — a few mat-vecs per right-hand side, no
linearisation.  Integration proceeds window by window: a window is a pure function of
``(state, t0, t1)``, so runs can be stored as they go and resumed.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import dask.array as da
import numpy as np

from pipeline.cluster import blas_limited, compute
from pipeline.nn import ELMSampler, SWIMSampler, child_seed, get_activation, get_sampler, root_seed, sample_network
from pipeline.nn.network import SampledNetwork
from pipeline.pde.dense import DenseTrajectory, fit_dense
from pipeline.pde.evolution_problems import EvolutionProblem
from pipeline.pde.evolution_settings import GLOBAL_DEFAULTS, resolve_settings  # noqa: F401 (re-exported)
from pipeline.pde.hyperreduction import ExactTerm
from pipeline.pde.integrators import EXPLICIT_METHODS, ExactFlow, integrate
from pipeline.pde.operators import identity
from pipeline.pde.projection import Projection, build_projection
from pipeline.pde.static import operator_rows

__all__ = ["Evolution", "EvolutionProblem", "EvolutionResult", "Projection", "Window", "evolve"]  # re-exported


# ----------------------------------------------------------------------------- integration
@dataclass
class Window:
    """One integration window: coefficient states (and fields) at its output times.

    ``dense(t)`` gives the basis coefficients ``[c | c0]`` of ``u`` at any ``t`` in ``[t0, t1]``
    (``u(x, t) = [Φ(x) | 1] dense(t)`` with the network of ``dense.block``), interpolated within
    the integrator's ``rtol`` (see :mod:`pipeline.pde.dense`).
    """

    block: int
    t0: float
    t1: float
    times: np.ndarray
    states: np.ndarray  # (n_times, k · time_order)
    coefficients: np.ndarray  # (n_times, width + 1): [c | c0]
    fields: np.ndarray | None  # (n_times, n_points) on the output points, if given
    stats: dict
    dense: DenseTrajectory | None = None  # starts/ends (pieces,), values (pieces, NODES, width + 1)


@dataclass
class EvolutionResult:
    problem: EvolutionProblem
    times: np.ndarray
    fields: np.ndarray  # (n_times, n_points)
    points: np.ndarray
    windows: list[Window]
    projections: list[Projection]
    settings: dict
    timings: dict

    def error(self) -> float:
        """Relative L2 error over the whole space–time grid."""
        truth = self.problem.truth
        if truth is None:
            raise ValueError(f"problem {self.problem.name!r} has no exact or reference solution")
        ref = np.stack([np.asarray(truth(self.points, t)) for t in self.times])
        return float(np.linalg.norm(self.fields - ref) / np.linalg.norm(ref))

    def errors_in_time(self) -> np.ndarray:
        truth = self.problem.truth
        ref = np.stack([np.asarray(truth(self.points, t)) for t in self.times])
        return np.linalg.norm(self.fields - ref, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), 1e-300)


class Evolution:
    """A configured run: sample, project, and integrate window by window.

    ``Evolution(problem, **settings).run(times, points)`` integrates over the problem's span and
    returns an :class:`EvolutionResult`; :meth:`window` is the seam for stores and resumption:
    a window depends only on ``(block, state, t0, t1)``.

    ``dense_output`` (default True) fits every window's :attr:`Window.dense`; set it to False
    to skip that work (the states and fields do not change).
    """

    dense_output: bool = True

    def __init__(self, problem: EvolutionProblem, **overrides):
        self.problem = problem
        self.settings = resolve_settings(problem, overrides)
        s = self.settings
        self.activation = get_activation(s["activation"])
        if s["sampler"] != "elm" and s["curvature_scale"]:
            raise ValueError("curvature_scale (quadratic neurons) applies to the 'elm' sampler only")
        sampler = ELMSampler(s["weight_scale"], s["bias_scale"], s["curvature_scale"]) \
            if s["sampler"] == "elm" else s["sampler"]
        self.sampler = get_sampler(sampler)
        self.activation.check_order(problem.max_order())
        if isinstance(self.sampler, SWIMSampler) and self.sampler.mode == "data":
            raise ValueError("sampler 'swim' needs function values; use 'aswim' (values of u0) or 'uswim' / 'elm'")
        self.root = root_seed(s["seed"])
        t0, t1 = problem.t_span
        self.block_edges = np.linspace(t0, t1, s["blocks"] + 1)
        self.projections: dict[int, Projection] = {}
        self.timings: dict[str, float] = {}
        self._flows: dict[int, ExactFlow] = {}  # per block: eigendecomposition and exponentials

    # -- basis and projection per block -----------------------------------------------
    def _collocation(self, block, gradient=None):
        s = self.settings
        spatial = self.problem.spatial(float(self.block_edges[block]))
        groups = spatial.row_groups(s["n_interior"], s["n_boundary"], method=s["points"],
                                    seed=child_seed(self.root, 0, block))
        x_int = np.asarray(groups[0].points.compute() if isinstance(groups[0].points, da.Array) else groups[0].points)
        share = float(s["adaptive_points"])
        n_adapt = int(share * len(x_int))
        if gradient is None or n_adapt == 0:
            return x_int, groups[1:], None
        # Re-draw a share of the points with density ∝ |∇u| of the solution so far (shocks); the
        # mixture density q = (1 - share) + share |∇u| / mean|∇u| sets the rows' weights 1/√q.
        candidates = self.problem.domain.sample_interior(10 * n_adapt, seed=child_seed(self.root, 4, block))
        slope = np.linalg.norm(gradient(candidates), axis=1) + 1e-300
        pick = np.random.default_rng(child_seed(self.root, 5, block)).choice(
            len(candidates), size=n_adapt, replace=False, p=slope / slope.sum())
        keep = np.ones(len(x_int), dtype=bool)
        keep[np.linspace(0, len(x_int) - 1, n_adapt).astype(int)] = False  # thin evenly, keep coverage
        x_int = np.vstack([x_int[keep], candidates[np.sort(pick)]])
        density = (1.0 - share) + share * np.linalg.norm(gradient(x_int), axis=1) / slope.mean()
        return x_int, groups[1:], 1.0 / np.sqrt(density)

    def projection(self, block: int, values=None, gradient=None, network: SampledNetwork | None = None) -> Projection:
        """The block's projection; the solution so far (``values(x)``, ``gradient(x)``) drives
        SWIM re-sampling of the basis and, with ``adaptive_points``, of the collocation points.

        ``network`` rebuilds the projection of a stored basis without sampling (resumption).
        """
        if block in self.projections:
            return self.projections[block]
        s = self.settings
        start = time.perf_counter()
        if network is None:
            pool = self.problem.spatial(0.0).pool(s["pool_size"], seed=child_seed(self.root, 1, block))
            if block == 0 and values is None and self.sampler.passes[-1] == "fitted":
                values = self.problem.initial  # A-SWIM: sample where u0 varies
            # a SWIM sampler draws its pairs by the values it is given (uniformly without)
            sampler = self.sampler
            pool_values = np.asarray(values(pool), dtype=float)[:, None] \
                if values is not None and isinstance(self.sampler, SWIMSampler) else None
            (network,) = compute(sample_network(pool, pool_values, widths=[s["width"]], activation=self.activation,
                                                sampler=sampler, seed=child_seed(self.root, 2, block)))
            x_int, groups, weights = self._collocation(block, gradient)
            if s["prune"]:
                network = _prune(network, self.problem.operator, x_int, s["prune"])
        else:
            if gradient is None and s["adaptive_points"] and block > 0:
                raise ValueError("rebuilding a block with adaptive collocation points needs the previous solution")
            x_int, groups, weights = self._collocation(block, gradient)
        proj = build_projection(self.problem, network, x_int, groups, s, float(self.block_edges[block]), weights,
                                t1=float(self.block_edges[block + 1]))
        self._warn_if_stiff(proj)
        self.projections[block] = proj
        self.timings[f"projection_{block}"] = time.perf_counter() - start
        return proj

    def _warn_if_stiff(self, proj):
        span = float(self.problem.t_span[1] - self.problem.t_span[0])
        # second order: the rates of the first-order system are the square roots of A's eigenvalues
        scale = proj.diagnostics["spectral_radius"] ** (1.0 / self.problem.time_order) * span
        if self.settings["method"] in EXPLICIT_METHODS and np.isfinite(scale) and scale > 1e4:
            warnings.warn(
                f"problem {self.problem.name!r} looks stiff (spectral radius × span = {scale:.1e}) for the explicit "
                f"method {self.settings['method']!r}; use 'exact' (linear), 'BDF' or 'Radau'", RuntimeWarning,
                stacklevel=3)

    # -- states ---------------------------------------------------------------------------
    def initial_state(self, block: int = 0, values=None, velocity=None) -> np.ndarray:
        """Reduced initial state of a block from values (default: the problem's u0)."""
        proj = self.projection(block, values if block > 0 else None)
        x = self._fit_points(proj)
        y0 = proj.fit((values or self.problem.initial)(x), x)
        if self.problem.time_order == 2:
            v = velocity or self.problem.initial_velocity
            return np.concatenate([y0, proj.fit(v(x), x)])
        return y0

    def carry_over(self, block: int, state, new_block: int, network: SampledNetwork | None = None) -> np.ndarray:
        """The reduced state of ``new_block`` continuing ``state`` of ``block``.

        The solution (and, for second-order problems, its velocity) is refitted in the new
        block's basis, which is sampled on that solution — or rebuilt from a stored ``network``.
        """
        prev = self.projections[block]
        dim = self.problem.domain.dim
        fields = [_field_functions(prev.network, prev.coefficient_map @ state[i * prev.rank:(i + 1) * prev.rank], dim)
                  for i in range(self.problem.time_order)]
        values, gradient = fields[0]
        self.projection(new_block, values, gradient, network=network)
        velocity = fields[1][0] if len(fields) == 2 else None
        return self.initial_state(new_block, values=values, velocity=velocity)

    def _fit_points(self, proj):
        boundary = self.problem.domain.sample_boundary(max(self.settings["n_boundary"], 1), seed=child_seed(self.root, 3))
        return np.vstack([proj.x_interior, boundary.points]) if self.problem.conditions else proj.x_interior

    def rhs(self, proj: Projection):
        problem = self.problem
        a = proj.a
        if problem.time_order == 2:
            k = a.shape[0]

            def second(t, state):
                force = proj.b if proj.b is not None else proj.forcing_series(t) \
                    if proj.forcing_series is not None else proj.mass_hat.T @ proj.forcing(t)
                return np.concatenate([state[k:], a @ state[:k] + force])

            return second
        if proj.hyper is not None:
            hyper, source, boundary = proj.hyper, proj.source, proj.boundary_forcing

            def reduced(t, y):
                out = a @ y + hyper(y, t, source if proj.b is None else None)
                if proj.b is not None:
                    return out + proj.b
                return out if boundary is None else out + proj.mass_hat_boundary.T @ boundary(t)

            return reduced
        n_int = proj.interior_rows
        x = proj.x_interior

        def first(t, y):
            out = a @ y
            if proj.b is not None and problem.linear:
                out = out + proj.b
            elif proj.forcing_series is not None:
                out = out + proj.forcing_series(t)
            else:
                forcing = proj.forcing(t)
                if problem.nonlinear is not None:
                    u = {alpha: mat @ y for alpha, mat in proj.derivative_hat.items()}
                    forcing = forcing.copy()
                    forcing[:n_int] += proj.interior_weights * problem.nonlinear(u, x, t)
                out = out + proj.mass_hat.T @ forcing
            return out

        return first

    def jacobian(self, proj: Projection):
        """The Jacobian of the first-order reduced right-hand side: ``A`` plus that of the
        projected nonlinear term (point-wise partials of ``N``, see :mod:`pipeline.pde.hyperreduction`)."""
        if self.problem.linear:
            return proj.a
        if proj.hyper is not None:
            return lambda t, y: proj.a + proj.hyper.jacobian(y, t)
        term = ExactTerm(self.problem.nonlinear, proj.mass_hat[: proj.interior_rows], proj.derivative_hat,
                         proj.x_interior, proj.interior_weights)
        return lambda t, y: proj.a + term.jacobian(y, t)

    def window(self, block: int, state: np.ndarray, t0: float, t1: float, times=None, points=None) -> Window:
        """Integrate one window from ``state`` at ``t0`` to ``t1`` (outputs at ``times`` in [t0, t1])."""
        proj = self.projection(block)
        s = self.settings
        times = np.unique(np.concatenate([[t0], np.asarray(times if times is not None else [], float), [t1]]))
        times = times[(times >= t0) & (times <= t1)]
        linear = (proj.a, proj.b if self.problem.autonomous else proj.forcing_series) if self.problem.linear else None
        # The dense fit is held to the integrator's relative tolerance (also for 'exact', whose
        # states carry no time-discretisation error): rtol · max(1, max_t ‖y(t)‖) in the reduced
        # coordinates, where the field's L2 error is the coordinates' (orthonormal rows).
        tol = max(float(s["rtol"]), float(s["atol"])) if self.dense_output else None
        flow = None
        if tol is not None and s["method"] == "exact":
            flow = self._flows.get(block)
            if flow is None or flow.a is not proj.a:
                flow = self._flows[block] = ExactFlow(*linear, self.problem.time_order)
        start = time.perf_counter()
        traj = integrate(self.rhs(proj), state, times, method=s["method"], linear=linear,
                         jacobian=self.jacobian(proj),
                         order=self.problem.time_order, rtol=s["rtol"], atol=s["atol"], dense=tol, flow=flow)
        k = proj.rank
        coefs = traj.states[:, :k] @ proj.coefficient_map.T
        fields = None if points is None else traj.states[:, :k] @ proj.evaluator(points).T
        stats = {**traj.stats, "seconds": time.perf_counter() - start}
        if proj.hyper is not None and proj.exact_term is not None:
            stats["hyper_rhs_error"] = hyper_error(proj, traj.states[-1, :k], float(traj.times[-1]))
        dense = None
        if traj.sample is not None:
            # Sampled in the reduced coordinates y (u part), stored as basis coefficients.
            # Not below the trajectory's noise floor (ExactFlow.sampler; advection at β = 1000:
            # 13 rtol), but at most 100 rtol: noise beyond that is resolved, or the window split.
            tol = max(tol, min(2.0 * traj.floor, 100.0 * tol))
            dense = fit_dense(traj.sample, t0, t1, tol, pieces=traj.pieces, output=proj.coefficient_map,
                              endpoints=(traj.states[0, :k], traj.states[-1, :k]), block=block)
            stats.update(dense_pieces=dense.pieces, dense_error=dense.error, dense_tol=tol,
                         dense_seconds=time.perf_counter() - start - stats["seconds"])
        return Window(block, t0, t1, traj.times, traj.states, coefs, fields, stats, dense)

    def window_edges(self) -> np.ndarray:
        """Edges of the integration windows (the windows and the block edges merged)."""
        t0, t1 = self.problem.t_span
        return np.unique(np.concatenate([self.block_edges, np.linspace(t0, t1, self.settings["windows"] + 1)]))

    def block_of(self, t: float) -> int:
        """The time block a window starting at ``t`` belongs to."""
        return int(min(np.searchsorted(self.block_edges, t, side="right") - 1, len(self.block_edges) - 2))

    @staticmethod
    def owned_times(times: np.ndarray, w0: float, w1: float, first: bool) -> np.ndarray:
        """Indices of the output times a window reports: ``w0 < t <= w1`` (and ``t = w0`` for the first)."""
        return np.flatnonzero(((times > w0) | (first & (times >= w0))) & (times <= w1))

    def march(self, times, points, *, start: int = 0, state=None, block: int | None = None):
        """Integrate window by window from window ``start``; yields ``(index, window, owned)``.

        ``owned`` indexes the entries of ``times`` the window reports (its fields are
        ``window.fields[window_rows]`` with ``window_rows`` matching them).  To resume, pass the
        reduced ``state`` at the start of window ``start`` and its ``block`` (whose projection
        must have been built or restored with :meth:`projection`).
        """
        edges = self.window_edges()
        times = np.asarray(times, float)
        if state is None:
            if start != 0:
                raise ValueError("resuming after window 0 needs the state at its start")
            state, block = self.initial_state(0), 0
        for index in range(start, len(edges) - 1):
            w0, w1 = float(edges[index]), float(edges[index + 1])
            new_block = self.block_of(w0)
            if new_block != block:
                state, block = self.carry_over(block, state, new_block), new_block
            owned = self.owned_times(times, w0, w1, index == 0)
            win = self.window(block, state, w0, w1, times[owned], points)
            rows = [int(np.argmin(np.abs(win.times - times[i]))) for i in owned]
            win.fields = win.fields[rows] if win.fields is not None else None
            win.coefficients = win.coefficients[rows]
            state = win.states[-1]
            yield index, win, owned

    @blas_limited
    def run(self, times=None, points=None) -> EvolutionResult:
        """Integrate over the whole span; fields at ``times`` on ``points`` (default: the error grid).

        Settings (defaults: the problem's ``defaults``, then :data:`GLOBAL_DEFAULTS`): ``width``,
        ``activation``, ``sampler`` (+ ``weight_scale``/``bias_scale``/``curvature_scale`` for ELM), ``n_interior``,
        ``n_boundary``, ``points`` (collocation rule), ``rcond``, ``kappa``, ``relaxation``,
        ``boundary`` (``penalty`` / ``compliant``), ``method`` (``exact`` or a ``solve_ivp``
        method), ``rtol``, ``atol``, ``blocks`` (time blocks re-sampling the basis),
        ``adaptive_points`` (share of collocation points re-drawn by |∇u| at each block),
        ``windows``, ``pool_size``, ``seed``, ``chunk_rows`` (rows per TSQR block of the projection;
        default automatic), ``device`` (``cpu`` / ``gpu``: where the row blocks are assembled and
        reduced), ``hyper_reduction`` (``None``: on for nonlinear problems; ``False``: the exact
        term over every row), ``hyper_oversampling`` (interpolation rows per column of the
        interpolation basis, ≥ 1), ``prune`` (relative pivot threshold for dropping dependent
        features after sampling; 0: keep them all).
        """
        problem = self.problem
        grid_points, grid_times = problem.evaluation_grid()
        points = grid_points if points is None else np.asarray(points, float)
        times = grid_times if times is None else np.asarray(times, float)
        _check_outputs(times, points, problem)
        fields = np.empty((len(times), len(points)))
        windows = []
        for _, win, owned in self.march(times, points):
            fields[owned] = win.fields
            windows.append(win)
        return EvolutionResult(problem, times, fields, points, windows,
                               [self.projections[b] for b in sorted(self.projections)], self.settings,
                               dict(self.timings))


def _check_outputs(times: np.ndarray, points: np.ndarray, problem) -> None:
    """Output times inside the span (every one is owned by a window) and points of the domain's dimension."""
    t0, t1 = problem.t_span
    slack = 1e-12 * max(1.0, abs(t0), abs(t1))
    if times.ndim != 1 or not np.all(np.isfinite(times)) or len(times) == 0:
        raise ValueError(f"output_times must be a non-empty 1-D array of finite times, got shape {times.shape}")
    if times.min() < t0 - slack or times.max() > t1 + slack:
        raise ValueError(f"output_times must lie in the problem's span [{t0:g}, {t1:g}]; got times from "
                         f"{times.min():g} to {times.max():g}")
    if points.ndim != 2 or points.shape[1] != problem.domain.dim or not np.all(np.isfinite(points)):
        raise ValueError(f"output_points must be finite, of shape (n, {problem.domain.dim}); got {points.shape}")


def _prune(network: SampledNetwork, operator, x_int: np.ndarray, tol: float) -> SampledNetwork:
    """Drop features that a column-pivoted QR of ``[Ψ; LΨ]`` at ≤ width + 1 evenly spread
    collocation points finds dependent (relative pivot ``tol``; the constant column first).

    ELM bases of steep features are highly redundant (Burgers: rank 324 of 600 at rcond 1e-10),
    and every later step costs ∝ width² per row; pruning at 1e-10 keeps the rank and the error
    (worst of 4 seeds 2.6e-4 either way) for 35 % less CPU.
    """
    from pipeline.linalg import pivoted_columns

    take = x_int[np.linspace(0, len(x_int) - 1, min(len(x_int), network.width + 1)).astype(int)]
    sketch = np.vstack([operator_rows(identity(1.0), network, take), operator_rows(operator, network, take)])
    width = network.width
    sketch = np.concatenate([sketch[:, width:], sketch[:, :width]], axis=1)
    kept = pivoted_columns(np.linalg.qr(sketch, mode="r"), tol, keep_first=1)
    return network.select_features(kept[1:] - 1)


def hyper_error(proj: Projection, y: np.ndarray, t: float) -> float:
    """Relative error of the hyper-reduced projected nonlinear term against the exact one
    (summed over every interior row) at the reduced state ``y``."""
    source = proj.source if proj.b is None else None
    exact = proj.exact_term(y, t)
    approx = proj.hyper(y, t, source)
    if proj.b is not None and proj.source is not None:  # b holds the projected source exactly
        approx = approx + proj.hyper.coupling @ proj.source(proj.hyper.x, t)
    return float(np.linalg.norm(approx - exact) / max(np.linalg.norm(exact), 1e-300))


def _field_functions(network, coef, dim):
    """``u(x)`` and ``∇u(x)`` of a solution given by its network and coefficients ``[c | c0]``."""
    layer = network.layers[0]

    def values(x):
        return network(x) @ coef[: layer.width] + coef[layer.width]

    def gradient(x):
        return layer.gradient(np.asarray(x, dtype=float), coef[: layer.width])

    return values, gradient


@blas_limited
def evolve(problem: EvolutionProblem, *, output_times=None, output_points=None, **settings) -> EvolutionResult:
    """Solve a time-dependent problem; see :class:`Evolution` for the settings.

    Fields are returned at ``output_times`` on ``output_points`` (default: the problem's
    space–time error grid).
    """
    return Evolution(problem, **settings).run(output_times, output_points)
