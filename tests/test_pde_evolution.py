"""Time-dependent problems against exact solutions and independent references."""

import warnings

import numpy as np
import pytest

from pipeline.pde import Box, Dirichlet, Evolution, EvolutionProblem, evolve, get_problem, laplacian
from pipeline.pde.integrators import DivergenceError, integrate
from pipeline.pde.operators import derivative
from pipeline.pde.reference import burgers_cole_hopf


@pytest.mark.parametrize(
    "params, tol",
    [({"beta": 40.0}, 1e-7), ({"beta": 1e3}, 1e-4), ({"beta": 1.0, "T": 1000.0}, 1e-5)],
    ids=["beta40", "beta1e3", "beta1-T1000"],
)
def test_advection(params, tol):
    result = evolve(get_problem("advection", **params))
    assert result.error() < tol
    assert result.fields.shape == (11, 201)  # the fixed space–time grid


@pytest.mark.parametrize(
    "name, tol",
    [("heat_1d", 1e-6), ("heat_2d", 1e-5), ("wave_1d", 1e-5), ("beam_dynamic", 1e-6), ("diffusion_reaction", 1e-6),
     ("reaction_logistic", 1e-4), ("burgers", 1e-3), ("allen_cahn", 1e-3), ("kdv_soliton", 1e-3)],
)
def test_registered_problems_meet_their_targets(name, tol):
    assert evolve(get_problem(name)).error() < tol


@pytest.mark.parametrize("dim, tol", [(10, 1e-4), (100, 1e-3)])
def test_heat_gaussian_in_high_dimensions(dim, tol):
    # quadratic neurons carry ||x||²: measured 1.4e-5 (d = 10) and 2.2e-4 (d = 100, 150 neurons)
    result = evolve(get_problem("heat_gaussian", dim=dim))
    assert result.error() < tol
    assert result.projections[0].network.layers[0].quadratic


def test_second_order_problems_carry_their_velocity_across_time_blocks():
    # each new block refits u and u_t; restarting u_t from u_t(x, 0) gave 0.79 with 3 blocks
    assert evolve(get_problem("wave_1d"), blocks=3).error() < 1e-8  # measured 1.4e-10


def test_cole_hopf_reference_reproduces_the_literature_value():
    nu = 0.01 / np.pi
    t = 1.6037 / np.pi
    slope = abs(burgers_cole_hopf(np.array([0.0]), t, nu, derivative=True)[0])
    assert abs(slope - 152.00516) < 1e-4
    x = np.linspace(-1, 1, 9)
    np.testing.assert_allclose(burgers_cole_hopf(x, 0.4, nu, nodes=150), burgers_cole_hopf(x, 0.4, nu), atol=1e-12)


def test_windows_compose_to_the_same_trajectory():
    problem = get_problem("advection", beta=40.0)
    one = evolve(problem)
    many = evolve(problem, windows=5)
    assert len(many.windows) == 5
    np.testing.assert_allclose(many.fields, one.fields, atol=1e-10)
    # a window is a function of (state, t0, t1): re-running the third from its start state repeats it
    ev = Evolution(problem, windows=5)
    result = ev.run()
    third = result.windows[2]
    again = ev.window(third.block, third.states[0], third.t0, third.t1, third.times, result.points)
    np.testing.assert_allclose(again.states, third.states, atol=1e-12)


def test_time_blocks_resample_the_basis_and_carry_the_solution():
    problem = get_problem("heat_1d")
    result = evolve(problem, blocks=3, sampler="aswim", activation="tanh")
    assert len(result.projections) == 3
    assert not np.array_equal(result.projections[0].network.layers[0].weights,
                              result.projections[1].network.layers[0].weights)
    assert result.error() < 1e-4


def test_ode_methods_agree_with_exact_propagation():
    rng = np.random.default_rng(0)
    q = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    a = q @ np.diag([-1.0, -2.0, -0.5, -3.0, -0.1, -1.5]) @ q.T
    b = rng.normal(size=6)
    y0 = rng.normal(size=6)
    times = np.linspace(0, 2, 5)
    exact = integrate(None, y0, times, method="exact", linear=(a, b))
    for method in ("DOP853", "Radau", "BDF"):
        traj = integrate(lambda t, y: a @ y + b, y0, times, method=method, linear=(a, b), rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(traj.states, exact.states, atol=1e-7)
    closed = scipy_expm_solution(a, b, y0, 2.0)
    np.testing.assert_allclose(exact.states[-1], closed, rtol=1e-12)


def scipy_expm_solution(a, b, y0, t):
    import scipy.linalg

    e = scipy.linalg.expm(a * t)
    return e @ y0 + np.linalg.solve(a, (e - np.eye(len(a))) @ b)


def test_divergence_stops_with_the_partial_trajectory():
    a = np.array([[3.0]])
    with pytest.raises(DivergenceError) as info:
        integrate(lambda t, y: a @ y, np.ones(1), np.linspace(0, 20, 41), method="exact", linear=(a, None))
    assert 0 < len(info.value.partial.times) < 41
    with pytest.raises(DivergenceError) as info:
        integrate(lambda t, y: a @ y, np.ones(1), np.linspace(0, 20, 41), method="RK45")
    assert info.value.partial.times[-1] < 20


def test_bad_input_is_caught_before_integration():
    box = Box([0.0], [1.0])
    with pytest.raises(ValueError, match="initial condition"):
        EvolutionProblem("p", box, laplacian(1), None, (0.0, 1.0))
    for span in ((1.0, 1.0), (1.0, 0.0)):
        with pytest.raises(ValueError, match="non-empty and increasing"):
            EvolutionProblem("p", box, laplacian(1), lambda x: x[:, 0], span)
    with pytest.raises(ValueError, match="initial_velocity"):
        EvolutionProblem("p", box, laplacian(1), lambda x: x[:, 0], (0.0, 1.0), time_order=2)
    burgers_like = EvolutionProblem("p", box, laplacian(1, 0.01), lambda x: np.sin(np.pi * x[:, 0]), (0.0, 1.0),
                                    nonlinear=lambda u, x, t: -u[(0,)] * u[(2,)], nonlinear_derivatives=((0,), (2,)),
                                    conditions=(Dirichlet(0.0),))
    with pytest.raises(ValueError, match="relu.*order 2"):
        Evolution(burgers_like, activation="relu")
    with pytest.raises(ValueError, match="'exact' needs a linear autonomous problem"):
        Evolution(burgers_like, method="exact")
    with pytest.raises(ValueError, match="unknown evolution setting 'dt'"):
        Evolution(burgers_like, dt=0.1)
    stiff = EvolutionProblem("stiff", box, laplacian(1), lambda x: np.sin(np.pi * x[:, 0]), (0.0, 1.0),
                             conditions=(Dirichlet(0.0),))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Evolution(stiff, method="RK45", width=100, n_interior=500).projection(0)
    assert any("looks stiff" in str(w.message) and "BDF" in str(w.message) for w in caught)


def test_second_order_state_and_derivatives():
    problem = get_problem("wave_1d")
    ev = Evolution(problem)
    state = ev.initial_state()
    k = ev.projection(0).rank
    assert state.shape == (2 * k,)
    np.testing.assert_allclose(state[k:], 0.0, atol=1e-10)  # u_t(x, 0) = 0
    shifted = EvolutionProblem("advect", Box([0.0], [1.0]), derivative((1,)) * -1.0, lambda x: x[:, 0], (0.0, 0.1))
    assert shifted.max_order() == 1


def test_adaptive_collocation_points_follow_the_gradient():
    problem = get_problem("burgers")
    ev = Evolution(problem, blocks=2, adaptive_points=0.5)
    result = ev.run()
    second = ev.projections[1].x_interior[:, 0]
    share_near_shock = np.mean(np.abs(second) < 0.1)
    assert share_near_shock > 0.1  # a grid puts 5% there
    weights = ev.projections[1].interior_weights
    assert weights[np.abs(second) < 0.02].mean() < weights[np.abs(second) > 0.5].mean()  # denser, lighter
    assert result.error() < 5e-2
    with pytest.raises(ValueError, match="adaptive_points"):
        Evolution(problem, adaptive_points=1.5)


def test_default_penalty_keeps_the_boundary_error_below_the_interior_error():
    problem = get_problem("heat_2d")
    interior = problem.domain.sample_interior(1000, seed=8)
    boundary = problem.domain.sample_boundary(300, seed=7).points
    points = np.vstack([interior, boundary])
    result = evolve(problem, output_points=points)
    ref = np.stack([problem.exact(points, t) for t in result.times])
    err = result.fields - ref
    assert np.sqrt(np.mean(err[:, 1000:] ** 2)) < np.sqrt(np.mean(err[:, :1000] ** 2))
    assert result.error() < 1e-6


def test_chunked_projection_rows_give_the_same_reduced_problem(monkeypatch):
    import pipeline.pde.projection as projection

    problem = get_problem("heat_1d")
    seen = []
    factor = projection.tsqr_factor
    monkeypatch.setattr(projection, "tsqr_factor", lambda a, **kw: (
        kw.get("name") == "the collocation rows" and seen.append(a.chunks[0])) or factor(a, **kw))
    one, many = Evolution(problem), Evolution(problem, chunk_rows=97)
    r_one, r_many = one.run(), many.run()
    assert len(seen[0]) == 1 and set(seen[1][:-1]) == {97}  # default: one block for this size
    p, q = one.projections[0], many.projections[0]
    assert p.rank == q.rank
    s = p.singular_values
    eps = np.finfo(float).eps
    # R is backward stable: singular values agree to rounding of the largest ...
    np.testing.assert_allclose(q.singular_values[: p.rank], s[: p.rank], rtol=0, atol=100 * eps * s[0])
    # ... and the reduced operator to its conditioning: the smallest kept singular direction
    # moves by ~eps · s_0 / s_k (measured 9e-8 at s_0 / s_k = 1e10, bound 2e-6)
    sign = np.sign(np.sum(p.transform * q.transform, axis=0))  # singular vectors' signs are free
    aligned = q.a * sign[:, None] * sign[None, :]
    assert np.linalg.norm(aligned - p.a) <= eps * (s[0] / s[p.rank - 1]) * np.linalg.norm(p.a)
    # the solution does not see it
    assert abs(r_many.error() - r_one.error()) <= 1e-6 * r_one.error()
    np.testing.assert_allclose(r_many.fields, r_one.fields, rtol=0, atol=1e-10 * np.abs(r_one.fields).max())
    for bad in (0, -5, 2.5, True, "97"):
        with pytest.raises(ValueError, match="chunk_rows"):
            Evolution(problem, chunk_rows=bad)


def test_fast_advection_defaults_keep_the_dense_output_within_its_pieces():
    # β = 1e4 over one unit of time: the fastest modes turn ~4e5 rad, more than MAX_PIECES pieces
    # of one window hold; the problem's defaults split the span into windows (one per 1000 units
    # of |β| T: with 4000, seeds whose fastest mode turns twice as fast needed more pieces)
    for seed in (0, 1):
        result = evolve(get_problem("advection", beta=1e4), seed=seed)
        assert len(result.windows) == 10 and result.error() < 2e-7
        assert all(w.dense is not None and w.dense.error <= w.stats["dense_tol"] for w in result.windows)


def test_advection_is_non_expansive_on_every_seed():
    # seed 1's projected advection had a mode growing at 8.8 (4.7e-5 at T = 1, divergence at
    # T = 1000); a non-expansive problem has such growth removed (docs/design.md §3.3)
    assert evolve(get_problem("advection"), seed=1).projections[0].diagnostics["removed_growth_rate"] > 1.0
    for seed in range(8):
        result = evolve(get_problem("advection", beta=1.0, T=1000.0), seed=seed)
        assert result.error() < 1e-7, seed
        assert result.projections[0].diagnostics["max_growth_rate"] < 1e-6, seed
