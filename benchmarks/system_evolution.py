"""Time-dependent systems and the inverse problem of their constants (issue 14).

* **Brusselator** (``brusselator``, [0, 2π] periodic, t ∈ [0, 2]) at its defaults, seeds 0–7:
  relative L2 of u and v on 201 points × 11 times against the Fourier reference.
* **Cubic Schrödinger** (``schrodinger``) at its defaults, seeds 0–7: relative L2 of |h| (and of
  u = Re h, v = Im h) on 256 points offset from any collocation point × 21 times of [0, π/2]
  against split-step Fourier (``pipeline.pde.system_references``).
* **Inverse**: D_u, D_v, a, b of the Brusselator from gridded observations (32 points × 10 times
  of (0, 2], from the Fourier reference at the true values), start 30 % off, by
  ``estimate_parameters``: noise-free, and at 1 % Gaussian noise (of each field's RMS) for
  ``--noise-seeds`` realisations, with the standard errors and how many estimates lie within
  1, 2 and 3 of them.
* **DeepXDE** PINN on the same data (``deepxde`` with a backend), else one line saying it was skipped.

CPU seconds (this process; one BLAS thread) and wall seconds per item; the load average before
and after, since the machine is shared.

    python benchmarks/system_evolution.py [--seeds 8] [--noise-seeds 4] [--deepxde-iterations 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _harness import markdown_table, write_results

from pipeline.pde.system_evolution_problems import BRUSSELATOR_CONSTANTS

TRUE = BRUSSELATOR_CONSTANTS
T_END = 2.0


def timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def observations(noise: float, seed: int):
    from pipeline.pde import gridded_observations
    from pipeline.pde.system_evolution_problems import brusselator_grid

    return gridded_observations(*brusselator_grid(noise, T_END, seed))


def forward(name: str, seeds: int, key: str) -> dict:
    from pipeline.pde import evolve_system, get_problem

    problem = get_problem(name)
    problem.truth[problem.fields[0]](np.zeros((1, 1)), 0.0)  # build the cached reference outside the timing
    rows = []
    for seed in range(seeds):
        result, cpu, wall = timed(evolve_system, problem, seed=seed)
        errors = result.errors()
        d = result.diagnostics
        rows.append({"seed": seed, **{f"rel_l2_{k}": v for k, v in errors.items()}, "cpu_s": cpu, "wall_s": wall,
                     "rank": d["rank"], "rhs_evaluations": d["rhs_evaluations"],
                     "spectral_radius": d.get("spectral_radius")})
        print(name, rows[-1], flush=True)
    errors = [r[f"rel_l2_{key}"] for r in rows]
    return {"problem": name, "settings": dict(problem.defaults), "rows": rows, "measure": key,
            "median_rel_l2": statistics.median(errors), "worst_rel_l2": max(errors),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in rows)}


def inverse(noise: float, seed: int) -> dict:
    from pipeline.pde import estimate_parameters, get_problem

    start = {k: v * (1.3 if i % 2 == 0 else 0.7) for i, (k, v) in enumerate(TRUE.items())}
    result, cpu, wall = timed(estimate_parameters, get_problem("brusselator", T=T_END), observations(noise, seed),
                              start)
    est, se = result.estimates, result.standard_errors
    row = {"noise": noise, "noise_seed": seed, "start": start, "estimates": est, "standard_errors": se,
           "relative_errors": {k: abs(est[k] - v) / v for k, v in TRUE.items()},
           "z": {k: (est[k] - v) / se[k] for k, v in TRUE.items()}, "sigma": result.sigma,
           "iterations": result.iterations, "forward_solves": result.forward_solves, "cpu_s": cpu, "wall_s": wall}
    print("inverse", {k: row[k] for k in ("noise", "noise_seed", "relative_errors", "z", "iterations", "cpu_s")},
          flush=True)
    return row


def deepxde(iterations: int) -> dict:
    """DeepXDE's PINN on the same 1 % observations (backend from DDE_BACKEND); skipped without it."""
    try:
        import deepxde as dde
    except Exception as error:  # noqa: BLE001  (not installed, or no backend (torch / tensorflow / jax / paddle))
        return {"skipped": True,
                "reason": f"DeepXDE comparison skipped: deepxde is not importable here ({type(error).__name__}: {error})"}
    from pipeline.pde.system_references import brusselator_initial

    obs = observations(0.01, 0)
    xt = np.column_stack([obs.points[:, 0], obs.times])
    variables = {k: dde.Variable(v * (1.3 if i % 2 == 0 else 0.7)) for i, (k, v) in enumerate(TRUE.items())}

    def pde(x, y):
        u, v = y[:, 0:1], y[:, 1:2]
        du_t, dv_t = dde.grad.jacobian(y, x, i=0, j=1), dde.grad.jacobian(y, x, i=1, j=1)
        du_xx, dv_xx = dde.grad.hessian(y, x, component=0, i=0, j=0), dde.grad.hessian(y, x, component=1, i=0, j=0)
        p = variables
        return [du_t - (p["D_u"] * du_xx + p["a"] - (p["b"] + 1) * u + u * u * v),
                dv_t - (p["D_v"] * dv_xx + p["b"] * u - u * u * v)]

    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(0, 2 * np.pi), dde.geometry.TimeDomain(0, T_END))
    conditions = [dde.icbc.PeriodicBC(geom, 0, lambda _, on: on, derivative_order=k, component=c)
                  for c in (0, 1) for k in (0, 1)]
    def initial(c):  # one argument: DeepXDE passes auxiliary variables to two-argument functions
        return lambda x: brusselator_initial(x[:, 0])[c][:, None]

    conditions += [dde.icbc.IC(geom, initial(c), lambda _, on: on, component=c) for c in (0, 1)]
    conditions += [dde.icbc.PointSetBC(xt, obs.values[:, c:c + 1], component=c) for c in (0, 1)]
    data = dde.data.TimePDE(geom, pde, conditions, num_domain=2000, num_boundary=100, num_initial=200, anchors=xt)
    model = dde.Model(data, dde.nn.FNN([2] + [40] * 3 + [2], "tanh", "Glorot normal"))
    model.compile("adam", lr=1e-3, external_trainable_variables=list(variables.values()))
    record = dde.callbacks.VariableValue(list(variables.values()), period=max(1, iterations // 10))
    _, cpu, wall = timed(model.train, iterations=iterations, callbacks=[record], display_every=max(1, iterations // 10))
    est = dict(zip(variables, (float(v) for v in record.value)))
    return {"skipped": False, "iterations": iterations, "estimates": est, "cpu_s": cpu, "wall_s": wall,
            "relative_errors": {k: abs(est[k] - v) / v for k, v in TRUE.items()}}


def main() -> None:
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--noise-seeds", type=int, default=4)
    parser.add_argument("--deepxde-iterations", type=int, default=20000)
    args = parser.parse_args()
    load_before = os.getloadavg()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with threadpool_limits(1):
        forward("brusselator", 1, "u")  # imports and first graphs
        brusselator = forward("brusselator", args.seeds, "u")
        schrodinger = forward("schrodinger", args.seeds, "h_abs")
        clean = inverse(0.0, 0)
        noisy = [inverse(0.01, seed) for seed in range(args.noise_seeds)]
    pinn = deepxde(args.deepxde_iterations)
    z = np.array([list(r["z"].values()) for r in noisy])
    within = {f"within_{k}_se": float(np.mean(np.abs(z) < k)) for k in (1, 2, 3)}
    payload = {"seeds": args.seeds, "brusselator": brusselator, "schrodinger": schrodinger,
               "inverse": {"true": TRUE, "noise_free": clean, "one_percent": noisy, **within}, "deepxde": pinn,
               "load_average_before": load_before, "load_average_after": os.getloadavg(),
               "total_cpu_s": time.process_time() - cpu0, "total_wall_s": time.perf_counter() - wall0}
    path = write_results("system_evolution", payload)
    print(f"\nForward, seeds 0–{args.seeds - 1}, one BLAS thread\n")
    print(markdown_table([{**brusselator, "problem": "brusselator (u)"}, {**schrodinger, "problem": "schrodinger (|h|)"}],
                         [("problem", "problem", "s"), ("median_rel_l2", "median rel. L2", ".1e"),
                          ("worst_rel_l2", "worst rel. L2", ".1e"), ("median_cpu_s", "median CPU s", ".2f")]))
    rows = []
    for r in [clean] + noisy:
        for k, v in TRUE.items():
            rows.append({"noise": f"{r['noise']:.0%} (seed {r['noise_seed']})", "param": k, "true": v,
                         "estimate": r["estimates"][k], "se": r["standard_errors"][k],
                         "rel": r["relative_errors"][k], "z": r["z"][k], "cpu": r["cpu_s"]})
    print("\nBrusselator constants from 32 × 10 gridded observations, start 30 % off\n")
    print(markdown_table(rows, [("noise", "noise", "s"), ("param", "parameter", "s"), ("true", "true", "g"),
                                ("estimate", "estimate", ".8g"), ("se", "std. error", ".1e"),
                                ("rel", "rel. error", ".1e"), ("z", "error / se", ".2f"), ("cpu", "CPU s", ".1f")]))
    print(f"\nat 1 %: {within}")
    print(pinn["reason"] if pinn["skipped"] else f"DeepXDE PINN: {pinn}")
    print(f"load average before {load_before}, after {payload['load_average_after']}; "
          f"total CPU {payload['total_cpu_s']:.1f} s, wall {payload['total_wall_s']:.1f} s\nwritten to {path}")


if __name__ == "__main__":
    main()
