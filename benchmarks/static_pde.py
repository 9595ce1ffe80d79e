"""Static PDEs: sampled networks against finite differences (and DeepXDE where installed).

1. Poisson ``Δu = -2π² sin(πx) sin(πy)`` on [0, 1]², ``u = 0`` on the boundary: the sampled
   network at three sizes against the 5-point finite-difference solve (``scipy.sparse``) at
   three grid sizes — relative L2 error and CPU seconds, error reached per CPU second.  The
   sampled solution is measured on the 101 × 101 grid, finite differences at their own
   nodes (their best case).  DeepXDE (2-50-50-50-1 tanh, 10k Adam) runs when it is installed
   (``pip install deepxde torch``); otherwise its row is skipped.
2. The L-shape ``-Δu = 1``: a convergence table (width against the error to the
   finite-difference reference) with the plain basis — limited by the r^{2/3} corner
   singularity — and with the singular function added to the basis.
3. High dimensions: Σ sin(π x_i / 2) in d = 10 and the Gaussian in d = 100.

    python benchmarks/static_pde.py [--skip-high-dim] [--deepxde-iterations 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402

from _harness import RESULTS, markdown_table, write_results  # noqa: E402


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def finite_differences(n: int) -> float:
    """5-point Poisson solve on the (n-1)² interior nodes of [0, 1]²; rel. L2 error at the nodes."""
    h = 1.0 / n
    x = np.arange(1, n) * h
    X, Y = np.meshgrid(x, x, indexing="ij")
    exact = np.sin(np.pi * X) * np.sin(np.pi * Y)
    t = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n - 1, n - 1)) / h**2
    a = sp.kronsum(t, t, format="csc")
    u = spla.spsolve(a, (2 * np.pi**2 * exact).ravel())
    return float(np.linalg.norm(u - exact.ravel()) / np.linalg.norm(exact))


def deepxde_poisson(iterations: int):
    """DeepXDE's PINN on the same problem, or None when DeepXDE is not installed."""
    try:
        import deepxde as dde
    except Exception:  # noqa: BLE001 - not installed, or no backend
        return None

    geom = dde.geometry.Rectangle([0, 0], [1, 1])

    def pde(x, u):
        return dde.grad.hessian(u, x, i=0, j=0) + dde.grad.hessian(u, x, i=1, j=1) + \
            2 * np.pi**2 * dde.backend.sin(np.pi * x[:, 0:1]) * dde.backend.sin(np.pi * x[:, 1:2])

    bc = dde.icbc.DirichletBC(geom, lambda x: 0, lambda _, on_boundary: on_boundary)
    data = dde.data.PDE(geom, pde, bc, num_domain=2000, num_boundary=400)
    net = dde.nn.FNN([2, 50, 50, 50, 1], "tanh", "Glorot uniform")
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    model.train(iterations=iterations, display_every=iterations)
    axis = np.linspace(0, 1, 101)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    exact = np.sin(np.pi * grid[:, 0]) * np.sin(np.pi * grid[:, 1])
    u = model.predict(grid).ravel()
    return float(np.linalg.norm(u - exact) / np.linalg.norm(exact))


def poisson_table(deepxde_iterations: int) -> list[dict]:
    from pipeline.pde import get_problem, solve_static

    rows = []
    for n in (32, 128, 512):
        err, wall, cpu = _timed(lambda: finite_differences(n))
        rows.append({"method": "finite differences (5-point, spsolve)", "size": f"{n - 1}² unknowns",
                     "rel_l2": err, "wall_s": wall, "cpu_s": cpu})
    problem = get_problem("poisson_sin2d")
    for width, n_int, n_bnd in ((300, 1500, 400), (800, 3500, 800), (1500, 6000, 1200)):
        sol, wall, cpu = _timed(lambda: solve_static(problem, width=width, n_interior=n_int, n_boundary=n_bnd))
        rows.append({"method": "sampled network (U-SWIM tanh)", "size": f"width {width}, {n_int + n_bnd} rows",
                     "rel_l2": sol.error(), "wall_s": wall, "cpu_s": cpu})
    err, wall, cpu = _timed(lambda: deepxde_poisson(deepxde_iterations))
    if err is None:
        print("DeepXDE is not installed: its row is skipped (pip install deepxde torch)", file=sys.stderr)
    else:
        rows.append({"method": f"DeepXDE PINN 2-50-50-50-1, {deepxde_iterations} Adam", "size": "2400 points",
                     "rel_l2": err, "wall_s": wall, "cpu_s": cpu})
    for r in rows:
        r["error_per_cpu_s"] = r["rel_l2"] * r["cpu_s"]
    return rows


def lshape_table() -> list[dict]:
    from pipeline.pde import get_problem, solve_static

    rows = []
    for enrich in (False, True):
        problem = get_problem("poisson_lshape", enrich=enrich)
        for width in (200, 400, 800, 1600, 3200):
            sol, wall, cpu = _timed(lambda: solve_static(problem, width=width, n_interior=max(4 * width, 3000),
                                                          n_boundary=max(width, 1000)))
            rows.append({"basis": "U-SWIM tanh" + (" + r^(2/3) corner function" if enrich else ""),
                         "width": width, "rel_l2": sol.error(), "rank": sol.rank, "cpu_s": cpu, "wall_s": wall})
    for enrich in (False, True):
        sub = [r for r in rows if ("corner" in r["basis"]) == enrich]
        for a, b in zip(sub, sub[1:]):
            b["rate"] = float(np.log(a["rel_l2"] / b["rel_l2"]) / np.log(b["width"] / a["width"]))
    return rows


def high_dim_table() -> list[dict]:
    from pipeline.pde import get_problem, solve_static

    rows = []
    cases = (("poisson_sum_sin", {"dim": 10}, {}, "defaults"),
             ("poisson_gaussian", {"dim": 100}, {}, "defaults: quadratic neurons + active subspace"),
             ("poisson_gaussian", {"dim": 100}, {"active_directions": 0}, "quadratic neurons only"),
             ("poisson_gaussian", {"dim": 100}, {"width": 3000, "activation": "sin", "weight_scale": 1.0,
                                                 "bias_scale": np.pi, "curvature_scale": 0.0, "active_directions": 0},
              "ridge: sine random Fourier features (the Gaussian's Bochner features)"))
    for name, params, overrides, label in cases:
        problem = get_problem(name, **params)
        sol, wall, cpu = _timed(lambda: solve_static(problem, **overrides))
        rows.append({"problem": f"{name} d={params['dim']}", "basis": label, "width": sol.width, "rel_l2": sol.error(),
                     "wall_s": wall, "cpu_s": cpu,
                     "settings": {k: str(v) for k, v in {**problem.defaults, **overrides}.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-high-dim", action="store_true")
    parser.add_argument("--only-high-dim", action="store_true",
                        help="run only the high-dimensional table; the other tables are kept from the last run")
    parser.add_argument("--deepxde-iterations", type=int, default=10_000)
    args = parser.parse_args()
    if args.only_high_dim:
        import json

        previous = json.loads((RESULTS / "static_pde.json").read_text())
        poisson, lshape = previous["poisson"], previous["lshape"]
    else:
        poisson = poisson_table(args.deepxde_iterations)
        lshape = lshape_table()
    high = [] if args.skip_high_dim else high_dim_table()
    path = write_results("static_pde", {"poisson": poisson, "lshape": lshape, "high_dim": high})
    print("\nPoisson sin(πx) sin(πy) on [0, 1]²\n")
    print(markdown_table(poisson, [("method", "method", ""), ("size", "size", ""), ("rel_l2", "rel. L2", ".2e"),
                                   ("cpu_s", "CPU s", ".2f"), ("wall_s", "wall s", ".2f"),
                                   ("error_per_cpu_s", "error × CPU s", ".1e")]))
    print("\nL-shape -Δu = 1: error against the extrapolated finite-difference reference\n")
    print(markdown_table(lshape, [("basis", "basis", ""), ("width", "width", "d"), ("rank", "rank", "d"),
                                  ("rel_l2", "rel. L2", ".2e"), ("rate", "rate in width", ".2f"),
                                  ("cpu_s", "CPU s", ".1f")]))
    if high:
        print("\nHigh dimensions (problem defaults)\n")
        print(markdown_table(high, [("problem", "problem", ""), ("basis", "basis", ""), ("width", "width", "d"), ("rel_l2", "rel. L2", ".2e"),
                                    ("wall_s", "wall s", ".1f"), ("cpu_s", "CPU s", ".1f")]))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
