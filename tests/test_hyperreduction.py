"""Hyper-reduced nonlinear terms, analytic Jacobians and pruned bases of time-dependent solves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.pde import get_problem
from pipeline.pde.conditions import Dirichlet
from pipeline.pde.domains import Box
from pipeline.pde.evolution import Evolution, EvolutionProblem, hyper_error
from pipeline.pde.hyperreduction import select_rows
from pipeline.pde.operators import laplacian

EPS = np.finfo(float).eps


# ----------------------------------------------------------------------------- row selection
def test_select_rows_finds_the_rows_that_carry_the_span():
    rng = np.random.default_rng(0)
    k, n = 6, 50
    mat = np.zeros((n, k))
    support = np.sort(rng.choice(n, size=k, replace=False))
    mat[support] = rng.standard_normal((k, k)) + 5 * np.eye(k)
    np.testing.assert_array_equal(select_rows(mat, k), support)  # every other row is zero


def test_select_rows_oversamples_in_rounds_without_repeats():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((200, 10)))
    rows = select_rows(q, 25)
    assert len(rows) == 25 and len(np.unique(rows)) == 25 and np.all(np.diff(rows) > 0)
    # the first round alone interpolates: the chosen square block is invertible and moderate
    first = select_rows(q, 10)
    assert np.linalg.cond(q[first]) < 100
    assert len(select_rows(q, 1000)) == 200  # capped at the number of rows


# ----------------------------------------------------------------------------- exactness
def _reaction_heat(rate=0.5, nu=0.1):
    """u_t = ν u_xx + r u as a *nonlinear* term r u: the interpolation basis holds N exactly."""
    def exact(x, t):
        return np.exp((rate - nu * np.pi**2) * t) * np.sin(np.pi * x[:, 0])

    return EvolutionProblem(
        "reaction_heat", Box([0.0], [1.0]), laplacian(1, nu), lambda x: exact(x, 0.0), (0.0, 1.0),
        nonlinear=lambda u, x, t: rate * u[(0,)], nonlinear_derivatives=((0,),), conditions=(Dirichlet(0.0),),
        exact=exact, evaluation=lambda: (np.linspace(0, 1, 101)[:, None], np.linspace(0, 1, 11)),
        defaults={"width": 120, "n_interior": 600, "points": "grid", "boundary": "compliant", "activation": "sin",
                  "sampler": "elm", "weight_scale": 3.0, "bias_scale": math.pi, "method": "BDF", "rtol": 1e-10,
                  "atol": 1e-12})


def test_a_term_inside_the_interpolation_basis_is_reduced_exactly():
    problem = _reaction_heat()
    hyper, exact = Evolution(problem, hyper_reduction=True), Evolution(problem, hyper_reduction=False)
    r_h, r_e = hyper.run(), exact.run()
    proj = hyper.projections[0]
    assert proj.hyper is not None and proj.hyper.points < proj.interior_rows
    assert exact.projections[0].hyper is None and exact.projections[0].mass_hat is not None
    # N = r u lies in span(D̂_0): interpolation reproduces the projected term to rounding,
    # amplified by the interpolation rows' conditioning (rank-revealing cut-off 1e-10)
    y = r_h.windows[-1].states[-1]
    assert hyper_error(proj, y, 1.0) < 1e-8
    assert r_h.windows[-1].stats["hyper_rhs_error"] < 1e-8
    assert r_e.error() < 1e-7 and r_h.error() < 1e-7
    np.testing.assert_allclose(r_h.fields, r_e.fields, rtol=0, atol=1e-8 * np.abs(r_e.fields).max())


def test_linear_problems_keep_the_exact_path():
    ev = Evolution(get_problem("heat_1d"))
    ev.projection(0)
    assert ev.projections[0].hyper is None


def test_the_automatic_choice_hyper_reduces_where_the_rows_are_few():
    # KdV: 2 × 94 interpolation rows of 2000; Burgers: 2 × 326 of 1500 (more than a quarter)
    kdv, burgers = Evolution(get_problem("kdv_soliton")), Evolution(get_problem("burgers"))
    assert kdv.projection(0).hyper is not None
    assert burgers.projection(0).hyper is None and burgers.projections[0].mass_hat is not None


# ----------------------------------------------------------------------------- Burgers
@pytest.fixture(scope="module")
def burgers_runs():
    problem = get_problem("burgers")
    hyper, exact = Evolution(problem, seed=0, hyper_reduction=True), Evolution(problem, seed=0, hyper_reduction=False)
    return problem, hyper, hyper.run(), exact, exact.run()


def test_burgers_hyper_reduction_adds_far_less_than_the_method_error(burgers_runs):
    problem, hyper, r_h, exact, r_e = burgers_runs
    proj = hyper.projections[0]
    # 2 fields (u, u_x) × rank interpolation columns out of 2000 rows
    assert proj.hyper.points == 2 * proj.rank < proj.interior_rows
    # measured 9e-7; the spatial error of the method is ~3e-5
    assert r_h.windows[-1].stats["hyper_rhs_error"] < 1e-4
    assert r_e.error() < 1e-4 and r_h.error() < 1e-4
    diff = np.linalg.norm(r_h.fields - r_e.fields) / np.linalg.norm(r_e.fields)
    assert diff < 0.5 * max(r_e.error(), r_h.error())


def test_pruning_keeps_the_rank_with_fewer_features(burgers_runs):
    problem, hyper, *_ = burgers_runs
    proj = hyper.projections[0]
    assert proj.network.width < hyper.settings["width"]
    full = Evolution(problem, seed=0, prune=0)
    full_proj = full.projection(0)
    assert full_proj.network.width == hyper.settings["width"]
    assert abs(full_proj.rank - proj.rank) <= 0.02 * proj.rank


@pytest.mark.parametrize("hyper_reduction", [True, False])
def test_analytic_jacobian_matches_differences_of_the_right_hand_side(burgers_runs, hyper_reduction):
    problem, hyper, r_h, exact, r_e = burgers_runs
    ev, result = (hyper, r_h) if hyper_reduction else (exact, r_e)
    proj = ev.projections[0]
    rhs, jac = ev.rhs(proj), ev.jacobian(proj)
    y, t = result.windows[-1].states[5], float(result.windows[-1].times[5])
    rng = np.random.default_rng(0)
    v = rng.standard_normal(len(y))
    h = 1e-6 * np.linalg.norm(y) / np.linalg.norm(v)
    numeric = (rhs(t, y + h * v) - rhs(t, y - h * v)) / (2 * h)
    analytic = jac(t, y) @ v
    # central differences: O(h²) truncation plus rounding ε‖f‖/h; the point-wise partials of N
    # are forward differences (relative ~1e-7)
    assert np.linalg.norm(analytic - numeric) <= 1e-5 * np.linalg.norm(numeric)


def test_many_row_blocks_choose_rows_by_tournament(burgers_runs, monkeypatch):
    import pipeline.pde.hyperreduction as hyperreduction

    problem, hyper, r_h, *_ = burgers_runs
    chunked = Evolution(problem, seed=0, chunk_rows=300, hyper_reduction=True)
    proj = chunked.projection(0)
    assert proj.diagnostics["chunk_rows"] == 300
    result = chunked.run()
    assert result.windows[-1].stats["hyper_rhs_error"] < 1e-4
    assert abs(result.error() - r_h.error()) < 0.5 * r_h.error()
    # the same tournament with every block's rows left on the workers (no rows held here; the
    # choice may differ where pivots tie to rounding), and the exact term of the diagnostics
    # summed block by block
    monkeypatch.setattr(hyperreduction, "HELD_ROWS_BYTES", 0)
    remote = Evolution(problem, seed=0, chunk_rows=300, hyper_reduction=True)
    rproj = remote.projection(0)
    assert rproj.hyper.points == proj.hyper.points
    state = result.windows[-1].states[-1]
    assert hyper_error(rproj, state, 1.0) < 1e-4
    e_held, e_remote = proj.exact_term(state, 1.0), rproj.exact_term(state, 1.0)
    np.testing.assert_allclose(e_remote, e_held, rtol=0, atol=1e-12 * np.abs(e_held).max())


# ----------------------------------------------------------------------------- forcing and boundary data
def _forced_penalty_problem():
    """u_t = ν u_xx - u² + f with time-dependent Dirichlet data (penalty rows) and a source."""
    nu = 0.05

    def exact(x, t):
        s = x[:, 0]
        return np.exp(-t) * np.sin(np.pi * s) + 0.3 * (1 + t) * s + 0.2

    def source(x, t):
        s = x[:, 0]
        u = exact(x, t)
        u_t = -np.exp(-t) * np.sin(np.pi * s) + 0.3 * s
        u_xx = -np.pi**2 * np.exp(-t) * np.sin(np.pi * s)
        return u_t - nu * u_xx + u**2

    return EvolutionProblem(
        "forced", Box([0.0], [1.0]), laplacian(1, nu), lambda x: exact(x, 0.0), (0.0, 1.0),
        nonlinear=lambda u, x, t: -u[(0,)] ** 2, nonlinear_derivatives=((0,),), source=source,
        conditions=(Dirichlet(lambda x, data: exact(x, data["t"])),), exact=exact, autonomous=False,
        evaluation=lambda: (np.linspace(0, 1, 101)[:, None], np.linspace(0, 1, 11)),
        defaults={"width": 150, "n_interior": 800, "n_boundary": 2, "points": "grid", "boundary": "penalty",
                  "activation": "sin", "sampler": "elm", "weight_scale": 3.0, "bias_scale": math.pi,
                  "method": "BDF", "rtol": 1e-9, "atol": 1e-11})


def test_sources_and_boundary_data_with_penalty_rows():
    problem = _forced_penalty_problem()
    hyper, exact = Evolution(problem, hyper_reduction=True), Evolution(problem, hyper_reduction=False)
    r_h, r_e = hyper.run(), exact.run()
    proj = hyper.projections[0]
    assert proj.mass_hat_boundary is not None and proj.boundary_forcing is not None
    assert r_e.error() < 1e-5
    assert r_h.error() < 2 * r_e.error() + 1e-7
    assert r_h.windows[-1].stats["hyper_rhs_error"] < 1e-4


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize("key, value", [("hyper_reduction", "yes"), ("hyper_oversampling", 0.5),
                                        ("hyper_oversampling", True), ("hyper_basis", "all"), ("prune", 2.0), ("prune", -0.1), ("prune", 1.0),
                                        ("device", "tpu")])
def test_bad_settings_name_the_setting(key, value):
    with pytest.raises(ValueError, match=key):
        Evolution(get_problem("burgers"), **{key: value})
