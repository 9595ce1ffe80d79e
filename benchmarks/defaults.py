"""The registry problems at their own defaults, over seeds, across their parameter ranges and a step beyond.

Every problem carries solver ``defaults`` chosen to meet its accuracy ``target`` (a field of the
problem, where it is defined); this script solves each one, with nothing but its parameters and
the seed set, for seeds 0 … N-1 over the range the README quotes (``SWEEPS``), and once more one
step beyond that range (``BEYOND``).  Per parameter set: the median and worst relative L2 error
on the problem's own evaluation points (space–time grid for time-dependent problems), the median
and worst CPU seconds of the solve (all threads of this process), the target and how many seeds
meet it.  A parameter set meets its target when its worst seed does; a beyond set degrades
gracefully when nothing raised and its worst seed is within ``GRACEFUL``× the target.  An
exception is recorded as a failure of that seed, with its message, and the sweep goes on.

    python benchmarks/defaults.py [--seeds N] [--problems NAME ... [--merge]]
    python benchmarks/defaults.py --readme      # the README's defaults section from the JSON, no solve

Results go to ``results/defaults.json`` (or ``results/defaults_<names>.json`` for a selection;
``--merge --problems NAME …`` instead replaces those problems' rows of ``defaults.json`` after a
change of their defaults, the rerun noted under ``reruns``), with the load average at the start
and the end; the README's table between
``<!-- defaults:start -->`` and ``<!-- defaults:end -->`` is generated from it
(``benchmarks/summary.py``: ``defaults_section``).  The ridge bases of the Gaussian problems are
measured in ``static_pde.py`` / ``evolution_pde.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import write_results  # noqa: E402

#: problem -> the parameter sets solved (each at the problem's defaults); {} = the problem as registered.
#: Not here: advection_diffusion (its defaults are sized for a partition, 6000 neurons over 200
#: wavelengths: ``large_domain.py``) and the system problems (seeds 0-7 in ``systems.py``,
#: ``system_evolution.py``).
SWEEPS = {
    "advection": [{"beta": 1.0}, {"beta": 40.0}, {"beta": 1000.0}, {"beta": 10000.0}, {"beta": 1.0, "T": 1000.0}],
    "heat_1d": [{"nu": 0.01}, {"nu": 0.1}, {"nu": 1.0}],
    "heat_2d": [{}],
    "diffusion_reaction": [{}],
    "wave_1d": [{}],
    "beam_dynamic": [{}],
    "burgers": [{"nu": 0.01 / math.pi}, {"nu": 0.1 / math.pi}],
    "reaction_logistic": [{"rho": 2.0}, {"rho": 5.0}],
    "kdv_soliton": [{"c": 1.0}, {"c": 2.0}],
    "allen_cahn": [{"eps": 1e-4}, {"eps": 1e-3}],
    "allen_cahn_2d": [{"eps": 0.01}, {"eps": 0.02}],
    "poisson_sin2d": [{}],
    "beam_static": [{}],
    "poisson_periodic": [{}],
    "poisson_mixed": [{}],
    "poisson_lshape": [{}],
    "poisson_waves": [{"waves": 2.0}, {"waves": 4.0}, {"waves": 6.0}],
    "helmholtz_sin": [{"k": 1.0}, {"k": 4.0}, {"k": 10.0}],
    # the width grows with d: d = 3 takes a second, d = 10 ~1.5 CPU-min a seed
    "poisson_sum_sin": [{"dim": 3}, {"dim": 6}, {"dim": 10}],
    "heat_gaussian": [{"dim": 2}, {"dim": 10}, {"dim": 100}],
    "poisson_gaussian": [{"dim": 10}, {"dim": 50}, {"dim": 100}, {"dim": 100, "sigma": 0.5}, {"dim": 100, "sigma": 2.0}],
}

#: problem -> one parameter set a step beyond the documented range, solved like the others.
#: None where a step beyond does not make sense or is not affordable (a few seconds a seed):
BEYOND = {
    "advection": {"beta": 1e5},  # 25 windows of the exact propagator
    "heat_1d": {"nu": 10.0},  # the fast mode decays by e^-888 over the span
    "burgers": {"nu": 0.005 / math.pi},  # a front twice as steep
    "reaction_logistic": {"rho": 10.0},
    "kdv_soliton": {"c": 3.0},
    "allen_cahn": {"eps": 5e-5},
    "allen_cahn_2d": {"eps": 0.005},  # interfaces ~0.1 wide
    "poisson_waves": {"waves": 8.0},  # the width's cap (4000); beyond it: a partition (large_domain.py)
    "helmholtz_sin": {"k": 14.0},
    "heat_gaussian": {"dim": 150},
    "poisson_gaussian": {"dim": 150},
    # d = 12: the width's cap (6000) and ~3 CPU-min a seed: measured once, not in the 8-seed sweep
    "poisson_sum_sin": None,
    # no parameter to step beyond (poisson_lshape's `enrich` is a switch)
    **{name: None for name in ("heat_2d", "diffusion_reaction", "wave_1d", "beam_dynamic", "poisson_sin2d",
                               "beam_static", "poisson_periodic", "poisson_mixed", "poisson_lshape")},
}

GRACEFUL = 10.0  # a beyond row degrades gracefully within this factor of the target


def _label(params: dict) -> str:
    def fmt(k, v):
        if k == "nu" and math.isclose(v * math.pi, round(v * math.pi, 3), rel_tol=1e-12):
            return f"nu={v * math.pi:g}/pi"
        return f"{k}={v:g}"

    return ", ".join(fmt(k, v) for k, v in params.items()) or "defaults"


def solve_once(name: str, params: dict, seed: int) -> dict:
    """One solve at the problem's defaults with ``seed``: its error and seconds, or the exception it raised."""
    from pipeline.pde import PROBLEMS, evolve, get_problem, solve_static

    out = {"seed": seed}
    try:
        problem = get_problem(name, **params)
        solve = evolve if PROBLEMS[name].kind == "evolution" else solve_static
        wall, cpu = time.perf_counter(), time.process_time()
        solution = solve(problem, seed=seed)
        out.update(wall_s=time.perf_counter() - wall, cpu_s=time.process_time() - cpu)
        error = float(solution.error())
        if not math.isfinite(error):
            raise FloatingPointError(f"the error on the evaluation points is {error}")
        out["rel_l2"] = error
    except Exception as exc:  # noqa: BLE001 - a failure of this seed is a result, not the end of the sweep
        out.update(error_type=type(exc).__name__, error=str(exc)[:300])
    return out


def summarise(name: str, params: dict, runs: list[dict], *, beyond: bool) -> dict:
    """Median and worst over the seeds, the target and whether the worst seed meets it."""
    from pipeline.pde import get_problem

    target = get_problem(name, **params).target
    done = [r for r in runs if "rel_l2" in r]
    errors = np.array([r["rel_l2"] for r in done])
    cpus = np.array([r["cpu_s"] for r in done])
    failures = len(runs) - len(done)
    worst = float(errors.max()) if done else None
    row = {
        "problem": name, "params": _label(params), "parameters": params, "beyond": beyond, "target": target,
        "n_seeds": len(runs), "runs": runs, "failures": failures,
        "median_rel_l2": float(np.median(errors)) if done else None, "worst_rel_l2": worst,
        "median_cpu_s": float(np.median(cpus)) if done else None, "worst_cpu_s": float(cpus.max()) if done else None,
        "median_wall_s": float(np.median([r["wall_s"] for r in done])) if done else None,
        "seeds_meeting_target": None if target is None else int((errors <= target).sum()),
        "meets_target": None if target is None else bool(not failures and worst <= target),
    }
    if beyond and target is not None:
        row["worst_over_target"] = None if worst is None else worst / target
        row["graceful"] = bool(not failures and worst <= GRACEFUL * target)
    return row


def _load() -> dict:
    """The load average and ``uptime``'s line, now."""
    try:
        line = subprocess.run(["uptime"], capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        line = ""
    return {"loadavg": list(os.getloadavg()), "uptime": line}


def sweep(names: list[str], n_seeds: int, *, beyond: bool = True) -> list[dict]:
    rows = []
    for name in names:
        sets = [(p, False) for p in SWEEPS[name]]
        if beyond and BEYOND.get(name) is not None:
            sets.append((BEYOND[name], True))
        for params, is_beyond in sets:
            runs = [solve_once(name, params, seed) for seed in range(n_seeds)]
            rows.append(summarise(name, params, runs, beyond=is_beyond))
            r = rows[-1]
            errors = "failed" if r["median_rel_l2"] is None else (
                f"median {r['median_rel_l2']:.2e}, worst {r['worst_rel_l2']:.2e}")
            print(f"  {name} {r['params']}{' (beyond)' if is_beyond else ''}: {errors}, target {r['target']}, "
                  f"{r['seeds_meeting_target']}/{n_seeds} meet it, {r['failures']} raised; "
                  f"{r['median_cpu_s'] or 0:.2f} CPU-s median", file=sys.stderr, flush=True)
    return rows


def merged(problems, payload: dict) -> dict:
    """``results/defaults.json`` with the rows of ``problems`` replaced by ``payload``'s, in place,
    and the rerun (when, load, command) noted under ``reruns``."""
    full = json.loads((Path(__file__).resolve().parent / "results" / "defaults.json").read_text())
    first = next((i for i, r in enumerate(full["rows"]) if r["problem"] in problems), len(full["rows"]))
    rest = [r for r in full["rows"] if r["problem"] not in problems]
    keep = sum(1 for r in full["rows"][:first] if r["problem"] not in problems)
    full["rows"] = rest[:keep] + payload["rows"] + rest[keep:]
    full.setdefault("reruns", []).append({
        "problems": list(problems), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average": payload["load_average"], "uptime": payload["uptime"],
        "command": "python benchmarks/defaults.py --merge --problems " + " ".join(problems)})
    return full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", choices=list(SWEEPS), help="only these problems")
    parser.add_argument("--seeds", type=int, default=8, help="seeds 0 … N-1 for every parameter set (default 8)")
    parser.add_argument("--no-beyond", action="store_true", help="skip the parameter sets beyond the ranges")
    parser.add_argument("--merge", action="store_true",
                        help="with --problems: replace those problems' rows of results/defaults.json (noted under "
                             "'reruns') instead of writing results/defaults_<names>.json")
    parser.add_argument("--readme", action="store_true",
                        help="rewrite the README's defaults section from results/defaults.json (nothing solved)")
    args = parser.parse_args()
    import summary

    if args.readme:
        changed = summary.update_readme(sections=("defaults",))
        print(f"{summary.README}: defaults section {'rewritten' if changed else 'already up to date'}")
        return
    from pipeline.pde import evolve, get_problem

    evolve(get_problem("heat_1d"), width=20, n_interior=50)  # imports and first-call set-up, out of the rows
    load_start, start = _load(), time.perf_counter()
    rows = sweep(args.problems or list(SWEEPS), args.seeds, beyond=not args.no_beyond)
    total, load_end = time.perf_counter() - start, _load()
    payload = {"seeds": list(range(args.seeds)), "graceful_factor": GRACEFUL, "total_wall_s": total,
               "load_average": {"start": load_start["loadavg"], "end": load_end["loadavg"]},
               "uptime": {"start": load_start["uptime"], "end": load_end["uptime"]},
               "beyond_skipped": sorted(n for n in (args.problems or SWEEPS) if BEYOND.get(n) is None),
               "rows": rows}
    if args.merge and args.problems:
        path = write_results("defaults", merged(args.problems, payload))
    else:
        path = write_results("defaults" if not args.problems else "defaults_" + "_".join(args.problems), payload)
    print("\nRegistry problems at their defaults (relative L2 on each problem's evaluation points)\n")
    print(summary.defaults_table(payload))
    missed = [f"{r['problem']} {r['params']}" for r in rows if not r["beyond"] and r["meets_target"] is False]
    rough = [f"{r['problem']} {r['params']}" for r in rows if r["beyond"] and r.get("graceful") is False]
    print(f"\n{total:.0f} s; load average {load_start['loadavg'][0]:.2f} → {load_end['loadavg'][0]:.2f}")
    print(f"missing their target: {', '.join(missed) or 'none'}; beyond, not graceful: {', '.join(rough) or 'none'}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
