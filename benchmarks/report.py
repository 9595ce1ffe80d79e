"""One peer report: every peer available on this machine, on the same problems, with the same
error metric on the same grids, from one run.

    python -m benchmarks.report [--problems NAME ...] [--quick] [--deepxde-iterations N]
    python -m benchmarks.report --readme      # README section from benchmarks/results/report.json

Peers: this library at 2–4 settings per problem (an error-vs-CPU-time curve); the classical
method-of-lines solvers of ``evolution_pde.py`` and the 5-point finite differences of
``static_pde.py`` (imported and called, at two or three resolutions); ``swimnetworks`` on the
regression problem of ``regressor_vs_swimnetworks.py`` (the only one it applies to);
``pyrfm`` (random feature method, space–time for the time-dependent problems) and DeepXDE where
installed (``pip install ".[peers]"``) — a peer that is missing, or does not apply to a
problem, is skipped with a line saying why.  The error is the relative L2 norm over each
problem's fixed evaluation grid (space–time grid for time-dependent problems), against the same
exact or reference solution for every peer.  CPU seconds are ``time.process_time`` of the
process doing the solve (all its threads: Dask's local threads, BLAS, PyTorch); the machine's
1-minute load average is recorded beside every point.  The peers (pyrfm, swimnetworks, DeepXDE)
run in child processes of their own with one BLAS/OpenMP/PyTorch thread (``PEER_ENV``), so that
their CPU seconds count their work and not thread overhead; ours runs with its defaults.

A full run writes ``benchmarks/results/report.json``, ``report.md`` and one PNG per problem
(error against CPU seconds, log–log) under ``benchmarks/results/report/``; a run restricted by
``--problems`` or ``--quick`` writes to ``--out-dir`` (default: a temporary folder) and leaves
the committed report alone.  ``--readme`` rewrites the README's section between
``<!-- report:start -->`` and ``<!-- report:end -->`` (and renders ``report.md`` and the plots
again) from the committed JSON, without solving anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
README = ROOT / "README.md"
START, END = "<!-- report:start -->", "<!-- report:end -->"
PEERS = {
    "ours": "sampled network (this library)",
    "classical": "classical (finite differences / FFT)",
    "swimnetworks": "swimnetworks",
    "pyrfm": "pyrfm",
    "deepxde": "DeepXDE",
}
BURGERS_PYRFM = ("rows and Gauss–Newton solve (from zero, in each time block) as in pyrfm's own Burgers example, "
                 "examples/Nonlinear/burgers.py, which has ν = 0.01 rather than 0.01/π; a trial with 200 features "
                 "per patch (four patches per block, ten blocks) was no better")
NONLINEAR_PYRFM = ("not set up: pyrfm solves nonlinear problems by Gauss–Newton on dense space–time Jacobians, "
                   "block after block, and on Burgers (see there) its error stayed above 20 %")


# ============================================================================ the problems
def _s(label, quick=False, **settings):
    return {"setting": label, "quick": quick, "settings": settings}


#: pyrfm's space–time settings of the linear 1-D problems (wave, beam)
SPACE_TIME_PYRFM = [_s("space–time, 2 blocks × 2×2 patches × 200 features", True, Nx=2, Nt=2, Qx=20, Qt=20, Jn=200,
                       Nb=2),
                    _s("space–time, 2 blocks × 2×2 patches × 300 features", Nx=2, Nt=2, Qx=30, Qt=30, Jn=300, Nb=2)]


def _allen_cahn_note(peers: dict) -> str:
    """Why the curves do not cross on Allen–Cahn, from the figures of this run."""
    ours = next(p for p in peers["ours"] if p["setting"].startswith("defaults"))
    widest = max(peers["ours"], key=lambda p: p["width"])
    grid = min(peers["classical"], key=lambda p: p["rel_l2"])
    coarse = max(peers["classical"], key=lambda p: p["rel_l2"])
    per_rhs = 1000 * ours["cpu_s"] / max(ours["rhs_evaluations"], 1)
    return (f"the error-vs-CPU curves do not cross. At the defaults the basis has {ours['rank']} independent "
            f"coefficients on {ours['rows']} collocation rows, and the stiff integration takes {ours['steps']} BDF "
            f"steps and {ours['rhs_evaluations']} right-hand sides, each dense products over rows × coefficients "
            f"({per_rhs:.2f} ms of CPU per right-hand side, everything included); width {widest['width']} adds "
            f"only {widest['rank'] - ours['rank']} independent coefficients. The {grid['setting']} reaches "
            f"{grid['rel_l2']:.1e} in {grid['cpu_s']:.2f} CPU-s: for a smooth periodic solution in one dimension "
            f"a grid is as accurate per unknown ({coarse['setting']}: {coarse['rel_l2']:.1e}; the defaults' "
            f"{ours['rank']} coefficients: {ours['rel_l2']:.1e}) and its stencil costs O(n) per right-hand side, so the sampled "
            "basis cannot catch it here; it wins where grids cannot go (d = 100 above) or need many more points "
            "for the same accuracy (Burgers and KdV above)")


#: name -> what is solved and at which settings.  ``ours``: keyword overrides of the problem's
#: defaults; ``classical``: (label, quick, solver name, n); ``pyrfm``: its discretisation.
PROBLEMS: dict[str, dict] = {
    "advection": {
        "label": "advection β = 40", "kind": "evolution", "params": {"beta": 40.0},
        "ours": [_s("width 20", True, width=20), _s("width 60", width=60), _s("defaults (width 300)", True)],
        "classical": [("FFT 16 modes + RK45", True, "fft_advection", 16), ("FFT 64 modes + RK45", False, "fft_advection", 64)],
        "pyrfm": [_s("space–time, 4 blocks × 2×2 patches × 200 features", True, Nx=2, Nt=2, Qx=30, Qt=30, Jn=200, Nb=4),
                  _s("space–time, 4 blocks × 2×2 patches × 300 features", Nx=2, Nt=2, Qx=30, Qt=30, Jn=300, Nb=4)],
    },
    "burgers": {
        "label": "Burgers ν = 0.01/π", "kind": "evolution", "params": {},
        "ours": [_s("width 300", True, width=300), _s("defaults (width 600)", True),
                 _s("width 1000, scale 90, rcond 1e-12 (benchmarks/burgers_accurate.py)", width=1000,
                    n_interior=2000, weight_scale=90.0, bias_scale=90.0, rcond=1e-12, rtol=1e-7, atol=1e-9)],
        "classical": [("FD 1025 points + BDF", True, "fd_burgers", 1025), ("FD 2049 points + BDF", False, "fd_burgers", 2049),
                      ("FD 8193 points + BDF", False, "fd_burgers", 8193),
                      ("FD 32769 points + BDF", False, "fd_burgers", 32769)],
        "pyrfm": [_s("space–time, 5 blocks × 2×1 patches × 100 features (Gauss–Newton)", True, Nx=2, Nt=1, Qx=20, Qt=20,
                     Jn=100, Nb=5),
                  _s("space–time, 10 blocks × 4×2 patches × 100 features (Gauss–Newton)", Nx=4, Nt=2, Qx=20, Qt=20,
                     Jn=100, Nb=10)],
        "pyrfm_note": BURGERS_PYRFM,
    },
    "heat_gaussian": {
        "label": "heat, Gaussian, d = 100", "kind": "evolution", "params": {"dim": 100},
        "ours": [_s("width 75", True, width=75), _s("defaults (width 150, exact in time)", True),
                 _s("width 300", width=300)],
        "classical": "no grid-based solver in 100 dimensions (two nodes per axis are 2^100 nodes): not run",
        "pyrfm": "pyrfm 0.4.2 has boxes (HyperCube) but no ball above three dimensions: not set up",
    },
    "wave_1d": {
        "label": "wave (two frequencies)", "kind": "evolution", "params": {},
        "ours": [_s("width 20", True, width=20), _s("width 50", width=50), _s("defaults (width 200)", True)],
        "classical": [("FD 251 points + DOP853", True, "fd_wave", 251), ("FD 1001 points + DOP853", False, "fd_wave", 1001)],
        "pyrfm": SPACE_TIME_PYRFM,
    },
    "beam_dynamic": {
        "label": "Euler–Bernoulli beam", "kind": "evolution", "params": {},
        "ours": [_s("width 10", True, width=10), _s("width 50", width=50), _s("defaults (width 200)", True)],
        "classical": [("FD 51 points + BDF", True, "fd_beam", 51), ("FD 101 points + BDF", False, "fd_beam", 101)],
        "pyrfm": SPACE_TIME_PYRFM,
    },
    "allen_cahn": {
        "label": "Allen–Cahn ε = 10⁻⁴", "kind": "evolution", "params": {},
        "ours": [_s("width 400", True, width=400), _s("defaults (width 800)", True), _s("width 1200", width=1200)],
        "classical": [("FD 256 points (4th order) + BDF", True, "fd_allen_cahn", 256),
                      ("FD 512 points (4th order) + BDF", False, "fd_allen_cahn", 512)],
        "pyrfm": NONLINEAR_PYRFM, "ours_note": _allen_cahn_note,
    },
    "kdv_soliton": {
        "label": "KdV soliton", "kind": "evolution", "params": {},
        "ours": [_s("width 200", True, width=200), _s("width 400", width=400), _s("defaults (width 600)", True),
                 _s("width 800", width=800)],
        "classical": [("FD 256 points (4th order) + DOP853", True, "fd_kdv", 256),
                      ("FD 320 points (4th order) + DOP853", False, "fd_kdv", 320),
                      ("FD 512 points (4th order) + DOP853", False, "fd_kdv", 512)],
        "pyrfm": NONLINEAR_PYRFM,
    },
    "poisson_sin2d": {
        "label": "Poisson sin πx sin πy", "kind": "static", "params": {},
        "ours": [_s("width 200", True, width=200, n_interior=1000, n_boundary=400),
                 _s("width 400", width=400, n_interior=2000, n_boundary=400),
                 _s("width 800", width=800, n_interior=3500, n_boundary=800), _s("defaults (width 1500)", True)],
        # n a multiple of 100: the 101 × 101 evaluation grid is among the nodes, and the 5-point
        # solution of this eigenfunction is exact × a constant, so the error is the same there
        "classical": [("5-point FD, 99² unknowns", True, "finite_differences", 100),
                      ("5-point FD, 199² unknowns", False, "finite_differences", 200),
                      ("5-point FD, 499² unknowns", False, "finite_differences", 500)],
        "pyrfm": [_s("1 patch × 100 features, 900 points", True, M=1, J=100, Q=900),
                  _s("1 patch × 200 features, 1600 points", M=1, J=200, Q=1600),
                  _s("1 patch × 400 features, 3600 points", True, M=1, J=400, Q=3600)],
    },
    "regression": {
        "label": "regression sin πx cos πy, 20k points", "kind": "regression", "params": {},
        "ours": [_s("SWIM tanh, width 256", True, width=256), _s("SWIM tanh, width 512", width=512),
                 _s("SWIM tanh, width 1024", True, width=1024)],
        "swimnetworks": [_s("SWIM tanh, width 256", True, width=256), _s("SWIM tanh, width 512", width=512),
                         _s("SWIM tanh, width 1024", True, width=1024)],
        "classical": "a regression problem: no classical PDE solver applies",
        "pyrfm": "pyrfm is a PDE solver (no regression estimator): does not apply",
    },
}
REGRESSION_N = 20_000
DEEPXDE_EVOLUTION = ("burgers", "advection", "wave_1d")  # the problems evolution_pde.deepxde_run sets up


def _grid(name: str) -> str:
    return {"heat_gaussian": "2000 points in the ball × 11 times", "poisson_sin2d": "101 × 101 grid",
            "burgers": "256 × 11 (x, t) grid", "kdv_soliton": "401 × 11 (x, t) grid",
            "regression": "10 000 fresh test points"}.get(name, "201 × 11 (x, t) grid")


def _pick(items: list, quick: bool) -> list:
    return [i for i in items if (i["quick"] if isinstance(i, dict) else i[1])] if quick else list(items)


def _scripts() -> None:
    """Put ``benchmarks/`` on the path: the scripts import their siblings as top-level modules."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))


def _problem(name: str):
    from pipeline.pde import get_problem

    return get_problem(name, **PROBLEMS[name]["params"])


def _timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with its CPU seconds (this process, all threads), wall seconds and the load."""
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall, "load_1min": load}


def _say(label: str, peer: str, point: dict) -> None:
    print(f"  {label} | {PEERS.get(peer, peer)}, {point['setting']}: {point['rel_l2']:.2e} in "
          f"{point['cpu_s']:.2f} CPU-s ({point['wall_s']:.2f} s wall, load {point['load_1min']:.2f})",
          file=sys.stderr, flush=True)


# ============================================================================ ours, classical, swimnetworks
def _warm_up() -> None:
    """One-time costs (lazy imports, thread pools) before the first measured solve."""
    import scipy.integrate
    import scipy.interpolate

    del scipy.integrate, scipy.interpolate

    from pipeline.pde import evolve, get_problem, solve_static

    evolve(get_problem("heat_1d"), width=20, n_interior=100)
    evolve(get_problem("burgers"), width=40, n_interior=100)
    solve_static(get_problem("poisson_sin2d"), width=20, n_interior=100, n_boundary=40)


def run_ours(name: str, quick: bool) -> list[dict]:
    import evolution_pde

    spec, points = PROBLEMS[name], []
    if spec["kind"] == "regression":
        return _run_regression("pipeline", name, quick)
    problem = _problem(name)
    for s in _pick(spec["ours"], quick):
        if spec["kind"] == "static":
            from pipeline.pde import solve_static

            solution, m = _timed(solve_static, problem, **s["settings"])
            error, width = solution.error(), solution.width
        else:
            from pipeline.pde import evolve

            grid_x, grid_t = problem.evaluation_grid()
            result, m = _timed(evolve, problem, **s["settings"])
            assert result.fields.shape == (len(grid_t), len(grid_x))
            error, width = evolution_pde._error(problem, result.fields, grid_x, grid_t), result.settings["width"]
            stats = result.windows[-1].stats  # what the integration cost: for the notes
            m.update(rank=int(result.projections[0].rank), rows=int(result.projections[0].interior_rows),
                     steps=int(stats.get("steps") or 0), rhs_evaluations=int(stats.get("nfev") or 0))
        points.append({"setting": s["setting"], "settings": {k: str(v) for k, v in s["settings"].items()},
                       "width": int(width), "rel_l2": error, **m})
        _say(spec["label"], "ours", points[-1])
    return points


def run_classical(name: str, quick: bool) -> list[dict]:
    import evolution_pde
    import static_pde

    spec, points = PROBLEMS[name], []
    problem = _problem(name)
    for label, _, solver, n in _pick(spec["classical"], quick):
        if spec["kind"] == "static":
            error, m = _timed(getattr(static_pde, solver), n)
        else:
            grid_x, grid_t = problem.evaluation_grid()
            fields, m = _timed(getattr(evolution_pde, solver), problem, grid_x, grid_t, n=n)
            error = evolution_pde._error(problem, fields, grid_x, grid_t)
        points.append({"setting": label, "solver": f"{'static_pde' if spec['kind'] == 'static' else 'evolution_pde'}"
                       f".{solver}(n={n})", "n": n, "rel_l2": error, **m})
        _say(spec["label"], "classical", points[-1])
    return points


def _run_regression(library: str, name: str, quick: bool) -> list[dict]:
    """``regressor_vs_swimnetworks.run_contender`` at each width (its warm-up fit is not measured)."""
    import regressor_vs_swimnetworks as rvs

    key = "ours" if library == "pipeline" else "swimnetworks"
    points = []
    for s in _pick(PROBLEMS[name][key], quick):
        rvs.WIDTH = s["settings"]["width"]
        load = os.getloadavg()[0]
        r = rvs.run_contender({"library": library, "rcond": 1e-10, "n": REGRESSION_N, "repeats": 1})
        points.append({"setting": s["setting"], "width": s["settings"]["width"], "rcond": 1e-10,
                       "rel_l2": r["test_rel_l2"], "cpu_s": r["cpu_s"], "wall_s": r["wall_s"], "load_1min": load,
                       "peak_rss_bytes": r["peak_rss_bytes"]})
        _say(PROBLEMS[name]["label"], key, points[-1])
    return points


# ============================================================================ pyrfm (child process)
def _pyrfm_static(problem, M, J, Q):
    import numpy as np
    import pyrfm
    import torch

    domain = pyrfm.Square2D(center=[0.5, 0.5], half=[0.5, 0.5])
    model = pyrfm.RFMBase(dim=2, n_hidden=J, domain=domain, n_subdomains=M, pou=pyrfm.PsiB)
    x_in, x_on = domain.in_sample(Q, with_boundary=False), domain.on_sample(400)
    lap = (model.features_second_derivative(x_in, axis1=0, axis2=0).cat(dim=1)
           + model.features_second_derivative(x_in, axis1=1, axis2=1).cat(dim=1))
    f = torch.as_tensor(problem.source(x_in.numpy())).reshape(-1, 1)
    g = torch.zeros(len(x_on), 1)  # u = 0 on the boundary
    model.compute(pyrfm.concat_blocks([[lap], [model.features(x_on).cat(dim=1)]]), verbose=False)
    model.solve(pyrfm.concat_blocks([[f], [g]]))
    x = problem.evaluation_points()
    return model(torch.as_tensor(x)).detach().numpy().ravel(), x, np


def _pyrfm_spacetime(name, problem, Nx, Nt, Qx, Qt, Jn, Nb):
    """Space–time random features (``STRFMBase``, space–time concatenated) in ``Nb`` time blocks,
    each block's initial data the previous block's solution; fields on the problem's grid."""
    import numpy as np
    import pyrfm
    import torch

    lo, hi = float(problem.domain.bounds[0][0]), float(problem.domain.bounds[1][0])
    stamps = np.linspace(float(problem.t_span[0]), float(problem.t_span[1]), Nb + 1)
    domain = pyrfm.Line1D(x1=lo, x2=hi)
    x_in = domain.in_sample(Qx * Nx, with_boundary=False)
    models = []
    for t0, t1 in itertools.pairwise(stamps):
        model = pyrfm.STRFMBase(dim=1, n_hidden=Jn, domain=domain, time_interval=[float(t0), float(t1)],
                                n_spatial_subdomains=Nx, n_temporal_subdomains=Nt, st_type="STC")
        t = torch.linspace(float(t0), float(t1), Qt * Nt + 1)[1:].reshape(-1, 1)
        _pyrfm_block(name, problem, model, models[-1] if models else None, x_in, t, lo, hi)
        models.append(model)
    grid_x, grid_t = problem.evaluation_grid()
    fields = np.empty((len(grid_t), len(grid_x)))
    for k, t in enumerate(grid_t):
        block = min(int(np.searchsorted(stamps, t, side="right")) - 1, Nb - 1)
        xt = torch.as_tensor(np.column_stack([grid_x[:, 0], np.full(len(grid_x), t)]))
        fields[k] = models[block].forward(xt=xt).detach().numpy().ravel()
    return fields, grid_x, grid_t


def _pyrfm_features(model, xt, order):
    """Features (all patches side by side) differentiated ``order`` = (in x, in t) times."""
    if order == (0, 0):
        return model.features(xt=xt).cat(dim=1)
    if sum(order) == 1:
        return model.features_derivative(xt=xt, axis=order.index(1)).cat(dim=1)
    if order in ((2, 0), (0, 2)):
        axis = order.index(2)
        return model.features_second_derivative(xt=xt, axis1=axis, axis2=axis).cat(dim=1)
    return model.features_high_order_derivative(xt=xt, order=list(order)).cat(dim=1)


def _pyrfm_block(name, problem, model, previous, x_in, t, lo, hi):
    """Fit one time block: the rows of each problem written out for pyrfm."""
    import pyrfm
    import torch

    def feat(xt, order):
        return _pyrfm_features(model, xt, order)

    def zeros(rows):
        return torch.zeros(rows.shape[0], 1)

    t0 = torch.tensor([[float(model.time_interval[0])]])
    ends = torch.tensor([[lo], [hi]])
    at0 = model.validate_and_prepare_xt(x=torch.cat([ends[:1], x_in, ends[1:]]), t=t0)
    inner = model.validate_and_prepare_xt(x=x_in, t=t)
    left = model.validate_and_prepare_xt(x=ends[:1], t=t)
    right = model.validate_and_prepare_xt(x=ends[1:], t=t)
    both = torch.cat([left, right])
    u0 = (torch.as_tensor(problem.initial(at0[:, :1].numpy())).reshape(-1, 1) if previous is None
          else previous.forward(xt=at0))
    blocks, rhs = [[feat(at0, (0, 0))]], [[u0]]
    if problem.time_order == 2:
        v0 = zeros(at0) if previous is None else previous.dForward(xt=at0, order=[0, 1])
        blocks.append([feat(at0, (0, 1))])
        rhs.append([v0])
    if name == "advection":  # u_t + β u_x = 0, periodic: u and u_x equal at both ends
        beta = problem.params["beta"]
        blocks += [[feat(left, (0, 0)) - feat(right, (0, 0))], [feat(left, (1, 0)) - feat(right, (1, 0))],
                   [feat(inner, (0, 1)) + beta * feat(inner, (1, 0))]]
        rhs += [[zeros(left)], [zeros(left)], [zeros(inner)]]
    elif name == "wave_1d":  # u_tt = 4 u_xx, u = 0 at both ends
        blocks += [[feat(both, (0, 0))], [feat(inner, (0, 2)) - 4.0 * feat(inner, (2, 0))]]
        rhs += [[zeros(both)], [zeros(inner)]]
    elif name == "beam_dynamic":  # u_tt + u_xxxx = f, u = u_xx = 0 at both ends
        blocks += [[feat(both, (0, 0))], [feat(both, (2, 0))], [feat(inner, (0, 2)) + feat(inner, (4, 0))]]
        f = problem.source(inner[:, :1].numpy(), inner[:, 1].numpy())
        rhs += [[zeros(both)], [zeros(both)], [torch.as_tensor(f).reshape(-1, 1)]]
    elif name == "burgers":  # u_t + u u_x = ν u_xx, u = 0 at both ends: Gauss–Newton as in pyrfm's example
        nu, init = problem.params["nu"], blocks[0][0]
        a, a_t, a_x, a_xx, a_b = (feat(inner, (0, 0)), feat(inner, (0, 1)), feat(inner, (1, 0)),
                                  feat(inner, (2, 0)), feat(both, (0, 0)))

        def residual(w):
            u = a @ w
            return torch.cat([a_t @ w + u * (a_x @ w) - nu * (a_xx @ w), a_b @ w, init @ w - u0])

        def jacobian(w):
            return torch.cat([a_t + (a @ w) * a_x + (a_x @ w) * a - nu * a_xx, a_b, init])

        model.W = pyrfm.nonlinear_least_square(residual, torch.zeros((a.shape[1], 1)), jacobian, method="newton",
                                               ftol=1e-6, gtol=1e-6, xtol=1e-6)[0]
        return
    else:
        raise ValueError(f"pyrfm is not set up for {name!r}")
    model.compute(pyrfm.concat_blocks(blocks)).solve(pyrfm.concat_blocks(rhs))


def pyrfm_child(names: list[str], quick: bool) -> dict:
    """In a process of its own: pyrfm (float64, PyTorch's CPU threads) on ``names``."""
    import contextlib
    import io
    from importlib.metadata import version

    import evolution_pde
    import numpy as np
    import torch

    torch.set_default_dtype(torch.float64)
    out = {"version": version("pyrfm"), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "points": {}}
    quiet = contextlib.redirect_stdout(io.StringIO())  # pyrfm prints every least-squares residual
    with quiet:
        _pyrfm_static(_problem("poisson_sin2d"), 1, 20, 100)  # warm-up: imports, thread pools
        _pyrfm_spacetime("wave_1d", _problem("wave_1d"), 1, 1, 5, 5, 20, 1)
    for name in names:
        spec = PROBLEMS[name]
        if not isinstance(spec.get("pyrfm"), list):
            continue
        problem, points = _problem(name), []
        for s in _pick(spec["pyrfm"], quick):
            with contextlib.redirect_stdout(io.StringIO()):
                if spec["kind"] == "static":
                    (u, x, _), m = _timed(_pyrfm_static, problem, **s["settings"])
                    ref = np.asarray(problem.truth(x))
                    error = float(np.linalg.norm(u - ref) / np.linalg.norm(ref))
                else:
                    (fields, gx, gt), m = _timed(_pyrfm_spacetime, name, problem, **s["settings"])
                    error = evolution_pde._error(problem, fields, gx, gt)
            points.append({"setting": s["setting"], "settings": s["settings"], "rel_l2": error, **m})
            _say(spec["label"], "pyrfm", points[-1])
        out["points"][name] = points
    return out


def deepxde_child(names: list[str], iterations: int) -> dict:
    """In a process of its own: the DeepXDE PINNs of ``evolution_pde`` / ``static_pde``."""
    from importlib.metadata import version

    import evolution_pde
    import static_pde

    out = {"version": version("deepxde"), "points": {}}
    for name in names:
        if name == "poisson_sin2d":
            error, m = _timed(static_pde.deepxde_poisson, iterations)
        elif name in DEEPXDE_EVOLUTION:
            problem = _problem(name)
            grid_x, grid_t = problem.evaluation_grid()
            fields, m = _timed(evolution_pde.deepxde_run, name, problem, grid_x, grid_t, iterations)
            error = evolution_pde._error(problem, fields, grid_x, grid_t)
        else:
            continue
        out["points"][name] = [{"setting": f"PINN, {iterations} Adam", "iterations": iterations, "rel_l2": error, **m}]
        _say(PROBLEMS[name]["label"], "deepxde", out["points"][name][0])
    return out


#: The environment of the peers' processes: one thread for BLAS, OpenMP and PyTorch, whose idle
#: threads sleep.  CPU seconds then count the peer's work alone: with two threads, spinning and
#: parallel overhead billed swimnetworks 1.2–2x and pyrfm up to 10x more CPU seconds on this
#: shared machine.  Ours keeps its defaults (Dask threads), overhead included.
PEER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def swimnetworks_child(names: list[str], quick: bool) -> dict:
    """In a process of its own: swimnetworks on the regression problem."""
    from importlib.metadata import version

    return {"version": version("swimnetworks"),
            "points": {n: _run_regression("swimnetworks", n, quick) for n in names if "swimnetworks" in PROBLEMS[n]}}


def _child(kind: str, names: list[str], quick: bool, iterations: int) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(PEER_ENV)
    cmd = [sys.executable, "-m", "benchmarks.report", "--child", kind, "--problems", *names,
           "--deepxde-iterations", str(iterations)] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, timeout=3600,
                          check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"the {kind} child failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")


# ============================================================================ the run
def run(names: list[str], quick: bool, iterations: int, skip_deepxde: bool = False) -> dict:
    _scripts()
    t_start, load_start = time.perf_counter(), os.getloadavg()
    have = {p: importlib.util.find_spec(p) is not None for p in ("swimnetworks", "pyrfm", "torch", "deepxde")}
    skipped_peers = []
    if not have["pyrfm"]:
        why = "not installed (pip install \".[peers]\")" if have["torch"] else "not installed (needs PyTorch)"
        skipped_peers.append({"peer": "pyrfm", "reason": why})
    if not have["deepxde"]:
        skipped_peers.append({"peer": "DeepXDE", "reason": "not installed (pip install \".[peers]\")"})
    elif skip_deepxde:
        skipped_peers.append({"peer": "DeepXDE", "reason": "skipped by --skip-deepxde"})
    if not have["swimnetworks"]:
        skipped_peers.append({"peer": "swimnetworks", "reason": "not installed (pip install swimnetworks==0.0.2)"})
    for s in skipped_peers:
        print(f"{s['peer']}: {s['reason']} — its points are skipped", file=sys.stderr, flush=True)

    _warm_up()
    problems = []
    for name in names:
        spec = PROBLEMS[name]
        entry = {"name": name, "label": spec["label"], "kind": spec["kind"], "grid": _grid(name),
                 "metric": "relative L2 over the evaluation grid", "peers": {}, "skipped": []}
        entry["peers"]["ours"] = run_ours(name, quick)
        if isinstance(spec.get("classical"), list):
            entry["peers"]["classical"] = run_classical(name, quick)
        elif "classical" in spec:
            entry["skipped"].append({"peer": "classical", "reason": spec["classical"]})
        if isinstance(spec.get("pyrfm"), str) and have["pyrfm"]:
            entry["skipped"].append({"peer": "pyrfm", "reason": spec["pyrfm"]})
        if "pyrfm_note" in spec and have["pyrfm"]:
            entry["notes"] = [{"peer": "pyrfm", "note": spec["pyrfm_note"]}]
        if "ours_note" in spec and entry["peers"].get("classical"):
            entry.setdefault("notes", []).append({"peer": "sampled network (this library)",
                                                  "note": spec["ours_note"](entry["peers"])})
        for s in entry["skipped"]:
            print(f"  {spec['label']} | {s['peer']}: {s['reason']}", file=sys.stderr, flush=True)
        problems.append(entry)

    versions = {}
    if have["pyrfm"] and any(isinstance(PROBLEMS[n].get("pyrfm"), list) for n in names):
        child = _child("pyrfm", names, quick, iterations)
        versions["pyrfm"], versions["torch"] = child["version"], child["torch"]
        versions["torch_threads"] = child["torch_threads"]
        for entry in problems:
            if child["points"].get(entry["name"]):
                entry["peers"]["pyrfm"] = child["points"][entry["name"]]
    if have["deepxde"] and not skip_deepxde:
        child = _child("deepxde", names, quick, iterations)
        versions["deepxde"] = child["version"]
        for entry in problems:
            if child["points"].get(entry["name"]):
                entry["peers"]["deepxde"] = child["points"][entry["name"]]
    if have["swimnetworks"] and any("swimnetworks" in PROBLEMS[n] for n in names):
        child = _child("swimnetworks", names, quick, iterations)
        versions["swimnetworks"] = child["version"]
        for entry in problems:
            if child["points"].get(entry["name"]):
                entry["peers"]["swimnetworks"] = child["points"][entry["name"]]
    from _harness import machine

    return {"benchmark": "report", "machine": machine(), "quick": quick, "problems_run": names,
            "versions": versions, "peer_env": PEER_ENV, "skipped_peers": skipped_peers, "load_start": list(load_start),
            "load_end": list(os.getloadavg()), "runtime_s": time.perf_counter() - t_start, "problems": problems}


# ============================================================================ rendering (from the JSON)
def _peer_name(peer: str, versions: dict) -> str:
    name = PEERS.get(peer, peer)
    return f"{name} {versions[peer]}" if peer in versions else name


def _sci(value: float) -> str:
    """Two significant digits, the README's way: 2.5e-6."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _cpu(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _env(report: dict) -> str:
    env = report.get("peer_env", {})
    threads = sorted({v for k, v in env.items() if k.endswith("_NUM_THREADS")})
    text = "one BLAS/OpenMP thread" if threads == ["1"] else f"{'/'.join(threads) or 'default'} BLAS/OpenMP threads"
    return text + (f" and OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}" if "OMP_WAIT_POLICY" in env else "")


def markdown(report: dict) -> str:
    lines = [f"# Peer report ({'quick, ' if report['quick'] else ''}{report['machine']['when']})", "",
             (f"Machine: {report['machine']['cpus']} CPUs, Python {report['machine']['python']}, NumPy "
              f"{report['machine']['numpy']}; load average {report['load_start'][0]:.2f} at the start, "
              f"{report['load_end'][0]:.2f} at the end; the run took {report['runtime_s'] / 60:.1f} min."),
             ("Error: relative L2 over each problem's evaluation grid, against the same exact or reference "
              "solution for every peer. CPU s: process time of the solving process (all threads); the peers "
              "ran in processes of their own with " + _env(report) + ", ours with its defaults."), "",
             "| problem | grid | peer | setting | rel. L2 | CPU s | wall s | load (1 min) |",
             "|---|---|---|---|---|---|---|---|"]
    for p in report["problems"]:
        first = True
        for peer, points in p["peers"].items():
            for pt in points:
                lines.append(f"| {p['label'] if first else ''} | {p['grid'] if first else ''} | "
                             f"{_peer_name(peer, report['versions'])} | {pt['setting']} | {pt['rel_l2']:.2e} | "
                             f"{_cpu(pt['cpu_s'])} | {_cpu(pt['wall_s'])} | {pt['load_1min']:.2f} |")
                first = False
    lines += ["", "Skipped:", ""]
    lines += [f"- {s['peer']}: {s['reason']}" for s in report["skipped_peers"]]
    lines += [f"- {p['label']}, {s['peer']}: {s['reason']}" for p in report["problems"] for s in p["skipped"]]
    notes = [f"- {p['label']}, {n['peer']}: {n['note']}" for p in report["problems"] for n in p.get("notes", [])]
    if notes:
        lines += ["", "Notes:", ""] + notes
    return "\n".join(lines) + "\n"


def readme_section(report: dict) -> str:
    """The README's section between the markers (markers included), from the JSON alone."""
    when = report["machine"]["when"][:10]
    lines = [START,
             ("Peer report: `python -m benchmarks.report` (`--problems NAME …`, `--quick`; pyrfm and DeepXDE come "
              "with `pip install \".[peers]\"`) runs every peer installed on the machine on the same problems, with "
              "the same error metric (relative L2 over each problem's evaluation grid, against the same exact or "
              "reference solution) on the same grids. This section is generated from "
              "`benchmarks/results/report.json` by `python -m benchmarks.report --readme` (do not edit it by hand); "
              f"the run: {report['machine']['cpus']}-core development machine, {when}, load average "
              f"{report['load_start'][0]:.2f} at the start and {report['load_end'][0]:.2f} at the end, "
              f"{report['runtime_s'] / 60:.1f} min in all. Each cell lists the points of a peer's error-vs-CPU-time "
              "curve, in the order of its settings, as *error in CPU seconds* (process time, all threads; the peers in processes of their own "
              "with " + _env(report) + ", ours with its defaults); the settings of every point are in "
              "`benchmarks/results/report.md`, the plots in `benchmarks/results/report/`."), "",
             "| problem | grid | peer | rel. L2 in CPU s |", "|---|---|---|---|"]
    for p in report["problems"]:
        first = True
        for peer, points in p["peers"].items():
            cells = "; ".join(f"{_sci(pt['rel_l2'])} in {_cpu(pt['cpu_s'])}" for pt in points)
            lines.append(f"| {p['label'] if first else ''} | {p['grid'] if first else ''} | "
                         f"{_peer_name(peer, report['versions'])} | {cells} |")
            first = False
    skipped = [f"- {s['peer']}: {s['reason']}" for s in report["skipped_peers"]]
    skipped += [f"- {s['peer']} on {p['label']}: {s['reason']}" for p in report["problems"] for s in p["skipped"]]
    if skipped:
        lines += ["", "Skipped:", ""] + skipped
    notes = [f"- {n['peer']} on {p['label']}: {n['note']}" for p in report["problems"] for n in p.get("notes", [])]
    if notes:
        lines += ["", "Notes:", ""] + notes
    lines.append(END)
    return "\n".join(lines)


def plot(report: dict, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    styles = {"ours": ("o-", "C0"), "classical": ("s--", "C1"), "pyrfm": ("^-.", "C2"),
              "swimnetworks": ("D:", "C3"), "deepxde": ("v:", "C4")}
    paths = []
    for p in report["problems"]:
        fig, ax = plt.subplots(figsize=(5.6, 4.0))
        for peer, points in p["peers"].items():
            pts = sorted(points, key=lambda q: q["cpu_s"])
            style, colour = styles.get(peer, ("x-", "C5"))
            ax.loglog([max(q["cpu_s"], 1e-3) for q in pts], [q["rel_l2"] for q in pts], style, color=colour,
                      label=_peer_name(peer, report["versions"]))
        ax.set_xlabel("CPU seconds")
        ax.set_ylabel("relative L2 error")
        ax.set_title(f"{p['label']} ({p['grid']})", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"{p['name']}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def write(report: dict, out_dir: Path, stem: str = "report") -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown(report))
    plot(report, out_dir / stem)


def update_readme(report: dict, readme: Path = README) -> bool:
    """Replace the marked section of the README; True when it changed."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(START), text.index(END) + len(END)
    new = text[:start] + readme_section(report) + text[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def readme_section_in(text: str) -> str:
    return text[text.index(START): text.index(END) + len(END)]


# ============================================================================ entry point
def output_dir(problems, quick: bool, out_dir: Path | None = None) -> Path:
    """Where a run writes: the committed report only for a full run (every problem, every setting)."""
    if out_dir is not None:
        return Path(out_dir)
    return RESULTS if not problems and not quick else Path(tempfile.gettempdir()) / "swim-pipeline-report"



def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), help="only these problems")
    parser.add_argument("--quick", action="store_true", help="fewer settings per peer")
    parser.add_argument("--readme", action="store_true",
                        help="regenerate the README section, report.md and the plots from "
                             "benchmarks/results/report.json (no solving)")
    parser.add_argument("--out-dir", type=Path,
                        help="where to write (default: benchmarks/results for a full run, else a temporary folder)")
    parser.add_argument("--deepxde-iterations", type=int, default=10_000)
    parser.add_argument("--skip-deepxde", action="store_true")
    parser.add_argument("--child", choices=("pyrfm", "deepxde", "swimnetworks"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.problems or list(PROBLEMS)
    _scripts()
    if args.child:
        out = {"pyrfm": lambda: pyrfm_child(names, args.quick), "swimnetworks": lambda: swimnetworks_child(names, args.quick),
               "deepxde": lambda: deepxde_child(names, args.deepxde_iterations)}[args.child]()
        print("RESULT " + json.dumps(out), flush=True)
        return
    if args.readme:
        report = json.loads((RESULTS / "report.json").read_text())
        changed = update_readme(report)
        (RESULTS / "report.md").write_text(markdown(report))  # derived from the JSON as well
        plot(report, RESULTS / "report")
        print(f"{README}: section {'rewritten' if changed else 'already up to date'}; {RESULTS / 'report.md'} and "
              f"{RESULTS / 'report'}/*.png rendered again")
        return
    report = run(names, args.quick, args.deepxde_iterations, args.skip_deepxde)
    full = not args.problems and not args.quick
    out_dir = output_dir(args.problems, args.quick, args.out_dir)
    write(report, out_dir)
    print("\n" + markdown(report))
    print(f"written to {out_dir / 'report.json'}, {out_dir / 'report.md'} and {out_dir / 'report'}/*.png"
          + ("" if full else " (a partial run: the committed report is left alone)"))


if __name__ == "__main__":
    main()
