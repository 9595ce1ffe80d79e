"""Hamiltonian and LTI workflows end to end: runs into zarr stores, stored networks, bad input."""

from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import scipy.sparse as sp
import xarray as xr
import yaml

from pipeline import open_result
from pipeline.cli import main
from pipeline.models.hamiltonian_systems import get_system
from pipeline.store import progress

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"


def _run(workflow, store, *overrides):
    args = ["run", str(workflow), "--output", str(store), "--scheduler", "threads", "--quiet"]
    for override in overrides:
        args += ["--set", override]
    return main(args)


def _write(tmp_path, cfg, name="w.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_hamiltonian_workflow_stores_h_the_basis_and_rollouts(tmp_path):
    store = tmp_path / "h.zarr"
    assert _run(WORKFLOWS / "hamiltonian_pendulum.yaml", store, "ensemble.members=2",
                "hamiltonian.rollout_steps=300") == 0
    result = open_result(store)
    assert result.metrics["rel_l2"] < 1e-9
    assert progress(store).all()
    tree = xr.open_datatree(store, engine="zarr")
    assert {"coefficients", "basis", "diagnostics", "rollout", "progress"} <= set(tree.children)
    root = tree["/"].to_dataset()
    assert root["u"].dims == ("member", "point") and root["u"].shape == (2, 5000)
    states = np.column_stack([root["q"].values, root["p"].values])  # the test states are coordinates
    assert states.shape == (5000, 2)
    # the stored network is re-evaluated anywhere, against the exact pendulum Hamiltonian
    system = get_system("pendulum")
    points = np.random.default_rng(7).uniform([-2 * np.pi, -1], [2 * np.pi, 1], size=(300, 2))
    values = result.evaluate(points)
    assert values.dims == ("member", "point")
    exact = system.hamiltonian(points)
    assert np.linalg.norm(values.values - exact, axis=1).max() / np.linalg.norm(exact) < 1e-9
    rollout = tree["rollout"].to_dataset()
    assert rollout["trajectory"].shape == (2, 301, 4, 2)
    # a symplectic rollout of the fitted H drifts in energy no more than the exact H's own rollout
    drift, drift_exact = rollout["energy_drift"].values, rollout["energy_drift_exact"].values
    assert np.all(drift < 1.05 * drift_exact + 1e-8)
    energy = rollout["energy"].values[0]
    np.testing.assert_allclose(energy[0], system.hamiltonian(states[:4]), rtol=1e-12)


def test_hamiltonian_flow_map_workflow_evaluates_the_corrected_hamiltonian(tmp_path):
    cfg = {"version": 1,
           "hamiltonian": {"system": "pendulum", "n_train": 3000, "n_test": 1000, "flow_step": 0.01,
                           "rollout_steps": 0},
           "basis": {"width": 600, "weight_scale": 1.0, "bias_scale": 3.0},
           "output": {"dtype": "float64"}}
    store = tmp_path / "flow.zarr"
    assert _run(_write(tmp_path, cfg), store) == 0
    result = open_result(store)
    assert result.metrics["rel_l2"] < 1e-4  # the corrected fit is O(Δt²) (uncorrected: O(Δt))
    root = result.tree["/"].to_dataset()
    # evaluate() rebuilds H̃ = Ĥ + (Δt/2) ∂_qĤ·∂_pĤ: equal to what the run stored
    states = np.column_stack([root["q"].values, root["p"].values])
    np.testing.assert_allclose(result.evaluate(states).values, root["u"].values, rtol=1e-12, atol=1e-12)


def _stored_network_outputs(network: xr.Dataset, t):
    """Simulate the stored network (z' = A z + b u, y = c z + d u) independently with lsim."""
    n = network.sizes["neuron"]
    a = sp.coo_matrix((network["a_value"].values, (network["a_row"].values, network["a_col"].values)),
                      shape=(n, n)).toarray()
    _, y, _ = scipy.signal.lsim((a, network["b"].values, network["c"].values, network["d"].values),
                                network["input_signal"].values, t)
    return np.asarray(y).reshape(len(t), -1)


def test_lti_workflow_against_lsim_and_the_stored_network(tmp_path):
    store = tmp_path / "lti.zarr"
    assert _run(WORKFLOWS / "lti_diffusion.yaml", store) == 0
    result = open_result(store)
    per_member = {m["member"]: m for m in result.metrics["per_member"]}
    assert per_member[0]["rel_l2"] < 1e-10  # all 900 modes
    assert per_member[1]["rel_l2"] < 1e-4  # 100 slowest modes and the static correction
    assert per_member[2]["rel_l2"] < per_member[0]["error_estimate"] + per_member[2]["error_estimate"]
    tree = xr.open_datatree(store, engine="zarr")
    root = tree["/"].to_dataset()
    # the swept lti.modes is a dimension of its own (null: all modes, stored as NaN)
    assert root["u"].dims == ("modes", "member", "time", "output") and root["u"].shape == (3, 1, 1001, 2)
    np.testing.assert_array_equal(root["modes"].values[1:], [100, 20])
    full = tree["network/0"].to_dataset()
    assert full.attrs["method"] == "modal" and full.sizes["neuron"] == 900
    assert np.all(full["neuron_order"].values == 1) and np.all(full["a_value"].values < 0)
    t = root["time"].values
    for m in (0, 1):
        network = tree[f"network/{m}"].to_dataset()
        y = _stored_network_outputs(network, t)
        np.testing.assert_allclose(root["u"].values[m, 0], y, atol=1e-10 * np.abs(y).max())
    with pytest.raises(ValueError, match="no spatial basis"):
        result.evaluate(np.zeros((1, 2)))
    # resuming a finished run recomputes nothing and keeps the results
    before = root["u"].values.copy()
    assert main(["run", str(WORKFLOWS / "lti_diffusion.yaml"), "--output", str(store), "--resume",
                 "--scheduler", "threads", "--quiet"]) == 0
    np.testing.assert_array_equal(xr.open_zarr(store, consolidated=False)["u"].values, before)


def test_lti_workflow_with_second_order_neurons_and_random_inputs(tmp_path):
    cfg = {"version": 1,
           "lti": {"system": "mass_spring_chain", "params": {"n": 20}, "input": "random", "t_end": 40.0,
                   "steps": 800, "hold": "zoh"},
           "ensemble": {"members": 2}, "output": {"dtype": "float64"}}
    store = tmp_path / "chain.zarr"
    assert _run(_write(tmp_path, cfg), store) == 0
    tree = xr.open_datatree(store, engine="zarr")
    network = tree["network/0"].to_dataset()
    assert network.attrs["second_order"] == 20 and network.attrs["first_order"] == 0
    signals = [tree[f"network/{m}"].to_dataset()["input_signal"].values for m in (0, 1)]
    assert not np.allclose(signals[0], signals[1])  # members draw their own inputs
    assert max(m["rel_l2"] for m in open_result(store).metrics["per_member"]) < 1e-10


@pytest.mark.parametrize("cfg, message", [
    ({"lti": {"system": "diffusion_2d"}, "basis": {"width": 10}}, "basis.width does not apply"),
    ({"lti": {"system": "heat"}}, "unknown LTI system 'heat'; known: diffusion_2d"),
    ({"lti": {"system": "diffusion_2d", "params": {"size": 3}}}, "no parameter 'size'; its parameters: n"),
    ({"lti": {"system": "jordan", "modes": 7}}, "lti.modes must be below the number of states"),
    ({"lti": {"system": "jordan", "hold": "cubic"}}, "lti.hold must be one of foh, zoh"),
    ({"hamiltonian": {"system": "three_body"}}, "unknown Hamiltonian system 'three_body'"),
    ({"hamiltonian": {"system": "pendulum"}, "basis": {"width": 0}}, "basis.width must be >= 1"),
    ({"hamiltonian": {"system": "pendulum"}, "solver": {"ridge": 1e-3}}, "solver.ridge does not apply"),
    ({"hamiltonian": {"system": "pendulum", "flow_step": -0.1}}, "hamiltonian.flow_step"),
    ({"hamiltonian": {"system": "pendulum"}, "lti": {"system": "jordan"}}, "exactly one of the sections"),
    ({"hamiltonian": {"n_train": 10}}, "missing required key 'hamiltonian.system'"),
])
def test_bad_system_workflows_print_one_message(cfg, message, tmp_path, capsys):
    path = _write(tmp_path, {"version": 1, **cfg})
    assert main(["run", str(path), "--output", str(tmp_path / "s.zarr"), "--scheduler", "synchronous"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "s.zarr").exists()  # nothing written before the input is checked
