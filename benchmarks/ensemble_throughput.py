"""Ensemble throughput: members per minute on a local cluster of 1 and of 2 workers, and the
share of each member's time spent writing the store.

The ensemble is the Burgers workflow (every member ~3-4 s, four windows each, all written to
one zarr store); each cluster size runs the same members on a LocalCluster started beforehand
(its start-up is not counted).  Scaling efficiency = (rate with 2 workers / rate with 1) / 2.

    python benchmarks/ensemble_throughput.py [--members 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _harness import markdown_table, write_results  # noqa: E402


def main() -> None:
    from pipeline import open_result
    from pipeline.config import validate
    from pipeline.workflows import run_workflow

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=8)
    args = parser.parse_args()
    raw = {"version": 1, "problem": {"name": "burgers"}, "time": {"windows": 4},
           "ensemble": {"members": args.members}, "compute": {"scheduler": "local"}}
    cfg = validate(raw)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            from distributed import LocalCluster

            store = Path(tmp) / f"w{workers}.zarr"
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster:
                start, cpu = time.perf_counter(), time.process_time()
                metrics = run_workflow(cfg, raw, output=str(store), scheduler=cluster.scheduler_address, quiet=True,
                                       log=lambda *a, **k: None)
                wall = time.perf_counter() - start
            diag = open_result(store).tree["diagnostics"].to_dataset()
            stages = list(diag["stage"].values)
            seconds = np.nan_to_num(diag["wall_seconds"].values).reshape(-1, len(stages))
            write_share = seconds[:, stages.index("write")].sum() / seconds.sum()
            rows.append({"workers": workers, "members": args.members, "wall_s": wall,
                         "members_per_minute": 60 * args.members / wall, "write_share": write_share,
                         "member_seconds_mean": float(seconds.sum(axis=1).mean()), "rel_l2": metrics["rel_l2"],
                         "client_cpu_s": time.process_time() - cpu})
    rows[1]["scaling_efficiency"] = rows[1]["members_per_minute"] / rows[0]["members_per_minute"] / 2
    path = write_results("ensemble_throughput", {"rows": rows})
    print("\nEnsemble throughput (Burgers members on a local cluster; template, members and finalisation timed)\n")
    print(markdown_table(rows, [("workers", "workers", "d"), ("members", "members", "d"), ("wall_s", "wall s", ".1f"),
                                ("members_per_minute", "members / min", ".1f"),
                                ("scaling_efficiency", "scaling efficiency", ".2f"),
                                ("member_seconds_mean", "s per member", ".2f"),
                                ("write_share", "store writes / member time", ".1%"),
                                ("rel_l2", "worst rel. L2", ".1e")]))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
