"""Sampled weights are bit-identical whatever the blocks per task, scheduler, workers or chunks."""

import dask
import dask.array as da
import numpy as np
import pytest

from pipeline import SampledNetworkRegressor
from pipeline.nn import root_seed, sample_network


def _pool():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(3000, 3))
    return x, np.sin(x.sum(1, keepdims=True))


def _weights(net):
    return [(layer.weights, layer.biases) for layer in net.layers]


def _assert_identical(a, b):
    for (wa, ba), (wb, bb) in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)


@pytest.mark.parametrize("sampler", ["swim", "uswim", "elm"])
def test_blocks_per_task_and_scheduler_do_not_change_the_weights(sampler):
    x, y = _pool()
    kwargs = dict(widths=[300, 200], activation="tanh", sampler=sampler, seed=root_seed(42), neurons_per_block=64)
    reference = sample_network(x, y, blocks_per_task=1, **kwargs).compute(scheduler="synchronous")
    for blocks_per_task in (2, 3, 10):
        for scheduler in ("synchronous", "threads"):
            net = sample_network(x, y, blocks_per_task=blocks_per_task, **kwargs).compute(scheduler=scheduler)
            _assert_identical(net, reference)


def test_row_chunks_do_not_change_the_weights():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(50_000, 2))
    y = np.cos(3 * x[:, 0]) * x[:, 1]
    fits = [
        SampledNetworkRegressor(200, random_state=3, pool_size=4000).fit(da.from_array(x, chunks=c), da.from_array(y, chunks=c))
        for c in (50_000, 12_345, 7000)
    ]
    for fit in fits[1:]:
        _assert_identical(fit.networks_[0], fits[0].networks_[0])
        # the solves differ only by the order of floating-point operations in the reduction
        np.testing.assert_allclose(fit.predict(x[:1000]), fits[0].predict(x[:1000]), atol=1e-9)


@pytest.mark.cluster
def test_one_worker_equals_a_two_worker_local_cluster():
    distributed = pytest.importorskip("distributed")
    x, y = _pool()
    kwargs = dict(widths=[256, 128], activation="tanh", sampler="swim", seed=root_seed(7), neurons_per_block=32)
    nets = []
    for n_workers, blocks_per_task in ((1, 1), (2, 3)):
        with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == n_workers
            nets.append(sample_network(x, y, blocks_per_task=blocks_per_task, **kwargs).compute())
            model = SampledNetworkRegressor(64, random_state=5).fit(x, y[:, 0])
            nets.append(model.networks_[0])
    _assert_identical(nets[0], nets[2])
    _assert_identical(nets[1], nets[3])
    # and the cluster results equal the in-process ones
    _assert_identical(nets[0], sample_network(x, y, **kwargs).compute(scheduler="synchronous"))
    with dask.config.set(scheduler="synchronous"):
        _assert_identical(nets[1], SampledNetworkRegressor(64, random_state=5).fit(x, y[:, 0]).networks_[0])
