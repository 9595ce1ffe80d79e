"""The README is executed, and every figure it quotes comes from a benchmark's JSON.

1. Every ```python block of README.md runs, in order, in one namespace (a block may use what an
   earlier block defined, as a reader running them one after another would): nothing is
   skipped, so a broken snippet fails here.
2. The measured figures of the sections before "### Workflows and the command line" and of
   "## Benchmarks" — numbers in scientific notation (``5.1e-5``) and factors (``367×``) in the
   result columns of the results tables and in the prose — must each equal some number of
   ``benchmarks/results/*.json`` rounded to the precision quoted.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RESULTS = ROOT / "benchmarks" / "results"

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


def _python_blocks() -> list[tuple[int, str]]:
    """``(line, code)`` of every ```python block, in order."""
    return [(README.count("\n", 0, m.start()) + 1, m.group(2)) for m in FENCE.finditer(README)
            if m.group(1) == "python"]


BLOCKS = _python_blocks()
_NAMESPACE: dict = {"__name__": "readme"}
_DONE: list[int] = []


def _run_through(index: int) -> None:
    """Run the blocks up to ``index`` that have not run yet, in order, in one namespace."""
    for i in range(len(_DONE), index + 1):
        line, code = BLOCKS[i]
        exec(compile(code, f"README.md (python block {i + 1}, line {line})", "exec"), _NAMESPACE)
        _DONE.append(i)


def test_the_readme_has_its_snippets():
    assert len(BLOCKS) >= 7  # estimators, least squares, static PDEs (2), evolution, Hamiltonian, LTI


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"line{line}" for line, _ in BLOCKS])
def test_readme_snippet_runs(index, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # whatever a snippet writes stays out of the tree
    _run_through(index)


def test_custom_problem_snippet_solves_its_problem():
    """The custom-problem snippet is solved, not only built: its error is small."""
    index = next(i for i, (_, code) in enumerate(BLOCKS) if 'StaticProblem("mine"' in code)
    _run_through(index)
    assert _NAMESPACE["domain"].part_names == ("x0-", "x0+", "x1-", "x1+", "hole")
    assert _NAMESPACE["solution"].error() < 1e-5


# ------------------------------------------------------------------------------ figures
SCI = r"\d+(?:\.\d+)?e[-+]?\d+"
FACTOR = r"\d+(?:\.\d+)?(?=×)"  # 367×; dimensions are written "60 × 60"
FIGURE = re.compile(rf"(?<![\w.\-/])(?:{SCI}|{FACTOR})")
#: header cells of the columns that hold measured results
RESULT_COLUMN = re.compile(r"rel\. L2|result|\bvs\b|\bfit\b", re.I)


def _owned_text() -> str:
    """The README sections this check covers (the workflow, store and layout sections are not)."""
    head = README[: README.index("### Workflows and the command line")]
    start = README.index("## Benchmarks")
    end = README.index("\n## ", start + 1)
    return head + "\n" + README[start:end]


def _figures(text: str) -> list[str]:
    text = re.sub(r"`[^`\n]*`", " ", text)  # inline code holds settings (`rcond=1e-10`), not results
    return FIGURE.findall(text)


def readme_figures() -> list[tuple[str, str]]:
    """``(figure, where)`` for the measured figures of the covered sections."""
    text = FENCE.sub("", _owned_text())
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|"):
            table = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                table.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            header, rows = table[0], table[2:]
            columns = [k for k, cell in enumerate(header) if RESULT_COLUMN.search(cell)]
            for row in rows:  # tables without a result column (parameters, problems, scripts) hold none
                for k in columns:
                    if k < len(row):
                        out += [(f, f"table '{' | '.join(header)}', row '{row[0]}'") for f in _figures(row[k])]
            continue
        if lines[i].strip() and not lines[i].lstrip().startswith("#"):
            out += [(f, f"text: {lines[i].strip()[:70]}") for f in _figures(lines[i])]
        i += 1
    return out


def _json_numbers() -> list[float]:
    numbers = []

    def walk(node):
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, (int, float)) and not isinstance(node, bool) and math.isfinite(node):
            numbers.append(float(node))

    for path in sorted(RESULTS.glob("*.json")):
        walk(json.loads(path.read_text()))
    return numbers


def _rounds_to(value: float, figure: str) -> bool:
    """Whether ``value`` rounded to the precision ``figure`` is written with equals ``figure``."""
    quoted = float(figure)
    if "e" in figure.lower():
        mantissa = figure.lower().split("e")[0]
        digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
        return value > 0 and math.isclose(float(f"{value:.{digits}e}"), quoted, rel_tol=1e-12)
    if "." in figure:
        decimals = len(figure.split(".")[1])
    else:  # an integer: its last non-zero digit sets the precision (6800 → hundreds)
        decimals = -(len(figure) - len(figure.rstrip("0"))) if figure.strip("0") else 0
    return math.isclose(round(value, decimals), quoted, rel_tol=1e-12, abs_tol=1e-12)


def test_the_figure_check_sees_the_figures():
    figures = readme_figures()
    where = " ".join(w for _, w in figures)
    assert len(figures) > 60
    for section in ("rel. L2 of H", "rel. L2 of y", "comparison | result", "Defaults verified"):
        assert section in where or section in _owned_text(), section
    assert any("parameters" in w for _, w in figures)  # the "Defaults verified" table is checked
    assert _rounds_to(367.4, "367") and _rounds_to(7453.5, "7500") and _rounds_to(5.09e-5, "5.1e-5")
    assert not _rounds_to(508.3, "367") and not _rounds_to(1.17e-4, "2.7e-5")


def test_every_quoted_figure_is_in_a_benchmark_json():
    numbers = _json_numbers()
    missing = [f"{figure} ({where})" for figure, where in readme_figures()
               if not any(_rounds_to(v, figure) for v in numbers)]
    assert not missing, "figures without a benchmark JSON behind them:\n  " + "\n  ".join(missing)
