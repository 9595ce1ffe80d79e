"""The time-dependent system workflow kind end to end: store layout, evaluation, resumption, integrity.

The system: a first-order wave ``u_t = c v_x``, ``v_t = c u_x`` on [0, 2π] periodic with
``u = cos(x − ct)``, ``v = −cos(x − ct)``, and a decaying field ``w_t = −w`` that has no exact
solution in the problem (its ``u_exact`` is NaN).  A small basis reaches about 1e-7 here; the
bounds sit two orders above, so a wrong field order, time axis or interpolation fails them.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
import zarr

from pipeline import open_result
from pipeline.cli import main

MODULE = '''
import numpy as np
from pipeline.pde import Box, Periodic, SystemEvolutionProblem

def build(c=1.0):
    return SystemEvolutionProblem(
        "wave_system", Box([0.0], [2 * np.pi]), ("u", "v", "w"),
        {"u": lambda x, U, p: p["c"] * U["v_x"], "v": lambda x, U, p: p["c"] * U["u_x"],
         "w": lambda x, U, p: -U["w"]},
        {"u": lambda x: np.cos(x[:, 0]), "v": lambda x: -np.cos(x[:, 0]), "w": lambda x: np.sin(x[:, 0])},
        (0.0, 1.0), conditions=(Periodic(axis=0, derivatives=1),),
        exact={"u": lambda x, t: np.cos(x[:, 0] - c * t), "v": lambda x, t: -np.cos(x[:, 0] - c * t)},
        params={"c": c}, evaluation=lambda: (np.linspace(0, 2 * np.pi, 41)[:, None], np.linspace(0, 1, 5)))
'''


def _workflow(tmp_path, name="s", **extra):
    module = tmp_path / "wave_system.py"
    module.write_text(MODULE)
    cfg = {"version": 1, "problem": {"module": f"{module}:build"}, "basis": {"width": 60},
           "collocation": {"n_interior": 200}, "time": {"rtol": 1e-10},
           "ensemble": {"sweep": {"problem.params.c": [1.0, 0.5]}}, "output": {"path": str(tmp_path / f"{name}.zarr")},
           **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, tmp_path / f"{name}.zarr"


def _run(workflow, *flags):
    return main(["run", str(workflow), "--scheduler", "threads", "--quiet", *flags])


def _exact(c, x, t):
    return np.cos(x - c * t)


def test_a_time_dependent_system_workflow_stores_evaluates_resumes_and_verifies(tmp_path):
    workflow, store = _workflow(tmp_path)
    assert _run(workflow) == 0
    result = open_result(store, verify=True)
    root = result.tree["/"]
    assert root["u"].dims == ("c", "member", "time", "field", "x")
    assert list(root["field"].values) == ["u", "v", "w"] and root["time"].values.tolist() == [0, .25, .5, .75, 1]
    assert root["u_exact"].dims == ("c", "time", "field", "x")
    exact = root["u_exact"].values
    assert np.isnan(exact[:, :, 2]).all() and np.isfinite(exact[:, :, :2]).all()  # w has no reference
    assert result.tree["coefficients"]["c"].dims == ("c", "member", "time", "field", "coefficient")
    ranks = result.tree["diagnostics"]["field_rank"].values
    assert ranks.shape == (2, 1, 3) and (ranks > 10).all()
    metrics = result.metrics
    assert metrics["kind"] == "system_evolution" and metrics["rel_l2"] < 1e-5
    member = metrics["per_member"][0]
    assert member["rel_l2"] == max(member["rel_l2_u"], member["rel_l2_v"]) and "rel_l2_w" not in member
    assert member["dense_error"] < 1e-8

    # stored data only: new points and times between the output times, against the exact solution
    rng = np.random.default_rng(0)
    x, t = rng.uniform(0, 2 * np.pi, 64), rng.uniform(0, 1, 64)
    values = result.evaluate(x[:, None], t)
    assert values.dims == ("c", "member", "field", "point")
    for i, c in enumerate((1.0, 0.5)):
        got = values.values[i, 0]
        assert np.max(np.abs(got[0] - _exact(c, x, t))) < 1e-5
        assert np.max(np.abs(got[1] + _exact(c, x, t))) < 1e-5
        assert np.max(np.abs(got[2] - np.exp(-t) * np.sin(x))) < 1e-5
    # at the output times: the stored fields themselves (stored as float32)
    xs = root["x"].values
    at_outputs = result.evaluate(np.tile(xs, 5)[:, None], np.repeat(root["time"].values, len(xs))).values
    stored = root["u"].values.astype(float).transpose(0, 1, 3, 2, 4).reshape(at_outputs.shape)
    assert np.max(np.abs(at_outputs - stored)) < 1e-6
    with pytest.raises(ValueError, match=r"span \[0, 1\]"):
        result.evaluate([[1.0]], [1.5])

    # --resume of a finished run changes nothing; after a lost window it recomputes the same values
    chunks = {f: f.stat().st_mtime_ns for f in (store / "u").rglob("*") if f.is_file() and f.name != "zarr.json"}
    assert len(chunks) == 2
    assert _run(workflow, "--resume") == 0
    assert {f: f.stat().st_mtime_ns for f in chunks} == chunks  # not rewritten
    before = root["u"].values.copy()
    zarr.open_array(store / "progress" / "done", mode="r+")[1, 0, 0] = 0  # member (c=0.5) not done
    assert _run(workflow, "--resume") == 0
    rewritten = {f.relative_to(store).parts[2] for f in chunks if f.stat().st_mtime_ns != chunks[f]}
    assert rewritten == {"1"}  # u/c/<c index>/…: only that member's chunk
    again = open_result(store, verify=True)
    np.testing.assert_array_equal(again.tree["/"]["u"].values, before)
    assert main(["inspect", str(store), "--verify"]) == 0


def test_a_key_the_kind_does_not_use_is_refused_before_any_store(tmp_path, capsys):
    workflow, store = _workflow(tmp_path, "refused", solver={"ridge": 1e-8})
    assert _run(workflow) == 2
    assert "solver.ridge does not apply to time-dependent system workflows" in capsys.readouterr().err
    assert not store.exists()
    workflow, store = _workflow(tmp_path, "windows", time={"windows": 4})
    assert _run(workflow) == 2
    assert not store.exists()
