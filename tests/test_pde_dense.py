"""Dense output of the coefficient trajectories: piecewise Chebyshev interpolants per window."""

import math

import numpy as np
import pytest
import scipy.linalg

from pipeline.pde import Evolution, get_problem
from pipeline.pde.dense import MAX_PIECES, NODES, DenseTrajectory, evaluate_field, evaluate_pieces, fit_dense
from pipeline.pde.integrators import ExactFlow, _ModalSample, _PiecewiseExponential, integrate

EPS = np.finfo(float).eps


# ----------------------------------------------------------------------------- the representation
def _lobatto(starts, ends):
    """Chebyshev–Lobatto times of each piece: (pieces, NODES)."""
    x = -np.cos(np.pi * np.arange(NODES) / (NODES - 1))
    return (starts + ends)[:, None] / 2 + (ends - starts)[:, None] / 2 * x[None, :]


def test_polynomials_of_degree_below_nodes_are_exact():
    # degree NODES - 1 on each of 5 unequal pieces: the interpolant is the polynomial itself
    rng = np.random.default_rng(0)
    edges = np.concatenate([[-1.0], np.sort(rng.uniform(-1, 2, 4)), [2.0]])
    starts, ends = edges[:-1], edges[1:]
    coef = rng.normal(size=(NODES, 3))

    def poly(t):
        return np.polynomial.polynomial.polyval(t, coef).T  # (len(t), 3)

    values = poly(_lobatto(starts, ends).ravel()).reshape(len(starts), NODES, 3)
    t = np.concatenate([rng.uniform(-1, 2, 500), edges, _lobatto(starts, ends)[2]])
    got = evaluate_pieces(starts, ends, values, t)
    scale = np.abs(values).max()
    np.testing.assert_allclose(got, poly(t), rtol=0, atol=100 * EPS * scale)
    # at the nodes: the node values (to the rounding of the local coordinate)
    np.testing.assert_allclose(evaluate_pieces(starts, ends, values, _lobatto(starts, ends)[3]), values[3],
                               rtol=0, atol=10 * EPS * scale)
    np.testing.assert_array_equal(evaluate_pieces(starts, ends, values, starts), values[:, 0])


@pytest.mark.parametrize("omega", [0.5, 7.0, 60.0, 900.0])
def test_fit_of_oscillations_meets_its_tolerance(omega):
    def f(t):
        return np.stack([np.sin(omega * t), np.cos(omega * t), 1.0 + 0.0 * t], axis=1)

    tol = 1e-10
    dense = fit_dense(f, 0.0, 1.0, tol)
    t = np.random.default_rng(1).uniform(0.0, 1.0, 4000)
    err = np.max(np.linalg.norm(dense(t) - f(t), axis=1))
    scale = max(1.0, np.sqrt(2.0))  # max_t ‖f(t)‖
    assert dense.error <= tol and err <= 2 * tol * scale
    # degree 16 and ~7 rad per piece at 1e-10 (see NODES): not grossly over-resolved either
    assert dense.pieces <= max(1, math.ceil(omega / 3.0))
    assert dense(0.5).shape == (3,) and dense(np.array([0.5])).shape == (1, 3)


def test_padding_and_span_checks():
    dense = fit_dense(lambda t: np.stack([np.exp(-3 * t), t**2], axis=1), 0.0, 2.0, 1e-12, pieces=3)
    starts, ends, values = dense.padded(MAX_PIECES)
    assert starts.shape == (MAX_PIECES,) and values.shape == (MAX_PIECES, NODES, 2)
    assert np.isnan(starts[dense.pieces:]).all()
    t = np.linspace(0.0, 2.0, 37)
    np.testing.assert_array_equal(evaluate_pieces(starts, ends, values, t), dense(t))
    np.testing.assert_array_equal(DenseTrajectory(starts, ends, values)(t), dense(t))
    for bad in ([-1e-9], [2.0 + 1e-9], [np.nan]):
        with pytest.raises(ValueError, match="outside"):
            dense(np.array(bad))
    assert dense(np.array([])).shape == (0, 2)


def test_too_fast_a_trajectory_asks_for_more_windows():
    with pytest.raises(ValueError, match="use more windows.*windows"):
        fit_dense(lambda t: np.sin(1e6 * t)[:, None], 0.0, 1.0, 1e-10)


# ----------------------------------------------------------------------------- exact propagation
def _expm_states(e, z0, times):
    return np.stack([scipy.linalg.expm(e * t) @ z0 for t in times])


def test_exact_samplers_match_the_matrix_exponential():
    rng = np.random.default_rng(3)
    k = 6
    q = np.linalg.qr(rng.normal(size=(k, k)))[0]
    # first order: decaying, oscillating and neutral modes, non-normal, with forcing
    a1 = q @ (np.diag([-50.0, -1.0, 0.0, -0.2, -3.0, -8.0]) + np.triu(rng.normal(size=(k, k)), 1) * 0.3) @ q.T
    a1[0, 1] += 40.0
    a1[1, 0] -= 40.0
    # second order: u'' = A u + b with a zero eigenvalue (free drift, secular growth under forcing)
    a2 = -q @ np.diag([0.0, 1.0, 4.0, 100.0, 900.0, 2.5]) @ q.T
    for a, order in ((a1, 1), (a2, 2)):
        b = rng.normal(size=k)
        y0 = rng.normal(size=k * order)
        times = np.linspace(0.0, 1.5, 4)
        traj = integrate(None, y0, times, method="exact", linear=(a, b), order=order, dense=1e-10)
        assert isinstance(traj.sample, _ModalSample)
        t = np.sort(rng.uniform(0.0, 1.5, 40))
        e = ExactFlow(a, b, order).augmented
        ref = _expm_states(e, np.append(y0, 1.0), t)[:, :k]
        np.testing.assert_allclose(traj.sample(t), ref, rtol=0, atol=1e-11 * np.abs(ref).max())
        # the grid (addition theorems) agrees with direct evaluation
        offsets = np.array([0.0, 0.01, 0.1, 0.25])
        grid = traj.sample.grid(0.0, 0.25, 6, offsets)
        direct = traj.sample((0.25 * np.arange(6)[:, None] + offsets[None, :]).ravel()).reshape(grid.shape)
        np.testing.assert_allclose(grid, direct, rtol=0, atol=1e-12 * np.abs(direct).max())
        dense = fit_dense(traj.sample, 0.0, 1.5, 1e-10, pieces=traj.pieces)
        np.testing.assert_allclose(dense(t), ref, rtol=0, atol=1e-9 * max(1.0, np.abs(ref).max()))


def test_a_defective_operator_falls_back_to_exponentials():
    # a Jordan block: the eigenvectors are parallel, the modal solution cannot be trusted
    a = np.array([[-1.0, 1.0, 0.0], [0.0, -1.0, 1.0], [0.0, 0.0, -1.0]])
    b = np.array([0.0, 0.0, 1.0])
    y0 = np.array([1.0, -2.0, 0.5])
    times = np.array([0.0, 0.7, 2.0])
    traj = integrate(None, y0, times, method="exact", linear=(a, b), dense=1e-10)
    assert isinstance(traj.sample, _PiecewiseExponential)
    dense = fit_dense(traj.sample, 0.0, 2.0, 1e-10, pieces=traj.pieces)
    t = np.linspace(0.0, 2.0, 53)
    ref = _expm_states(ExactFlow(a, b, 1).augmented, np.append(y0, 1.0), t)[:, :3]
    np.testing.assert_allclose(dense(t), ref, rtol=0, atol=1e-10 * max(1.0, np.abs(ref).max()))
    np.testing.assert_allclose(traj.sample(t), ref, rtol=0, atol=1e-13)


@pytest.mark.parametrize("method", ["DOP853", "RK45", "BDF", "Radau"])
def test_dense_output_does_not_change_the_solver(method):
    rng = np.random.default_rng(5)
    a = rng.normal(size=(8, 8)) - 4 * np.eye(8)

    def rhs(t, y):
        return a @ y + np.sin(3 * t) * np.tanh(y)

    y0, times = rng.normal(size=8), np.linspace(0.0, 2.0, 7)
    plain = integrate(rhs, y0, times, method=method, rtol=1e-9, atol=1e-12)
    dense = integrate(rhs, y0, times, method=method, rtol=1e-9, atol=1e-12, dense=1e-9)
    np.testing.assert_array_equal(dense.states, plain.states)  # bitwise: same steps, same outputs
    # only DOP853 spends right-hand sides on its interpolants (3 per step; without dense
    # output, on the steps holding an output time)
    extra = dense.stats["nfev"] - plain.stats["nfev"]
    assert extra == 0 if method != "DOP853" else 0 < extra <= 3 * dense.stats["steps"]
    np.testing.assert_array_equal(dense.sample(times), plain.states)
    fit = fit_dense(dense.sample, 0.0, 2.0, 1e-9, pieces=dense.pieces)
    t = np.sort(rng.uniform(0.0, 2.0, 200))
    truth = dense.sample(t)
    assert np.max(np.linalg.norm(fit(t) - truth, axis=1)) <= 2e-9 * max(1.0, np.abs(truth).max() * np.sqrt(8))


# ----------------------------------------------------------------------------- windows of a run
def _dense_fields(ev, result, points):
    """Fields at the result's times from the windows' dense trajectories (one GEMM per window)."""
    edges = ev.window_edges()
    out = np.full((len(result.times), len(points)), np.nan)
    for index, win in enumerate(result.windows):
        owned = Evolution.owned_times(result.times, edges[index], edges[index + 1], index == 0)
        assert win.dense.block == win.block
        out[owned] = evaluate_field(win.dense, ev.projections[win.dense.block].network, points, result.times[owned])
    return out


def _check_run(problem, settings, n_times=15, seed=0):
    rng = np.random.default_rng(seed)
    points = problem.domain.sample_interior(200, seed=seed + 1)
    t0, t1 = problem.t_span
    times = np.sort(np.concatenate([[t0, t1], rng.uniform(t0, t1, n_times)]))
    ev = Evolution(problem, **settings)
    result = ev.run(times, points)
    fields = _dense_fields(ev, result, points)
    rtol, atol = ev.settings["rtol"], ev.settings["atol"]
    scale = np.abs(result.fields).max()
    err = np.abs(fields - result.fields).max()
    # within a hundred times the integrator's tolerances, and ten times the fit's own (rtol, or
    # for 'exact' the trajectory's noise floor when larger; relative L2 in reduced coordinates)
    fit_tol = max(w.stats["dense_tol"] for w in result.windows)
    assert fit_tol <= 30 * rtol
    assert err <= 100 * rtol * scale + 100 * atol, (err, 100 * rtol * scale)
    assert err <= 10 * fit_tol * scale, (err, fit_tol)
    for win in result.windows:
        assert win.dense.span == (win.t0, win.t1)
        assert 1 <= win.dense.pieces <= MAX_PIECES and win.dense.values.shape[1:] == (
            NODES, ev.projections[win.block].network.width + 1)  # pruned bases may be narrower
        # the ends are the window's start and end states, mapped to coefficients (windows join)
        proj = ev.projections[win.block]
        for value, state in ((win.dense.values[0, 0], win.states[0]), (win.dense.values[-1, -1], win.states[-1])):
            y = state[: proj.rank]
            rounding = 10 * EPS * (np.abs(proj.coefficient_map) @ np.abs(y)).max()
            np.testing.assert_allclose(value, proj.coefficient_map @ y, rtol=0, atol=rounding)
    return ev, result, err


def test_dense_advection_exact():
    ev, result, err = _check_run(get_problem("advection", beta=1000.0), {})
    assert ev.settings["method"] == "exact"
    # the physical mode (1000 rad per unit time) is resolved, the projection's noise modes (up
    # to 4e4 rad, each ~1e-11 of the solution) are not chased: see ExactFlow.sampler
    assert 1000 / 10 <= result.windows[0].dense.pieces <= 256


def test_dense_wave_second_order():
    ev, result, err = _check_run(get_problem("wave_1d"), {}, n_times=25)
    assert ev.settings["method"] == "exact" and ev.problem.time_order == 2


def test_dense_heat_time_blocks_and_windows():
    ev, result, err = _check_run(get_problem("heat_1d"), {"blocks": 2, "windows": 3})
    assert [w.dense.block for w in result.windows] == [w.block for w in result.windows]
    assert {w.block for w in result.windows} == {0, 1}


def test_dense_burgers_dop853():
    # the nonlinear path (solve_ivp's interpolants): 337 steps, 7 pieces
    ev, result, err = _check_run(get_problem("burgers"), {"method": "DOP853"})
    assert result.windows[0].dense.pieces < result.windows[0].stats["steps"] / 10


def test_dense_output_off_changes_nothing_else():
    problem = get_problem("heat_1d")
    on = Evolution(problem).run()
    ev = Evolution(problem)
    ev.dense_output = False
    off = ev.run()
    np.testing.assert_array_equal(on.fields, off.fields)
    assert off.windows[0].dense is None and on.windows[0].dense is not None


@pytest.mark.slow
def test_dense_burgers_registered_default_bdf():
    ev, result, err = _check_run(get_problem("burgers"), {})
    assert ev.settings["method"] == "BDF"
