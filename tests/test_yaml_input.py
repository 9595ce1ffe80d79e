"""User YAML is data with limits: size, depth, aliases, tags and duplicate keys checked first."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, apply_override, load_workflow
from pipeline.yaml_input import MAX_DEPTH, read_yaml


@pytest.mark.parametrize("text, message", [
    ("version: 1\nversion: 1\n", "duplicate key 'version' (line 2)"),
    ("basis: {width: !!set {1, 2}}\n", "basis.width is a set (!!set)"),
    ("seed: !!binary aGVsbG8=\n", "seed is binary data (!!binary)"),
    ("basis: {seed: 2026-11-30}\n", "basis.seed is date"),
    ("a: &x [1, 2]\nb: *x\n", "YAML aliases (*x) are not accepted (line 2)"),
    ("x: " + "[" * 100_000 + "]" * 100_000 + "\n", f"nested more than {MAX_DEPTH} levels deep"),
    ("x: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", f"nested more than {MAX_DEPTH} levels deep"),
    ("x: [" + ", ".join(["1"] * 250_000) + "]\n", "more than 200000 values"),
    ("x: !!python/object:os.system {}\n", "not valid YAML"),
    ("x: [1, 2\n", "not valid YAML"),
])
def test_hostile_yaml_is_one_clear_error(text, message):
    with pytest.raises(ConfigError) as err:
        read_yaml(text, "wf.yaml")
    assert message in str(err.value) and str(err.value).startswith("wf.yaml: ")
    assert "\n" not in str(err.value)


def test_a_workflow_file_is_read_with_the_limits(tmp_path):
    path = tmp_path / "wf.yaml"
    path.write_text("problem: {name: poisson_sin2d}\nproblem: {name: heat_2d}\n")
    with pytest.raises(ConfigError, match="duplicate key 'problem'"):
        load_workflow(path)
    path.write_bytes(b"problem: {name: \xff}\n")
    with pytest.raises(ConfigError, match="cannot be read as UTF-8"):
        load_workflow(path)
    path.write_text("# " + "x" * (2 << 20) + "\n")
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_workflow(path)
    with pytest.raises(ConfigError, match="--set basis.width: YAML aliases"):
        apply_override({}, "basis.width=[&a 1, *a]")


def test_plain_workflows_read_as_before():
    assert read_yaml("a: [1, 2.5, x, null, true]\nb: {c: 1e-6}\n", "w") == {
        "a": [1, 2.5, "x", None, True], "b": {"c": "1e-6"}}  # YAML 1.1 reads 1e-6 as text; the schema converts
