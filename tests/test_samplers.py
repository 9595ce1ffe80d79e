"""Samplers: the SWIM construction, the pair density, the swimnetworks reference, ELM."""

import numpy as np
import pytest

from pipeline.nn import (
    ELMSampler,
    Logistic,
    ReLU,
    Sin,
    SWIMSampler,
    Tanh,
    child_seed,
    get_sampler,
    root_seed,
    sample_network,
    swim_parameters,
)


def _pool(rng, n=500, d=3):
    x = rng.uniform(-1, 1, size=(n, d))
    y = np.column_stack([np.sin(3 * x[:, 0]), x[:, 1] ** 2])
    return x, y


@pytest.mark.parametrize(
    "activation, at_from, at_to",
    [(Tanh(), -0.5, 0.5), (ReLU(), 0.0, 1.0), (Logistic(), 0.25, 0.75), (Sin(), -1.0, 1.0)],
    ids=lambda v: getattr(v, "name", ""),
)
def test_each_swim_neuron_takes_fixed_values_at_its_pair(rng, activation, at_from, at_to):
    x, y = _pool(rng)
    sampler = SWIMSampler()
    idx_from, idx_to = sampler.sample_pairs(300, x, y, np.random.default_rng(1))
    w, b = sampler.sample_block(300, x, y, np.random.default_rng(1), activation)
    z_from = np.sum(w * x[idx_from], axis=1) + b
    z_to = np.sum(w * x[idx_to], axis=1) + b
    np.testing.assert_allclose(activation(z_from), at_from, atol=1e-12)
    np.testing.assert_allclose(activation(z_to), at_to, atol=1e-12)


def test_custom_constants_hook(rng):
    x, y = _pool(rng)
    sampler = SWIMSampler(constants=(2.0, 0.5))
    idx_from, idx_to = sampler.sample_pairs(50, x, y, np.random.default_rng(3))
    w, b = sampler.sample_block(50, x, y, np.random.default_rng(3), Tanh())
    np.testing.assert_allclose(np.sum(w * x[idx_from], 1) + b, -0.5, atol=1e-12)
    np.testing.assert_allclose(np.sum(w * x[idx_to], 1) + b, 1.5, atol=1e-12)


def test_pairs_with_duplicate_points_are_never_drawn():
    # Every point appears twice with different targets: zero-distance pairs have huge |Δy|/0.
    base = np.random.default_rng(0).uniform(-1, 1, size=(30, 2))
    x = np.concatenate([base, base])
    y = np.concatenate([np.zeros(30), np.ones(30)])[:, None]
    sampler = SWIMSampler()
    i, j = sampler.sample_pairs(2000, x, y, np.random.default_rng(1))
    assert np.all(np.linalg.norm(x[i] - x[j], axis=1) > 0)
    w, b = sampler.sample_block(2000, x, y, np.random.default_rng(1), Tanh())
    assert np.isfinite(w).all() and np.isfinite(b).all()


def test_pairs_with_equal_values_are_never_drawn():
    x = np.random.default_rng(0).uniform(-1, 1, size=(400, 1))
    y = (x > 0).astype(float)  # a step: only pairs across 0 have Δy != 0
    i, j = SWIMSampler().sample_pairs(1000, x, y, np.random.default_rng(2))
    assert np.all(np.sign(x[i, 0]) != np.sign(x[j, 0]))


def test_constant_targets_fall_back_to_uniform(rng):
    x = rng.uniform(-1, 1, size=(200, 2))
    y = np.ones((200, 1))
    data = SWIMSampler().sample_pairs(500, x, y, np.random.default_rng(5))
    uniform = SWIMSampler(mode="uniform").sample_pairs(500, x, None, np.random.default_rng(5))
    np.testing.assert_array_equal(data[0], uniform[0])
    np.testing.assert_array_equal(data[1], uniform[1])


def test_pair_density_is_proportional_to_the_finite_difference_gradient():
    # Three points, values chosen so the three pair gradients are 1, 2 and 3 (distances 1, 1, 2).
    x = np.array([[0.0], [1.0], [2.0]])
    y = np.array([[0.0], [1.0], [3.0]])  # |Δy|/|Δx|: (0,1) -> 1, (1,2) -> 2, (0,2) -> 1.5
    sampler = SWIMSampler(candidates_per_neuron=200)
    i, j = sampler.sample_pairs(20_000, x, y, np.random.default_rng(7))
    pair = np.minimum(i, j) * 3 + np.maximum(i, j)
    freq = np.array([np.mean(pair == 1), np.mean(pair == 5), np.mean(pair == 2)])
    np.testing.assert_allclose(freq, np.array([1.0, 2.0, 1.5]) / 4.5, atol=0.01)


def test_errors_for_degenerate_pools():
    with pytest.raises(ValueError, match="n_samples = 1"):
        SWIMSampler().sample_pairs(5, np.zeros((1, 2)), None, np.random.default_rng(0))
    with pytest.raises(ValueError, match="distinct"):
        SWIMSampler().sample_pairs(5, np.ones((10, 2)), None, np.random.default_rng(0))


def test_elm_statistics():
    w, b = ELMSampler(weight_scale=2.0, bias_scale=0.5).sample_block(
        20_000, np.zeros((1, 3)), None, np.random.default_rng(0), Tanh()
    )
    assert w.shape == (20_000, 3) and b.shape == (20_000,)
    assert abs(w.std() - 2.0) < 0.03 and abs(w.mean()) < 0.03
    assert b.min() >= -0.5 and b.max() <= 0.5 and abs(b.std() - 0.5 / np.sqrt(3)) < 0.01


def test_sampler_names_and_errors():
    assert get_sampler("uswim").mode == "uniform"
    assert get_sampler("aswim").passes == ("uniform", "fitted")
    assert get_sampler("elm").passes == ("agnostic",)
    with pytest.raises(ValueError, match="unknown sampler 'foo'.*swim"):
        get_sampler("foo")
    with pytest.raises(ValueError, match="mode"):
        SWIMSampler(mode="bad")
    with pytest.raises(ValueError, match="weight_scale"):
        ELMSampler(weight_scale=-1.0)


def test_deep_layers_draw_from_their_own_seeds(rng):
    x, y = _pool(rng, n=300)
    net = sample_network(x, y, widths=[40, 40], activation="tanh", sampler="swim", seed=root_seed(0)).compute()
    first, second = net.layers
    assert second.weights.shape == (40, 40)
    # Layer 2's pairs are images of pool points under layer 1, so its weights are not those of
    # layer 1 re-used; the same seed in both layers would draw the same pair indices.
    i1 = SWIMSampler().sample_pairs(40, x, y, np.random.default_rng(1))
    i2 = SWIMSampler().sample_pairs(40, x, y, np.random.default_rng(2))
    assert not np.array_equal(i1[0], i2[0])
    h = first(x)
    block_seed = child_seed(child_seed(root_seed(0), 1), 0)  # layer 1, weight block 0
    idx_from, idx_to = SWIMSampler().sample_pairs(40, h, y, np.random.default_rng(block_seed))
    w, _ = swim_parameters(h[idx_from], h[idx_to], *Tanh().swim_constants)
    np.testing.assert_array_equal(second.weights[: len(w)], w)


@pytest.mark.parametrize("activation, sampler_name", [("tanh", "tanh"), ("relu", "relu")])
def test_weights_equal_swimnetworks_reference_on_identical_pairs(activation, sampler_name):
    swimnetworks = pytest.importorskip("swimnetworks")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(2000, 3))
    y = np.sin(2 * x[:, :1]) + x[:, 1:2] * x[:, 2:3]
    dense = swimnetworks.Dense(layer_width=300, activation=activation, parameter_sampler=sampler_name, random_seed=3)
    dense.fit(x, y)
    act = Tanh() if activation == "tanh" else ReLU()
    w, b = swim_parameters(x[dense.idx_from], x[dense.idx_to], *act.swim_constants)
    np.testing.assert_allclose(w, dense.weights.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, dense.biases.ravel(), rtol=1e-12, atol=1e-12)


def test_local_candidate_pairs_join_near_neighbours():
    x = np.linspace(0, 1, 1001)[:, None]
    i, j = SWIMSampler("uniform", local_fraction=1.0, neighbours=4).sample_pairs(500, x, None, np.random.default_rng(0))
    assert np.all(np.abs(x[i, 0] - x[j, 0]) <= 4 * 0.001 + 1e-12)
    y = (x > 0.5).astype(float)  # a step: local pairs put steep neurons right at it

    def neurons(local_fraction):
        w, b = SWIMSampler("data", local_fraction=local_fraction).sample_block(
            400, x, y, np.random.default_rng(1), Tanh())
        centres = -b / w[:, 0]  # where each neuron crosses zero
        return np.mean(np.abs(centres - 0.5) < 0.01), np.median(np.abs(w[:, 0]))

    (local_share, local_steepness), (plain_share, plain_steepness) = neurons(0.5), neurons(0.0)
    assert local_share > 0.5 > 0.2 > plain_share
    assert local_steepness > 50 * plain_steepness
    with pytest.raises(ValueError, match="local_fraction"):
        SWIMSampler(local_fraction=1.5)


def test_elm_curvature_and_directions_leave_the_ridge_draw_unchanged():
    from pipeline.nn import ELMSampler, get_activation

    x = np.zeros((5, 4))
    act = get_activation("tanh")
    w0, b0 = ELMSampler(0.5, 2.0).sample_block(50, x, None, np.random.default_rng(3), act)
    w1, b1, a1 = ELMSampler(0.5, 2.0, curvature_scale=1.5).sample_block(50, x, None, np.random.default_rng(3), act)
    np.testing.assert_array_equal(w0, w1)
    np.testing.assert_array_equal(b0, b1)
    assert np.all(np.abs(a1) <= 1.5) and a1.std() > 0.5
    e = np.eye(4)[:, :1]
    w2, b2, _ = ELMSampler(0.5, 2.0, 1.5, directions=e, direction_scale=3.0).sample_block(
        50, x, None, np.random.default_rng(3), act)
    np.testing.assert_array_equal(w2[:, 1:], w0[:, 1:])  # only the given direction changes
    assert np.std(w2[:, 0] - w0[:, 0]) > 2.0
    with pytest.raises(ValueError, match="directions have 3 rows"):
        ELMSampler(directions=np.eye(3)[:, :1]).sample_block(2, x, None, np.random.default_rng(0), act)
