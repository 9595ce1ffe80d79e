"""Large domains: local bases on a partition (docs/design.md §1.5) — scaling, the global basis, one big run.

The problem is ``poisson_waves``: ``u = sin(2πnx) sin(2πny)`` on the unit square, ``n``
wavelengths across each axis, sine features at the solution's frequency (``weight_scale`` 0.8·2πn).
Errors are relative L2 at 20 000 random points no solve saw.

1. *Scaling*: 2×2 … 16×16 boxes at a fixed 1.6 wavelengths and 400 neurons per box (the
   problem grows with the partition), each size in a fresh process: wall and CPU seconds, peak
   memory, and both per box.
2. *The global basis at equal degrees of freedom* on problems both can solve.
3. *Time-dependent*: ``advection_diffusion`` over 200 wavelengths on 50 boxes by the method of
   lines (``evolve_partitioned``), seeds 0-2, to T = 1 and T = 10; and in 2-D with one wavelength
   per box on 2×2 … 8×8 boxes (``--evolution-sizes``), seeds 0-2, T = 1.
4. *One large run* through the workflow machinery (``run_workflow``, as ``pipeline run``) on a
   local cluster of 2 workers: ``--waves`` wavelengths across, boxes of ``--waves-per-box``,
   ``--per-box`` neurons each; every worker's CPU seconds and peak memory, and the client's.

    python benchmarks/large_domain.py [--sizes 2,4,8,16] [--waves 50] [--waves-per-box 2.5] [--per-box 700]
                                      [--skip-global] [--skip-large] [--only-large] [--only-evolution]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import RESULTS, entry, machine, markdown_table, measure, run_isolated, write_results  # noqa: E402

SCRIPT = str(Path(__file__).resolve())
RATIO = 2.5  # interior collocation points per neuron
TEST_POINTS = 20_000


def _settings(waves: float, boxes: int, per_box: int) -> dict:
    n = boxes * boxes
    return {"width": per_box * n, "n_interior": int(RATIO * per_box * n),
            "n_boundary": int(8 * boxes * np.sqrt(RATIO * per_box)), "weight_scale": 0.8 * 2 * np.pi * waves}


def _error(solution, waves) -> float:
    from pipeline.pde import get_problem

    x = np.random.default_rng(2024).random((TEST_POINTS, 2))
    exact = get_problem("poisson_waves", waves=waves).exact(x)
    return float(np.linalg.norm(solution(x) - exact) / np.linalg.norm(exact))


def run_contender(spec: dict) -> dict:
    import dask

    if spec.get("evolution"):
        return run_evolution(spec)
    from pipeline.pde import get_problem, solve_static
    from pipeline.pde.partitioned import solve_partitioned

    dask.config.set(scheduler="synchronous")  # one process: its peak memory is the solve's
    problem = get_problem("poisson_waves", waves=spec["waves"])
    settings = _settings(spec["waves"], spec["boxes"], spec["per_box"])
    if spec["global"]:
        settings["width"] = spec["boxes"] ** 2 * spec["per_box"]
        solution, metrics = measure(solve_static, problem, **settings)
        info = {"rank": solution.rank}
    else:
        solution, metrics = measure(solve_partitioned, problem, spec["boxes"], **settings)
        info = {"iterations": solution.info["interface"]["iterations"], "method": solution.info["interface"]["method"],
                "unknowns": solution.info["rank"], "interface_s": solution.timings["interface"],
                "factors_s": solution.timings["local_factors"], "interface_jump": solution.info["interface_jump"]}
    return {**spec, **metrics, **info, "neurons": settings["width"], "rel_l2": _error(solution, spec["waves"])}


def _scaling(sizes) -> list[dict]:
    rows = []
    for boxes in sizes:
        row = run_isolated(SCRIPT, {"waves": 1.6 * boxes, "boxes": boxes, "per_box": 400, "global": False})
        n = boxes * boxes
        row.update(boxes_total=n, wall_per_box_s=row["wall_s"] / n, cpu_per_box_s=row["cpu_s"] / n,
                   peak_gb=row["peak_rss_bytes"] / 2**30, solve_gb=row["peak_increment_bytes"] / 2**30,
                   solve_per_box_mb=row["peak_increment_bytes"] / n / 2**20)
        rows.append(row)
        print({k: row[k] for k in ("boxes", "neurons", "rel_l2", "wall_s", "cpu_s", "peak_gb", "iterations")},
              flush=True)
    return rows


def _against_global() -> list[dict]:
    rows = []
    for waves, boxes, per_box in ((3.2, 2, 400), (6.4, 4, 400)):
        for is_global in (False, True):
            row = run_isolated(SCRIPT, {"waves": waves, "boxes": boxes, "per_box": per_box, "global": is_global})
            row.update(basis="global" if is_global else f"{boxes}×{boxes} boxes", peak_gb=row["peak_rss_bytes"] / 2**30)
            rows.append(row)
            print({k: row[k] for k in ("waves", "basis", "neurons", "rel_l2", "wall_s", "cpu_s", "peak_gb")}, flush=True)
    return rows


def run_evolution(spec: dict) -> dict:
    import dask

    from pipeline.pde import get_problem
    from pipeline.pde.partitioned_evolution import evolve_partitioned

    dask.config.set(scheduler="synchronous")
    dim = spec.get("dim", 1)
    problem = get_problem("advection_diffusion", waves=spec["waves"], T=spec["T"], dim=dim)
    evolution, metrics = measure(evolve_partitioned, problem, spec["boxes"], seed=spec["seed"], **spec["settings"])
    x = np.random.default_rng(2024).random((TEST_POINTS, dim)) * spec["waves"]
    return {**spec, **metrics, "rel_l2": evolution.error(x), "rank": evolution.info["rank"],
            "neurons": sum(f.width for f in evolution.fields[:1]), "propagation": evolution.info["propagation"],
            "timings": evolution.timings}


def _over_seeds(spec: dict, seeds=(0, 1, 2)) -> dict:
    """``spec`` in a fresh process per seed: the median and worst error, CPU seconds, peak memory."""
    runs = [run_isolated(SCRIPT, {**spec, "evolution": True, "seed": seed}) for seed in seeds]
    errors, cpus = sorted(r["rel_l2"] for r in runs), sorted(r["cpu_s"] for r in runs)
    middle = len(runs) // 2
    return {"T": spec["T"], "waves": spec["waves"], "boxes": spec["boxes"], "neurons": runs[0]["neurons"],
            "rank": runs[0]["rank"], "propagation": runs[0]["propagation"], "seeds": list(seeds),
            "median_rel_l2": errors[middle], "worst_rel_l2": errors[-1], "median_cpu_s": cpus[middle],
            "worst_cpu_s": cpus[-1], "peak_gb": max(r["peak_rss_bytes"] for r in runs) / 2**30,
            "integrate_s": float(np.median([r["timings"]["integrate"] for r in runs])),
            "operator_s": float(np.median([r["timings"]["operator"] for r in runs]))}


def _evolution() -> list[dict]:
    """advection_diffusion over 200 wavelengths on 50 boxes, seeds 0-2: the defaults and tanh U-SWIM."""
    rows = []
    for label, settings in (("defaults (sine features)", {}),
                            ("tanh U-SWIM, 6000 neurons", {"activation": "tanh", "sampler": "uswim",
                                                           "width": 6000, "n_interior": 24000, "points": "uniform"})):
        for T in (1.0, 10.0):
            rows.append({"basis": label, **_over_seeds({"waves": 200.0, "T": T, "boxes": 50, "settings": settings})})
            print(rows[-1], flush=True)
    return rows


def _evolution_2d(sizes) -> list[dict]:
    """advection_diffusion in 2-D, one wavelength per box (the problem grows with the partition), T = 1."""
    rows = []
    for boxes in sizes:
        row = _over_seeds({"waves": float(boxes), "T": 1.0, "boxes": boxes, "dim": 2, "settings": {}})
        row["boxes_total"] = boxes * boxes
        rows.append(row)
        print(row, flush=True)
    return rows


def _worker_usage(dask_worker=None):
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_bytes": usage.ru_maxrss * 1024}


def _large(waves: float, per_wave_box: float, per_box: int, workers: int) -> dict:
    from distributed import Client, LocalCluster

    from pipeline import open_result
    from pipeline.config import validate
    from pipeline.pde import get_problem
    from pipeline.workflows import run_workflow

    boxes = int(round(waves / per_wave_box))
    settings = _settings(waves, boxes, per_box)
    raw = {"version": 1, "problem": {"name": "poisson_waves", "params": {"waves": waves}},
           "basis": {"width": settings["width"], "partition": [boxes, boxes], "weight_scale": settings["weight_scale"]},
           "collocation": {"n_interior": settings["n_interior"], "n_boundary": settings["n_boundary"]},
           "output": {"dtype": "float64"}}
    cfg = validate(raw)
    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                         memory_limit="10GB") as cluster, Client(cluster) as client:
        before, client_cpu = client.run(_worker_usage), time.process_time()
        start = time.perf_counter()
        metrics = run_workflow(cfg, raw, output=str(Path(tmp) / "large.zarr"), scheduler=cluster.scheduler_address,
                               quiet=True, log=lambda *a, **k: None)
        wall = time.perf_counter() - start
        after = client.run(_worker_usage)
        result = open_result(Path(tmp) / "large.zarr")
        diagnostics = result.tree["diagnostics"]
        x = np.random.default_rng(2024).random((TEST_POINTS, 2))
        exact = get_problem("poisson_waves", waves=waves).exact(x)
        u = np.asarray(result.evaluate(x))[0]
        row = {"waves": waves, "boxes": boxes, "boxes_total": boxes * boxes, "per_box": per_box,
               "neurons": settings["width"], "workers": workers, "wall_s": wall,
               "worker_cpu_s": sorted(after[w]["cpu_s"] - before[w]["cpu_s"] for w in after),
               "client_cpu_s": time.process_time() - client_cpu,
               "worker_peak_gb": sorted(a["peak_rss_bytes"] / 2**30 for a in after.values()),
               "client_peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
               "rel_l2_grid": metrics["rel_l2"],
               "rel_l2": float(np.linalg.norm(u - exact) / np.linalg.norm(exact)),
               "iterations": int(diagnostics["interface_iterations"].values[0]),
               "interface_jump": float(diagnostics["interface_jump"].values[0])}
    row["peak_gb_total"] = sum(row["worker_peak_gb"]) + row["client_peak_gb"]
    row["cpu_s_total"] = sum(row["worker_cpu_s"]) + row["client_cpu_s"]
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,4,8,16", help="boxes per axis of the scaling runs")
    parser.add_argument("--waves", type=float, default=50.0, help="wavelengths across the large run")
    parser.add_argument("--waves-per-box", type=float, default=2.5)
    parser.add_argument("--per-box", type=int, default=700, help="neurons per box of the large run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-global", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-evolution", action="store_true")
    parser.add_argument("--only-large", action="store_true", help="the large run alone, merged into the JSON")
    parser.add_argument("--evolution-sizes", default="2,4,8", help="boxes (and wavelengths) per axis, 2-D evolution")
    parser.add_argument("--only-evolution", action="store_true",
                        help="the time-dependent runs alone (1-D and 2-D), merged into the JSON")
    args = parser.parse_args()
    payload = {"machine": machine(), "load_average_start": list(np.round(os.getloadavg(), 2))}
    if args.only_evolution:
        payload = {**json.loads((RESULTS / "large_domain.json").read_text()),
                   "evolution_machine": payload["machine"], "evolution_load_average_start": payload["load_average_start"]}
        payload["evolution"] = _evolution()
        payload["evolution_2d"] = _evolution_2d([int(s) for s in args.evolution_sizes.split(",")])
        payload["evolution_load_average_end"] = list(np.round(os.getloadavg(), 2))
        print(f"written to {write_results('large_domain', payload)}")
        return
    if args.only_large:
        payload = {**json.loads((RESULTS / "large_domain.json").read_text()), **payload}
        payload["large"] = _large(args.waves, args.waves_per_box, args.per_box, args.workers)
        payload["load_average_end"] = list(np.round(os.getloadavg(), 2))
        print(f"written to {write_results('large_domain', payload)}")
        return
    payload["scaling"] = _scaling([int(s) for s in args.sizes.split(",")])
    first = payload["scaling"][0]
    for row in payload["scaling"]:
        row["time_ratio"] = row["cpu_s"] / first["cpu_s"]
        row["memory_ratio"] = row["peak_increment_bytes"] / first["peak_increment_bytes"]
        row["boxes_ratio"] = row["boxes_total"] / first["boxes_total"]
    if not args.skip_global:
        payload["against_global"] = _against_global()
    if not args.skip_evolution:
        payload["evolution"] = _evolution()
        payload["evolution_2d"] = _evolution_2d([int(s) for s in args.evolution_sizes.split(",")])
    write_results("large_domain", payload)  # the smaller parts survive a failure of the large run
    if not args.skip_large:
        payload["large"] = _large(args.waves, args.waves_per_box, args.per_box, args.workers)
    payload["load_average_end"] = list(np.round(os.getloadavg(), 2))
    path = write_results("large_domain", payload)
    print("\nScaling: 1.6 wavelengths and 400 neurons per box (solve memory: the peak above the memory held "
          "before the solve)\n")
    print(markdown_table(payload["scaling"], [
        ("boxes_total", "boxes", "d"), ("neurons", "neurons", "d"), ("rel_l2", "rel. L2", ".1e"),
        ("cpu_s", "CPU s", ".1f"), ("wall_s", "wall s", ".1f"), ("solve_gb", "solve memory GB", ".2f"),
        ("peak_gb", "process peak GB", ".2f"),
        ("boxes_ratio", "boxes ×", ".0f"), ("time_ratio", "CPU ×", ".1f"), ("memory_ratio", "memory ×", ".1f"),
        ("iterations", "CG iterations", "d")]))
    if "against_global" in payload:
        print("\nAgainst one global basis of the same width\n")
        print(markdown_table(payload["against_global"], [
            ("waves", "wavelengths", ".1f"), ("basis", "basis", "s"), ("neurons", "neurons", "d"),
            ("rel_l2", "rel. L2", ".1e"), ("cpu_s", "CPU s", ".1f"), ("wall_s", "wall s", ".1f"),
            ("peak_gb", "peak GB", ".2f")]))
    if "evolution" in payload:
        print("\nadvection–diffusion over 200 wavelengths on 50 boxes, method of lines, seeds 0-2\n")
        print(markdown_table(payload["evolution"], [
            ("basis", "basis", "s"), ("T", "T", ".0f"), ("neurons", "neurons", "d"),
            ("median_rel_l2", "median rel. L2", ".1e"), ("worst_rel_l2", "worst", ".1e"),
            ("median_cpu_s", "CPU s", ".1f"), ("peak_gb", "peak GB", ".2f")]))
    if "evolution_2d" in payload:
        print("\nadvection–diffusion in 2-D, one wavelength per box, T = 1, seeds 0-2\n")
        print(markdown_table(payload["evolution_2d"], [
            ("boxes_total", "boxes", "d"), ("neurons", "neurons", "d"), ("rank", "coordinates", "d"),
            ("median_rel_l2", "median rel. L2", ".1e"), ("worst_rel_l2", "worst", ".1e"),
            ("median_cpu_s", "CPU s", ".1f"), ("operator_s", "LU of N s", ".1f"), ("integrate_s", "propagation s", ".1f"),
            ("peak_gb", "peak GB", ".2f")]))
    if "large" in payload:
        r = payload["large"]
        print(f"\nLarge: {r['waves']:g} wavelengths, {r['boxes_total']} boxes, {r['neurons']} neurons on "
              f"{r['workers']} workers: rel. L2 {r['rel_l2']:.1e}, wall {r['wall_s']:.0f} s, worker CPU "
              f"{r['worker_cpu_s']} s, peak {r['peak_gb_total']:.1f} GB in all")
    print(f"written to {path}")


if __name__ == "__main__":
    entry(run_contender, main)
