"""The 2-D Allen–Cahn problem and its Fourier–ETDRK4 reference."""

import numpy as np
import pytest

from pipeline.pde import evolve, get_problem
from pipeline.pde.reference import allen_cahn_2d_initial, allen_cahn_2d_reference


def _points(m=400, seed=7):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (m, 2))


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _mode(x):  # cos πx sin 2πy: |k|² = 5π²
    return np.cos(np.pi * x[:, 0]) * np.sin(2 * np.pi * x[:, 1])


def test_heat_limit_decays_a_fourier_mode_exactly():
    # rate = 0: u_t = ε Δu, the mode decays as exp(-5επ² t); off-grid points test the interpolant,
    # t = 0.37 (not on the step grid) the partial step
    eps, x = 0.05, _points()
    ref = allen_cahn_2d_reference(eps=eps, rate=0.0, T=1.0, n=16, initial=_mode)
    for t in (0.0, 0.37, 0.5, 1.0):
        np.testing.assert_allclose(ref(x, t), np.exp(-5 * eps * np.pi**2 * t) * _mode(x), atol=1e-13)


def test_linearised_growth_of_a_small_mode_is_exact():
    # r u goes through the ETDRK4 φ-functions: δ e^{(r - 5επ²) t} up to the cubic term O(δ²)
    eps, rate, delta, x = 0.05, 1.0, 1e-6, _points()

    def small(p):
        return delta * _mode(p)

    ref = allen_cahn_2d_reference(eps=eps, rate=rate, T=1.0, n=16, initial=small)
    for t in (0.25, 0.61, 1.0):
        exact = delta * np.exp((rate - 5 * eps * np.pi**2) * t) * _mode(x)
        assert _rel(ref(x, t), exact) < 1e-10


def test_spatially_uniform_state_follows_the_exact_ode():
    # u0 = c: u' = r (u - u³), u(t) = c e^{rt} / sqrt(1 - c² + c² e^{2rt}) (nonlinear, exact)
    c, rate, x = 0.1, 3.0, _points(50)

    def uniform(p):
        return np.full(len(p), c)

    ref = allen_cahn_2d_reference(eps=0.01, rate=rate, T=1.0, n=8, initial=uniform)
    for t in (0.3, 0.77, 1.0):
        e = np.exp(rate * t)
        exact = c * e / np.sqrt(1 - c * c + c * c * e * e)
        np.testing.assert_allclose(ref(x, t), exact, rtol=1e-9)


def test_reference_converges_in_space_and_time():
    x = _points(300)
    coarse = allen_cahn_2d_reference(eps=0.05, rate=1.0, T=1.0, n=64, steps=40)
    fine = allen_cahn_2d_reference(eps=0.05, rate=1.0, T=1.0, n=128, steps=40)
    halved = allen_cahn_2d_reference(eps=0.05, rate=1.0, T=1.0, n=64, steps=80)
    quartered = allen_cahn_2d_reference(eps=0.05, rate=1.0, T=1.0, n=64, steps=160)
    for t in (0.5, 1.0):
        assert _rel(coarse(x, t), fine(x, t)) < 1e-12  # space resolved
        e1, e2 = _rel(coarse(x, t), quartered(x, t)), _rel(halved(x, t), quartered(x, t))
        assert e2 < 1e-8 and e1 / e2 > 8  # ETDRK4: halving the step divides the error by ~16


def test_reference_rejects_bad_settings():
    with pytest.raises(ValueError, match="even integer"):
        allen_cahn_2d_reference(n=15)
    with pytest.raises(ValueError, match="multiple of checkpoints"):
        allen_cahn_2d_reference(n=8, steps=30)
    ref = allen_cahn_2d_reference(eps=0.05, n=8, steps=20)
    with pytest.raises(ValueError, match="t >= 0"):
        ref(_points(3), -0.5)
    with pytest.raises(ValueError, match=r"shape \(m, 2\)"):
        ref(np.zeros(3), 0.5)


def test_registered_problem_matches_its_reference_at_t0():
    problem = get_problem("allen_cahn_2d")
    assert problem.params == {"eps": 0.01, "rate": 1.0, "T": 1.0}
    assert problem.domain.dim == 2 and problem.t_span == (0.0, 1.0)
    assert [c.axis for c in problem.conditions] == [0, 1]
    points, times = problem.evaluation_grid()
    assert points.shape == (65 * 65, 2) and len(times) == 11
    assert points.min() == -1.0 and points.max() == 1.0 and times[0] == 0.0 and times[-1] == 1.0
    u0 = problem.initial(points)
    np.testing.assert_allclose(problem.reference(points, 0.0), u0, atol=1e-12)
    np.testing.assert_array_equal(u0, allen_cahn_2d_initial(points))
    # the nonlinear term is r (u - u³)
    u = {(0, 0): np.array([0.5, -2.0])}
    np.testing.assert_allclose(problem.nonlinear(u, None, 0.0), [0.375, 6.0])
    assert get_problem("allen_cahn_2d", eps=0.02, T=0.5).evaluation_grid()[1][-1] == 0.5
    for bad in ({"eps": 0.0}, {"rate": -1.0}, {"T": float("inf")}):
        with pytest.raises(ValueError, match="must be a positive number"):
            get_problem("allen_cahn_2d", **bad)


def test_a_tiny_evolve_runs():
    # a smoke test on a short span (measured 1.8e-4 and 2.8e-4 with seeds 0 and 1; width 100
    # leaves too few features once the compliant basis meets both periodic conditions: ~1.0)
    result = evolve(get_problem("allen_cahn_2d", T=0.05), width=300, n_interior=1000, seed=0)
    assert result.fields.shape == (11, 65 * 65)
    assert np.isfinite(result.fields).all()
    assert result.error() < 1e-2
