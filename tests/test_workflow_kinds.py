"""The workflow layer's structure and contracts: no import cycles, one kind per module, every key
takes effect or is refused, progress on a terminal, analysis-ready stores, dense evaluation."""

import ast
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from pipeline import open_result
from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
PACKAGE = ROOT / "pipeline"


def _imports():
    """``module -> modules of pipeline it imports`` (function-level imports included)."""
    modules = {}
    for file in PACKAGE.rglob("*.py"):
        name = ".".join(file.relative_to(ROOT).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = file
    graph = {}
    for name, file in modules.items():
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else base)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_cycles_in_the_package():
    graph = _imports()
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_modules_stay_small_and_the_store_knows_no_kinds():
    sizes = {f: len(f.read_text().splitlines()) for f in PACKAGE.rglob("*.py")}
    too_long = {str(f.relative_to(ROOT)): n for f, n in sizes.items() if n > 450}
    assert not too_long, too_long
    assert sizes[PACKAGE / "workflows" / "runner.py"] < 250
    store = (PACKAGE / "store.py").read_text()
    for kind in ("hamiltonian", "lti", "supervised", "evolution", "static"):
        assert f'"{kind}"' not in store


@pytest.mark.parametrize("workflow, override, message", [
    ("poisson_2d", "time.windows=3", "time.windows does not apply to static PDE workflows; it applies to: "
                                      "time-dependent PDE"),
    ("poisson_2d", "solver.relaxation=10", "solver.relaxation does not apply to static PDE workflows"),
    ("advection", "solver.ridge=1e-6", "solver.ridge does not apply to time-dependent PDE workflows; it applies to: "
                                       "static PDE"),
    ("regression_ensemble", "collocation.n_interior=100", "collocation.n_interior does not apply to supervised"),
    ("regression_ensemble", "compute.device=gpu", "supervised workflows run on the CPU only"),
    ("hamiltonian_pendulum", "solver.kappa=2", "solver.kappa does not apply to Hamiltonian workflows"),
    ("hamiltonian_pendulum", "time.method=BDF", "time.method does not apply to Hamiltonian workflows"),
    ("lti_diffusion", "basis.width=10", "basis.width does not apply to LTI workflows"),
    ("lti_diffusion", "compute.chunk_rows=100", "compute.chunk_rows does not apply to LTI workflows"),
    ("quickstart", "ensemble.sweep={solver.ridge: [1e-6, 1e-8]}", "solver.ridge does not apply to time-dependent"),
])
def test_a_misplaced_key_is_one_clear_error_before_any_store(workflow, override, message, tmp_path, capsys):
    store = tmp_path / "s.zarr"
    assert main(["run", str(WORKFLOWS / f"{workflow}.yaml"), "--output", str(store), "--set", override,
                 "--scheduler", "synchronous"]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not store.exists()


def test_device_flag_is_refused_where_the_kind_has_no_gpu_path(tmp_path, capsys):
    assert main(["run", str(WORKFLOWS / "hamiltonian_pendulum.yaml"), "--output", str(tmp_path / "b.zarr"),
                 "--device", "gpu"]) == 2
    assert "run on the CPU only" in capsys.readouterr().err


def _run_on_a_terminal(args, timeout=180):
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns (exit code, screen text)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *map(str, args)], stdout=slave, stderr=slave,
                            cwd=ROOT, env={**os.environ, "COLUMNS": "120"})
    os.close(slave)
    chunks, deadline = [], time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


@pytest.mark.cluster
def test_quickstart_shows_a_progress_bar_and_the_dashboard_on_a_terminal(tmp_path):
    code, screen = _run_on_a_terminal(["run", WORKFLOWS / "quickstart.yaml", "--output", tmp_path / "q.zarr"])
    assert code == 0, screen
    assert "dashboard: http://" in screen
    assert "16/16" in screen and "window/s" in screen  # tqdm: 4 members x 4 windows, with its rate
    code, screen = _run_on_a_terminal(["run", WORKFLOWS / "quickstart.yaml", "--output", tmp_path / "q2.zarr",
                                       "--quiet", "--scheduler", "threads"])
    assert code == 0 and "window/s" not in screen and "dashboard" not in screen and "rel_l2" in screen


def test_without_a_terminal_one_line_per_finished_member(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(WORKFLOWS / "quickstart.yaml"), "--output",
                          str(tmp_path / "q.zarr"), "--scheduler", "threads"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert sum(line.startswith("member ") and " done (" in line for line in run.stderr.splitlines()) == 4
    assert "window/s" not in run.stderr


def test_heat_2d_store_is_an_image_and_a_sweep_has_its_own_dimension(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    store = tmp_path / "heat.zarr"
    assert main(["run", str(WORKFLOWS / "heat_2d.yaml"), "--output", str(store), "--scheduler", "threads",
                 "--quiet", "--set", "ensemble.sweep={problem.params.nu: [0.05, 0.1]}"]) == 0
    ds = xr.open_dataset(store, engine="zarr")
    assert ds.u.dims == ("nu", "member", "time", "y", "x")
    assert ds["x"].dims == ("x",) and ds["y"].dims == ("y",) and ds.sizes["x"] == ds.sizes["y"] == 51
    frame = ds.u.sel(nu=0.1, time=0.5, method="nearest").isel(member=0)
    artist = frame.plot()
    assert type(artist).__name__ == "QuadMesh"
    assert np.isfinite(frame.values).all()
    assert ds.u.mean("member").dims == ("nu", "time", "y", "x")


def test_a_zip_sweep_is_one_dimension_with_every_key_as_coordinate(tmp_path):
    cfg = {"version": 1, "problem": {"name": "heat_1d"}, "compute": {"scheduler": "threads"},
           "ensemble": {"mode": "zip", "sweep": {"problem.params.nu": [0.05, 0.1], "basis.width": [100, 150]}}}
    path = tmp_path / "zip.yaml"
    path.write_text(yaml.safe_dump(cfg))
    store = tmp_path / "zip.zarr"
    assert main(["run", str(path), "--output", str(store), "--quiet"]) == 0
    ds = xr.open_dataset(store, engine="zarr")
    assert ds.u.dims[:2] == ("sweep", "member")
    assert list(ds["nu"].values) == [0.05, 0.1] and list(ds["width"].values) == [100, 150]
    assert ds["nu"].dims == ("sweep",)


def test_burgers_store_evaluates_anywhere_as_a_fresh_evolve(tmp_path):
    """400 random (x, t): interpolation of the stored dense trajectory, equal to integrating anew."""
    from pipeline.config import load_workflow
    from pipeline.ensemble import expand_members
    from pipeline.pde import get_problem
    from pipeline.pde.evolution import Evolution

    store = tmp_path / "burgers.zarr"
    assert main(["run", str(WORKFLOWS / "burgers.yaml"), "--output", str(store), "--quiet"]) == 0
    rng = np.random.default_rng(4)
    points, times = rng.uniform(-1, 1, size=(400, 1)), rng.uniform(0, 1, size=400)
    values = open_result(store).evaluate(points, times).values[0]
    cfg, raw = load_workflow(WORKFLOWS / "burgers.yaml")
    member = expand_members(cfg, raw)[0][0]
    order = np.argsort(times)
    fresh = Evolution(get_problem("burgers"), seed=member.seed, windows=4).run(times[order], points[order])
    expected = np.empty(400)
    expected[order] = np.diagonal(fresh.fields)
    scale = np.abs(expected).max()
    # both are the same integration (same windows, same steps): they differ by the interpolation
    # tolerances of the dense output and of solve_ivp's own interpolant at t_eval (each the
    # integrator's rtol, relative, in the orthonormal reduced coordinates; measured 1.2 rtol)
    rtol = fresh.settings["rtol"]
    assert np.abs(values - expected).max() <= 10 * rtol * scale
    exact = np.array([get_problem("burgers").truth(p[None], t)[0] for p, t in zip(points, times)])
    assert np.linalg.norm(values - exact) / np.linalg.norm(exact) < 1e-3


def test_old_stores_fail_with_a_version_message(tmp_path):
    store = tmp_path / "w.zarr"
    assert main(["run", str(WORKFLOWS / "wave.yaml"), "--output", str(store), "--scheduler", "threads", "--quiet"]) == 0
    import zarr

    zarr.open_group(str(store), mode="r+").attrs["layout_version"] = 1
    result = open_result(store)
    assert "u" in result.dataset  # the arrays still open
    with pytest.raises(ValueError, match="layout version 1"):
        result.evaluate(np.zeros((1, 1)), np.zeros(1))


def test_overwrite_never_deletes_what_the_pipeline_did_not_write(tmp_path, capsys):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    assert main(["run", str(WORKFLOWS / "wave.yaml"), "--output", str(target), "--overwrite", "--quiet"]) == 2
    assert "not a store written by swim-pipeline" in capsys.readouterr().err
    assert (target / "notes.txt").read_text() == "keep me"


@pytest.mark.cluster
def test_one_large_member_uses_every_worker_and_equals_the_inline_run(tmp_path):
    """A single member on a two-worker cluster is split: its row blocks run on both workers."""
    from distributed import Client, LocalCluster, get_task_stream

    from pipeline.config import load_workflow
    from pipeline.workflows import run_workflow

    overrides = ["compute.chunk_rows=1000", "basis.width=600"]
    cfg, raw = load_workflow(WORKFLOWS / "poisson_2d.yaml", overrides)
    quiet = {"quiet": True, "log": lambda *a, **k: None}
    inline = run_workflow(cfg, raw, output=str(tmp_path / "inline.zarr"), scheduler="threads", **quiet)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client, get_task_stream(client) as stream:
        split = run_workflow(cfg, raw, output=str(tmp_path / "split.zarr"), scheduler=cluster.scheduler_address,
                             **quiet)
    # the TSQR leaves (each assembles and reduces one row block) ran on both workers
    leaves = [t for t in stream.data if str(t["key"]).lstrip("('").startswith("_leaf")]
    assert len(leaves) >= 7 and len({t["worker"] for t in leaves}) == 2, [(t["key"], t["worker"]) for t in leaves]
    a = xr.open_dataset(tmp_path / "inline.zarr", engine="zarr")["u"].values
    b = xr.open_dataset(tmp_path / "split.zarr", engine="zarr")["u"].values
    np.testing.assert_array_equal(a, b)  # the same graph, only run elsewhere: bitwise equal
    assert split["rel_l2"] == inline["rel_l2"] < 1e-6


@pytest.mark.cluster
def test_one_time_dependent_member_projects_on_every_worker(tmp_path):
    """A split evolution member: the projection's row blocks, the interpolation-row nominations
    and the fit's blocks run on both workers; the run equals the inline one to rounding (the
    Q-DEIM pivots may tie differently in another process's BLAS)."""
    from distributed import Client, LocalCluster, get_task_stream

    from pipeline.config import load_workflow
    from pipeline.workflows import run_workflow

    cfg, raw = load_workflow(WORKFLOWS / "burgers.yaml", ["compute.chunk_rows=400", "time.windows=1"])
    quiet = {"quiet": True, "log": lambda *a, **k: None}
    inline = run_workflow(cfg, raw, output=str(tmp_path / "inline.zarr"), scheduler="threads", **quiet)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client, get_task_stream(client) as stream:
        split = run_workflow(cfg, raw, output=str(tmp_path / "split.zarr"), scheduler=cluster.scheduler_address,
                             **quiet)
    for kernel in ("_leaf", "reduced_rows"):
        tasks = [t for t in stream.data if str(t["key"]).lstrip("('").startswith(kernel)]
        assert len(tasks) >= 4 and len({t["worker"] for t in tasks}) == 2, (kernel, len(tasks))
    a = xr.open_dataset(tmp_path / "inline.zarr", engine="zarr")["u"].values
    b = xr.open_dataset(tmp_path / "split.zarr", engine="zarr")["u"].values
    assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()  # float32 store
    assert abs(split["rel_l2"] - inline["rel_l2"]) <= 0.05 * inline["rel_l2"] and inline["rel_l2"] < 1e-3


def test_gpu_without_cupy_is_one_clear_error_before_any_store(tmp_path, capsys):
    from pipeline.backend import gpu_available

    if gpu_available():
        pytest.skip("this machine has a GPU")
    for workflow in ("poisson_2d", "burgers"):  # static and time-dependent PDEs have a GPU path
        store = tmp_path / f"{workflow}.zarr"
        assert main(["run", str(WORKFLOWS / f"{workflow}.yaml"), "--output", str(store), "--device", "gpu"]) == 2
        err = capsys.readouterr().err
        assert "compute.device=gpu needs CuPy and a CUDA device" in err and len(err.strip().splitlines()) == 1
        assert not store.exists()


@pytest.mark.cluster
def test_members_on_one_worker_run_one_at_a_time_and_send_no_reads_to_the_scheduler(tmp_path):
    """Each member runs whole in its task: its reads of the store (the resumption flags) are
    plain NumPy, so no task of theirs goes through the scheduler, and a one-thread worker never
    runs two members at once (a Dask read inside a task seceded it and let the next one start)."""
    from distributed import Client, LocalCluster, get_task_stream

    from pipeline.config import load_workflow
    from pipeline.workflows import run_workflow

    cfg, raw = load_workflow(WORKFLOWS / "burgers.yaml", ["time.windows=2", "ensemble.members=3"])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        with get_task_stream(client) as stream:
            client.submit(sum, [1, 2]).result()  # the stream is recording
            run_workflow(cfg, raw, output=str(tmp_path / "e.zarr"), scheduler=cluster.scheduler_address, quiet=True,
                         log=lambda *a, **k: None)
    members = sorted((s["start"], s["stop"]) for t in stream.data if str(t["key"]).startswith("run_member")
                     for s in t["startstops"] if s["action"] == "compute")
    assert len(members) == 3
    # (the stream's stamps may overlap by milliseconds; the Dask reads overlapped members by seconds)
    assert all(later[0] >= earlier[1] - 0.1 for earlier, later in zip(members, members[1:])), members
    during = [t["key"] for t in stream.data for s in t["startstops"]
              if s["action"] == "compute" and members[0][0] < s["start"] < members[-1][1]
              and not str(t["key"]).startswith("run_member")]
    assert not during, during[:5]


def test_a_worker_running_pde_members_imports_neither_scikit_learn_nor_scipy_stats():
    code = ("import sys, pipeline.workflows.runner, pipeline.workflows.evolution, pipeline.pde; "
            "print(sorted(m for m in ('sklearn', 'scipy.stats') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    from pipeline import SampledNetworkRegressor  # and the lazy names still resolve

    assert SampledNetworkRegressor.__module__ == "pipeline.models.supervised"
