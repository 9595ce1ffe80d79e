"""Store integrity: ``verify`` names damaged chunks and metadata; ``repair`` and ``--resume``
restore the store bitwise."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from conftest import assert_stores_equal

from pipeline.cli import main
from pipeline.config import load_workflow
from pipeline.integrity import repair, verify
from pipeline.workflows import open_result
from pipeline.workflows.runner import prepare

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
QUICK = WORKFLOWS / "quickstart.yaml"  # 2 speeds x 2 seeds, 4 windows: a few seconds
ARGS = ["--scheduler", "synchronous", "--quiet"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    store = tmp_path_factory.mktemp("reference") / "q.zarr"
    assert main(["run", str(QUICK), "--output", str(store), *ARGS]) == 0
    return store


@pytest.fixture
def damaged(reference, tmp_path):
    store = tmp_path / "q.zarr"
    shutil.copytree(reference, store)
    return store


def _spec(store):
    cfg, raw = load_workflow(QUICK)
    return prepare(cfg, raw, output=str(store))[1].spec


def _truncate(file: Path, keep: int = 40) -> None:
    file.write_bytes(file.read_bytes()[:keep])


def _chunk(store, array, position):
    """The file of the chunk of ``array`` at chunk ``position``."""
    arr = zarr.open_array(str(store), path=array, mode="r")
    return Path(store) / array / arr.metadata.encode_chunk_key(position)


def _found(report):
    return {(p.array, p.reason.split(" ")[0], p.members, p.windows) for p in report.problems}


def test_an_intact_store_verifies(reference, capsys):
    report = verify(reference)
    assert report.ok and report.chunks > 100 and not report.restart and "intact" in str(report)
    assert main(["inspect", str(reference), "--verify"]) == 0
    open_result(reference, verify=True)


def test_damage_is_named_and_repair_then_resume_recompute_it_bitwise(reference, damaged, capsys):
    window_of_time = zarr.open_array(str(damaged), path="progress/window_of_time", mode="r")[...] \
        if (damaged / "progress" / "window_of_time").exists() else None
    _chunk(damaged, "u", (1, 0, 0, 0)).unlink()  # member 2 (beta 1000, seed 0): every window's times
    _chunk(damaged, "state/c_end", (0, 1, 2, 0)).unlink()  # member 1, window 2
    _chunk(damaged, "trajectory/values", (1, 1, 3, 0, 0, 0)).write_bytes(b"\x00garbage\xff" * 3)  # member 3, window 3
    _truncate(damaged / "state" / "y" / "zarr.json")
    report = verify(damaged)
    u_windows = tuple(sorted(set(window_of_time[1, 0].tolist()))) if window_of_time is not None else (0,)
    assert _found(report) == {("state/y", "metadata", (), ()), ("u", "missing", (2,), u_windows),
                              ("state/c_end", "missing", (1,), (2,)),
                              ("trajectory/values", "unreadable", (3,), (3,))}, str(report)
    assert report.restart == {1: 2, 2: 0, 3: 3} and report.metadata == ["state/y"]
    lines = str(report).splitlines()
    assert len(lines) == 5 and "u chunk c/1/0/0/0: missing; member 2" in str(report)
    capsys.readouterr()
    assert main(["inspect", str(damaged), "--verify"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pipeline: store damaged: 4 problems") and "--resume" in err[0]
    with pytest.raises(ValueError, match="missing; member 2"):
        open_result(damaged, verify=True)
    with pytest.raises(ValueError, match="cannot be read.*damaged"):
        open_result(damaged).evaluate(np.array([[1.0], [2.0]]), np.array([0.95, 0.99]))

    fixed = repair(damaged, _spec(damaged))
    assert not fixed.ok and not fixed.remaining and verify(damaged).ok
    assert {p.array for p in fixed.problems} == {"state/y", "u", "state/c_end", "trajectory/values"}
    done = zarr.open_array(str(damaged), path="progress/done", mode="r")[...].reshape(4, -1)
    assert done.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 0]]
    assert main(["run", str(QUICK), "--output", str(damaged), "--resume", *ARGS]) == 0
    assert verify(damaged).ok
    assert assert_stores_equal(reference, damaged) > 20
    assert open_result(damaged).metrics["rel_l2"] == open_result(reference).metrics["rel_l2"]


def test_a_truncated_root_is_reported_not_a_traceback(reference, damaged, capsys):
    _truncate(damaged / "zarr.json")
    report = verify(damaged)
    assert report.metadata == [""] and len(report.problems) == 1 and "JSONDecodeError" in str(report)
    capsys.readouterr()
    assert main(["inspect", str(damaged)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--verify" in err[0] and "Traceback" not in err[0]
    assert main(["inspect", str(damaged), "--verify"]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    fixed = repair(damaged, _spec(damaged))
    assert fixed.metadata == [""] and not fixed.remaining and open_result(damaged).attrs["workflow_hash"]
    assert main(["run", str(QUICK), "--output", str(damaged), "--resume", *ARGS]) == 0
    assert assert_stores_equal(reference, damaged) > 20 and open_result(damaged).metrics


def test_finalisation_outputs_and_template_data_are_rewritten(reference, damaged):
    _chunk(damaged, "u_mean", (0, 0, 0)).unlink()
    _chunk(damaged, "u_exact", (1, 0, 0)).write_bytes(b"not a chunk")
    _chunk(damaged, "diagnostics/rel_l2", (0, 1)).unlink()  # member 1's last window
    _chunk(damaged, "trajectory/values", (0, 0, 0, 0, 0, 0)).unlink()  # member 0's first window
    report = verify(damaged)
    assert _found(report) == {("u_mean", "missing", (), ()), ("u_exact", "unreadable", (), ()),
                              ("diagnostics/rel_l2", "missing", (1,), (3,)),
                              ("trajectory/values", "missing", (0,), (0,))}, str(report)
    assert report.restart == {0: 0, 1: 3}
    with pytest.raises(ValueError, match=r"member 0 \(beta=40.*NaN"):  # not a silent NaN
        open_result(damaged).evaluate(np.array([[1.0], [2.0]]), np.array([0.01, 0.02]))
    assert not repair(damaged, _spec(damaged)).remaining
    assert "metrics" not in zarr.open_group(str(damaged), mode="r", use_consolidated=False).attrs
    assert main(["run", str(QUICK), "--output", str(damaged), "--resume", *ARGS]) == 0
    assert verify(damaged).ok and assert_stores_equal(reference, damaged) > 20


def test_a_static_member_is_the_unit_and_evaluate_refuses_its_damaged_network(tmp_path):
    store = tmp_path / "p.zarr"
    assert main(["run", str(WORKFLOWS / "poisson_2d.yaml"), "--output", str(store), "--set", "basis.width=200",
                 *ARGS]) == 0
    assert verify(store).ok
    _chunk(store, "coefficients/c", (0, 0)).unlink()
    report = verify(store)
    assert _found(report) == {("coefficients/c", "missing", (0,), (0,))} and report.restart == {0: 0}
    with pytest.raises(ValueError, match="member 0.*NaN"):
        open_result(store).evaluate(np.array([[0.3, 0.4]]))


def test_resume_repairs_a_damaged_store_by_itself(reference, damaged):
    _chunk(damaged, "u", (1, 0, 0, 0)).unlink()
    _chunk(damaged, "state/c_end", (0, 1, 2, 0)).unlink()
    _truncate(damaged / "state" / "y" / "zarr.json")
    assert main(["run", str(QUICK), "--output", str(damaged), "--resume", *ARGS]) == 0
    assert verify(damaged).ok and assert_stores_equal(reference, damaged) > 20


def test_resume_repairs_a_truncated_root_by_itself(reference, damaged):
    _truncate(damaged / "zarr.json")
    assert main(["run", str(QUICK), "--output", str(damaged), "--resume", *ARGS]) == 0
    assert verify(damaged).ok and assert_stores_equal(reference, damaged) > 20
