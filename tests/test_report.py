"""The peer report (``python -m benchmarks.report``): its README section and Markdown table are
generated from the committed JSON, which holds one full run of every problem.

Fast: nothing is solved here; the report's renderers run on ``benchmarks/results/report.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


report = load_benchmark("report")


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads((RESULTS / "report.json").read_text())


def test_the_readme_section_is_generated_from_the_json(committed):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(report.START) == 1 and text.count(report.END) == 1
    assert report.readme_section_in(text) == report.readme_section(committed), (
        "the README's peer report is stale: run `python -m benchmarks.report --readme`")
    assert text.index("## Benchmarks") < text.index(report.START) < text.index("## Layout")


def test_the_markdown_table_is_generated_from_the_json(committed):
    assert (RESULTS / "report.md").read_text() == report.markdown(committed)


def test_the_json_is_one_full_run_of_every_problem(committed):
    assert not committed["quick"] and committed["problems_run"] == list(report.PROBLEMS)
    assert [p["name"] for p in committed["problems"]] == list(report.PROBLEMS)
    for p in committed["problems"]:
        assert len(p["peers"]["ours"]) >= 2, p["name"]  # a curve, not a point
        for peer, points in p["peers"].items():
            assert peer in report.PEERS and points, (p["name"], peer)
            for point in points:
                assert point["rel_l2"] > 0 and point["cpu_s"] >= 0 and point["wall_s"] >= 0, (p["name"], peer)
                assert point["load_1min"] >= 0
        # every peer that applies was run or is skipped with a reason
        for peer in ("classical", "pyrfm"):
            ran = peer in p["peers"]
            skipped = [s for s in p["skipped"] + committed["skipped_peers"] if s["peer"].lower() == peer]
            assert ran or (skipped and all(s["reason"] for s in skipped)), (p["name"], peer)
        assert (RESULTS / "report" / f"{p['name']}.png").is_file(), p["name"]


def test_update_readme_touches_only_the_marked_section(committed, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{report.START}\nold text\n{report.END}\n\nafter\n", encoding="utf-8")
    assert report.update_readme(committed, readme)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert report.readme_section_in(text) == report.readme_section(committed)
    assert not report.update_readme(committed, readme)  # a second run changes nothing


def test_partial_runs_leave_the_committed_report_alone():
    assert report.output_dir(None, False) == report.RESULTS
    for problems, quick in ((["wave_1d"], False), (None, True), (["wave_1d"], True)):
        assert report.output_dir(problems, quick) != report.RESULTS
    with pytest.raises(SystemExit):  # the selection is checked against the report's problems
        report.main(["--problems", "no_such_problem"])
