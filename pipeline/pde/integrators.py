"""Time integrators for the projected coefficient ODE (DESIGN.md §3.3).

``y' = A y + b`` (first order) or ``y'' = A y + b`` (second order, state ``[y, y']``) in the
reduced coordinates.  Linear problems are propagated *exactly* by the matrix exponential of an
augmented matrix (no time-discretisation error at any horizon; a forcing that depends on time as
a Chebyshev series whose basis the augmented state carries, ``pipeline.pde.projection``); everything
else goes through ``scipy.integrate.solve_ivp`` (the constant Jacobian is passed for linear
problems).  A run that blows up stops at the first output time past the threshold with a
:class:`DivergenceError` that keeps what was computed.

With ``dense=tol`` the trajectory can also be sampled at any time of its span
(:attr:`Trajectory.sample`, for :func:`pipeline.pde.dense.fit_dense`): ``solve_ivp``'s own
dense output (``dense_output=True`` changes no step), or for ``exact`` the modal solution
``y(t) = Σ_j v_j f_j(λ_j, t)`` of ``A = V Λ V⁻¹`` (one eigendecomposition per operator, then a
GEMM per batch of times), verified against the propagated states; where the eigenvectors are
too ill-conditioned (defective or nearly defective ``A``) the samples come from exponentials
at fixed offsets within equal pieces, propagated piece to piece.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
import scipy.integrate
import scipy.linalg

__all__ = ["DivergenceError", "EXPLICIT_METHODS", "ExactFlow", "IMPLICIT_METHODS", "METHODS", "Trajectory", "integrate"]

EXPLICIT_METHODS = ("RK45", "RK23", "DOP853")
IMPLICIT_METHODS = ("BDF", "Radau", "LSODA")
METHODS = ("exact",) + EXPLICIT_METHODS + IMPLICIT_METHODS


@dataclass
class Trajectory:
    """States at the output times (``states[i]`` at ``times[i]``) and solver statistics.

    With dense output, ``sample(times) -> (len(times), k)`` gives the first ``k = state
    size / order`` entries (the ``y`` of ``[y, y']``) at any times of the span, and ``pieces``
    is a first guess of the equal pieces a dense fit needs.  ``floor`` is the relative size
    (to ``max(1, max_t ‖y‖)``) of content below the dense tolerance mode by mode but not in
    sum: a fit tolerance below it would have to resolve noise (see :meth:`ExactFlow.sampler`).
    """

    times: np.ndarray
    states: np.ndarray  # (n_times, state size)
    stats: dict
    sample: Callable | None = None
    pieces: int | None = None
    floor: float = 0.0  # relative size of content a dense fit cannot be asked to resolve


class DivergenceError(RuntimeError):
    """The integration blew up; ``partial`` holds the trajectory up to the last sane output."""

    def __init__(self, message: str, partial: Trajectory):
        super().__init__(message)
        self.partial = partial


def _driver(b):
    """``(B, D, u)`` of a forcing ``B u(t)``, ``u' = D u``: a constant ``b`` is ``B = b``, ``u = 1``;
    a series in time (``coefficients``, ``driver``, ``basis(t)``: :class:`pipeline.pde.projection.
    ChebyshevForcing`) gives its coefficients, its basis's differentiation matrix and its basis."""
    if hasattr(b, "coefficients"):
        return b.coefficients, b.driver, b.basis
    return None if b is None else np.asarray(b, dtype=float)[:, None], np.zeros((1, 1)), lambda t: np.ones(1)


def _augmented(a: np.ndarray, b, order: int) -> np.ndarray:
    """The matrix whose exponential propagates ``[state; u]`` (``u = 1`` for a constant ``b``)."""
    k = a.shape[0]
    n = k * order
    coef, drive, _ = _driver(b)
    e = np.zeros((n + len(drive), n + len(drive)))
    if order == 1:
        e[:k, :k] = a
    else:
        e[:k, k : 2 * k] = np.eye(k)
        e[k : 2 * k, :k] = a
    if coef is not None:
        e[k * (order - 1) : k * order, n:] = coef
        e[n:, n:] = drive
    return e


def _exact(a, b, state0, times, order, limit):
    e = _augmented(a, b, order)
    n = len(state0)
    z = np.concatenate([state0, _driver(b)[2](float(times[0]))])  # [state; u(t0)]
    states = [state0]
    cache: dict[float, np.ndarray] = {}
    for t_prev, t_next in zip(times[:-1], times[1:]):
        dt = float(t_next - t_prev)
        key = round(dt, 14)
        if key not in cache:
            cache[key] = scipy.linalg.expm(e * dt)
        z = cache[key] @ z
        states.append(z[:n].copy())
        if not np.all(np.isfinite(z)) or np.linalg.norm(z[:n]) > limit:
            traj = Trajectory(np.asarray(times[: len(states)]), np.array(states), {"method": "exact"})
            raise DivergenceError(
                f"the coefficients diverged at t = {t_next:g} (norm > {limit:.1e}); the projected operator "
                "has growing modes: lower rcond, add boundary weight or change the basis", traj)
    return Trajectory(np.asarray(times), np.array(states), {"method": "exact", "exponentials": len(cache)})


def _sinhc(w: np.ndarray) -> np.ndarray:
    """``sinh(w) / w`` (entire, 1 at 0)."""
    small = np.abs(w) < 1e-8
    out = np.ones_like(w)
    np.divide(np.sinh(w), w, out=out, where=~small)
    return out


def _phi1(z: np.ndarray) -> np.ndarray:
    """``(e^z - 1) / z`` (entire, 1 at 0), without cancellation near 0 or overflow for Re z ≪ 0."""
    small = np.abs(z) < 1e-8
    out = 1.0 + 0.5 * z
    np.divide(np.expm1(z), z, out=out, where=~small)
    return out


class ExactFlow:
    """Exact samples of ``y^(order) = A y + b`` at any times, for dense output.

    ``b``: a constant or a forcing series in time ``B u(t)``, ``u' = D u`` (:func:`_driver`), whose
    samples are the homogeneous modal solution plus the particular one ``Y u(t)``,
    ``A Y − Y D^order = −B``.  Made once per operator (the eigendecomposition is cached): a time
    block's windows share it.
    """

    def __init__(self, a: np.ndarray, b, order: int):
        self.a = np.asarray(a, dtype=float)
        self.b = b if b is None or hasattr(b, "coefficients") else np.asarray(b, dtype=float)
        self.constant = self.b if isinstance(self.b, np.ndarray) else None  # the modal solution's β
        self.order = int(order)

    @cached_property
    def particular(self):
        """``Y`` of the particular solution ``Y u(t)`` of a series (None: none, or ``A`` singular)."""
        if self.b is None or self.constant is not None:
            return None
        coef, drive, _ = _driver(self.b)
        try:
            y = scipy.linalg.solve_sylvester(self.a, -np.linalg.matrix_power(drive, self.order), -coef)
        except (np.linalg.LinAlgError, ValueError, scipy.linalg.LinAlgError):
            return None
        return y if np.all(np.isfinite(y)) else None

    def _particular_states(self, times) -> np.ndarray:
        """``(len(times), state size)``: the particular solution (and its velocity) at ``times``."""
        y, drive, u = self.particular, self.b.driver, self.b.basis(np.asarray(times, dtype=float))
        return u @ y.T if self.order == 1 else np.concatenate([u @ y.T, u @ drive.T @ y.T], axis=1)

    @cached_property
    def augmented(self) -> np.ndarray:
        return _augmented(self.a, self.b, self.order)

    @cached_property
    def modes(self):
        """``(λ, V, lu(V))`` of ``A = V Λ V⁻¹`` (complex)."""
        lam, vec = np.linalg.eig(self.a)
        with warnings.catch_warnings():  # a singular V shows up as non-finite modal coefficients
            warnings.simplefilter("ignore")
            lu = scipy.linalg.lu_factor(vec, check_finite=False)
        return lam, vec, lu

    def exponential(self, dt: float) -> np.ndarray:
        """``expm(E dt)`` of the augmented matrix."""
        return scipy.linalg.expm(self.augmented * float(dt))

    def sampler(self, trajectory: Trajectory, tol: float):
        """``(sample, pieces, floor)`` for :func:`pipeline.pde.dense.fit_dense` over a trajectory's span.

        The modal samples are used when they reproduce the propagated states to a tenth of the
        dense tolerance ``tol · max(1, max_t ‖y‖)`` and their rounding bound ``ε Σ_j |f_j|``
        is as small; otherwise the piecewise-exponential sampler.

        ``floor``: the modes each below the tolerance, summed (relative to the same scale).  A
        projection carries such noise — advection at β = 1000: ~60 modes of relative amplitude
        1e-12 … 1e-10 at rates up to 4e4 (the physical one: 1e3) — and the interpolation error
        of unresolved modes is about their sum: a fit held below it would resolve the noise
        with thousands of pieces.
        """
        from pipeline.pde.dense import estimate_pieces

        times, states = trajectory.times, trajectory.states
        t0, span = float(times[0]), float(times[-1] - times[0])
        k = self.a.shape[0]
        reference = states[:, :k]
        scale = max(1.0, float(np.max(np.linalg.norm(reference, axis=1))))
        series = self.b is not None and self.constant is None  # homogeneous modal + particular solution
        if series and self.particular is None:  # no polynomial particular solution: exponentials
            return _PiecewiseExponential(self, states[0], t0, k), 1, 0.0
        shift = (lambda t: self._particular_states(t)[:, :k]) if series else None
        modal = _ModalSample(self, states[0] - self._particular_states([t0])[0] if series else states[0], t0, shift)
        with np.errstate(all="ignore"):
            f = modal.factors(times)
            deviation = float(np.max(np.linalg.norm(modal(times) - reference, axis=1)))
            rounding = 16 * np.finfo(float).eps * float(np.max(np.abs(f) @ modal.size))
            if series:
                u = np.abs(_driver(self.b)[2](times))
                rounding += 16 * np.finfo(float).eps * float(np.max(u @ np.linalg.norm(self.particular, axis=0)))
            rates, amplitude = modal.rates, modal.amplitude * np.exp(np.clip(modal.growth * span, 0.0, 700.0))
            small = amplitude <= tol * scale
            floor = float(np.sum(amplitude[small])) / scale
        if not np.isfinite(floor):
            floor = 0.0
        pieces = estimate_pieces(span, max(tol, floor), rates, amplitude, scale)
        if np.isfinite(deviation) and np.isfinite(rounding) and max(deviation, rounding) <= 0.1 * tol * scale:
            return modal, pieces, floor
        return _PiecewiseExponential(self, states[0], t0, k), pieces, floor


class _ModalSample:
    """The modal solution of an :class:`ExactFlow` from ``state0`` at ``t0``.

    First order:  ``y(t) = Σ_j v_j [E_j(τ) c_j + P_j(τ) β_j]``, ``E = e^{λτ}``, ``P = τ φ1(λτ)``;
    second order: ``y(t) = Σ_j v_j [C_j(τ) c_j + S_j(τ) d_j + Q_j(τ) β_j]``, ``C = cosh(μτ)``,
    ``S = τ sinhc(μτ)``, ``Q = τ² sinhc(μτ/2)²/2`` with ``μ² = λ``; ``τ = t - t0`` and
    ``V [c, d, β] = [y0, y0', b]``.  All are entire in λ: zero eigenvalues need no special case.
    On a grid of equal pieces (:meth:`grid`) the addition theorems (``E(a+b) = E(a)E(b)``,
    ``P(a+b) = E(a)P(b) + P(a)``, ``C(a+b) = C(a)C(b) + λS(a)S(b)``, ``S(a+b) = S(a)C(b) +
    C(a)S(b)``, ``Q(a+b) = C(a)Q(b) + Q(a) + S(a)S(b)``) need the functions only at the piece
    starts and at the offsets: ``(pieces + offsets) k`` exponentials instead of their product.
    """

    def __init__(self, flow: ExactFlow, state0: np.ndarray, t0: float, shift: Callable | None = None):
        lam, vec, lu = flow.modes
        self.shift = shift  # a known function of time added to every sample (a particular solution)
        k = len(lam)
        with np.errstate(all="ignore"):
            parts = [scipy.linalg.lu_solve(lu, state0[i * k:(i + 1) * k].astype(complex), check_finite=False)
                     for i in range(flow.order)]
            beta = None if flow.constant is None else scipy.linalg.lu_solve(lu, flow.constant.astype(complex),
                                                                             check_finite=False)
        # A is real: its complex eigenpairs come in conjugate pairs (LAPACK returns conjugate
        # columns), whose terms are conjugate (every f_j is conjugate-symmetric in λ), so one of
        # each pair taken twice gives the real solution at half the work.
        keep = lam.imag >= 0
        if np.count_nonzero(lam.imag > 0) == np.count_nonzero(lam.imag < 0):
            twice = np.where(lam.imag[keep] > 0, 2.0, 1.0)
            lam, vec = lam[keep], vec[:, keep] * twice
            parts = [p[keep] for p in parts]
            beta = None if beta is None else beta[keep]
        self.t0, self.second, self.lam, self.parts, self.beta = float(t0), flow.order == 2, lam, parts, beta
        self.mu = np.sqrt(lam.astype(complex)) if self.second else None
        # Re(F Vᵀ) = Re F Re Vᵀ - Im F Im Vᵀ: two real GEMMs, half a complex one
        self._vt = (np.ascontiguousarray(vec.real.T), np.ascontiguousarray(vec.imag.T))
        self.size = size = np.linalg.norm(vec, axis=0)  # 1, or 2 for a pair
        with np.errstate(all="ignore"):
            # per mode: rate, amplitude of its oscillating part (unit eigenvectors), growth rate
            self.rates = np.abs(self.mu) if self.second else np.abs(lam)
            offset = 0.0 if self.beta is None else np.where(np.abs(lam) > 0, self.beta / lam, 0.0)
            self.amplitude = np.abs(self.parts[0] + offset)
            if self.second:
                self.amplitude = self.amplitude + np.abs(self.parts[1]) / np.maximum(self.rates, 1e-300)
            self.amplitude = self.amplitude * size
            self.growth = np.abs(self.mu.real) if self.second else lam.real  # e^{±μτ} / e^{λτ}

    def _functions(self, tau: np.ndarray) -> dict:
        tau = np.asarray(tau, dtype=float)[:, None]
        with np.errstate(all="ignore"):
            if not self.second:
                z = self.lam[None, :] * tau
                out = {"E": np.exp(z)}
                if self.beta is not None:
                    out["P"] = tau * _phi1(z)
                return out
            w = self.mu[None, :] * tau
            out = {"C": np.cosh(w), "S": tau * _sinhc(w)}
            if self.beta is not None:
                half = _sinhc(0.5 * w)
                out["Q"] = 0.5 * tau**2 * half * half
            return out

    def _combine(self, f: dict) -> np.ndarray:
        if not self.second:
            out = f["E"] * self.parts[0]
            return out if self.beta is None else out + f["P"] * self.beta
        out = f["C"] * self.parts[0] + f["S"] * self.parts[1]
        return out if self.beta is None else out + f["Q"] * self.beta

    def factors(self, times) -> np.ndarray:
        """``(len(times), k)`` complex modal factors ``f_j(τ)``."""
        return self._combine(self._functions(np.asarray(times, dtype=float) - self.t0))

    def values(self, f: np.ndarray) -> np.ndarray:
        flat = f.reshape(-1, f.shape[-1])
        # contiguous copies: BLAS does not take the strided real/imaginary views
        return (np.ascontiguousarray(flat.real) @ self._vt[0] - np.ascontiguousarray(flat.imag) @ self._vt[1]
                ).reshape(f.shape[:-1] + (self._vt[0].shape[1],))

    def __call__(self, times) -> np.ndarray:
        out = self.values(self.factors(times))
        return out if self.shift is None else out + self.shift(np.asarray(times, dtype=float))

    def grid(self, t0: float, h: float, pieces: int, offsets: np.ndarray) -> np.ndarray:
        """``(pieces, len(offsets), k)`` at ``t0 + p h + offsets``."""
        shift = float(t0) - self.t0
        fo = self._functions(np.asarray(offsets, dtype=float))
        k = self._vt[0].shape[1]
        out = np.empty((pieces, len(offsets), k))
        step = max(1, 2**21 // max(len(offsets) * k, 1))  # pieces per batch: ~32 MiB of complex
        with np.errstate(all="ignore"):
            for first in range(0, pieces, step):  # a few batches, bounded memory
                fp = {key: v[:, None, :] for key, v in
                      self._functions(shift + h * np.arange(first, min(first + step, pieces))).items()}
                if not self.second:
                    f = {"E": fp["E"] * fo["E"]}
                    if self.beta is not None:
                        f["P"] = fp["E"] * fo["P"] + fp["P"]
                else:
                    f = {"C": fp["C"] * fo["C"] + self.lam * fp["S"] * fo["S"], "S": fp["S"] * fo["C"] + fp["C"] * fo["S"]}
                    if self.beta is not None:
                        f["Q"] = fp["C"] * fo["Q"] + fp["Q"] + fp["S"] * fo["S"]
                out[first:first + step] = self.values(self._combine(f))
        if self.shift is not None:
            times = float(t0) + h * np.arange(pieces)[:, None] + np.asarray(offsets, dtype=float)[None, :]
            out += self.shift(times.ravel()).reshape(out.shape)
        return out


class _PiecewiseExponential:
    """Samples by exponentials of the augmented matrix: at fixed offsets within equal pieces
    (:meth:`grid`, one exponential per offset and one per piece length, propagated piece to
    piece), or at arbitrary times (one exponential per distinct time)."""

    def __init__(self, flow: ExactFlow, state0: np.ndarray, t0: float, k: int):
        self.flow, self.z0, self.t0, self.k = flow, np.concatenate([state0, _driver(flow.b)[2](float(t0))]), float(t0), k

    def grid(self, t0: float, h: float, pieces: int, offsets: np.ndarray) -> np.ndarray:
        if not np.isclose(t0, self.t0, rtol=0.0, atol=1e-12 * max(1.0, abs(t0))):
            raise ValueError(f"this sampler starts at t = {self.t0}, not {t0}")
        # not cached on the flow: every try of a fit has other offsets ((n+1)² numbers each)
        cache = {float(o): self.flow.exponential(o) for o in np.unique(np.append(offsets, h))}
        step = cache[float(h)]
        starts = np.empty((len(self.z0), pieces))
        starts[:, 0] = self.z0
        for p in range(1, pieces):  # the same propagation as the integrator's
            starts[:, p] = step @ starts[:, p - 1]
        rows = np.concatenate([cache[float(o)][: self.k] for o in offsets])  # (offsets·k, n)
        return (rows @ starts).reshape(len(offsets), self.k, pieces).transpose(2, 0, 1)

    def __call__(self, times) -> np.ndarray:
        times = np.asarray(times, dtype=float)
        unique, inverse = np.unique(times - self.t0, return_inverse=True)
        values = np.stack([self.flow.exponential(d)[: self.k] @ self.z0 for d in unique])
        return values[inverse.ravel()]


def integrate(
    rhs,
    state0: np.ndarray,
    times: np.ndarray,
    *,
    method: str = "DOP853",
    linear: tuple[np.ndarray, np.ndarray | None] | None = None,
    jacobian=None,
    order: int = 1,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    divergence_factor: float = 1e6,
    dense: float | None = None,
    flow: ExactFlow | None = None,
) -> Trajectory:
    """Integrate from ``times[0]`` and return the states at every entry of ``times``.

    Args:
        rhs: ``rhs(t, state) -> state'`` (first-order form; for ``order=2`` the state is
            ``[y, y']``).  Unused by ``method="exact"``.
        state0: initial state.
        times: increasing output times, the first is the start.
        method: ``"exact"`` (needs ``linear``) or a ``solve_ivp`` method.
        linear: ``(A, b)`` when the problem is ``y^(order) = A y + b``: ``b`` constant (autonomous)
            or a forcing series in time (:func:`_driver`), propagated exactly with it.
        jacobian: the constant ``A`` of a linear (possibly forced) problem, or a callable
            ``(t, y) -> J`` (first order); implicit methods use it instead of finite differences.
        order: time order of the coefficient ODE (1 or 2).
        rtol, atol: tolerances of ``solve_ivp``.
        divergence_factor: stop when ``||state|| > divergence_factor · max(1, ||state0||)``.
        dense: a relative tolerance: also return a sampler of the whole span
            (:attr:`Trajectory.sample`) and a first guess of the pieces a dense fit to ``dense``
            needs.  The states at ``times`` are the same with and without.
        flow: the :class:`ExactFlow` of ``linear`` to reuse (``exact`` with ``dense``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 1 or np.any(np.diff(times) <= 0):
        raise ValueError("output times must be a non-empty, strictly increasing 1-D sequence")
    limit = divergence_factor * max(1.0, float(np.linalg.norm(state0)))
    if method == "exact":
        if linear is None:
            raise ValueError("method 'exact' needs a linear problem; use an ODE method such as 'BDF'")
        a, b = linear
        traj = _exact(a, b, np.asarray(state0, float), times, order, limit)
        if dense is not None and times.size > 1:
            traj.sample, traj.pieces, traj.floor = (flow or ExactFlow(a, b, order)).sampler(traj, dense)
        return traj
    if times.size == 1:
        return Trajectory(times, np.asarray(state0, float)[None, :], {"method": method, "nfev": 0})

    def blow_up(t, y):
        return limit - np.linalg.norm(y)

    blow_up.terminal = True
    kwargs = {}
    if jacobian is None and linear is not None:
        jacobian = linear[0]
    if jacobian is not None and method in IMPLICIT_METHODS:
        a = jacobian
        if order == 1 or callable(a):
            kwargs["jac"] = a
        else:
            k = a.shape[0]
            kwargs["jac"] = np.block([[np.zeros((k, k)), np.eye(k)], [a, np.zeros((k, k))]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        sol = scipy.integrate.solve_ivp(
            rhs, (times[0], times[-1]), np.asarray(state0, float), method=method, t_eval=times,
            rtol=rtol, atol=atol, events=blow_up, dense_output=dense is not None, **kwargs,
        )
    stats = {"method": method, "nfev": int(sol.nfev), "njev": int(sol.njev), "nlu": int(sol.nlu),
             "status": int(sol.status), "message": sol.message}
    traj = Trajectory(sol.t, sol.y.T, stats)
    if sol.status == 1 or (sol.status == 0 and not np.all(np.isfinite(sol.y))):
        raise DivergenceError(
            f"the coefficients diverged near t = {sol.t_events[0][0] if sol.t_events[0].size else sol.t[-1]:g}; "
            "results up to there are kept", traj)
    if sol.status < 0:
        raise DivergenceError(f"the integrator failed: {sol.message}", traj)
    if dense is not None:
        # solve_ivp's interpolants of every step: the steps do not change, but DOP853 spends 3
        # more right-hand sides per step on them (Burgers: +23% evaluations, ~+10% run time;
        # deferring them to the sampled steps saved nothing measurable: 7 pieces × 33 samples
        # touch most of the 337 steps).  A piece of 17 Chebyshev nodes spans at least a few
        # steps of these methods (order <= 8), many more where the steps are limited by
        # stability (Burgers): start at 1/32 of the steps and let the fit double or halve.
        ode, k = sol.sol, len(state0) // order
        steps = len(ode.ts) - 1
        traj.sample = lambda t: ode(np.asarray(t, dtype=float))[:k].T
        traj.pieces = max(1, steps // 32)
        stats["steps"] = steps
    return traj
