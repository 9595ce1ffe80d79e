"""Fast high-dimensional solves (issue 15, item 2): exact propagation of forcing that depends on
time (a Chebyshev series in the augmented state), the in-process path of small solves, and the
d = 100 defaults against the exact solutions."""

import numpy as np
import pytest
import scipy.integrate

from pipeline.pde import (
    Box,
    Dirichlet,
    Evolution,
    EvolutionProblem,
    evolve,
    get_problem,
    laplacian,
    projection,
    row_blocks,
    solve_static,
)
from pipeline.pde.dense import fit_dense
from pipeline.pde.integrators import ExactFlow, _ModalSample, _PiecewiseExponential, integrate
from pipeline.pde.projection import ChebyshevForcing


def _series(k=3, q=9, t0=0.2, t1=1.4, seed=0):
    rng = np.random.default_rng(seed)
    return ChebyshevForcing(rng.normal(size=(k, q)) / (1.0 + np.arange(q)) ** 2, t0, t1)


def _reference(a, series, y0, times, order=1):
    """``y^(order) = A y + b(t)`` by an independent solver at tight tolerances."""
    k = a.shape[0]
    if order == 1:
        def rhs(t, y):
            return a @ y + series(t)
    else:
        def rhs(t, y):
            return np.concatenate([y[k:], a @ y[:k] + series(t)])
    sol = scipy.integrate.solve_ivp(rhs, (times[0], times[-1]), y0, method="DOP853", t_eval=times, rtol=1e-13,
                                    atol=1e-14)
    return sol.y.T


def test_the_series_driver_differentiates_its_basis():
    f = _series()
    t = np.linspace(f.t0, f.t1, 7)
    # d/dt T_n(s(t)) from NumPy's Chebyshev derivative, one polynomial at a time
    ds = 2.0 / (f.t1 - f.t0)
    s = (2 * t - f.t0 - f.t1) / (f.t1 - f.t0)
    q = f.coefficients.shape[1]
    expected = np.stack([ds * np.polynomial.chebyshev.chebval(s, np.polynomial.chebyshev.chebder(np.eye(q)[n]))
                         for n in range(q)], axis=1)
    np.testing.assert_allclose(f.basis(t) @ f.driver.T, expected, atol=1e-11 * np.abs(expected).max())
    np.testing.assert_allclose(f(t), np.polynomial.chebyshev.chebval(s, f.coefficients.T).T, atol=1e-14)
    assert f(0.5).shape == (3,) and f.basis(0.5).shape == (q,)


@pytest.mark.parametrize("order", [1, 2])
def test_exact_propagation_of_a_forcing_series_matches_an_ode_solver(order):
    rng = np.random.default_rng(1)
    k = 3
    # rates well above the series' (degree 8 on a span of 1.2): the particular solution is well scaled
    a = -np.diag([20.0, 45.0, 90.0]) + 3.0 * rng.normal(size=(k, k))
    series = _series(k)
    y0 = rng.normal(size=k * order)
    times = np.linspace(series.t0, series.t1, 6)
    traj = integrate(None, y0, times, method="exact", linear=(a, series), order=order, dense=1e-10,
                     flow=ExactFlow(a, series, order))
    ref = _reference(a, series, y0, times, order)
    np.testing.assert_allclose(traj.states, ref, atol=1e-10 * np.abs(ref).max())
    # the dense sampler (homogeneous modal solution + the polynomial particular solution)
    assert isinstance(traj.sample, _ModalSample) and traj.sample.shift is not None
    inner = np.sort(rng.uniform(series.t0, series.t1, 9))
    np.testing.assert_allclose(traj.sample(inner), _reference(a, series, y0, np.r_[times[0], inner], order)[1:, :k],
                               atol=1e-9 * np.abs(ref).max())
    dense = fit_dense(traj.sample, times[0], times[-1], 1e-10)
    np.testing.assert_allclose(dense(inner), traj.sample(inner), atol=1e-9 * np.abs(ref).max())


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_a_singular_or_slow_operator_falls_back_to_exponential_samples(rate):
    # a zero eigenvalue: no polynomial particular solution of the same degree; a slow one (rate
    # × span ≪ degree): one with huge coefficients that cancel the homogeneous part (rounding)
    a = np.diag([-rate, -2.0])
    series = _series(2, q=9)
    y0 = np.array([1.0, -1.0])
    times = np.linspace(series.t0, series.t1, 4)
    traj = integrate(None, y0, times, method="exact", linear=(a, series), dense=1e-10)
    ref = _reference(a, series, y0, times)
    np.testing.assert_allclose(traj.states, ref, atol=1e-10 * np.abs(ref).max())
    assert isinstance(traj.sample, _PiecewiseExponential)
    t = np.array([0.5, 0.9])
    np.testing.assert_allclose(traj.sample(t), _reference(a, series, y0, np.r_[times[0], t])[1:],
                               atol=1e-9 * np.abs(ref).max())


def _heat_1d(data):
    """u_t = u_xx on [0, π], u = e^{-t} sin x + data(t) (x/π): Dirichlet data and a source in time."""
    def exact(x, t):
        return np.exp(-t) * np.sin(x[:, 0]) + data(t) * x[:, 0] / np.pi

    def source(x, t, h=1e-6):
        return (data(t + h) - data(t - h)) / (2 * h) * x[:, 0] / np.pi

    return EvolutionProblem("heat_forced", Box([0.0], [np.pi]), laplacian(1), lambda x: exact(x, 0.0), (0.0, 1.0),
                            source=source, conditions=(Dirichlet(lambda x, d: exact(x, d["t"])),), exact=exact,
                            autonomous=False)


def test_forced_linear_problems_are_integrated_exactly():
    problem = _heat_1d(lambda t: np.sin(3 * t))
    settings = {"width": 60, "n_interior": 200, "n_boundary": 2, "seed": 0}
    exact = evolve(problem, method="exact", **settings)
    bdf = evolve(problem, method="BDF", **settings)
    proj = exact.projections[0]
    assert proj.forcing_series is not None and proj.mass_hat is None  # no rows × k matrices
    assert bdf.projections[0].forcing_series is None
    assert exact.error() < 1e-6  # measured 3.7e-8 (BDF at rtol 1e-10 on the same projection: 1.3e-5)
    # the same projection: the two integrators agree to BDF's time error
    assert np.linalg.norm(exact.fields - bdf.fields) <= 1e-4 * np.linalg.norm(bdf.fields)
    # the dense output reproduces the solution between the output times
    win = exact.windows[0]
    t = np.array([0.05, 0.37, 0.81])
    fields = (win.dense(t)[:, :-1] @ proj.network(exact.points).T) + win.dense(t)[:, -1:]
    ref = np.stack([problem.exact(exact.points, s) for s in t])
    assert np.linalg.norm(fields - ref) < 1e-6 * np.linalg.norm(ref)


def test_a_forcing_the_series_cannot_resolve_is_refused():
    problem = _heat_1d(lambda t: np.sin(400 * t))
    with pytest.raises(ValueError, match="not resolved by 129 Chebyshev nodes.*blocks"):
        Evolution(problem, method="exact", width=20, n_interior=50).projection(0)
    # more time blocks resolve it
    assert Evolution(problem, method="exact", width=20, n_interior=50, blocks=8).projection(0).forcing_series \
        is not None


def test_the_initial_fit_skips_the_graph_and_is_bit_identical(monkeypatch):
    heat = get_problem("heat_gaussian", dim=3)
    settings = {"width": 30, "n_interior": 200, "n_boundary": 60, "chunk_rows": 70}  # several blocks, a tree
    used, reduce = [], projection.reduce_in_process
    monkeypatch.setattr(projection, "reduce_in_process", lambda *a, **kw: used.append(1) or reduce(*a, **kw))
    small = evolve(heat, **settings)
    assert used == [1]  # the initial fit, in this process
    calls = []
    monkeypatch.setattr(row_blocks, "in_process", lambda *a: calls.append(a) and False)
    monkeypatch.setattr(projection, "in_process", row_blocks.in_process)
    graph = evolve(heat, **settings)
    assert len(calls) == 1 and used == [1]  # the one initial fit took the graph this time
    np.testing.assert_array_equal(small.windows[0].states, graph.windows[0].states)
    np.testing.assert_array_equal(small.fields, graph.fields)


def test_the_100_dimensional_defaults_meet_4e_4_against_the_exact_solutions():
    heat = get_problem("heat_gaussian", dim=100)
    assert heat.defaults["method"] == "exact"
    result = evolve(heat)
    assert result.projections[0].forcing_series is not None
    assert result.error() < 4e-4  # 8 seeds: median 2.3e-4, worst 2.9e-4 (benchmarks/high_dim.py)
    poisson = get_problem("poisson_gaussian", dim=100)
    solution = solve_static(poisson)
    # evaluation points: 10 000 fresh points of the ball (seed 2024), none a collocation point
    assert solution.error() < 4e-4  # 8 seeds: median 2.3e-4, worst 2.7e-4
    assert abs(solution.active_subspace["directions"][0, 0]) > 0.99
