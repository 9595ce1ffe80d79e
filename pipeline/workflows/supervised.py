"""Supervised workflows (``data:`` and ``model:``): sampled-network estimators fitted per member.

Every member fits a :class:`~pipeline.models.SampledNetworkRegressor` (or classifier) on the
workflow's training data with its own seed and settings, and stores its predictions on the
test inputs (``u``, with the targets as ``u_exact`` for regression), its one-hidden-layer
network (so ``evaluate`` predicts anywhere) and its diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import (NULL, NUMBER, ConfigError, Field, Section, fraction_open, non_negative, non_negative_int,
                             positive_int, widths)
from pipeline.datasets import DATASETS
from pipeline.store import PointLayout, StoreSpec, point_layout
from pipeline.workflows.base import Clock, MemberTask, Plan, WorkflowKind, member_variables, padded
from pipeline.workflows.pde import basis_spec, field_spec, shared_width, stored_layers, write_basis

__all__ = ["SupervisedKind", "SupervisedSettings"]


def _data_source(section: dict) -> str | None:
    if (section["function"] is None) == (section["path"] is None):
        return "data needs exactly one of 'data.function' (synthetic) or 'data.path' (a file)"
    if section["path"] is not None and (not section["inputs"] or not section["target"]):
        return "data.path needs 'data.inputs' (a list of columns) and 'data.target'"
    if not all(isinstance(c, str) for c in section["inputs"]):
        return f"data.inputs must be a list of column names, got {section['inputs']!r}"
    return None


DATA_SECTION = Section({
    "function": Field((str, NULL), None, choices=tuple(DATASETS) + (None,), doc="named synthetic data set"),
    "n_train": Field(int, 10_000, check=positive_int, doc="training samples (synthetic)"),
    "n_test": Field(int, 10_000, check=positive_int, doc="test samples (synthetic)"),
    "noise": Field(NUMBER, 0.0, check=non_negative, doc="std of Gaussian noise on the training targets"),
    "path": Field((str, NULL), None, doc="a .csv, .nc or .zarr file instead of a synthetic set"),
    "inputs": Field(list, [], doc="input columns / variables of the file"),
    "target": Field((str, NULL), None, doc="target column / variable of the file"),
    "task": Field(str, "regression", choices=("regression", "classification"), doc="for a file"),
    "test_fraction": Field(float, 0.2, check=fraction_open, doc="share of the file's rows held out"),
    "seed": Field(int, 0, check=non_negative_int, doc="seed of the data draw or split"),
}, doc="supervised data (instead of a problem)", optional=True, check=_data_source)

MODEL_SECTION = Section({
    "hidden_layer_sizes": Field((int, list), [512], check=widths, doc="width per hidden layer"),
    "rcond": Field((float, NULL), 1e-10, check=fraction_open, doc="truncation of the output-layer solve"),
    "ridge": Field((float, int, str, NULL), None,
                   check=lambda v: (None if v == "auto" else "must be 'auto', a number >= 0 or null")
                   if isinstance(v, str) else non_negative(v),
                   doc="Tikhonov λ of the output layer, or 'auto' (chosen by leave-one-out)"),
    "prune": Field((float, NULL), None, check=fraction_open, doc="neuron pruning tolerance"),
    "pool_size": Field(int, 20_000, check=lambda v: None if v >= 2 else "must be >= 2",
                       doc="SWIM candidate pool"),
}, doc="supervised model (with `data`)")


@dataclass(frozen=True)
class SupervisedSettings:
    """The estimator's parameters set by one member's workflow."""

    hidden_layer_sizes: tuple
    activation: str
    sampler: str
    rcond: float | None
    ridge: float | str | None
    prune: float | None
    pool_size: int
    chunk_rows: int | None

    @classmethod
    def from_config(cls, cfg: dict) -> "SupervisedSettings":
        model, widths = cfg["model"], cfg["model"]["hidden_layer_sizes"]
        return cls(tuple(widths) if isinstance(widths, list) else (widths,), cfg["basis"]["activation"] or "tanh",
                   cfg["basis"]["sampler"] or "swim", model["rcond"], model["ridge"], model["prune"],
                   model["pool_size"], cfg["compute"]["chunk_rows"])


@dataclass(frozen=True)
class SupervisedShared:
    x_test: np.ndarray
    layout: PointLayout
    task: str  # regression | classification
    width: int


def _data(section: dict):
    from pipeline.datasets import workflow_data

    try:
        return workflow_data(section)
    except ValueError as err:
        raise ConfigError(str(err)) from None


class SupervisedKind(WorkflowKind):
    name = "supervised"
    label = "supervised"
    section = "data"
    sections = {"data": DATA_SECTION, "model": MODEL_SECTION}
    task = 'supervised'
    keys = {"model": ("hidden_layer_sizes", "rcond", "ridge", "prune", "pool_size"),
            "basis": ("activation", "sampler"), "compute": ("chunk_rows", "split_members")}
    devices = ("cpu",)
    stages = ("fit", "predict", "write")
    splittable = True

    def plan(self, cfg, members, grid, path, quiet) -> Plan:
        if any(m.config["data"] != members[0].config["data"] for m in members):
            raise ConfigError("sweeping the data section is not supported: members must share their test set")
        settings = [SupervisedSettings.from_config(m.config) for m in members]
        _, _, x_test, y_test, task = _data(cfg["data"])
        names = cfg["data"]["inputs"] or None
        layout = point_layout(x_test, names, max_fill=0.0)  # test inputs are samples, never a grid
        width = max(s.hidden_layer_sizes[-1] for s in settings)
        shared = SupervisedShared(x_test, layout, task, width)
        exact = None
        if task == "regression":
            exact = np.broadcast_to(y_test.astype(float), grid.sizes[:-1] + y_test.shape).copy()
        groups = {"": field_spec(grid, layout, (), cfg["output"]["dtype"], {}, exact)}
        for name, variables in basis_spec(grid, 1, width, x_test.shape[1], width + 1).items():
            groups.setdefault(name, {}).update(variables)
        for name, variables in member_variables(grid, self.stages, 1).items():
            groups.setdefault(name, {}).update(variables)
        sizes = {**dict(zip(grid.dims, grid.sizes)), "point": len(x_test), "block": 1, "neuron": width,
                 "dim": x_test.shape[1], "coefficient": width + 1, "sv": width + 1, "stage": len(self.stages),
                 "window": 1}
        spec = StoreSpec(sizes, grid.dims, {**grid.coords, **layout.coords}, groups,
                         group_coords={"diagnostics": {"stage": (("stage",), list(self.stages), {})}})
        rows = cfg["data"]["n_train"] if cfg["data"]["function"] else len(x_test)  # a file: about its size
        tasks = [MemberTask(self.name, path, m, grid, s, shared, 1, self.stages, quiet,
                            assembly_bytes=8 * rows * (max(s.hidden_layer_sizes) + 1)) for m, s in zip(members, settings)]
        info = {"problem": cfg["data"]["function"] or cfg["data"]["path"], "task": task, "has_truth": task == "regression",
                "activation": settings[0].activation, "dim": int(x_test.shape[1])}
        return Plan(tasks, spec, info)

    def run(self, task: MemberTask) -> dict:
        from pipeline.models import SampledNetworkClassifier, SampledNetworkRegressor

        if task.first_pending() >= 1:
            return {"member": task.index, "skipped": True}
        s: SupervisedSettings = task.settings
        shared: SupervisedShared = task.shared
        clock = Clock()
        x, y, _, y_test, kind = _data(task.member.config["data"])
        cls = SampledNetworkRegressor if kind == "regression" else SampledNetworkClassifier
        estimator = cls(hidden_layer_sizes=s.hidden_layer_sizes, activation=s.activation, sampler=s.sampler,
                        rcond=s.rcond, ridge=s.ridge, prune=s.prune, pool_size=s.pool_size,
                        random_state=task.member.seed, chunk_rows=s.chunk_rows)
        start = clock.start()
        estimator.fit(x, y)
        clock.stop("fit", start)
        start = clock.start()
        pred = np.asarray(estimator.predict(shared.x_test))
        clock.stop("predict", start)
        start = clock.start()
        if kind == "regression":
            score, metric = float(np.linalg.norm(pred - y_test) / np.linalg.norm(y_test)), "rel_l2"
        else:
            score, metric = float(np.mean(pred == y_test)), "accuracy"
        task.write("", {"u": (shared.layout.dims, pred.astype(float))})
        network = estimator.networks_[0]
        if len(network.layers) == 1:  # one hidden layer: the store can rebuild the network
            c = estimator.coef_[0][:, 0]
            task.write("coefficients", {"c": (("coefficient",), np.concatenate([padded(c[:-1], shared.width), c[-1:]]))})
            write_basis(task, 0, network.layers[0], int(estimator.rank_[0]), estimator.singular_values_[0],
                        shared.width, shared.width + 1)
        clock.stop("write", start)
        task.write_diagnostics(clock, score if metric == "rel_l2" else None)
        task.mark_done(0)
        return {"member": task.index, metric: score, "rank": int(estimator.rank_[0])}

    def summary(self, results):
        accuracies = [r["accuracy"] for r in results if "accuracy" in r]
        return {"accuracy_members_mean": float(np.mean(accuracies))} if accuracies else {}

    def evaluate(self, result, points, times):
        from pipeline.nn import SampledNetwork

        if result.attrs.get("task") == "classification":
            raise ValueError("evaluate() rebuilds regression networks; a classifier's labels are u in the store")
        width = shared_width(result)
        out = np.empty((result.members, len(points)))
        for m in range(result.members):
            layers = stored_layers(result, m, result.attrs["activation"])
            if layers[0] is None:
                raise ValueError("this run's networks have several hidden layers; the store keeps their predictions only")
            c = result.member_values("coefficients", m)["c"]
            out[m] = SampledNetwork((layers[0],))(points) @ c[: layers[0].width] + c[width]
        return out

    def plot(self, result, plt):
        from pipeline.workflows.plots import plot_fields

        return plot_fields(result, plt)
