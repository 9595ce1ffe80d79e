"""The `pipeline` command: runs a workflow, reports metrics, refuses bad input cleanly."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import ConfigError, load_workflow

ROOT = Path(__file__).resolve().parents[1]
REGRESSION = ROOT / "workflows" / "regression.yaml"


def test_run_regression_workflow(capsys, tmp_path):
    out = tmp_path / "metrics.json"
    code = main(["run", str(REGRESSION), "--set", "data.n_train=3000", "--set", "model.hidden_layer_sizes=256",
                 "--json", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "rel_l2" in printed
    metrics = json.loads(out.read_text())
    assert metrics["rel_l2"] < 1e-4 and metrics["n_train"] == 3000
    # an existing metrics file is never overwritten
    assert main(["run", str(REGRESSION), "--set", "data.n_train=500", "--json", str(out), "--quiet"]) == 2
    assert json.loads(out.read_text()) == metrics


def test_every_shipped_workflow_validates():
    for path in sorted((ROOT / "workflows").glob("*.yaml")):
        load_workflow(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.rcond=0", "model.rcond must lie in (0, 1)"),
        ("model.sampler=sgd", "model.sampler must be one of swim, uswim, aswim, elm"),
        ("model.widths=3", "unknown key 'model.widths'"),
        ("data.n_train=many", "data.n_train must be integer"),
        ("model.hidden_layer_sizes=[10, 0]", "model.hidden_layer_sizes must be a positive integer"),
        ("data.function=mnist", "data.function must be one of"),
        ("nonsense", "--set expects KEY=VALUE"),
    ],
)
def test_bad_input_prints_one_message_without_traceback(override, message):
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", str(REGRESSION), "--set", override],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_and_sections(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_workflow(tmp_path / "none.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("version: 1\n")
    with pytest.raises(ConfigError, match="missing required section 'data'"):
        load_workflow(empty)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_workflow(wrong)
