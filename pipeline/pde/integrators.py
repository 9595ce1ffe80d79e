"""Time integrators for the projected coefficient ODE (DESIGN.md §3.3).

``y' = A y + b`` (first order) or ``y'' = A y + b`` (second order, state ``[y, y']``) in the
reduced coordinates.  Linear autonomous problems are propagated *exactly* by the matrix
exponential of an augmented matrix (no time-discretisation error at any horizon); everything
else goes through ``scipy.integrate.solve_ivp`` (the constant Jacobian is passed for linear
problems).  A run that blows up stops at the first output time past the threshold with a
:class:`DivergenceError` that keeps what was computed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.integrate
import scipy.linalg

__all__ = ["DivergenceError", "EXPLICIT_METHODS", "IMPLICIT_METHODS", "METHODS", "Trajectory", "integrate"]

EXPLICIT_METHODS = ("RK45", "RK23", "DOP853")
IMPLICIT_METHODS = ("BDF", "Radau", "LSODA")
METHODS = ("exact",) + EXPLICIT_METHODS + IMPLICIT_METHODS


@dataclass
class Trajectory:
    """States at the output times (``states[i]`` at ``times[i]``) and solver statistics."""

    times: np.ndarray
    states: np.ndarray  # (n_times, state size)
    stats: dict


class DivergenceError(RuntimeError):
    """The integration blew up; ``partial`` holds the trajectory up to the last sane output."""

    def __init__(self, message: str, partial: Trajectory):
        super().__init__(message)
        self.partial = partial


def _augmented(a: np.ndarray, b: np.ndarray | None, order: int) -> np.ndarray:
    """The matrix whose exponential propagates ``[state; 1]``."""
    k = a.shape[0]
    n = k * order
    e = np.zeros((n + 1, n + 1))
    if order == 1:
        e[:k, :k] = a
        if b is not None:
            e[:k, n] = b
    else:
        e[:k, k : 2 * k] = np.eye(k)
        e[k : 2 * k, :k] = a
        if b is not None:
            e[k : 2 * k, n] = b
    return e


def _exact(a, b, state0, times, order, limit):
    e = _augmented(a, b, order)
    z = np.append(state0, 1.0)
    states = [state0]
    cache: dict[float, np.ndarray] = {}
    for t_prev, t_next in zip(times[:-1], times[1:]):
        dt = float(t_next - t_prev)
        key = round(dt, 14)
        if key not in cache:
            cache[key] = scipy.linalg.expm(e * dt)
        z = cache[key] @ z
        states.append(z[:-1].copy())
        if not np.all(np.isfinite(z)) or np.linalg.norm(z[:-1]) > limit:
            traj = Trajectory(np.asarray(times[: len(states)]), np.array(states), {"method": "exact"})
            raise DivergenceError(
                f"the coefficients diverged at t = {t_next:g} (norm > {limit:.1e}); the projected operator "
                "has growing modes: lower rcond, add boundary weight or change the basis", traj)
    return Trajectory(np.asarray(times), np.array(states), {"method": "exact", "exponentials": len(cache)})


def integrate(
    rhs,
    state0: np.ndarray,
    times: np.ndarray,
    *,
    method: str = "DOP853",
    linear: tuple[np.ndarray, np.ndarray | None] | None = None,
    jacobian: np.ndarray | None = None,
    order: int = 1,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    divergence_factor: float = 1e6,
) -> Trajectory:
    """Integrate from ``times[0]`` and return the states at every entry of ``times``.

    Args:
        rhs: ``rhs(t, state) -> state'`` (first-order form; for ``order=2`` the state is
            ``[y, y']``).  Unused by ``method="exact"``.
        state0: initial state.
        times: increasing output times, the first is the start.
        method: ``"exact"`` (needs ``linear``) or a ``solve_ivp`` method.
        linear: ``(A, b)`` when the problem is ``y^(order) = A y + b`` (autonomous).
        jacobian: the constant ``A`` of a linear (possibly forced) problem; implicit methods get
            the Jacobian of the first-order system from it instead of finite differences.
        order: time order of the coefficient ODE (1 or 2).
        rtol, atol: tolerances of ``solve_ivp``.
        divergence_factor: stop when ``||state|| > divergence_factor · max(1, ||state0||)``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 1 or np.any(np.diff(times) <= 0):
        raise ValueError("output times must be a non-empty, strictly increasing 1-D sequence")
    limit = divergence_factor * max(1.0, float(np.linalg.norm(state0)))
    if method == "exact":
        if linear is None:
            raise ValueError("method 'exact' needs a linear autonomous problem; use an ODE method such as 'BDF'")
        a, b = linear
        return _exact(a, b, np.asarray(state0, float), times, order, limit)
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
        if order == 1:
            kwargs["jac"] = a
        else:
            k = a.shape[0]
            kwargs["jac"] = np.block([[np.zeros((k, k)), np.eye(k)], [a, np.zeros((k, k))]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        sol = scipy.integrate.solve_ivp(
            rhs, (times[0], times[-1]), np.asarray(state0, float), method=method, t_eval=times,
            rtol=rtol, atol=atol, events=blow_up, **kwargs,
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
    return traj
