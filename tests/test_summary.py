"""The README's table of measured results (``python -m benchmarks.summary``) is generated from the
committed JSON of ``benchmarks/results/``, and every number of a row comes from that row's files.

Fast: nothing is solved; the generator only reads JSON.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


summary = load_benchmark("summary")

NUMBER = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?"
#: a number of the README's text: not part of a word (``L2``, ``high_dim``) nor of a longer number
TEXT_NUMBER = re.compile(rf"(?<![\w.])({NUMBER})(k(?![\w]))?")
PERCENT = re.compile(rf"(?<![\w.])({NUMBER})(?:–({NUMBER}))? ?%")


def _json_numbers(node) -> list[float]:
    """Every number of a parsed JSON document: its values, and the numbers inside its strings and keys."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _json_numbers(key) + _json_numbers(value)
    elif isinstance(node, list):
        for value in node:
            out += _json_numbers(value)
    elif isinstance(node, str):
        out += [float(x) for x in re.findall(NUMBER, node)]
    elif isinstance(node, (int, float)) and not isinstance(node, bool) and math.isfinite(node):
        out.append(float(node))
    return out


def _rounds_to(value: float, figure: str) -> bool:
    """Whether ``value`` written to the precision of ``figure`` reads ``figure``."""
    quoted = float(figure)
    if "e" in figure:
        mantissa = figure.split("e")[0]
        digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
        return math.isclose(float(f"{value:.{digits}e}"), quoted, rel_tol=1e-12)
    if "." in figure:
        decimals = len(figure.split(".")[1])
    else:  # an integer: its last non-zero digit sets the precision (7500 → hundreds)
        decimals = -(len(figure) - len(figure.rstrip("0"))) if figure.strip("0") else 0
    return math.isclose(round(value, decimals), quoted, rel_tol=1e-12, abs_tol=1e-12)


def _unsupported(text: str, numbers: list[float]) -> list[str]:
    """The numbers of ``text`` that no number of ``numbers`` rounds to (percentages: 100 × a share)."""
    missing = []
    for match in PERCENT.finditer(text):
        missing += [f"{f} %" for f in match.groups() if f and not any(_rounds_to(100 * v, f) for v in numbers)]
    for figure, thousands in TEXT_NUMBER.findall(PERCENT.sub(" ", text)):
        scale = 1000 if thousands else 1
        if not any(_rounds_to(v / scale, figure) for v in numbers):
            missing.append(figure + thousands)
    return missing


@pytest.fixture(scope="module")
def generated() -> list[tuple[str, str]]:
    rows, missing = summary.rows()
    assert not missing, missing  # every row's JSON is committed
    return rows


def test_the_readme_table_is_generated_from_the_json():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count(summary.START) == 1 and text.count(summary.END) == 1
    assert summary.readme_section_in(text) == summary.readme_section(), (
        "the README's table of measured results is stale: run `python -m benchmarks.summary --readme`")
    assert text.index("## Benchmarks") < text.index(summary.START) < text.index("<!-- report:start -->")
    assert "python -m benchmarks.summary --readme" in summary.readme_section()


def test_every_number_of_a_row_comes_from_its_json(generated):
    assert len(generated) == len(summary.ROWS)
    bad = []
    for (names, fn), (comparison, result) in zip(summary.ROWS, generated):
        numbers = _json_numbers(summary.load(names))
        bad += [f"{fn.__name__}: {f}" for f in _unsupported(f"{comparison} | {result}", numbers)]
    assert not bad, "numbers in the table that the row's JSON does not hold:\n  " + "\n  ".join(bad)


def test_the_number_check_catches_a_number_not_in_the_json():
    numbers = [2.6910263376364888e-05, 0.0970857, 100000.0, 77.28]
    assert _unsupported("2.7e-5, 9.7 %, 100k × 77", numbers) == []
    assert _unsupported("2.8e-5, 13 %, 50k, L2 in 1.3 s", numbers) == ["13 %", "2.8e-5", "50k", "1.3"]


def _ensemble(new_schema: bool) -> dict:
    """An ``ensemble_throughput.json`` as ``benchmarks/ensemble_throughput.py`` writes it, or as before."""
    rows = []
    for workers, start, rate, share, serial in ((1, "cold", 11.03, 0.1012, 1.31), (1, "warm", 13.41, 0.0934, 0.82),
                                                 (2, "cold", 16.52, 0.1077, 1.46), (2, "warm", 20.17, 0.0898, 0.93)):
        rows.append({"workers": workers, "start": start, "members": 8, "wall_s": 480 / rate, "members_per_minute": rate,
                     "serial_s": serial, "client_cpu_s": 2.5, "member_seconds_mean": 3.7, "write_share": share,
                     "rel_l2": 2.69e-4})
    for row in rows[2:]:
        row["scaling_efficiency"] = row["members_per_minute"] / rows[rows.index(row) - 2]["members_per_minute"] / 2
    if new_schema:
        for row in rows:
            row["cluster_start_s"] = 1.42 if row["workers"] == 1 else 1.38
        rows[2]["scaling_efficiency_per_repeat"] = [0.71, 0.75, 0.83]
    else:
        rows = [{k: v for k, v in r.items() if k not in ("start", "serial_s")} for r in rows if r["start"] == "cold"]
    return {"ensemble_throughput": {"rows": rows, "load_average": [0.91, 1.42, 1.63]}}


@pytest.mark.parametrize("new_schema", [True, False], ids=["cold-and-warm", "one-run-per-size"])
def test_the_ensemble_row_reads_both_schemas(new_schema):
    data = _ensemble(new_schema)
    comparison, result = summary.ensemble(data)
    assert not _unsupported(f"{comparison} | {result}", _json_numbers(data))
    assert "11.0 → 16.5 members/min (efficiency 0.75" in result
    if new_schema:
        assert "cold: 11.0" in result and "warm: 13.4 → 20.2 members/min (efficiency 0.75)" in result
        assert "store writes 9.0–10.8 % of the member time, serial time on the client 0.8–1.5 s" in result
        assert "(efficiency 0.75, repeats 0.71–0.83)" in result and "cluster start-up 1.4 s" in result
    else:
        assert "warm" not in result and "cold" not in result and result.count("efficiency") == 1


def test_a_row_without_its_json_is_left_out_with_a_line(tmp_path):
    shutil.copy(RESULTS / "lti.json", tmp_path / "lti.json")
    rows, missing = summary.rows(tmp_path)
    assert rows == [summary.lti(summary.load(("lti",)))]
    assert len(missing) == len(summary.ROWS) - 1
    assert any("burgers_accurate.json missing" in line for line in missing)
    assert summary.table(tmp_path).count("\n") == 2  # header, rule, the one row


def test_update_readme_touches_only_the_marked_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{summary.START}\nold text\n{summary.END}\n\nafter\n", encoding="utf-8")
    assert summary.update_readme(readme)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert summary.readme_section_in(text) == summary.readme_section()
    assert not summary.update_readme(readme)  # a second run changes nothing


# ------------------------------------------------------------------------------ the defaults section
DEFAULTS_MARKERS = (summary.DEFAULTS_START, summary.DEFAULTS_END)


def test_the_readme_defaults_section_is_generated_from_the_json():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert all(text.count(m) == 1 for m in DEFAULTS_MARKERS)
    section = summary.defaults_section()
    assert summary.readme_section_in(text, DEFAULTS_MARKERS) == section, (
        "the README's defaults table is stale: run `python benchmarks/defaults.py --readme`")
    j = summary.load(("defaults",))["defaults"]
    assert not _unsupported(section, _json_numbers(j))  # every number of the section is in defaults.json
    assert section.count("\n| `") == len(j["rows"])  # one row per parameter set
    assert section.count("**beyond:**") == sum(r["beyond"] for r in j["rows"]) > 0
    assert text.index(summary.DEFAULTS_START) < text.index("### Workflows and the command line")  # figures checked


def _defaults_row(beyond: bool, errors: list, target: float = 1e-3) -> dict:
    runs = [{"seed": s, "rel_l2": e, "wall_s": 1.0, "cpu_s": 1.5 + s} if isinstance(e, float)
            else {"seed": s, "error_type": e, "error": "blow-up"} for s, e in enumerate(errors)]
    done = [e for e in errors if isinstance(e, float)]
    row = {"problem": "burgers", "params": "nu=0.01/pi", "parameters": {"nu": 0.01 / math.pi}, "beyond": beyond,
           "target": target, "n_seeds": len(runs), "runs": runs, "failures": len(runs) - len(done),
           "median_rel_l2": sorted(done)[len(done) // 2], "worst_rel_l2": max(done), "median_cpu_s": 2.5,
           "worst_cpu_s": 1.5 + len(runs) - 1, "seeds_meeting_target": sum(e <= target for e in done),
           "meets_target": len(done) == len(runs) and max(done) <= target}
    if beyond:
        row.update(worst_over_target=max(done) / target, graceful=row["failures"] == 0 and max(done) <= 10 * target)
    return row


def test_defaults_rows_mark_misses_failures_and_rough_beyond_rows():
    met = summary.defaults_row(_defaults_row(False, [2e-4, 3e-4, 5e-4]))
    assert met == "| `burgers` | ν = 0.01/π | 1e-3 | 3.0e-4 | 5.0e-4 | 3/3 | 2.5 / 3.5 |"
    missed = summary.defaults_row(_defaults_row(False, [2e-4, 3e-3]))
    assert "**1/2**" in missed and "| 3.0e-3 |" in missed
    raised = summary.defaults_row(_defaults_row(True, [2e-3, "DivergenceError"]))
    assert "**beyond:** ν = 0.01/π" in raised and "1 of 2 raised (DivergenceError); the rest ≤ 2.0e-3" in raised
    assert "0/2, **not graceful**" in raised
    rough = summary.defaults_row(_defaults_row(True, [2e-3, 2.5e-2]))
    assert "0/2, **not graceful** (worst 25× the target)" in rough
    assert "1/2, graceful" in summary.defaults_row(_defaults_row(True, [5e-4, 9e-3]))
    for row in (met, missed, raised, rough):
        assert not _unsupported(row, _json_numbers(_defaults_row(True, [2e-4, 3e-4, 5e-4, 3e-3, 2e-3, 2.5e-2])))


def test_update_readme_rewrites_only_the_sections_asked_for(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(RESULTS / "defaults.json", results / "defaults.json")
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{summary.START}\nold\n{summary.END}\nb\n{summary.DEFAULTS_START}\nold\n"
                      f"{summary.DEFAULTS_END}\nc\n", encoding="utf-8")
    assert summary.update_readme(readme, results, sections=("defaults",))
    text = readme.read_text(encoding="utf-8")
    assert f"{summary.START}\nold\n{summary.END}" in text  # the measured section untouched
    assert summary.readme_section_in(text, DEFAULTS_MARKERS) == summary.defaults_section(results)
    assert text.startswith("a\n") and text.endswith("\nc\n")
    assert not summary.update_readme(readme, results, sections=("defaults",))


def _section_as_generated(name: str, stale: str) -> str:
    """The README section ``name`` (its markers once each), asserted equal to what generates it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    begin, finish, generate = summary.SECTIONS[name]
    assert text.count(begin) == 1 and text.count(finish) == 1
    section = generate()
    assert summary.readme_section_in(text, (begin, finish)) == section, (
        f"{stale}: run `python -m benchmarks.summary --readme`")
    return section


@pytest.mark.parametrize("name, stale", [("large_domain", "the README's large-domain tables"),
                                         ("systems", "the README's systems table")])
def test_the_large_domain_and_systems_tables_are_generated_from_their_json(name, stale):
    section = _section_as_generated(name, f"{stale} are stale")
    j = summary.load((name,))[name]
    assert not _unsupported(section.split("\n", 2)[2], _json_numbers(j))  # the tables' numbers are the JSON's
    rows = j["rows"] if name == "systems" else j["scaling"] + j["evolution"] + [j["large"]]
    assert section.count("\n| ") - section.count("\n|---") >= len(rows)  # at least one line per result


# ------------------------------------------------------------------------------ the system-evolution, Hamiltonian, LTI sections
@pytest.mark.parametrize("name, files, stale", [
    ("system_evolution", ("system_evolution",), "the README's time-dependent systems table"),
    ("hamiltonian", summary.HAMILTONIAN_FILES, "the README's Hamiltonian table"),
    ("lti", ("lti",), "the README's LTI table")])
def test_the_system_evolution_hamiltonian_and_lti_tables_are_generated_from_their_json(name, files, stale):
    section = _section_as_generated(name, f"{stale} is stale")
    data = summary.load(files)
    assert data is not None, f"a JSON of {files} is missing"
    # the tables' numbers are the JSON's; a problem's definition may come from the script's literal settings
    settings = summary.script_setting("hamiltonian", "SYSTEM_PARAMS") if name == "hamiltonian" else {}
    assert not _unsupported(section.split("\n", 2)[2], _json_numbers(data) + _json_numbers(settings))
    results = {"system_evolution": lambda j: j["brusselator"]["rows"][:1] + j["schrodinger"]["rows"][:1] + [j["inverse"]],
               "lti": lambda j: j["rows"]}
    if name == "hamiltonian":  # one line per system of the sampled fits, one per step of the flow map
        rows = [r for f in files if f != "hamiltonian_flow_map" for r in data[f]["rows"] if r["method"].startswith("sampled")]
        expected = len({r["system"] for r in rows}) + len({r["dt"] for r in data["hamiltonian_flow_map"]["rows"]})
    else:
        expected = len(results[name](data[name]))
    assert section.count("\n| ") - 1 == expected  # the header, then one line per result
    assert "python -m benchmarks.summary --readme" in section.split("\n")[1]


def test_the_hamiltonian_table_leaves_out_a_missing_file_with_a_line(tmp_path):
    for name in ("hamiltonian", "hamiltonian_flow_map"):
        shutil.copy(RESULTS / f"{name}.json", tmp_path / f"{name}.json")
    section = summary.hamiltonian_section(tmp_path)
    assert "Hénon–Heiles" not in section and "pendulum from 8k flow-map pairs" in section
    assert "(`hamiltonian_henon_heiles.json`, `hamiltonian_coupled_oscillators.json` missing" in section
    assert "missing in" in summary.hamiltonian_section(tmp_path / "nothing")
