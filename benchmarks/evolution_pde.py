"""Time-dependent PDEs: the neural method of lines against classical method-of-lines solvers
(finite differences / FFT with scipy) and DeepXDE PINNs where DeepXDE is installed.

Every method is scored on the problem's own fixed space–time grid against the same exact or
reference solution (relative L2 over all grid points and times); CPU seconds are the process
time of the solve (all threads), wall seconds beside them.

    python benchmarks/evolution_pde.py [--deepxde-iterations 10000] [--skip-deepxde | --reuse-deepxde] [--skip-high-dim]

``--reuse-deepxde`` runs everything but DeepXDE (~30 CPU-min on 2 cores) and keeps the DeepXDE
rows of the last run, each marked with the date it was measured (``measured``): they do not
depend on this library, so a change of its defaults does not need them again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import scipy.integrate  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from _harness import RESULTS, markdown_table, write_results  # noqa: E402


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _error(problem, fields, points, times):
    ref = np.stack([np.asarray(problem.truth(points, t)) for t in times])
    return float(np.linalg.norm(fields - ref) / np.linalg.norm(ref))


def _interp(grid_x, values, points, periodic=None):
    """Values on a 1-D grid interpolated (cubic) to the evaluation points."""
    from scipy.interpolate import CubicSpline

    if periodic is not None:
        x = np.append(grid_x, periodic)
        return CubicSpline(x, np.append(values, values[0]), bc_type="periodic")(points[:, 0])
    return CubicSpline(grid_x, values)(points[:, 0])


# ------------------------------------------------------------------------ classical solvers
def fft_advection(problem, points, times, n=64):
    beta = problem.params["beta"]
    x = 2 * np.pi * np.arange(n) / n
    k = np.fft.rfftfreq(n, d=1.0 / n)

    def rhs(t, u):
        return -beta * np.fft.irfft(1j * k * np.fft.rfft(u), n)

    sol = scipy.integrate.solve_ivp(rhs, (times[0], times[-1]), np.sin(x), t_eval=times, method="RK45",
                                    rtol=1e-12, atol=1e-14)
    return np.stack([_interp(x, sol.y[:, i], points, periodic=2 * np.pi) for i in range(len(times))])


def _dirichlet_laplacian(n, h):
    return sp.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n, n), format="csr") / h**2


def fd_burgers(problem, points, times, n=8193):
    nu = problem.params["nu"]
    x = np.linspace(-1, 1, n)
    h = x[1] - x[0]
    inner = x[1:-1]
    lap = _dirichlet_laplacian(n - 2, h) * nu
    grad = sp.diags([-1.0, 1.0], [-1, 1], shape=(n - 2, n - 2), format="csr") / (2 * h)

    def rhs(t, u):
        return lap @ u - u * (grad @ u)

    def jac(t, u):
        return lap - sp.diags(grad @ u) - sp.diags(u) @ grad

    sol = scipy.integrate.solve_ivp(rhs, (times[0], times[-1]), -np.sin(np.pi * inner), t_eval=times, method="BDF",
                                    jac=jac, rtol=1e-8, atol=1e-10)
    full = np.zeros((n, len(times)))
    full[1:-1] = sol.y
    return np.stack([np.interp(points[:, 0], x, full[:, i]) for i in range(len(times))])


def fd_heat_like(problem, points, times, n=2001, source=None, diffusion=1.0, lo=0.0, hi=1.0):
    x = np.linspace(lo, hi, n)
    h = x[1] - x[0]
    inner = x[1:-1]
    lap = _dirichlet_laplacian(n - 2, h) * diffusion

    def rhs(t, u):
        out = lap @ u
        if source is not None:
            out = out + source(inner[:, None], t)
        return out

    u0 = problem.initial(inner[:, None])
    sol = scipy.integrate.solve_ivp(rhs, (times[0], times[-1]), u0, t_eval=times, method="BDF", jac=lap,
                                    rtol=1e-10, atol=1e-12)
    full = np.zeros((n, len(times)))
    full[1:-1] = sol.y
    return np.stack([_interp(x, full[:, i], points) for i in range(len(times))])


def fd_wave(problem, points, times, n=1001):
    x = np.linspace(0, 1, n)
    h = x[1] - x[0]
    inner = x[1:-1]
    lap = _dirichlet_laplacian(n - 2, h) * 4.0
    m = n - 2

    def rhs(t, z):
        return np.concatenate([z[m:], lap @ z[:m]])

    z0 = np.concatenate([problem.initial(inner[:, None]), np.zeros(m)])
    sol = scipy.integrate.solve_ivp(rhs, (times[0], times[-1]), z0, t_eval=times, method="DOP853",
                                    rtol=1e-10, atol=1e-12)
    full = np.zeros((n, len(times)))
    full[1:-1] = sol.y[:m]
    return np.stack([_interp(x, full[:, i], points) for i in range(len(times))])


def fd_beam(problem, points, times, n=101):
    """Simply supported: u = u_xx = 0 at the ends; u_xxxx = D2 D2 u with the ghost values odd."""
    x = np.linspace(0, 1, n)
    h = x[1] - x[0]
    inner = x[1:-1]
    d2 = _dirichlet_laplacian(n - 2, h)
    d4 = (d2 @ d2).tocsr()
    m = n - 2

    def rhs(t, z):
        return np.concatenate([z[m:], -(d4 @ z[:m]) + problem.source(inner[:, None], t)])

    z0 = np.concatenate([problem.initial(inner[:, None]), np.zeros(m)])
    jac = sp.bmat([[None, sp.eye(m)], [-d4, None]], format="csc")
    # the h⁻⁴ stiffness makes tight tolerances very slow (n = 101 at rtol 1e-10: 160 s); the
    # spatial error O(h²) ~ 4e-4 is the limit anyway
    sol = scipy.integrate.solve_ivp(rhs, (times[0], times[-1]), z0, t_eval=times, method="BDF", jac=jac,
                                    rtol=1e-7, atol=1e-9)
    full = np.zeros((n, len(times)))
    full[1:-1] = sol.y[:m]
    return np.stack([_interp(x, full[:, i], points) for i in range(len(times))])


def _periodic_fd(n, h, order):
    """4th-order periodic central differences of the first or third derivative (sparse)."""
    if order == 1:
        offsets, coefs = [-2, -1, 1, 2], [1 / 12, -2 / 3, 2 / 3, -1 / 12]
        scale = 1 / h
    else:
        offsets, coefs = [-3, -2, -1, 1, 2, 3], [1 / 8, -1, 13 / 8, -13 / 8, 1, -1 / 8]
        scale = 1 / h**3
    rows, cols, vals = [], [], []
    for o, c in zip(offsets, coefs):
        rows.append(np.arange(n)), cols.append((np.arange(n) + o) % n), vals.append(np.full(n, c * scale))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def fd_kdv(problem, points, times, n=512):
    x = -20 + 40 * np.arange(n) / n
    h = 40 / n
    d1, d3 = _periodic_fd(n, h, 1), _periodic_fd(n, h, 3)

    def rhs(t, u):
        return -6 * u * (d1 @ u) - d3 @ u

    sol = scipy.integrate.solve_ivp(rhs, (times[0], times[-1]), problem.initial(x[:, None]), t_eval=times,
                                    method="DOP853", rtol=1e-9, atol=1e-11)
    return np.stack([_interp(x, sol.y[:, i], points, periodic=20.0) for i in range(len(times))])


def fd_allen_cahn(problem, points, times, n=512):
    from pipeline.pde.reference import allen_cahn_reference

    u = allen_cahn_reference(n=n, eps=problem.params["eps"], rate=problem.params["rate"])
    return np.stack([u(points[:, 0], t) for t in times])


CLASSICAL = {
    "advection": ("FFT, 64 modes + RK45", fft_advection),
    "burgers": ("FD 8193 points + BDF", fd_burgers),
    "heat_1d": ("FD 2001 points + BDF", lambda p, x, t: fd_heat_like(p, x, t, diffusion=p.params["nu"])),
    "diffusion_reaction": ("FD 2001 points + BDF",
                           lambda p, x, t: fd_heat_like(p, x, t, source=p.source, lo=-np.pi, hi=np.pi)),
    "wave_1d": ("FD 1001 points + DOP853", fd_wave),
    "beam_dynamic": ("FD 101 points + BDF", fd_beam),
    "kdv_soliton": ("FD 512 points (4th order) + DOP853", fd_kdv),
    "allen_cahn": ("FD 512 points (4th order) + BDF", fd_allen_cahn),
}


# ------------------------------------------------------------------------ DeepXDE
def deepxde_run(name, problem, points, times, iterations):
    try:
        import deepxde as dde
    except Exception:  # noqa: BLE001 - not installed or no backend
        return None
    t0, t1 = problem.t_span
    lo, hi = problem.domain.bounds
    geom = dde.geometry.Interval(lo[0], hi[0])
    timedomain = dde.geometry.TimeDomain(t0, t1)
    geomtime = dde.geometry.GeometryXTime(geom, timedomain)
    if name == "burgers":
        nu = problem.params["nu"]

        def pde(x, u):
            return dde.grad.jacobian(u, x, i=0, j=1) + u * dde.grad.jacobian(u, x, i=0, j=0) \
                - nu * dde.grad.hessian(u, x, i=0, j=0)

        conds = [dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on_b: on_b),
                 dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_i: on_i)]
        layers = [2, 20, 20, 20, 1]
    elif name == "advection":
        beta = problem.params["beta"]

        def pde(x, u):
            return dde.grad.jacobian(u, x, i=0, j=1) + beta * dde.grad.jacobian(u, x, i=0, j=0)

        conds = [dde.icbc.PeriodicBC(geomtime, 0, lambda _, on_b: on_b),
                 dde.icbc.IC(geomtime, lambda x: np.sin(x[:, 0:1]), lambda _, on_i: on_i)]
        layers = [2, 50, 50, 50, 50, 1]
    elif name == "wave_1d":
        def pde(x, u):
            return dde.grad.hessian(u, x, i=1, j=1) - 4 * dde.grad.hessian(u, x, i=0, j=0)

        conds = [dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on_b: on_b),
                 dde.icbc.IC(geomtime, lambda x: problem.initial(x), lambda _, on_i: on_i),
                 dde.icbc.OperatorBC(geomtime, lambda x, u, _: dde.grad.jacobian(u, x, i=0, j=1),
                                     lambda x, on_i: np.isclose(x[1], 0))]
        layers = [2, 100, 100, 100, 1]
    else:
        return None
    data = dde.data.TimePDE(geomtime, pde, conds, num_domain=2540, num_boundary=80, num_initial=160)
    model = dde.Model(data, dde.nn.FNN(layers, "tanh", "Glorot normal"))
    model.compile("adam", lr=1e-3)
    model.train(iterations=iterations, display_every=iterations)
    xt = np.array([[p[0], t] for t in times for p in points])
    return model.predict(xt).reshape(len(times), len(points))


# ------------------------------------------------------------------------ driver
PROBLEMS = [("advection", {"beta": 40.0}), ("advection", {"beta": 1000.0}), ("advection", {"beta": 1.0, "T": 1000.0}),
            ("burgers", {}), ("heat_1d", {}), ("diffusion_reaction", {}), ("wave_1d", {}), ("beam_dynamic", {}),
            ("allen_cahn", {}), ("kdv_soliton", {})]


def main() -> None:
    from pipeline.pde import evolve, get_problem

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deepxde-iterations", type=int, default=10_000)
    parser.add_argument("--skip-deepxde", action="store_true")
    parser.add_argument("--reuse-deepxde", action="store_true",
                        help="do not run DeepXDE; keep its rows from the last run (with the date they were measured)")
    parser.add_argument("--skip-high-dim", action="store_true")
    parser.add_argument("--only-high-dim", action="store_true",
                        help="run only the high-dimensional heat rows; the other rows are kept from the last run")
    args = parser.parse_args()
    rows, reused = [], {}
    if args.only_high_dim or args.reuse_deepxde:
        import json

        last = json.loads((RESULTS / "evolution_pde.json").read_text())
    if args.only_high_dim:
        rows = [r for r in last["rows"] if not r["problem"].startswith("heat_gaussian")]
    if args.reuse_deepxde:
        for r in last["rows"]:
            if r["method"].startswith("DeepXDE"):
                reused[r["problem"]] = {**r, "measured": r.get("measured", last["machine"]["when"])}
    for name, params in ([] if args.only_high_dim else PROBLEMS):
        problem = get_problem(name, **params)
        label = name + ("" if not params else " " + ", ".join(f"{k}={v:g}" for k, v in params.items()))
        points, times = problem.evaluation_grid()
        result, wall, cpu = _timed(lambda: evolve(problem))
        rows.append({"problem": label, "method": "sampled network (this library)", "rel_l2": result.error(),
                     "cpu_s": cpu, "wall_s": wall})
        if name == "burgers":
            result, wall, cpu = _timed(lambda: evolve(problem, width=1200, n_interior=3000, weight_scale=50.0,
                                                      bias_scale=50.0))
            rows.append({"problem": label, "method": "sampled network, high-accuracy setting", "rel_l2": result.error(),
                         "cpu_s": cpu, "wall_s": wall})
        if name in CLASSICAL:
            what, solver = CLASSICAL[name]
            fields, wall, cpu = _timed(lambda: solver(problem, points, times))
            rows.append({"problem": label, "method": f"classical MOL: {what}", "rel_l2": _error(problem, fields, points, times),
                         "cpu_s": cpu, "wall_s": wall})
        if label in reused:
            rows.append(reused[label])
        elif not (args.skip_deepxde or args.reuse_deepxde) and not (name == "advection" and params.get("beta") != 40.0):
            fields, wall, cpu = _timed(lambda: deepxde_run(name, problem, points, times, args.deepxde_iterations))
            if fields is not None:
                rows.append({"problem": label, "method": f"DeepXDE PINN, {args.deepxde_iterations} Adam",
                             "rel_l2": _error(problem, fields, points, times), "cpu_s": cpu, "wall_s": wall})
        print(f"  {label}: done", file=sys.stderr)
    if not args.skip_high_dim:
        ridge = {"width": 1500, "n_interior": 4000, "n_boundary": 2000, "activation": "sin", "weight_scale": 1.0,
                 "bias_scale": np.pi, "curvature_scale": 0.0}  # the ridge basis this problem had before
        for dim in (10, 100):
            problem = get_problem("heat_gaussian", dim=dim)
            for method, overrides in (("sampled network, quadratic neurons (defaults)", {}),
                                      ("sampled network, sine ridge features, width 1500", ridge)):
                result, wall, cpu = _timed(lambda: evolve(problem, **overrides))
                rows.append({"problem": f"heat_gaussian d={dim}", "method": method,
                             "rel_l2": result.error(), "cpu_s": cpu, "wall_s": wall})
    path = write_results("evolution_pde", {"rows": rows})
    print("\nTime-dependent problems: relative L2 on each problem's fixed space–time grid\n")
    print(markdown_table(rows, [("problem", "problem", ""), ("method", "method", ""), ("rel_l2", "rel. L2", ".2e"),
                                ("cpu_s", "CPU s", ".2f"), ("wall_s", "wall s", ".2f")]))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
