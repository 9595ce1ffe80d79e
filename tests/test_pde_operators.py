"""Operators applied to a sampled basis against finite differences of the features."""

import numpy as np
import pytest

from pipeline.nn import DenseLayer
from pipeline.pde.operators import (
    advection,
    biharmonic,
    derivative,
    directional,
    gradient,
    helmholtz,
    identity,
    laplacian,
    multi_indices,
    normal_derivative,
)


@pytest.fixture
def layer():
    rng = np.random.default_rng(0)
    return DenseLayer(rng.normal(size=(9, 3)), rng.normal(size=9), "tanh")


def _fd(f, x, alpha, h=1e-3):
    """Central finite differences of ``f`` (n, width) for a multi-index (orders 1 or 2 per axis)."""
    for i, a in enumerate(alpha):
        e = np.eye(x.shape[1])[i] * h
        if a == 1:
            f = (lambda g, e: lambda y: (g(y + e) - g(y - e)) / (2 * h))(f, e)
        elif a == 2:
            f = (lambda g, e: lambda y: (g(y + e) - 2 * g(y) + g(y - e)) / h**2)(f, e)
    return f(x)


@pytest.mark.parametrize("alpha", [(1, 0, 0), (0, 2, 0), (1, 1, 0), (2, 0, 1), (0, 1, 1)])
def test_derivative_features_match_finite_differences(layer, alpha):
    x = np.random.default_rng(1).uniform(size=(6, 3))
    got = derivative(alpha).features(layer, x)
    ref = _fd(lambda y: layer(y), x, alpha)
    np.testing.assert_allclose(got, ref, atol=2e-4 * max(1.0, np.abs(ref).max()))


def test_laplacian_biharmonic_helmholtz_and_sums(layer):
    x = np.random.default_rng(2).uniform(size=(5, 3))
    lap = sum(derivative(a).features(layer, x) for a in multi_indices(3, 2) if max(a) == 2)
    np.testing.assert_allclose(laplacian(3).features(layer, x), lap, rtol=1e-12, atol=1e-12)
    bih = sum((2 if max(a) < 4 and sum(v > 0 for v in a) == 2 else 1) * derivative(a).features(layer, x)
              for a in multi_indices(3, 4) if all(v % 2 == 0 for v in a))
    np.testing.assert_allclose(biharmonic(3).features(layer, x), bih, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(helmholtz(3.0, 3).features(layer, x), lap + 9 * layer(x), rtol=1e-12, atol=1e-12)
    combo = 2.0 * laplacian(3) - identity(0.5, 3) + gradient(1, 3)
    ref = 2 * lap - 0.5 * layer(x) + derivative((0, 1, 0)).features(layer, x)
    np.testing.assert_allclose(combo.features(layer, x), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(combo.constant_column(x), -0.5)


def test_variable_coefficients_and_vector_fields(layer):
    x = np.random.default_rng(3).uniform(size=(7, 3))
    coef = lambda y, data: 1 + y[:, 0] ** 2  # noqa: E731
    np.testing.assert_allclose(laplacian(3, coef).features(layer, x),
                               (1 + x[:, :1] ** 2) * laplacian(3).features(layer, x), rtol=1e-12)
    a = np.array([1.0, -2.0, 0.5])
    ref = sum(a[i] * gradient(i, 3).features(layer, x) for i in range(3))
    np.testing.assert_allclose(advection(a).features(layer, x), ref, rtol=1e-12, atol=1e-12)
    field = lambda y, data: np.stack([y[:, 1], y[:, 0], np.ones(len(y))], axis=1)  # noqa: E731
    ref = sum(field(x, {})[:, i : i + 1] * gradient(i, 3).features(layer, x) for i in range(3))
    np.testing.assert_allclose(directional(field, 3).features(layer, x), ref, rtol=1e-12, atol=1e-12)
    normals = np.tile([0.0, 0.0, 1.0], (7, 1))
    np.testing.assert_allclose(normal_derivative(3).features(layer, x, {"normal": normals}),
                               gradient(2, 3).features(layer, x), rtol=1e-12)


def test_operator_errors(layer):
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="acts in 2 dimensions"):
        laplacian(2).features(layer, x)
    with pytest.raises(ValueError, match="relu.*order 2"):
        laplacian(3).features(DenseLayer(layer.weights, layer.biases, "relu"), x)
    with pytest.raises(ValueError, match="multi-index"):
        derivative((1, -1))
    with pytest.raises(ValueError, match="cannot add"):
        laplacian(2) + laplacian(3)


@pytest.fixture
def quadratic_layer():
    rng = np.random.default_rng(4)
    return DenseLayer(rng.normal(size=(9, 3)), rng.normal(size=9), "tanh", rng.uniform(-1, 1, size=9))


@pytest.mark.parametrize("alpha", [(1, 0, 0), (0, 2, 0), (1, 1, 0), (0, 1, 1), (0, 0, 0)])
def test_quadratic_neurons_derivatives_match_finite_differences(quadratic_layer, alpha):
    x = np.random.default_rng(5).uniform(-1, 1, size=(6, 3))
    ref = _fd(lambda y: quadratic_layer(y), x, alpha)
    np.testing.assert_allclose(derivative(alpha).features(quadratic_layer, x), ref,
                               atol=2e-4 * max(1.0, np.abs(ref).max()))
    np.testing.assert_allclose(quadratic_layer.derivative_features(x, alpha), ref, atol=2e-4 * max(1.0, np.abs(ref).max()))


def test_quadratic_neurons_laplacian_vector_fields_and_gradient(quadratic_layer):
    layer, x = quadratic_layer, np.random.default_rng(6).uniform(-1, 1, size=(7, 3))
    lap = sum(_fd(lambda y: layer(y), x, a) for a in [(2, 0, 0), (0, 2, 0), (0, 0, 2)])
    np.testing.assert_allclose(laplacian(3).features(layer, x), lap, atol=1e-4 * np.abs(lap).max())
    np.testing.assert_allclose(layer.laplacian_features(x), laplacian(3).features(layer, x), rtol=1e-12)
    np.testing.assert_allclose(helmholtz(2.0, 3).features(layer, x), laplacian(3).features(layer, x) + 4 * layer(x),
                               rtol=1e-12, atol=1e-12)
    field = lambda y, data: np.stack([y[:, 1], y[:, 0], np.ones(len(y))], axis=1)  # noqa: E731
    ref = sum(field(x, {})[:, i : i + 1] * _fd(lambda y: layer(y), x, tuple(int(j == i) for j in range(3)))
              for i in range(3))
    np.testing.assert_allclose(directional(field, 3).features(layer, x), ref, atol=2e-5 * np.abs(ref).max())
    # ∇(Φ c) against the first-derivative features
    c = np.random.default_rng(7).normal(size=9)
    grad = np.stack([derivative(tuple(int(j == i) for j in range(3))).features(layer, x) @ c for i in range(3)], axis=1)
    np.testing.assert_allclose(layer.gradient(x, c), grad, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="up to second order"):
        biharmonic(3).features(layer, x)
    with pytest.raises(ValueError, match="up to second order"):
        derivative((3, 0, 0)).features(layer, x)


def test_a_zero_curvature_is_the_ridge_layer(layer):
    flat = DenseLayer(layer.weights, layer.biases, "tanh", np.zeros(layer.width))
    assert not flat.quadratic
    x = np.random.default_rng(8).uniform(size=(4, 3))
    np.testing.assert_array_equal(laplacian(3).features(flat, x), laplacian(3).features(layer, x))
