"""The README's table of measured results ("Measured on the … development machine"), generated
from the benchmarks' JSON in ``benchmarks/results/``.

    python -m benchmarks.summary            # print the table
    python -m benchmarks.summary --readme   # rewrite the README between the markers

The README's second generated section, the registry problems at their defaults over seeds and
parameter ranges (``<!-- defaults:start -->`` … ``<!-- defaults:end -->``), comes from
``defaults.json`` alone (``defaults_section``; ``python benchmarks/defaults.py --readme``
rewrites only that one).  The large-domain tables (``large_domain.json``), the systems table
(``systems.json``), the time-dependent systems table (``system_evolution.json``), the Hamiltonian
table (``hamiltonian*.json``) and the LTI table (``lti.json``) are more sections with markers of
their own; ``--readme`` rewrites all.  A number of a problem's definition that its JSON does not
hold is written only where the script that wrote the JSON sets it (``SYSTEM_PARAMS`` of
``hamiltonian.py``, read from its source by ``script_setting``).

One small function per row reads its JSON file(s) and formats the row from the numbers there:
errors with two significant digits (``1.2e-4``), seconds and ratios as the row needs them.
Every number of a row, the comparison column included, comes from the row's files (the test
``tests/test_summary.py`` checks it).  A row whose file is missing is left out, with a line
saying so.  Nothing is solved here: the benchmark scripts write the JSON.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE.parent / "README.md"
START, END = "<!-- measured:start -->", "<!-- measured:end -->"


# ------------------------------------------------------------------------------ formatting
def sci(value: float, digits: int = 2) -> str:
    """``digits`` significant digits in scientific notation, the README's way: 1.2e-4."""
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def count(value: float) -> str:
    """A round size as a power of ten: 200000 → 2e5."""
    return sci(value, 1)


def seconds(value: float) -> str:
    """Seconds: two decimals below 0.1 s (0.04, not 0.0), one below 100 s, whole seconds above."""
    return f"{value:.2f}" if value < 0.1 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def factor(value: float) -> str:
    """A large factor: whole below 1000, two significant digits above (7453 → 7500)."""
    return f"{value:.0f}" if value < 1000 else f"{float(f'{value:.2g}'):.0f}"


def spread(values: list[str]) -> str:
    """``a–b`` from the first to the last of formatted values, or one where they all read the same."""
    unique = list(dict.fromkeys(values))
    return unique[0] if len(unique) == 1 else f"{unique[0]}–{unique[-1]}"


def joined(values: list[str]) -> str:
    """``a / b`` over formatted values, or one where they all read the same."""
    return " / ".join(dict.fromkeys(values))


def seeds(rows: list[dict]) -> str:
    """``seeds 0–7`` from the seeds of the runs."""
    found = sorted({r["seed"] for r in rows})
    return f"seed {found[0]}" if len(found) == 1 else f"seeds {found[0]}–{found[-1]}"


def _one(rows: list[dict], **match) -> dict:
    return next(r for r in rows if all(r.get(k) == v for k, v in match.items()))


# ------------------------------------------------------------------------------ rows
# Each returns (comparison, result) from ``d``: the parsed JSON of its files, by name.
def lstsq(d: dict) -> tuple[str, str]:
    j = d["lstsq_vs_lapack"]
    s, (rows, cols) = j["summary"], j["shape"]
    ref = _one(j["contenders"], solver="numpy", threads=1)
    ours = _one(j["contenders"], solver="pipeline")
    what = f"least squares {count(rows)} × {cols}, vs `numpy.linalg.lstsq` at {ref['threads']} BLAS thread"
    result = (f"{s['cpu_ratio_vs_numpy']:.2f}× the CPU time, {s['peak_memory_ratio_vs_numpy']:.2f}× the peak "
              f"memory ({ours['peak_gb']:.2f} vs {ref['peak_gb']:.2f} GB), same residual to "
              f"{sci(s['residual_rel_diff_vs_numpy'])}")
    return what, result


def out_of_core(d: dict) -> tuple[str, str]:
    r = d["out_of_core"]["result"]
    what = f"out of core, {count(r['rows'])} × {r['cols']} ({r['matrix_gb']:.0f} GB never formed)"
    return what, f"{r['wall_s']:.1f} s wall, {r['cpu_s']:.0f} CPU-s, peak {r['peak_gb']:.2f} GB"


def _regressor(d: dict, n: int) -> tuple[str, list[dict], list[dict]]:
    j = d["regressor_vs_swimnetworks"]
    matches = j["summary"][str(n)]
    accuracy = ", same or better accuracy" if all(m["matched"] for m in matches) else ""
    return f"regressor vs `swimnetworks`, {n // 1000}k × {j['width']}{accuracy}", matches, j["contenders"]


def regressor_100k(d: dict) -> tuple[str, str]:
    what, matches, contenders = _regressor(d, 100_000)
    m = matches[0]
    exact = _one(contenders, label="pipeline, exact", n=100_000, rcond=m["reference_rcond"])
    result = (f"{m['speedup']:.1f}× faster with `prune={m['ours']['prune']:g}`, {m['peak_ratio']:.2f}× the "
              f"peak memory (exact solve: {exact['speedup']:.1f}×, {exact['peak_ratio']:.2f}×)")
    return what, result


def regressor_50k(d: dict) -> tuple[str, str]:
    what, matches, _ = _regressor(d, 50_000)
    against = [f"{m['speedup']:.1f}×{' faster' if i == 0 else ''} against its `rcond={m['reference_rcond']:g}` run"
               for i, m in enumerate(matches)]
    memory = joined([f"{m['peak_ratio']:.2f}×" for m in matches])
    return what, f"{', '.join(against)}; {memory} memory"


def poisson(d: dict) -> tuple[str, str]:
    rows = d["static_pde"]["poisson"]

    def best(prefix: str) -> dict:
        return min((r for r in rows if r["method"].startswith(prefix)), key=lambda r: r["rel_l2"])

    ours, fd, dx = best("sampled network"), best("finite differences"), best("DeepXDE")
    result = (f"{sci(ours['rel_l2'])} in {seconds(ours['cpu_s'])} CPU-s; 5-point FD {sci(fd['rel_l2'])} in "
              f"{seconds(fd['cpu_s'])} CPU-s; DeepXDE {sci(dx['rel_l2'])} in {seconds(dx['cpu_s'])} CPU-s")
    return "Poisson sin πx sin πy (`static_pde.py`)", result


def high_dim(d: dict) -> tuple[str, str]:
    rows = d["high_dim"]["rows"]
    ridge_p = next(r for r in d["static_pde"]["high_dim"] if r["basis"].startswith("ridge: sine"))
    dim = ridge_p["problem"].split("=")[-1]
    ridge_h = next(r for r in d["evolution_pde"]["rows"] if r["problem"] == f"heat_gaussian d={dim}"
                   and "sine ridge" in r["method"])
    p, h = _one(rows, problem="poisson", label="defaults"), _one(rows, problem="heat", label="defaults")
    in_time = ", exact in time" if h["resolved_settings"].get("method") == "exact" else ""
    what = (f"d = {dim} Gaussians at the defaults, {seeds(p['runs'] + h['runs'])} (`high_dim.py`; ridge "
            "features: `static_pde.py`, `evolution_pde.py` `--only-high-dim`)")
    result = (f"Poisson median {sci(p['median_rel_l2'])}, worst {sci(p['worst_rel_l2'])} in "
              f"{p['median_cpu_s']:.2f} CPU-s (sine ridge features, width {ridge_p['width']}: "
              f"{sci(ridge_p['rel_l2'])}); heat median {sci(h['median_rel_l2'])}, worst {sci(h['worst_rel_l2'])} "
              f"in {h['median_cpu_s']:.2f} CPU-s{in_time} (sine ridge features, width "
              f"{ridge_h['method'].rsplit('width ', 1)[-1]}: {sci(ridge_h['rel_l2'])} in {ridge_h['wall_s']:.0f} s)")
    return what, result


def _classical(method: str) -> str:
    """'classical MOL: FFT, 64 modes + RK45' → 'FFT + RK45'; 'FD 8193 points + BDF' → 'FD 8193 + BDF'."""
    return re.sub(r", \d+ modes", "", method.removeprefix("classical MOL: ")).replace(" points", "")


def _errors_in(rows: list[dict]) -> str:
    """``e1 / e2 in s1 / s2 s`` (wall seconds)."""
    return (f"{' / '.join(sci(r['rel_l2']) for r in rows)} in "
            f"{' / '.join(seconds(r['wall_s']) for r in rows)} s")


def advection(d: dict) -> tuple[str, str]:
    rows = [r for r in d["evolution_pde"]["rows"] if r["problem"].startswith("advection")]
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    ours = [_one(rows, problem=p, method="sampled network (this library)") for p in problems]
    mol = [r for r in rows if r["method"].startswith("classical")]
    dx = [r for r in rows if r["method"].startswith("DeepXDE")]
    labels = " / ".join(p.removeprefix("advection ").replace("beta", "β").replace("=", " = ") for p in problems)
    result = (f"{_errors_in(ours)}; {joined([_classical(r['method']) for r in mol])} "
              f"{joined([sci(r['rel_l2']) for r in mol])}")
    if dx:
        result += f"; DeepXDE {' / '.join(format(r['rel_l2'], '.2f') for r in dx)}"
    return f"advection {labels} (`evolution_pde.py`)", result


def burgers(d: dict) -> tuple[str, str]:
    rows = [r for r in d["evolution_pde"]["rows"] if r["problem"] == "burgers"]
    default = next(r for r in d["defaults"]["rows"]
                   if r["problem"] == "burgers" and "0.01" in r["params"] and not r.get("beyond"))
    ours = _one(rows, method="sampled network (this library)")
    mol = next(r for r in rows if r["method"].startswith("classical"))
    dx = next((r for r in rows if r["method"].startswith("DeepXDE")), None)
    if "runs" in default:  # benchmarks/defaults.py over seeds: median and worst
        now = (f"{seeds(default['runs'])}: median {sci(default['median_rel_l2'])}, worst "
               f"{sci(default['worst_rel_l2'])} in {default['median_cpu_s']:.1f} CPU-s")
    else:
        now = _errors_in([default])
    result = (f"{_errors_in([ours])} (the current defaults, {now}, `defaults.py`; high "
              f"accuracy: the next row); {_classical(mol['method'])} {_errors_in([mol])}")
    if dx:
        result += f"; DeepXDE {sci(dx['rel_l2'])}"
    return f"Burgers ν = {default['params'].split('=', 1)[1].replace('pi', 'π')}", result


def burgers_accurate(d: dict) -> tuple[str, str]:
    j = d["burgers_accurate"]
    parts = [f"the paper: {sci(j['paper']['rel_l2'], 3)} in {j['paper']['seconds']:.2f} s"]
    for s in j["summary"]:
        within = (f" ({s['seeds_within_paper']} of {s['seeds']} seeds at or below the paper's error)"
                  if s["seeds_within_paper"] else "")
        parts.append(f"{s['contender']}: median {sci(s['median_rel_l2_grid'])}, worst "
                     f"{sci(s['worst_rel_l2_grid'])}{within} in {s['median_cpu_s']:.2f} CPU-s "
                     f"(worst {s['worst_cpu_s']:.2f})")
    what = (f"Burgers at high accuracy against the paper's figure, {seeds(j['runs'])}, rel. L2 on the "
            "evaluation grid (`burgers_accurate.py`)")
    return what, "; ".join(parts)


def burgers_hyper(d: dict) -> tuple[str, str]:
    j = d["burgers_hyper"]
    s = {r["contender"]: r for r in j["summary"]}
    now, before, hyper = s["now"], s["before"], s["now, hyper-reduced"]
    points = joined([str(p) for p in sorted({r["rows"] for r in j["rows"] if r["contender"] == "before"})])
    result = (f"defaults: median {sci(now['median_rel_l2'])}, worst {sci(now['worst_rel_l2'])} at "
              f"{j['cpu_ratio_now_over_before']:.2f}× the CPU of the previous defaults ({points} points, "
              f"differenced Jacobian: {sci(before['median_rel_l2'])} / {sci(before['worst_rel_l2'])}); forced "
              f"hyper-reduction: {sci(hyper['median_rel_l2'])} / {sci(hyper['worst_rel_l2'])} at "
              f"{j['cpu_ratio_hyper_over_before']:.2f}×")
    return f"Burgers, {seeds(j['rows'])} at random (x, t) (`burgers_hyper.py`)", result


def large_evolution(d: dict) -> tuple[str, str]:
    j = d["large_evolution"]
    h, e = _one(j["contenders"], contender="hyper"), _one(j["contenders"], contender="exact")
    name = "2-D Allen–Cahn" if j["problem"] == "allen_cahn_2d" else j["problem"]
    what = f"{name}, {count(j['rows_requested'])} rows × {h['width']} neurons (`large_evolution.py`)"
    result = (f"hyper-reduced: {sci(h['rel_l2'])}, peak {h['peak_rss_gb']:.2f} GB, {sci(h['rhs_cpu_s'])} CPU-s "
              f"per right-hand side, {h['wall_s']:.0f} s wall; exact term: {sci(e['rel_l2'])}, peak "
              f"{e['peak_rss_gb']:.2f} GB, {sci(e['rhs_cpu_s'])} CPU-s ({j['rhs_cpu_ratio_exact_over_hyper']:.1f}× "
              f"more per right-hand side), {e['wall_s']:.0f} s wall")
    return what, result


def wave_beam(d: dict) -> tuple[str, str]:
    rows, problems = d["evolution_pde"]["rows"], ("wave_1d", "beam_dynamic")
    ours = [_one(rows, problem=p, method="sampled network (this library)") for p in problems]
    fd = [next(r for r in rows if r["problem"] == p and r["method"].startswith("classical")) for p in problems]
    return "wave / dynamic beam", f"{_errors_in(ours)}; FD {' / '.join(sci(r['rel_l2']) for r in fd)}"


HAMILTONIAN = {"pendulum": "pendulum", "lotka_volterra": "Lotka–Volterra", "double_pendulum": "double pendulum",
               "henon_heiles": "Hénon–Heiles"}


def hamiltonian(d: dict) -> tuple[str, str]:
    rows, parts = d["hamiltonian"]["rows"], []
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        ours = min((r for r in mine if r["method"].startswith("sampled")), key=lambda r: r["rel_l2"])
        hnn = next(r for r in mine if r["method"].startswith("HNN"))
        parts.append(f"{HAMILTONIAN.get(system, system)} {sci(ours['rel_l2'])} vs {sci(hnn['rel_l2'])} at "
                     f"1/{ours['cpu_ratio']:.0f}" + ("" if parts else " of the CPU time"))
    return "Hamiltonian networks vs back-propagation HNN (`hamiltonian.py`)", "; ".join(parts)


def lti(d: dict) -> tuple[str, str]:
    rows = [r for r in d["lti"]["rows"] if "states)" in r["system"]]
    states = re.search(r"\((\d+) states\)", rows[0]["system"]).group(1)
    parts = [f"{r['system'].rsplit(', ', 1)[-1]} {sci(r['rel_l2'])}, {factor(r['speedup'])}×"
             + ("" if i else " faster simulation") for i, r in enumerate(rows)]
    return f"LTI networks vs `lsim`, {states} states (`lti.py`)", "; ".join(parts)


def store_evaluate(d: dict) -> tuple[str, str]:
    j = d["store_evaluate"]
    r = next(r for r in j["rows"] if "random" in r["case"])
    result = (f"{r['evaluate_cpu_s']:.2f} CPU-s (integrating again: {r['integrate_again_cpu_s']:.2f} CPU-s), "
              f"{sci(r['max_difference'])} from a fresh integration")
    return f"stored {Path(j['workflow']).stem.capitalize()} run at {r['case']} (`store_evaluate.py`)", result


def large_static(d: dict) -> tuple[str, str]:
    j = d["large_static"]
    one, two = _one(j["rows"], workers=1), _one(j["rows"], workers=2)
    what = (f"one static member of {count(two['rows'])} rows × {two['width']} neurons, "
            f"{j['design_gb_if_formed']:.0f} GB if formed (`large_static.py`)")
    result = (f"2 workers / 1 worker wall {two['wall_ratio_2_over_1']:.2f} ({two['wall_s']:.1f} s vs "
              f"{one['wall_s']:.1f} s; 1 worker: {sum(one['worker_cpu_s']):.0f} CPU-s), smallest worker CPU "
              f"share {two['cpu_share_min']:.2f}, peak {two['peak_rss_gb_max']:.2f} GB per worker (one worker: "
              f"{one['peak_rss_gb_max']:.2f} GB), rel. L2 {sci(two['rel_l2'])}")
    return what, result


def blas_threads(d: dict) -> tuple[str, str]:
    j, case = d["blas_threads"], "evolve(burgers)"
    env = _one(j["rows"], case=case, contender="default env")
    unpinned = _one(j["rows"], case=case, contender="default env, unpinned")
    result = (f"`{case}` from a plain process: {env['cpu_ratio']:.2f}× the CPU seconds of one BLAS thread by "
              f"the environment (entry points unpinned: {unpinned['cpu_ratio']:.2f}×)")
    return f"BLAS threads on a loaded {j['machine']['cpus']}-core machine (`blas_threads.py`)", result


def ensemble(d: dict) -> tuple[str, str]:
    """Both schemas: one run per cluster size (before), or a cold and a warm run each (``start``)."""
    rows = d["ensemble_throughput"]["rows"]
    parts = []
    for start in dict.fromkeys(r.get("start") for r in rows):
        one, two = _one(rows, workers=1, start=start), _one(rows, workers=2, start=start)
        repeats = two.get("scaling_efficiency_per_repeat") or []
        spread_of = f", repeats {min(repeats):.2f}–{max(repeats):.2f}" if len(repeats) > 1 else ""
        parts.append(f"{start + ': ' if start else ''}{one['members_per_minute']:.1f} → "
                     f"{two['members_per_minute']:.1f} members/min (efficiency {two['scaling_efficiency']:.2f}{spread_of})")
    result = f"1 → 2 workers{', ' if rows[0].get('start') else ': '}{'; '.join(parts)}"
    shares = spread([format(100 * s, ".1f") for s in sorted(r["write_share"] for r in rows)])
    result += f"; store writes {shares} % of the member time"
    if all("serial_s" in r for r in rows):
        serial = spread([format(s, ".1f") for s in sorted(r["serial_s"] for r in rows)])
        result += f", serial time on the client {serial} s"
    if all("cluster_start_s" in r for r in rows):  # workers that import the library as they start
        starts = spread([format(s, ".1f") for s in sorted(r["cluster_start_s"] for r in rows)])
        result += f"; cluster start-up {starts} s, not counted (workers import the library then)"
    return f"ensemble throughput, {rows[0]['members']} Burgers members (`ensemble_throughput.py`)", result


#: (the JSON files a row reads, its function), in the table's order
ROWS = [
    (("lstsq_vs_lapack",), lstsq),
    (("out_of_core",), out_of_core),
    (("regressor_vs_swimnetworks",), regressor_100k),
    (("regressor_vs_swimnetworks",), regressor_50k),
    (("static_pde",), poisson),
    (("high_dim", "static_pde", "evolution_pde"), high_dim),
    (("evolution_pde",), advection),
    (("evolution_pde", "defaults"), burgers),
    (("burgers_accurate",), burgers_accurate),
    (("burgers_hyper",), burgers_hyper),
    (("large_evolution",), large_evolution),
    (("evolution_pde",), wave_beam),
    (("hamiltonian",), hamiltonian),
    (("lti",), lti),
    (("store_evaluate",), store_evaluate),
    (("large_static",), large_static),
    (("blas_threads",), blas_threads),
    (("ensemble_throughput",), ensemble),
]


# ------------------------------------------------------------------------------ defaults section
DEFAULTS_START, DEFAULTS_END = "<!-- defaults:start -->", "<!-- defaults:end -->"
SYMBOLS = {"beta": "β", "nu": "ν", "rho": "ρ", "eps": "ε", "sigma": "σ", "dim": "d", "waves": "waves"}


def _parameter(key: str, value) -> str:
    """``ν = 0.01/π``, ``β = 1e4``, ``d = 100``: a parameter as the README writes it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        text = str(value)
    elif key == "nu" and math.isclose(value * math.pi, float(f"{value * math.pi:.2g}"), rel_tol=1e-12):
        text = f"{value * math.pi:g}/π"
    elif abs(value) >= 1000 and float(f"{value:.0e}") == value:
        text = count(value)
    else:
        text = sci(value, 2).replace(".0e", "e") if 0 < abs(value) <= 1e-3 else f"{value:g}"
    return f"{SYMBOLS.get(key, key)} = {text}"


def _cpu(value: float) -> str:
    return f"{value:.2f}" if value < 1 else seconds(value)


def defaults_row(r: dict) -> str:
    """One row of the defaults table from one row of ``defaults.json``."""
    params = ", ".join(_parameter(k, v) for k, v in r["parameters"].items()) or "—"
    if r["beyond"]:
        params = f"**beyond:** {params}"
    target = "—" if r["target"] is None else sci(r["target"], 2).replace(".0e", "e")
    median = "—" if r["median_rel_l2"] is None else sci(r["median_rel_l2"])
    worst = "—" if r["worst_rel_l2"] is None else sci(r["worst_rel_l2"])
    if r["failures"]:
        raised = ", ".join(dict.fromkeys(run["error_type"] for run in r["runs"] if "error_type" in run))
        worst = f"{r['failures']} of {r['n_seeds']} raised ({raised})" + ("" if r["worst_rel_l2"] is None
                                                                          else f"; the rest ≤ {worst}")
    met = "—" if r["target"] is None else f"{r['seeds_meeting_target']}/{r['n_seeds']}"
    if r["beyond"] and r["target"] is not None:
        met += ", graceful" if r["graceful"] else (
            ", **not graceful**" + ("" if r["failures"] else f" (worst {r['worst_over_target']:.0f}× the target)"))
    elif r["target"] is not None and not r["meets_target"]:
        met = f"**{met}**"
    cpu = "—" if r["median_cpu_s"] is None else f"{_cpu(r['median_cpu_s'])} / {_cpu(r['worst_cpu_s'])}"
    return f"| `{r['problem']}` | {params} | {target} | {median} | {worst} | {met} | {cpu} |"


def defaults_table(j: dict) -> str:
    head = ("| problem | parameters | target | median rel. L2 | worst rel. L2 | seeds meeting target "
            "| CPU s, median / worst |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    return "\n".join(lines + [defaults_row(r) for r in j["rows"]])


def defaults_section(results: Path = RESULTS) -> str:
    """The README's defaults section between its markers (markers included), from ``defaults.json`` alone."""
    data = load(("defaults",), results)
    if data is None:
        return "\n".join([DEFAULTS_START, f"(`defaults.json` missing in {results})", DEFAULTS_END])
    j = data["defaults"]
    load_avg = j["load_average"]
    intro = (f"Defaults verified across parameter ranges: each problem solved at its own defaults, nothing but its "
             f"parameters set, {seeds(j['rows'][0]['runs'])} (relative L2 on each problem's evaluation points; "
             "the target is the problem's `target`, the worst seed must meet it). A **beyond** row takes one step "
             "past the documented range: graceful when nothing raised and the worst seed is within "
             f"{j['graceful_factor']:.0f}× the target. `python benchmarks/defaults.py` on the "
             f"{j['machine']['cpus']}-core development machine ({j['total_wall_s']:.0f} s, load average "
             f"{load_avg['start'][0]:.2f} at the start, {load_avg['end'][0]:.2f} at the end)")
    reruns = j.get("reruns") or []
    if reruns:  # rows solved again after a change of defaults (defaults.py --merge)
        names = ", ".join(f"`{p}`" for p in dict.fromkeys(p for r in reruns for p in r["problems"]))
        loads = [r["load_average"]["start"][0] for r in reruns]
        intro += (f", and the rows of {names} solved again after their defaults changed (`--merge`, "
                  f"{len(reruns)} reruns, the last on {reruns[-1]['when'][:10]}, load average "
                  f"{min(loads):.2f}–{max(loads):.2f} at their starts)")
    intro += ("; this table is generated from `benchmarks/results/defaults.json` by `python benchmarks/defaults.py "
              "--readme` (do not edit it by hand):")
    return "\n".join([DEFAULTS_START, intro, "", defaults_table(j), DEFAULTS_END])


# ------------------------------------------------------------------------------ large-domain section
LARGE_START, LARGE_END = "<!-- large_domain:start -->", "<!-- large_domain:end -->"


def large_domain_section(results: Path = RESULTS) -> str:
    """The README's large-domain tables between their markers, from ``large_domain.json`` alone."""
    data = load(("large_domain",), results)
    if data is None:
        return "\n".join([LARGE_START, f"(`large_domain.json` missing in {results})", LARGE_END])
    j = data["large_domain"]
    lines = [LARGE_START, "`python benchmarks/large_domain.py` (poisson_waves, sine features at 0.8 × the solution's "
             "frequency; errors at 20 000 random points no solve saw; CPU seconds of the solving process, one BLAS "
             "thread; generated from `benchmarks/results/large_domain.json` by `python -m benchmarks.summary "
             "--readme`, do not edit by hand):", "",
             "| case | boxes | neurons | rel. L2 | CPU s | peak GB |", "|---|---|---|---|---|---|"]
    cases = [(f"{r['waves']:g} wavelengths, {r['waves'] / r['boxes']:.1f} per box", r["boxes_total"], r)
             for r in j.get("scaling", [])]
    cases += [(f"{r['waves']:g} wavelengths, one global basis", 1, r) for r in j.get("against_global", []) if r["global"]]
    lines += [f"| {label} | {boxes} | {r['neurons']} | {sci(r['rel_l2'])} | {r['cpu_s']:.1f} | {r['peak_gb']:.2f} |"
              for label, boxes, r in cases]
    if "large" in j:
        r = j["large"]
        cpu = r["cpu_s_total"]
        lines.append(f"| {r['waves']:g} wavelengths, `pipeline run` machinery on {r['workers']} workers | "
                     f"{r['boxes_total']} | {r['neurons']} | {sci(r['rel_l2'])} | {cpu:.0f} (wall {r['wall_s']:.0f}) | "
                     f"{r['peak_gb_total']:.1f} in all |")
    evolution = j.get("evolution", [])
    if evolution:
        first = evolution[0]
        lines += ["", f"Method of lines on a partition, `advection_diffusion` over {first['waves']:g} wavelengths on "
                  f"{first['boxes']} boxes ({seeds([{'seed': s} for s in first['seeds']])}):", "",
                  "| basis | T | median rel. L2 | worst | CPU s |", "|---|---|---|---|---|"]
        lines += [f"| {r['basis']} | {r['T']:g} | {sci(r['median_rel_l2'])} | {sci(r['worst_rel_l2'])} | "
                  f"{r['median_cpu_s']:.1f} |" for r in evolution]
    evolution_2d = j.get("evolution_2d", [])
    if evolution_2d:
        per_box = ", ".join(f"{r['median_cpu_s'] / r['boxes_total']:.1f}" for r in evolution_2d)
        how = ", ".join(f"{r['boxes_total']} boxes {r['propagation']}" for r in evolution_2d)
        lines += ["", "The same in 2-D (`dim=2`), one wavelength per box, T = 1 "
                  f"({seeds([{'seed': s} for s in evolution_2d[0]['seeds']])}; {how}). CPU seconds per box "
                  f"grow ({per_box}): the sparse LU of the interface system fills as a grid of blocks does, and "
                  "the propagation's plan (norm estimates of powers of the operator) costs as much as the "
                  "propagation:", "",
                  "| boxes | neurons | local coordinates | median rel. L2 | worst | CPU s | of which LU and plan / propagation | "
                  "peak GB |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['boxes_total']} | {r['neurons']} | {r['rank']} | {sci(r['median_rel_l2'])} | "
                  f"{sci(r['worst_rel_l2'])} | {r['median_cpu_s']:.1f} | {r['operator_s']:.1f} / {r['integrate_s']:.1f} | "
                  f"{r['peak_gb']:.2f} |" for r in evolution_2d]
    return "\n".join(lines + [LARGE_END])


# ------------------------------------------------------------------------------ systems section
SYSTEMS_START, SYSTEMS_END = "<!-- systems:start -->", "<!-- systems:end -->"
SYSTEM_LABELS = {"nonlinear_poisson": "−Δu + u³ = f (2-D)",
                 "elasticity_2d": "elasticity (2-D, clamped + traction), displacement",
                 "kovasznay": "Kovasznay flow, velocity / pressure (up to a constant)"}


def _system_label(case: str) -> str:
    if case.startswith("bratu"):
        params = dict(part.strip().split("=") for part in case[len("bratu"):].split(","))
        return f"Bratu λ = {float(params['lam']):g}, {params['branch']} branch"
    case = case.replace("obs.", "observations of u").replace("source of 3 given functions", "source as 3 given functions")
    if case.startswith("source ") and not case.startswith("source of"):
        case = "source of Δu = f " + case[len("source "):]
    return SYSTEM_LABELS.get(case, case)


def systems_section(results: Path = RESULTS) -> str:
    """The README's systems table between its markers, from ``systems.json`` alone."""
    data = load(("systems",), results)
    if data is None:
        return "\n".join([SYSTEMS_START, f"(`systems.json` missing in {results})", SYSTEMS_END])
    rows = data["systems"]["rows"]
    lines = [SYSTEMS_START, f"At the defaults, {seeds([{'seed': i} for i in range(rows[0]['seeds'])])}, rel. L2 on "
             "each problem's evaluation grid (`python benchmarks/systems.py --seeds 8`; for the source the seed draws "
             "the noise; "
             "generated from `benchmarks/results/systems.json` by `python -m benchmarks.summary --readme`, do not "
             "edit by hand):", "", "| problem | median | worst | CPU s |", "|---|---|---|---|"]
    for r in rows:
        fields = [k[: -len("_median")] for k in r if k.endswith("_median")
                  and not k.startswith(("cpu", "wall", "within", "best_lambda", "iterations"))]
        median = " / ".join(sci(r[f"{f}_median"]) for f in fields)
        worst = " / ".join(sci(r[f"{f}_worst"]) for f in fields)
        cpu = f"{r['cpu_s_median']:.2f}" if r["cpu_s_median"] >= 0.01 else "< 0.01"
        lines.append(f"| {_system_label(r['case'])} | {median} | {worst} | {cpu} |")
    return "\n".join(lines + [SYSTEMS_END])


# ------------------------------------------------------------------------------ system-evolution section
EVOLUTION_START, EVOLUTION_END = "<!-- system_evolution:start -->", "<!-- system_evolution:end -->"
#: how a forward problem's measured field (``measure`` of its JSON) is named in the table
MEASURES = {"h_abs": r"\|h\|"}


def system_evolution_section(results: Path = RESULTS) -> str:
    """The README's time-dependent systems table between its markers, from ``system_evolution.json`` alone."""
    data = load(("system_evolution",), results)
    if data is None:
        return "\n".join([EVOLUTION_START, f"(`system_evolution.json` missing in {results})", EVOLUTION_END])
    j = data["system_evolution"]
    b, s, clean = j["brusselator"], j["schrodinger"], j["inverse"]["noise_free"]
    lines = [EVOLUTION_START, (f"`python benchmarks/system_evolution.py`, {seeds(b['rows'] + s['rows'])} at the "
             "defaults (generated from `benchmarks/results/system_evolution.json` by `python -m benchmarks.summary "
             "--readme`, do not edit by hand):"), "", "| problem | median | worst | CPU s |", "|---|---|---|---|"]
    forward = [((f"Brusselator reaction–diffusion ({len(b['rows'][0]['rank'])} fields, periodic), "
                f"{MEASURES.get(b['measure'], b['measure'])} against the Fourier reference"), b),
               (f"cubic Schrödinger, {MEASURES.get(s['measure'], s['measure'])} against split-step Fourier", s)]
    lines += [f"| {label} | {sci(r['median_rel_l2'])} | {sci(r['worst_rel_l2'])} | {_cpu(r['median_cpu_s'])} |"
              for label, r in forward]
    errors = clean["relative_errors"]
    noise = "noise-free" if clean["noise"] == 0 else f"noise {100 * clean['noise']:g} %"
    lines.append(f"| Brusselator constants ({len(errors)}) from gridded observations, {noise}, worst relative error "
                 f"| {sci(max(errors.values()))} | | {_cpu(clean['cpu_s'])} |")
    return "\n".join(lines + [EVOLUTION_END])


# ------------------------------------------------------------------------------ Hamiltonian section
HAMILTONIAN_START, HAMILTONIAN_END = "<!-- hamiltonian:start -->", "<!-- hamiltonian:end -->"
#: the JSON files of ``benchmarks/hamiltonian.py`` the table reads, in its order
HAMILTONIAN_FILES = ("hamiltonian", "hamiltonian_henon_heiles", "hamiltonian_coupled_oscillators",
                     "hamiltonian_flow_map")
#: the table's order of systems (others follow in the files' order)
HAMILTONIAN_ORDER = ("pendulum", "lotka_volterra", "henon_heiles", "double_pendulum", "coupled_oscillators")
SAMPLERS = {"ASWIM": "A-SWIM", "USWIM": "U-SWIM"}
#: what a system's configuration sets beyond sampler and width (``CASES`` of ``benchmarks/hamiltonian.py``)
HAMILTONIAN_NOTES = {"coupled_oscillators": " (sin)"}


def script_setting(script: str, name: str):
    """A literal setting of a benchmark script (``SYSTEM_PARAMS`` of ``hamiltonian.py``), read from its source
    without running it; None where the script or the setting is not there."""
    path = HERE / f"{script}.py"
    if not path.is_file():
        return None
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def _points(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _wall(value: float) -> str:
    """Wall seconds of a fit: one decimal below 5 s, whole seconds above."""
    return f"{value:.1f}" if value < 5 else f"{value:.0f}"


def _hamiltonian_system(system: str) -> str:
    params = (script_setting("hamiltonian", "SYSTEM_PARAMS") or {}).get(system, {})
    if system == "coupled_oscillators":
        return f"chain of {params['dof']} oscillators" if "dof" in params else "chain of coupled oscillators"
    return HAMILTONIAN.get(system, system.replace("_", " "))


def _setting(system: str, rows: list[dict]) -> str:
    """``ELM, width 1000``, ``width 5000: A-SWIM / ELM``, ``ELM, width 2000 / 4000``: the sampled fits of a row."""
    found = [re.fullmatch(r"sampled, (\S+) width (\d+)", r["method"]).groups() for r in rows]
    samplers = [SAMPLERS.get(s, s) + HAMILTONIAN_NOTES.get(system, "") for s, _ in found]
    widths = [w for _, w in found]
    if len(set(samplers)) == 1:
        return f"{samplers[0]}, width {' / '.join(widths)}"
    if len(set(widths)) == 1:
        return f"width {widths[0]}: {' / '.join(samplers)}"
    return " / ".join(f"{s}, width {w}" for s, w in zip(samplers, widths))


def _hamiltonian_row(label: str, setting: str, rows: list[dict]) -> str:
    return (f"| {label} | {setting} | {' / '.join(sci(r['rel_l2']) for r in rows)} | "
            f"{' / '.join(_wall(r['wall_s']) + ' s' for r in rows)} |")


def hamiltonian_section(results: Path = RESULTS) -> str:
    """The README's Hamiltonian table between its markers, from the ``hamiltonian*.json`` files alone."""
    present = [n for n in HAMILTONIAN_FILES if (results / f"{n}.json").is_file()]
    if not present:
        return "\n".join([HAMILTONIAN_START, f"(`{'.json`, `'.join(HAMILTONIAN_FILES)}.json` missing in {results})",
                          HAMILTONIAN_END])
    data = load(present, results)
    lines = [HAMILTONIAN_START, ("Measured here (relative L2 of H on 5000 independent test states; `python "
             "benchmarks/hamiltonian.py`, with `--henon-heiles`, `--systems coupled_oscillators` and `--flow-map` for "
             "the rows of those; `pytest tests/test_hamiltonian.py` checks them; generated from "
             "`benchmarks/results/hamiltonian*.json` by `python -m benchmarks.summary --readme`, do not edit by "
             "hand):"), "", "| system | setting | rel. L2 of H | fit (wall) |", "|---|---|---|---|"]
    by_system: dict[str, list[dict]] = {}
    for name in present:
        fits = [r for r in data[name]["rows"] if r["method"].startswith("sampled, ")]
        for system in dict.fromkeys(r["system"] for r in fits):
            by_system.setdefault(system, [r for r in fits if r["system"] == system])  # the first file holding it
    order = [s for s in HAMILTONIAN_ORDER if s in by_system] + [s for s in by_system if s not in HAMILTONIAN_ORDER]
    for system in order:
        rows = by_system[system]
        label = f"{_hamiltonian_system(system)}, {_points(rows[0]['training points'])} points"
        lines.append(_hamiltonian_row(label, _setting(system, rows), rows))
    flow = data.get("hamiltonian_flow_map", {}).get("rows", [])
    for i, dt in enumerate(dict.fromkeys(r["dt"] for r in flow)):
        rows = sorted((r for r in flow if r["dt"] == dt), key=lambda r: not r["corrected"])  # corrected first
        versions = " / ".join("corrected" if r["corrected"] else "not" for r in rows)
        if i == 0:
            sampler, width = re.search(r"(\S+) width (\d+)", rows[0]["method"]).groups()
            label = (f"{HAMILTONIAN.get(rows[0]['system'], rows[0]['system'])} from "
                     f"{_points(rows[0]['training points'])} flow-map pairs, Δt = {dt:g}")
            setting = f"{SAMPLERS.get(sampler, sampler)}, width {width}, {versions}"
        else:
            label, setting = f"the same, Δt = {dt:g}", versions
        lines.append(_hamiltonian_row(label, setting, rows))
    absent = [n for n in HAMILTONIAN_FILES if n not in present]
    if absent:
        lines += ["", f"(`{'.json`, `'.join(absent)}.json` missing: their rows are left out)"]
    return "\n".join(lines + [HAMILTONIAN_END])


# ------------------------------------------------------------------------------ LTI section
LTI_START, LTI_END = "<!-- lti:start -->", "<!-- lti:end -->"
#: why a system needs Schur blocks, where its JSON label does not say
SCHUR_REASONS = {"convection–diffusion": "ill-conditioned eigenvectors"}


def _lti_system(label: str) -> str:
    """The JSON's system label as the README writes it (a diffusion row without the modes its network keeps)."""
    diffusion = re.fullmatch(r"diffusion (\d+)×(\d+) \((\d+) states\)(?:, .*)?", label)
    if diffusion:
        nx, ny, states = diffusion.groups()
        return f"2-D diffusion, {nx} × {ny} = {states} states"
    if label.startswith("Jordan block"):
        return "defective system (Jordan block)"
    return label


def _neurons(count: int, order: str) -> str:
    return f"{count} {order}-order neuron{'s' if count != 1 else ''}"


def _lti_network(r: dict) -> str:
    """The network's column from the row's method and neuron counts."""
    layers = ast.literal_eval(r["neurons"])
    neurons = [_neurons(layers[k], k.split("_")[0]) for k in ("first_order", "second_order") if layers[k]]
    if r["method"] == "truncated":
        return f"{layers['first_order'] + layers['second_order']} slowest modes + static correction"
    if r["method"] == "schur-blocks":
        blocks = layers["cascaded_blocks"]
        cascade = (f"{'a cascaded block' if len(blocks) == 1 else 'cascaded blocks'} of "
                   f"{' / '.join(str(b) for b in blocks)} states") if blocks else ""
        reason = next((v for k, v in SCHUR_REASONS.items() if r["system"].startswith(k)), "")
        detail = "; ".join(p for p in (reason, ", ".join(p for p in (cascade, *neurons) if p)) if p)
        return f"Schur blocks ({detail})" if detail else "Schur blocks"
    text = ", ".join(neurons)
    return f"all modes ({text})" if r["system"].endswith("all modes") else text


def _speed(value: float) -> str:
    """Simulation against lsim: ``508× faster``, ``0.14× (slower)``."""
    text = factor(value) if value >= 10 else f"{value:.2g}"
    return f"{text}× faster" if value >= 1 else f"{text}× (slower)"


def lti_section(results: Path = RESULTS) -> str:
    """The README's LTI table between its markers, from ``lti.json`` alone."""
    data = load(("lti",), results)
    if data is None:
        return "\n".join([LTI_START, f"(`lti.json` missing in {results})", LTI_END])
    lines = [LTI_START, ("Against `scipy.signal.lsim` (same piecewise-linear input, 1000 steps; `python "
             "benchmarks/lti.py`; generated from `benchmarks/results/lti.json` by `python -m benchmarks.summary "
             "--readme`, do not edit by hand):"), "",
             "| system | network | rel. L2 of y | simulation vs lsim |", "|---|---|---|---|"]
    previous = None
    for r in data["lti"]["rows"]:
        system = _lti_system(r["system"])
        lines.append(f"| {'the same' if system == previous else system} | {_lti_network(r)} | {sci(r['rel_l2'])} | "
                     f"{_speed(r['speedup'])} |")
        previous = system
    return "\n".join(lines + [LTI_END])


# ------------------------------------------------------------------------------ table and README
def load(names, results: Path = RESULTS) -> dict | None:
    """The named JSON files of ``results``, or None where one is missing."""
    paths = {n: results / f"{n}.json" for n in names}
    if not all(p.is_file() for p in paths.values()):
        return None
    return {n: json.loads(p.read_text(encoding="utf-8")) for n, p in paths.items()}


def rows(results: Path = RESULTS) -> tuple[list[tuple[str, str]], list[str]]:
    """The table's ``(comparison, result)`` rows, and a line for every row left out."""
    out, missing = [], []
    for names, fn in ROWS:
        data = load(names, results)
        if data is None:
            absent = ", ".join(f"{n}.json" for n in names if not (results / f"{n}.json").is_file())
            missing.append(f"row '{fn.__name__}' left out: {absent} missing in {results}")
            continue
        out.append(fn(data))
    return out, missing


def cores(results: Path = RESULTS) -> str:
    found = sorted({json.loads(p.read_text(encoding="utf-8")).get("machine", {}).get("cpus")
                    for names, _ in ROWS for n in names if (p := results / f"{n}.json").is_file()} - {None})
    return "/".join(str(c) for c in found) or "?"


def table(results: Path = RESULTS) -> str:
    lines = ["| comparison | result |", "|---|---|"]
    return "\n".join(lines + [f"| {c} | {r} |" for c, r in rows(results)[0]])


def readme_section(results: Path = RESULTS) -> str:
    """The README's section between the markers (markers included), from the JSON alone."""
    intro = (f"Measured on the {cores(results)}-core development machine (`benchmarks/results/*.json` hold the full "
             "runs); this table is generated from them by `python -m benchmarks.summary --readme` (do not edit it "
             "by hand):")
    return "\n".join([START, intro, "", table(results), END])


def readme_section_in(text: str, markers: tuple[str, str] = (START, END)) -> str:
    return text[text.index(markers[0]): text.index(markers[1]) + len(markers[1])]


#: the README's generated sections: name -> (start marker, end marker, generator)
SECTIONS = {"measured": (START, END, readme_section), "defaults": (DEFAULTS_START, DEFAULTS_END, defaults_section),
            "large_domain": (LARGE_START, LARGE_END, large_domain_section),
            "systems": (SYSTEMS_START, SYSTEMS_END, systems_section),
            "system_evolution": (EVOLUTION_START, EVOLUTION_END, system_evolution_section),
            "hamiltonian": (HAMILTONIAN_START, HAMILTONIAN_END, hamiltonian_section),
            "lti": (LTI_START, LTI_END, lti_section)}


def update_readme(readme: Path = README, results: Path = RESULTS, sections=tuple(SECTIONS)) -> bool:
    """Replace the marked sections of the README (those whose markers it has); True when it changed."""
    text = new = readme.read_text(encoding="utf-8")
    present = [name for name in sections if SECTIONS[name][0] in text]
    if not present:
        raise ValueError(f"{readme} has none of the markers of the sections {', '.join(sections)}")
    for name in present:
        begin, finish, generate = SECTIONS[name]
        start, end = new.index(begin), new.index(finish) + len(finish)
        new = new[:start] + generate(results) + new[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", action="store_true",
                        help=f"rewrite the README's generated sections ({START} …, {DEFAULTS_START} …)")
    args = parser.parse_args(argv)
    for line in rows()[1]:
        print(line, file=sys.stderr)
    if args.readme:
        changed = update_readme()
        print(f"{README}: sections {'rewritten' if changed else 'already up to date'}")
    else:
        print(table())


if __name__ == "__main__":
    main()
