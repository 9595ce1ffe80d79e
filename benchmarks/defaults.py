"""The registry problems at their own defaults across their parameter ranges.

Every problem carries solver ``defaults`` chosen to meet its accuracy target; this script
solves each one, with nothing but its parameters set, over the range the README quotes and
reports the relative L2 error on the problem's own evaluation points (space–time grid for
time-dependent problems) with wall and CPU seconds (all threads of this process).

    python benchmarks/defaults.py [--problems NAME ...]

The heavier rows live in the other scripts: Σ-sine Poisson d = 10 and the ridge bases of the
Gaussian problems in ``static_pde.py`` / ``evolution_pde.py``.  Results go to
``results/defaults.json`` (or ``results/defaults_<names>.json`` for a selection).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import markdown_table, write_results  # noqa: E402

#: problem -> the parameter sets solved (each at the problem's defaults)
SWEEPS = {
    "advection": [{"beta": 1.0}, {"beta": 40.0}, {"beta": 1000.0}, {"beta": 10000.0}, {"beta": 1.0, "T": 1000.0}],
    "heat_1d": [{"nu": 0.01}, {"nu": 0.1}, {"nu": 1.0}],
    "burgers": [{"nu": 0.01 / math.pi}, {"nu": 0.1 / math.pi}],
    "reaction_logistic": [{"rho": 2.0}, {"rho": 5.0}],
    "kdv_soliton": [{"c": 1.0}, {"c": 2.0}],
    "allen_cahn": [{"eps": 1e-4}, {"eps": 1e-3}],
    "allen_cahn_2d": [{"eps": 0.01}, {"eps": 0.02}],
    "helmholtz_sin": [{"k": 1.0}, {"k": 4.0}, {"k": 10.0}],
    "heat_gaussian": [{"dim": 2}, {"dim": 10}, {"dim": 100}],
    "poisson_gaussian": [{"dim": 10}, {"dim": 50}, {"dim": 100}, {"dim": 100, "sigma": 0.5}, {"dim": 100, "sigma": 2.0}],
}


def _label(params: dict) -> str:
    def fmt(k, v):
        if k == "nu" and v in (0.01 / math.pi, 0.1 / math.pi):
            return f"nu={v * math.pi:g}/pi"
        return f"{k}={v:g}"

    return ", ".join(fmt(k, v) for k, v in params.items())


def run(name: str, params: dict) -> dict:
    from pipeline.pde import PROBLEMS, evolve, get_problem, solve_static

    problem = get_problem(name, **params)
    solve = evolve if PROBLEMS[name].kind == "evolution" else solve_static
    wall, cpu = time.perf_counter(), time.process_time()
    solution = solve(problem)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"problem": name, "params": _label(params), "rel_l2": solution.error(), "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", choices=list(SWEEPS), help="only these problems")
    args = parser.parse_args()
    rows = []
    for name in args.problems or SWEEPS:
        for params in SWEEPS[name]:
            rows.append(run(name, params))
            print(f"  {name} {rows[-1]['params']}: {rows[-1]['rel_l2']:.2e} in {rows[-1]['wall_s']:.1f} s",
                  file=sys.stderr)
    path = write_results("defaults" if not args.problems else "defaults_" + "_".join(args.problems), {"rows": rows})
    print("\nRegistry problems at their defaults (relative L2 on each problem's evaluation points)\n")
    print(markdown_table(rows, [("problem", "problem", ""), ("params", "parameters", ""), ("rel_l2", "rel. L2", ".2e"),
                                ("wall_s", "wall s", ".1f"), ("cpu_s", "CPU s", ".1f")]))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
