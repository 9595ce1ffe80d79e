"""Sizes are checked from the settings alone, before any work: one line naming the key, the
estimate and the limit; nothing is built or written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import ConfigError, load_workflow
from pipeline.workflows.limits import check_sizes, parse_bytes

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


@pytest.mark.parametrize("workflow, sets, message", [
    ("burgers", ["basis.width=1000000000000"], "basis.width = 1000000000000: the least-squares factor and its SVD need"),
    ("burgers", ["basis.width=40000"], "more than 4 GB (compute.memory_limit)"),
    ("poisson_2d", ["collocation.n_interior=1000000000000"], "collocation.n_interior = 1000000000000: the points alone"),
    ("poisson_2d", ["ensemble.sweep={collocation.n_boundary: [10, 1000000000000]}"], "collocation.n_boundary"),
    ("poisson_2d", ["collocation.n_interior=100000000", "compute.chunk_rows=10"], "row blocks of 10 rows"),
    ("burgers", ["time.outputs=1000000000"], "time.outputs = 1000000000: at most 100000 output times"),
    ("burgers", ["time.windows=1000000"], "time.windows = 1000000: at most 10000 windows"),
    ("lti_diffusion", ["lti.steps=1000000000000"], "lti.steps = 1000000000000: at most"),
    ("regression_ensemble", ["model.hidden_layer_sizes=[%s]" % ", ".join(["10"] * 100)], "at most 64"),
    ("regression_ensemble", ["data.n_train=1000000000000"], "data.n_train = 1000000000000"),
    ("hamiltonian_pendulum", ["hamiltonian.n_train=1000000000000"], "hamiltonian.n_train"),
    ("quickstart", ["ensemble.members=1000000000"], "at most 100000 in one run"),
    ("quickstart", ["ensemble.sweep={problem.params.beta: [%s]}" % ", ".join(["1.0"] * 20000)], "at most 10000 per key"),
])
def test_a_size_that_cannot_fit_is_refused_before_work(workflow, sets, message):
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        cfg, _ = load_workflow(WORKFLOWS / f"{workflow}.yaml", [*sets, "compute.memory_limit=4GB"])
        check_sizes(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert time.perf_counter() - start < 30  # the planning never starts (generous: loaded CI machines)


def test_sizes_that_fit_pass_and_the_limit_can_be_raised():
    cfg, _ = load_workflow(WORKFLOWS / "burgers.yaml", ["basis.width=20000", "compute.memory_limit=64GB"])
    check_sizes(cfg)  # 12.8 GB of factor and SVD: fits in 64 GB
    for name in ("burgers", "poisson_2d", "quickstart", "regression_ensemble", "lti_diffusion", "heat_100d"):
        check_sizes(load_workflow(WORKFLOWS / f"{name}.yaml")[0])  # the shipped workflows fit anywhere
    assert parse_bytes("8GB") == 8 * 10**9 and parse_bytes("16GiB") == 16 * 2**30 and parse_bytes("512 MB") == 512e6


def test_the_cli_refuses_before_the_store_exists(tmp_path, capsys):
    store = tmp_path / "big.zarr"
    assert main(["run", str(WORKFLOWS / "poisson_2d.yaml"), "--output", str(store),
                 "--set", "collocation.n_interior=1000000000000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pipeline: error: collocation.n_interior = 1000000000000") and not store.exists()


def test_a_width_from_the_problems_defaults_is_held_to_the_same_limit(tmp_path, capsys):
    # advection_diffusion's defaults are sized for its partition: 6000 neurons over 200 wavelengths;
    # without the partition they are one global basis (a 6000² factor), refused once the plan knows
    store = tmp_path / "g.zarr"
    assert main(["run", str(WORKFLOWS / "advection_diffusion.yaml"), "--output", str(store), "--scheduler", "threads",
                 "--set", "basis.partition=null", "--set", "compute.memory_limit=256MB"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pipeline: error: basis.width = 6000 (the problem's default): the least-squares factor")
    assert not store.exists()
    from pipeline.workflows.limits import check_resolved_width

    cfg, _ = load_workflow(WORKFLOWS / "advection_diffusion.yaml", ["compute.memory_limit=256MB"])
    check_resolved_width(cfg, '{"width": 6000}')  # with its partition the same width fits: 50 boxes of 120
    with pytest.raises(ConfigError, match="the factors of 1 boxes"):
        check_resolved_width(load_workflow(WORKFLOWS / "advection_diffusion.yaml", [
            "compute.memory_limit=256MB", "basis.partition=1"])[0], '{"width": 6000}')
