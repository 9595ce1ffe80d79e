"""High dimensions, fast (issue 15, item 2): the 100-dimensional heat equation and Poisson problem.

For each contender a fresh process imports the package (timed), makes a first call (timed
separately: lazy imports, first-touch of LAPACK), then solves seeds 0–7.  Per solve it records
CPU seconds (``time.process_time``: every thread of the process) and wall seconds of the solve
alone; the error is computed afterwards and not timed:

* heat ``u_t = Δu / d`` (``heat_gaussian``, d = 100): relative L2 over the problem's grid of
  2000 points of the ball (seed 2024; collocation points come from other seeds) × 11 times;
  the solve includes the fields on that grid (what ``evolve`` returns).
* Poisson (``poisson_gaussian``, d = 100): relative L2 at the problem's 10 000 evaluation points
  of the ball (seed 2024).

Median and worst over the seeds, the one-minute load average before and after each contender,
and a per-phase CPU breakdown (milliseconds per solve, median over the seeds; phases are
inclusive: "projection" contains its "TSQR").  The problem defaults are compared with the
defaults before issue 15 (``settings`` of the "previous" rows).

    python benchmarks/high_dim.py [--seeds 8] [--only heat|poisson]

Results: ``results/high_dim.json``, and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import entry, markdown_table, run_isolated, write_results

PREVIOUS = {  # the defaults before issue 15, for the same run
    "heat": {"width": 300, "n_interior": 2000, "n_boundary": 1000, "method": "BDF"},
    "poisson": {"width": 1000, "n_interior": 8000, "n_boundary": 3000},
}
CONTENDERS = [
    {"problem": "heat", "label": "defaults", "settings": {}},
    {"problem": "heat", "label": "previous defaults (BDF)", "settings": PREVIOUS["heat"]},
    {"problem": "poisson", "label": "defaults", "settings": {}},
    {"problem": "poisson", "label": "previous defaults", "settings": PREVIOUS["poisson"]},
]
TARGET = 4e-4  # relative L2 (the seed paper's heat d = 100: 4.12e-4 in 0.13 s)
CPU_TARGET = 0.3  # CPU seconds per solve


def _phases():
    """Wrap the solvers' phases with CPU-time accumulators; returns the dict they fill."""
    from pipeline.pde import evolution, projection, static

    acc = collections.defaultdict(float)

    def wrap(owner, name, label):
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                acc[label] += time.process_time() - start

        setattr(owner, name, timed)

    for owner, name, label in [
        (evolution, "compute", "sampling (graph)"), (evolution.Evolution, "_collocation", "collocation points"),
        (evolution, "build_projection", "projection: assembly, TSQR, SVD, forcing series"),
        (projection, "_forcing_series", "  forcing series in time"), (projection, "compute", "  TSQR (graph)"),
        (projection.Projection, "fit", "initial fit (in-process TSQR)"), (evolution, "integrate", "integration"),
        (evolution.ExactFlow, "sampler", "  dense sampler (eig, Sylvester)"), (evolution, "fit_dense", "dense fit"),
        (projection.Projection, "evaluator", "fields at the output points"),
        (projection, "reduce_in_process", "  TSQR (in-process)"),
        (static, "sample_network", "sampling (graph building)"), (static, "_balance_weights", "boundary weights"),
        (static, "assemble_rows", "assembly (graph building)"), (static, "compute", "graphs run (sampling, TSQR)"),
        (static, "active_subspace", "active subspace"), (static.LeastSquaresFactor, "solve", "SVD solve"),
    ]:
        wrap(owner, name, label)
    return acc


def run_contender(spec: dict) -> dict:
    """One problem and setting in this (fresh) process: imports, first call, seeds."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    import numpy as np

    from pipeline.pde import evolve, get_problem, solve_static

    imports = {"cpu_s": time.process_time() - start_cpu, "wall_s": time.perf_counter() - start_wall}
    load_before = os.getloadavg()[0]
    if spec["problem"] == "heat":
        problem = get_problem("heat_gaussian", dim=100)

        def solve(seed):
            return evolve(problem, seed=seed, **spec["settings"])
    else:
        problem = get_problem("poisson_gaussian", dim=100)

        def solve(seed):
            return solve_static(problem, seed=seed, **spec["settings"])

    def timed(seed):
        wall, cpu = time.perf_counter(), time.process_time()
        out = solve(seed)
        return out, time.process_time() - cpu, time.perf_counter() - wall

    result, cpu, wall = timed(0)  # the first call after the imports
    first = {"cpu_s": cpu, "wall_s": wall, "rel_l2": result.error()}
    acc = _phases() if spec.get("phases", True) else {}
    runs = []
    for seed in range(spec["seeds"]):
        acc_before = dict(acc)
        result, cpu, wall = timed(seed)
        runs.append({"seed": seed, "cpu_s": cpu, "wall_s": wall, "rel_l2": result.error(),  # error not timed
                     "phases_ms": {k: 1e3 * (v - acc_before.get(k, 0.0)) for k, v in acc.items()}})
    settings = dict(result.settings)
    errors, cpus, walls = (np.array([r[key] for r in runs]) for key in ("rel_l2", "cpu_s", "wall_s"))
    labels = sorted({k for r in runs for k in r["phases_ms"]})
    phases = {k: float(np.median([r["phases_ms"].get(k, 0.0) for r in runs])) for k in labels}
    return {
        **spec, "imports": imports, "first_call": first, "runs": runs, "phases_ms_median": phases,
        "median_rel_l2": float(np.median(errors)), "worst_rel_l2": float(errors.max()),
        "median_cpu_s": float(np.median(cpus)), "worst_cpu_s": float(cpus.max()),
        "median_wall_s": float(np.median(walls)), "worst_wall_s": float(walls.max()),
        "load_1min_before": load_before, "load_1min_after": os.getloadavg()[0],
        "resolved_settings": {k: str(v) for k, v in settings.items() if k in (
            "width", "n_interior", "n_boundary", "method", "rtol", "active_directions", "activation", "sampler")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--only", choices=("heat", "poisson"))
    args = parser.parse_args()
    rows = []
    for spec in CONTENDERS:
        if args.only and spec["problem"] != args.only:
            continue
        out = run_isolated(__file__, {**spec, "seeds": args.seeds})
        rows.append(out)
        print(f"  {out['problem']} {out['label']}: median {out['median_rel_l2']:.2e}, worst {out['worst_rel_l2']:.2e}; "
              f"{out['median_cpu_s']:.3f} CPU-s median ({out['median_wall_s']:.3f} s wall), first call "
              f"{out['first_call']['cpu_s']:.2f} CPU-s; load {out['load_1min_before']:.2f}", file=sys.stderr, flush=True)
    path = write_results("high_dim", {"target_rel_l2": TARGET, "target_cpu_s": CPU_TARGET, "seeds": args.seeds,
                                      "rows": rows})
    table = [{"problem": f"{r['problem']} d = 100", "setting": r["label"],
              "basis": f"{r['resolved_settings'].get('width')} / {r['resolved_settings'].get('n_interior')} + "
                       f"{r['resolved_settings'].get('n_boundary')}",
              "median": r["median_rel_l2"], "worst": r["worst_rel_l2"], "cpu": r["median_cpu_s"],
              "cpu_worst": r["worst_cpu_s"], "wall": r["median_wall_s"], "first_cpu": r["first_call"]["cpu_s"],
              "first_wall": r["first_call"]["wall_s"], "imports": r["imports"]["wall_s"],
              "load": f"{r['load_1min_before']:.2f}–{r['load_1min_after']:.2f}"} for r in rows]
    print(f"\nd = 100, seeds 0–{args.seeds - 1} (relative L2 at points no solve saw; CPU = all threads)\n")
    print(markdown_table(table, [("problem", "problem", ""), ("setting", "setting", ""),
                                 ("basis", "width / points", ""), ("median", "median rel. L2", ".2e"),
                                 ("worst", "worst", ".2e"), ("cpu", "CPU-s median", ".3f"),
                                 ("cpu_worst", "CPU-s worst", ".3f"), ("wall", "wall s median", ".3f"),
                                 ("first_cpu", "first call CPU-s", ".2f"), ("first_wall", "first call wall s", ".2f"),
                                 ("imports", "imports wall s", ".2f"), ("load", "load 1 min", "")]))
    for r in rows:
        print(f"\nphases, {r['problem']} {r['label']} (CPU ms per solve, median; inclusive):")
        for k, v in r["phases_ms_median"].items():
            if v >= 0.05:
                print(f"  {k:52s} {v:8.1f}")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    entry(run_contender, main)
