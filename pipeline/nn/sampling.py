"""Sampling whole layers and networks as Dask graphs of independent weight-block tasks.

The ``width`` neurons of a layer are cut into blocks of ``neurons_per_block``; block ``j``
of layer ``l`` in pass ``p`` draws from ``child_seed(seed, p, l, j)`` and nothing else, so the
result is bit-identical whatever the number of blocks per task, threads, workers or row
chunks (docs/design.md §3.4).  Candidate pairs come from a *pool*: a subsample of the data drawn
once from its own seed, gathered to the client (it is small) and shared by every block.
"""

from __future__ import annotations

import dask
import dask.array as da
from dask.delayed import Delayed
import numpy as np

from pipeline.nn.activations import Activation, get_activation
from pipeline.nn.network import DenseLayer, SampledNetwork
from pipeline.nn.samplers import get_sampler
from pipeline.nn.seeding import child_seed

__all__ = ["draw_pool_indices", "sample_layer", "sample_layer_now", "sample_network", "DEFAULT_NEURONS_PER_BLOCK"]

DEFAULT_NEURONS_PER_BLOCK = 256


def draw_pool_indices(n_points: int, pool_size: int, seed: np.random.SeedSequence) -> np.ndarray:
    """Sorted indices of the sampling pool: all points, or ``pool_size`` of them at random."""
    if n_points <= pool_size:
        return np.arange(n_points)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_points, size=pool_size, replace=False))


def _block_sizes(width: int, neurons_per_block: int) -> list[int]:
    full, rest = divmod(width, neurons_per_block)
    return [neurons_per_block] * full + ([rest] if rest else [])


def _sample_blocks(sampler, activation, x_pool, y_pool, sizes, seeds):
    blocks = [
        sampler.sample_block(n, x_pool, y_pool, np.random.default_rng(s), activation)
        for n, s in zip(sizes, seeds, strict=True)
    ]
    return blocks


def _assemble_layer(groups, activation):
    blocks = [b for group in groups for b in group]  # (weights, biases[, curvature]) per block
    weights = np.concatenate([b[0] for b in blocks], axis=0)
    biases = np.concatenate([b[1] for b in blocks], axis=0)
    curvature = np.concatenate([b[2] for b in blocks]) if len(blocks[0]) == 3 else None
    return DenseLayer(weights, biases, activation, curvature)


def sample_layer(
    x_pool,
    y_pool,
    *,
    width: int,
    activation: str | Activation,
    sampler,
    seed: np.random.SeedSequence,
    neurons_per_block: int = DEFAULT_NEURONS_PER_BLOCK,
    blocks_per_task: int = 1,
):
    """A Delayed :class:`DenseLayer` of ``width`` neurons sampled on the pool.

    ``x_pool`` / ``y_pool`` may be arrays or Delayed (``y_pool`` is ``None`` for
    data-agnostic draws).  Blocks are grouped ``blocks_per_task`` to a task.
    """
    activation = get_activation(activation)
    sampler = get_sampler(sampler)
    sizes = _block_sizes(width, neurons_per_block)
    seeds = [child_seed(seed, j) for j in range(len(sizes))]
    sample = dask.delayed(_sample_blocks, pure=True)
    groups = [
        sample(sampler, activation, x_pool, y_pool, sizes[i : i + blocks_per_task], seeds[i : i + blocks_per_task])
        for i in range(0, len(sizes), blocks_per_task)
    ]
    return dask.delayed(_assemble_layer, pure=True)(groups, activation)


def _forward(layer, x):
    return layer(x)


def _network(layers):
    return SampledNetwork(tuple(layers))


def sample_network(
    x_pool,
    y_pool,
    *,
    widths,
    activation,
    sampler,
    seed: np.random.SeedSequence,
    neurons_per_block: int = DEFAULT_NEURONS_PER_BLOCK,
    blocks_per_task: int = 1,
):
    """A Delayed :class:`SampledNetwork`, sampled layer by layer on the pool.

    Layer ``l`` is sampled on the pool's image under layers ``0 … l-1`` with its own seed
    ``child_seed(seed, l)`` (the same seed in every layer would draw the same pairs).
    """
    x_pool = _as_delayed(x_pool)
    y_pool = _as_delayed(y_pool)
    layers = []
    inputs = x_pool
    for index, width in enumerate(widths):
        layer = sample_layer(
            inputs,
            y_pool,
            width=int(width),
            activation=activation,
            sampler=sampler,
            seed=child_seed(seed, index),
            neurons_per_block=neurons_per_block,
            blocks_per_task=blocks_per_task,
        )
        layers.append(layer)
        if index + 1 < len(widths):
            inputs = dask.delayed(_forward, pure=True)(layer, inputs)
    return dask.delayed(_network, pure=True)(layers)


def _as_delayed(x):
    """Wrap an array once, so that every block task refers to one key instead of a copy."""
    if x is None or isinstance(x, Delayed):
        return x
    if isinstance(x, da.Array):
        raise TypeError("the sampling pool must be a small in-memory array, not a Dask array")
    return dask.delayed(np.asarray(x), pure=True)


def sample_layer_now(x_pool, y_pool, *, width: int, activation, sampler, seed: np.random.SeedSequence,
                     neurons_per_block: int = DEFAULT_NEURONS_PER_BLOCK) -> DenseLayer:
    """:func:`sample_layer` computed in this process (inside a task: a small local basis).

    The same blocks from the same seeds, so the layer equals the graph's bit for bit.
    """
    activation = get_activation(activation)
    sizes = _block_sizes(width, neurons_per_block)
    seeds = [child_seed(seed, j) for j in range(len(sizes))]
    return _assemble_layer([_sample_blocks(get_sampler(sampler), activation, np.asarray(x_pool), y_pool, sizes, seeds)],
                           activation)
