"""One large static problem on a local cluster of 1 and of 2 workers (`pipeline run` machinery).

The Poisson problem ``poisson_sin2d`` with ``--rows`` interior collocation rows and ``--width``
neurons (the issue's target: 2e6 rows × 4000 neurons, 64 GB if the design were formed) is run
as one workflow member; with two workers the member is split (``compute.split_members: auto``),
so its row blocks are assembled and reduced on both. Reported per cluster size: wall time, the
CPU seconds each worker spent, each worker's peak resident memory, and the error against the
exact solution; the wall-time ratio 2 workers / 1 worker.

    python benchmarks/large_static.py [--rows 2000000] [--width 4000] [--chunk-rows 20000] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import markdown_table, write_results  # noqa: E402


def _worker_usage(dask_worker=None):
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_bytes": usage.ru_maxrss * 1024}


def main() -> None:
    from distributed import Client, LocalCluster

    from pipeline.config import validate
    from pipeline.workflows import run_workflow

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--memory-limit", default="10GB", help="per worker")
    parser.add_argument("--workers", default="1,2", help="cluster sizes to run, e.g. 2 (the ratio needs 1,2)")
    args = parser.parse_args()
    raw = {"version": 1, "problem": {"name": "poisson_sin2d"},
           "basis": {"width": args.width}, "collocation": {"n_interior": args.rows, "n_boundary": args.rows // 20},
           "compute": {"chunk_rows": args.chunk_rows}, "output": {"dtype": "float32"}}
    cfg = validate(raw)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (int(w) for w in args.workers.split(",")):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                              memory_limit=args.memory_limit) as cluster, Client(cluster) as client:
                before = client.run(_worker_usage)
                start = time.perf_counter()
                metrics = run_workflow(cfg, raw, output=str(Path(tmp) / f"w{workers}.zarr"),
                                       scheduler=cluster.scheduler_address, quiet=True, log=lambda *a, **k: None)
                wall = time.perf_counter() - start
                after = client.run(_worker_usage)
            cpu = sorted(after[w]["cpu_s"] - before[w]["cpu_s"] for w in after)
            rows.append({"workers": workers, "rows": args.rows, "width": args.width, "wall_s": wall,
                         "worker_cpu_s": cpu, "cpu_share_min": min(cpu) / sum(cpu),
                         "peak_rss_gb_max": max(a["peak_rss_bytes"] for a in after.values()) / 2**30,
                         "rel_l2": metrics["rel_l2"]})
            print(rows[-1], flush=True)
    sizes = [r["workers"] for r in rows]
    if sizes[:2] == [1, 2]:
        rows[1]["wall_ratio_2_over_1"] = rows[1]["wall_s"] / rows[0]["wall_s"]
    name = "large_static" if sizes[:2] == [1, 2] else "large_static_" + "_".join(map(str, sizes)) + "_workers"
    path = write_results(name, {"rows": rows, "design_gb_if_formed": 8 * args.rows * (args.width + 2) / 1e9})
    print("\nOne large static member on 1 and 2 workers (split over the cluster)\n")
    print(markdown_table(rows, [("workers", "workers", "d"), ("rows", "rows", "d"), ("width", "neurons", "d"),
                                ("wall_s", "wall s", ".1f"), ("cpu_share_min", "smallest worker CPU share", ".0%"),
                                ("peak_rss_gb_max", "peak RSS per worker GB", ".2f"), ("rel_l2", "rel. L2", ".1e")]))
    if "wall_ratio_2_over_1" in rows[-1]:
        print(f"\nwall 2 workers / 1 worker: {rows[1]['wall_ratio_2_over_1']:.2f}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
