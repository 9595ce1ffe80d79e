"""One large nonlinear time-dependent problem: 2-D Allen–Cahn, hyper-reduced against exact.

``allen_cahn_2d`` (u_t = ε Δu + u − u³ on [-1, 1]² periodic, ε = 0.01) with ``--rows`` interior
collocation rows on a grid and ``--width`` sampled neurons (no pruning: all of them are kept),
its projection assembled and reduced in row blocks of ``--chunk-rows``.  Two contenders, each
in a fresh process (its peak memory is its own), one after the other:

* **hyper**: the nonlinear term at interpolation rows chosen by the Q-DEIM tournament;
* **exact**: the nonlinear term over every row (the rows × k matrices held in memory).

Reported per contender: wall and CPU seconds of the whole solve, peak resident memory, the
relative L2 error on the problem's 65 × 65 × 11 space–time grid against the Fourier–ETDRK4
reference (256² modes; see ``pipeline.pde.reference.allen_cahn_2d_reference``), the CPU
seconds of one right-hand side (median of 25 at the final state, one BLAS thread), and the
ratios exact / hyper.

    python benchmarks/large_evolution.py [--rows 100000] [--width 2000] [--chunk-rows 8000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import entry, markdown_table, measure, run_isolated, write_results  # noqa: E402

SETTINGS = {"weight_scale": 3.0, "bias_scale": 3.0, "prune": 0, "method": "BDF", "rtol": 1e-6, "atol": 1e-8}


def run_contender(spec: dict) -> dict:
    from threadpoolctl import threadpool_limits

    from pipeline.pde import get_problem
    from pipeline.pde.evolution import Evolution

    problem = get_problem("allen_cahn_2d")
    evolution = Evolution(problem, n_interior=spec["rows"], width=spec["width"], chunk_rows=spec["chunk_rows"],
                          hyper_reduction=spec["hyper"], **SETTINGS)
    result, metrics = measure(evolution.run)
    proj = result.projections[0]
    rhs, y = evolution.rhs(proj), result.windows[-1].states[-1]
    t = float(result.windows[-1].times[-1])
    seconds = []
    with threadpool_limits(1):
        for _ in range(25):
            start = time.process_time()
            rhs(t, y)
            seconds.append(time.process_time() - start)
    stats = result.windows[-1].stats
    return {**metrics, "rel_l2": result.error(), "rhs_cpu_s": statistics.median(seconds),
            "rank": proj.rank, "rows": proj.diagnostics["rows"], "width": proj.network.width,
            "hyper_points": proj.diagnostics.get("hyper_points"), "hyper_rhs_error": stats.get("hyper_rhs_error"),
            "rhs_evaluations": stats.get("nfev"), "jacobians": stats.get("njev"), "steps": stats.get("steps"),
            "timings": evolution.timings, "integrate_s": stats["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--chunk-rows", type=int, default=8000)
    parser.add_argument("--only", choices=("hyper", "exact"), help="run one contender")
    args = parser.parse_args()
    rows = []
    for name in ("hyper", "exact"):
        if args.only and name != args.only:
            continue
        spec = {"rows": args.rows, "width": args.width, "chunk_rows": args.chunk_rows, "hyper": name == "hyper"}
        out = run_isolated(__file__, spec, timeout=7200)
        rows.append({"contender": name, **out, "peak_rss_gb": out["peak_rss_bytes"] / 2**30})
        print(rows[-1], flush=True)
    summary = {}
    if len(rows) == 2:
        hyper, exact = rows
        summary = {"rhs_cpu_ratio_exact_over_hyper": exact["rhs_cpu_s"] / hyper["rhs_cpu_s"],
                   "error_ratio_hyper_over_exact": hyper["rel_l2"] / exact["rel_l2"]}
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    path = write_results("large_evolution", {"problem": "allen_cahn_2d", "settings": SETTINGS, "rows_requested": args.rows,
                                             "chunk_rows": args.chunk_rows, "contenders": rows, **summary,
                                             "load_average": load})
    print("\n2-D Allen–Cahn, one member, hyper-reduced vs exact nonlinear term\n")
    print(markdown_table(rows, [("contender", "contender", "s"), ("rows", "rows", "d"), ("width", "neurons", "d"),
                                ("rank", "rank", "d"), ("hyper_points", "interp. rows", "d"),
                                ("wall_s", "wall s", ".0f"), ("cpu_s", "CPU s", ".0f"),
                                ("peak_rss_gb", "peak RSS GB", ".2f"), ("rel_l2", "rel. L2", ".1e"),
                                ("rhs_cpu_s", "CPU s / RHS", ".2e")]))
    if summary:
        print(f"\nRHS CPU exact / hyper: {summary['rhs_cpu_ratio_exact_over_hyper']:.1f}; "
              f"error hyper / exact: {summary['error_ratio_hyper_over_exact']:.2f}")
    print(f"load average {load}; written to {path}")


if __name__ == "__main__":
    entry(run_contender, main)
