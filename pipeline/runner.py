"""Run a validated workflow and report its metrics."""

from __future__ import annotations

import time

import numpy as np

from pipeline.datasets import make_dataset
from pipeline.models import SampledNetworkClassifier, SampledNetworkRegressor

__all__ = ["run_supervised"]


def _scheduler_kwargs(compute_cfg: dict) -> dict:
    return {"scheduler": compute_cfg["scheduler"]}


def run_supervised(cfg: dict, *, log=print) -> dict:
    """Fit the configured estimator on the configured data and measure it on fresh test data."""
    import dask

    data, model_cfg = cfg["data"], cfg["model"]
    x_train, y_train, dataset = make_dataset(data["function"], data["n_train"], data["seed"])
    x_test, y_test, _ = make_dataset(data["function"], data["n_test"], data["seed"] + 1)
    if data["noise"] and dataset.task == "regression":
        y_train = y_train + np.random.default_rng(data["seed"] + 2).normal(scale=data["noise"], size=y_train.shape)
    estimator_cls = SampledNetworkRegressor if dataset.task == "regression" else SampledNetworkClassifier
    widths = model_cfg["hidden_layer_sizes"]
    estimator = estimator_cls(
        hidden_layer_sizes=tuple(widths) if isinstance(widths, list) else widths,
        activation=model_cfg["activation"],
        sampler=model_cfg["sampler"],
        rcond=model_cfg["rcond"],
        ridge=model_cfg["ridge"],
        n_members=model_cfg["n_members"],
        random_state=model_cfg["random_state"],
        pool_size=model_cfg["pool_size"],
        chunk_rows=cfg["compute"]["chunk_rows"],
    )
    log(
        f"fitting {estimator_cls.__name__} {widths} ({model_cfg['sampler']}, {model_cfg['activation']}) "
        f"on {data['n_train']} samples of {dataset.name!r}: {dataset.description}"
    )
    wall, cpu = time.perf_counter(), time.process_time()
    with dask.config.set(**_scheduler_kwargs(cfg["compute"])):
        estimator.fit(x_train, y_train)
    metrics = {
        "dataset": dataset.name,
        "task": dataset.task,
        "n_train": data["n_train"],
        "n_test": data["n_test"],
        "fit_wall_seconds": time.perf_counter() - wall,
        "fit_cpu_seconds": time.process_time() - cpu,
        "rank": estimator.rank_.tolist(),
    }
    if dataset.task == "regression":
        pred = estimator.predict(x_test)
        metrics["rel_l2"] = float(np.linalg.norm(pred - y_test) / np.linalg.norm(y_test))
    else:
        metrics["accuracy"] = float(np.mean(estimator.predict(x_test) == y_test))
    return metrics
