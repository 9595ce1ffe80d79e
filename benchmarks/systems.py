"""Systems, nonlinear static problems and the source inversion (issue 14), at their defaults.

    python benchmarks/systems.py [--seeds 4]

Each registry system is solved at its own defaults over seeds 0 … n-1 (the seed draws the
points and the basis); errors are relative L2 on the problem's evaluation grid (never a
collocation point), per field, with the velocity of Kovasznay flow as one vector and its
pressure up to a constant.  The source inversion recovers the source of ``Δu = f`` on the
unit square from 200 uniform random observations of ``u`` (``pipeline.pde.inverse.
source_inversion_case``), noise-free and at 1 % noise (noise seeds 0 … n-1), as a sampled
network (a generic field), as three given functions (the true shape and two distractors:
its form known) and in the lowest Dirichlet eigenfunctions (spectral cut-off; its prior, a
source vanishing on the boundary, also measured on ``f = 16x(1−x)y(1−y)eˣ``, which vanishes
there but is no eigenfunction, and on ``u = x(1−x)y(1−y)e^{x+y}``, whose source does not), and
reports the
source error and the share of the evaluation grid where the error lies within two reported
standard errors.  An information limit beside them: least squares of the observations on the
lowest M × M Dirichlet eigenmodes of the square (the source is then ``Δ`` of the fit; M = 1 is
the truth's own shape, M = 2 four modes), an oracle no generic estimator beats.  Wall and CPU
seconds per solve; the machine's load average.
Results: ``results/systems.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import markdown_table, write_results  # noqa: E402

CASES = [
    ("bratu", {"lam": 1.0, "branch": "lower"}),
    ("bratu", {"lam": 1.0, "branch": "upper"}),
    ("bratu", {"lam": 3.5, "branch": "lower"}),
    ("bratu", {"lam": 3.5, "branch": "upper"}),
    ("nonlinear_poisson", {}),
    ("elasticity_2d", {}),
    ("kovasznay", {}),
]


def _errors(problem, solution) -> dict:
    errors = solution.errors()
    if problem.name == "kovasznay":  # the velocity as one vector field
        x = problem.evaluation_points()
        uv = solution(x)[:, :2]
        ref = np.stack([problem.exact["u"](x), problem.exact["v"](x)], axis=1)
        errors = {"velocity": float(np.linalg.norm(uv - ref) / np.linalg.norm(ref)), "pressure": errors["p"]}
    if problem.name == "elasticity_2d":
        x = problem.evaluation_points()
        ref = np.stack([problem.exact["u1"](x), problem.exact["u2"](x)], axis=1)
        errors = {"displacement": float(np.linalg.norm(solution(x) - ref) / np.linalg.norm(ref))}
    return errors


def run_system(name, params, seed) -> dict:
    from pipeline.pde import get_problem, solve_system

    problem = get_problem(name, **params)
    wall, cpu = time.perf_counter(), time.process_time()
    solution = solve_system(problem, seed=seed)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"errors": _errors(problem, solution), "iterations": len(solution.history), "wall_s": wall, "cpu_s": cpu}


#: a parametric family: the true shape and two distractors (the source's form known up to three amplitudes)
FAMILY = (lambda x: np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1]), lambda x: np.ones(len(x)),
          lambda x: x[:, 0] * (1.0 - x[:, 0]))


def run_inversion(noise, seed, family=False, modes=None, shape="sine") -> dict:
    from pipeline.pde.inverse import estimate_source, source_inversion_case

    problem, observations, truth = source_inversion_case(200, noise, seed, shape=shape)
    wall, cpu = time.perf_counter(), time.process_time()
    estimate = estimate_source(problem, observations, seed=seed, source_functions=FAMILY if family else None,
                               modes=modes)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    x = problem.evaluation_points()
    s, ref = estimate.source(x), truth(x)
    covered = float(np.mean(np.abs(s - ref) <= 2 * estimate.source_std(x)))
    # where the error sits: inside [m, 1 − m]² (the data pin u on the boundary, not f)
    inner = {f"{m:g}": float(np.linalg.norm((s - ref)[k]) / np.linalg.norm(ref[k]))
             for m in (0.1, 0.2) for k in [np.all((x > m) & (x < 1 - m), axis=1)]}
    out = {"errors": {"source": float(np.linalg.norm(s - ref) / np.linalg.norm(ref))}, "inner_errors": inner,
           "within_2se": covered,
           "lambda": estimate.regularisation, "wall_s": wall, "cpu_s": cpu}
    if modes is not None:
        out["modes"] = estimate.diagnostics["modes"]
    if not family:  # the best λ (or K) of the whole path, chosen knowing the truth: what selection could gain
        psi = estimate.source_basis(x)
        path = [float(np.linalg.norm(psi @ a - ref) / np.linalg.norm(ref)) for a in estimate.curve["coefficients"]]
        out["best_lambda_error"] = min(path)
    return out


def run_modal_oracle(noise, seed, modes) -> dict:
    """The source from least squares on the lowest ``modes × modes`` eigenmodes ``sin mπx sin nπy``."""
    from pipeline.pde.inverse import source_inversion_case

    problem, observations, truth = source_inversion_case(200, noise, seed)
    pairs = [(m, n) for m in range(1, modes + 1) for n in range(1, modes + 1)]

    def basis(x):
        return np.stack([np.sin(m * np.pi * x[:, 0]) * np.sin(n * np.pi * x[:, 1]) for m, n in pairs], axis=1)

    wall, cpu = time.perf_counter(), time.process_time()
    coef = np.linalg.lstsq(basis(observations.points), observations.values[:, 0], rcond=None)[0]
    eigenvalues = np.array([-np.pi ** 2 * (m * m + n * n) for m, n in pairs])  # Δ of each mode
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    x = problem.evaluation_points()
    s, ref = basis(x) @ (eigenvalues * coef), truth(x)
    return {"errors": {"source": float(np.linalg.norm(s - ref) / np.linalg.norm(ref))}, "wall_s": wall, "cpu_s": cpu}


def inversion_rows(seeds) -> list[dict]:
    rows = []
    for noise, family in ((0.0, False), (0.01, False), (0.01, True)):
        runs = [run_inversion(noise, seed, family) for seed in range(seeds)]
        label = f"source {'of 3 given functions' if family else 'as a network'}, 200 obs., noise {noise:.0%}"
        rows.append({**summarise(label, runs), "runs": runs})
        rows[-1]["inside_margin"] = {m: float(np.median([r["inner_errors"][m] for r in runs]))
                                    for m in runs[0]["inner_errors"]}
        print(rows[-1]["case"], f"{rows[-1]['source_median']:.2e}", rows[-1]["inside_margin"], flush=True)
    # spectral cut-off: the lowest (up to 20) Dirichlet eigenfunctions, as many as the discrepancy principle
    # needs; its prior (the source vanishes on the boundary) measured on a source that does not ("exp")
    truths = {"sine": "", "bubble": ", f = 16x(1−x)y(1−y)eˣ", "exp": ", u = x(1−x)y(1−y)e^(x+y)"}
    for shape, modes in (("sine", 20), ("bubble", None), ("bubble", 20), ("exp", None), ("exp", 20)):
        runs = [run_inversion(0.01, seed, modes=modes, shape=shape) for seed in range(seeds)]
        what = "as a network" if modes is None else f"in Dirichlet eigenfunctions (up to {modes})"
        label = f"source {what}{truths[shape]}, 200 obs., noise 1%"
        rows.append({**summarise(label, runs), "runs": runs})
        if modes is not None:
            rows[-1]["modes_max"] = int(max(r["modes"] for r in runs))
        print(rows[-1]["case"], f"{rows[-1]['source_median']:.2e}", flush=True)
    for modes in (1, 2):
        runs = [run_modal_oracle(0.01, seed, modes) for seed in range(seeds)]
        rows.append({**summarise(f"oracle: least squares on {modes * modes} sine mode(s), 200 obs., noise 1%", runs),
                     "runs": runs})
        print(rows[-1]["case"], f"{rows[-1]['source_median']:.2e}", flush=True)
    return rows


def summarise(label, runs) -> dict:
    row = {"case": label, "seeds": len(runs)}
    for key in runs[0]["errors"]:
        values = [r["errors"][key] for r in runs]
        row[f"{key}_median"], row[f"{key}_worst"] = float(np.median(values)), float(np.max(values))
    row["cpu_s_median"] = float(np.median([r["cpu_s"] for r in runs]))
    row["wall_s_median"] = float(np.median([r["wall_s"] for r in runs]))
    if "best_lambda_error" in runs[0]:
        values = [r["best_lambda_error"] for r in runs]
        row["best_lambda_error_median"], row["best_lambda_error_worst"] = float(np.median(values)), float(max(values))
    if "within_2se" in runs[0]:
        row["within_2se_median"] = float(np.median([r["within_2se"] for r in runs]))
    if "iterations" in runs[0]:
        row["iterations_max"] = int(max(r["iterations"] for r in runs))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--only-inversion", action="store_true",
                        help="the source inversion alone, replacing its rows in results/systems.json")
    args = parser.parse_args()
    rows, load = [], [os.getloadavg()[0]]
    if args.only_inversion:
        previous = json.loads((Path(__file__).resolve().parent / "results" / "systems.json").read_text())
        rows = [r for r in previous["rows"] if not r["case"].startswith(("source", "oracle"))]
        load = previous["load_average"]
    for name, params in ([] if args.only_inversion else CASES):
        label = name + ("" if not params else " " + ", ".join(f"{k}={v}" for k, v in params.items()))
        runs = [run_system(name, params, seed) for seed in range(args.seeds)]
        rows.append({**summarise(label, runs), "runs": runs})
        load.append(os.getloadavg()[0])
        print(label, {k: f"{v:.2e}" for k, v in rows[-1].items() if k.endswith(("median", "worst")) and "s_" not in k},
              flush=True)
    rows += inversion_rows(args.seeds)
    load.append(os.getloadavg()[0])
    error_columns = sorted({k for r in rows for k in r if k.endswith(("_median", "_worst")) and not
                            k.startswith(("cpu", "wall", "within", "iterations"))})
    table = markdown_table(rows, [("case", "case", "s")] + [(k, k.replace("_", " "), ".1e") for k in error_columns]
                           + [("within_2se_median", "within 2 s.e.", ".2f"), ("iterations_max", "GN its", "d"),
                              ("cpu_s_median", "CPU s", ".2f"), ("wall_s_median", "wall s", ".2f")])
    print(table)
    path = write_results("systems", {"rows": rows, "load_average": load, "table": table})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
