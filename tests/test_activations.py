"""Activation derivatives against independent references.

The reference for any order is Cauchy's integral formula evaluated by the trapezoidal rule
on a circle in the complex plane (exponentially accurate for analytic functions): it shares
nothing with the polynomial recurrences under test.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipeline.nn.activations import Logistic, ReLU, Sin, Tanh, get_activation

COMPLEX_FUNCTIONS = {
    "tanh": np.tanh,
    "logistic": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "sin": np.sin,
}


def cauchy_derivative(f, z, order, radius=1.0, nodes=256):
    theta = 2 * np.pi * np.arange(nodes) / nodes
    circle = radius * np.exp(1j * theta)
    values = f(z[:, None] + circle[None, :])
    coeff = np.mean(values * np.exp(-1j * order * theta)[None, :], axis=1) / radius**order
    return math.factorial(order) * coeff.real


@pytest.mark.parametrize("activation", [Tanh(), Logistic(), Sin()], ids=lambda a: a.name)
@pytest.mark.parametrize("order", range(0, 9))
def test_derivatives_match_cauchy_integral(activation, order):
    z = np.linspace(-4.0, 4.0, 801)
    reference = cauchy_derivative(COMPLEX_FUNCTIONS[activation.name], z, order)
    got = activation.derivative(z, order)
    assert np.max(np.abs(got - reference)) / np.max(np.abs(reference)) < 1e-10


def test_tanh_closed_forms():
    z = np.linspace(-6, 6, 1001)
    t, sech2 = np.tanh(z), 1 / np.cosh(z) ** 2
    act = Tanh()
    np.testing.assert_allclose(act(z), t, rtol=0, atol=5e-16)
    # Polynomials in s = tanh z lose relative accuracy where the derivative is small (s -> ±1):
    # the absolute error is a few ulp times the sum of the coefficients' magnitudes.
    np.testing.assert_allclose(act.derivative(z, 1), sech2, rtol=1e-12, atol=2e-15)
    np.testing.assert_allclose(act.derivative(z, 2), -2 * t * sech2, rtol=1e-12, atol=4e-15)
    np.testing.assert_allclose(act.derivative(z, 3), -2 * sech2 * (1 - 3 * t**2), rtol=1e-11, atol=1e-14)


def test_logistic_closed_forms():
    z = np.linspace(-30, 30, 601)
    s = 1 / (1 + np.exp(-z))
    act = Logistic()
    np.testing.assert_allclose(act(z), s, rtol=1e-15)
    np.testing.assert_allclose(act.derivative(z, 1), s * (1 - s), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(act.derivative(z, 2), s * (1 - s) * (1 - 2 * s), rtol=1e-10, atol=1e-15)


def test_tanh_polynomials_follow_the_recurrence():
    # P1 = 1 - s², P2 = -2 s + 2 s³, P3 = -2 + 8 s² - 6 s⁴
    np.testing.assert_array_equal(Tanh.polynomial(1), [1, 0, -1])
    np.testing.assert_array_equal(Tanh.polynomial(2), [0, -2, 0, 2])
    np.testing.assert_array_equal(Tanh.polynomial(3), [-2, 0, 8, 0, -6])


@pytest.mark.parametrize("activation", [Tanh(), Logistic(), Sin()], ids=lambda a: a.name)
def test_derivatives_share_evaluation_and_agree(activation):
    z = np.random.default_rng(0).normal(size=(50, 7))
    together = activation.derivatives(z, (0, 1, 2, 5))
    for k, block in zip((0, 1, 2, 5), together):
        np.testing.assert_array_equal(block, activation.derivative(z, k))
        assert block.shape == z.shape


def test_relu_orders():
    z = np.array([-2.0, -0.5, 0.5, 3.0])
    act = ReLU()
    np.testing.assert_array_equal(act(z), [0, 0, 0.5, 3.0])
    np.testing.assert_array_equal(act.derivative(z, 1), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="relu.*order 2"):
        act.derivative(z, 2)


def test_sin_is_periodic_in_order():
    z = np.linspace(-3, 3, 11)
    act = Sin()
    np.testing.assert_allclose(act.derivative(z, 4), np.sin(z))
    np.testing.assert_allclose(act.derivative(z, 3), -np.cos(z))


def test_bad_activation_and_order():
    with pytest.raises(ValueError, match="unknown activation 'gelu'.*tanh"):
        get_activation("gelu")
    with pytest.raises(ValueError, match="non-negative integer"):
        Tanh().derivative(np.zeros(3), -1)


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(1, 200), elements=st.floats(-800, 800, allow_nan=False)))
def test_fast_tanh_is_accurate_everywhere(z):
    np.testing.assert_allclose(Tanh()(z), np.tanh(z), rtol=0, atol=5e-16)


def test_swim_constants():
    assert Tanh().swim_constants == pytest.approx((math.log(3), math.log(3) / 2))
    assert ReLU().swim_constants == (1.0, 0.0)
