"""Ensemble throughput: members per minute on a local cluster of 1 and of 2 workers, and where
each run's time goes.

The ensemble is the Burgers workflow (four windows per member, all written to one zarr store).
Each cluster size runs it twice on one LocalCluster started beforehand the way ``pipeline run``
starts it (``pipeline.cluster.local_cluster``: each worker imports the library as it starts,
``pipeline.preload``); its start-up is reported (``start s``) but not counted in the rates:
**cold**, the cluster's first workflow, then **warm**, the same workflow into a second store
(long-lived workers, the case of a cluster serving many workflows).  Scaling efficiency = (rate with 2 workers / rate
with 1) / 2, cold and warm.  Per run: wall seconds, the client's CPU seconds, the mean member
time inside its task (from the store's diagnostics), the share of store writes, and the serial
time on the client (template, metrics, finalisation: everything but the members' tasks).  On
2 cores, 2 workers share them with the client and the scheduler, and the machine is shared:
``--repeats`` fresh clusters per size, 1 and 2 workers alternating; the table gives the medians
over the repeats (each repeat's efficiency is printed too) and the load average is recorded.

    python benchmarks/ensemble_throughput.py [--members 8] [--repeats 3] [--without-preload]

``--without-preload`` is the baseline: workers import the library in their first member
(written to ``ensemble_throughput_without_preload.json``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _harness import markdown_table, write_results  # noqa: E402


def _run(cfg, raw, store, address) -> dict:
    from pipeline import open_result
    from pipeline.workflows import run_workflow
    from pipeline.workflows import runner

    compute, spent = runner._compute, {}

    def timed(*args, **kwargs):  # the members' part of the run; the rest is serial, on the client
        start = time.perf_counter()
        try:
            return compute(*args, **kwargs)
        finally:
            spent["members"] = time.perf_counter() - start

    runner._compute = timed
    try:
        start, cpu = time.perf_counter(), time.process_time()
        metrics = run_workflow(cfg, raw, output=str(store), scheduler=address, quiet=True, log=lambda *a, **k: None)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        runner._compute = compute
    diag = open_result(store).tree["diagnostics"].to_dataset()
    stages = list(diag["stage"].values)
    seconds = np.nan_to_num(diag["wall_seconds"].values).reshape(-1, len(stages))
    return {"wall_s": wall, "client_cpu_s": cpu, "serial_s": wall - spent["members"],
            "member_seconds_mean": float(seconds.sum(axis=1).mean()),
            "write_share": float(seconds[:, stages.index("write")].sum() / seconds.sum()), "rel_l2": metrics["rel_l2"]}


def main() -> None:
    from pipeline.cluster import local_cluster
    from pipeline.config import validate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="fresh clusters per size (the medians are reported)")
    parser.add_argument("--without-preload", action="store_true",
                        help="the baseline: workers that import the library in their first member")
    args = parser.parse_args()
    raw = {"version": 1, "problem": {"name": "burgers"}, "time": {"windows": 4},
           "ensemble": {"members": args.members}, "compute": {"scheduler": "local"}}
    cfg = validate(raw)
    runs, load = [], [round(os.getloadavg()[0], 2)]
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # 1 and 2 workers alternate: a drift in the load hits both
            for workers in (1, 2):
                begun = time.perf_counter()
                with local_cluster(workers, preload=not args.without_preload) as cluster:
                    started = time.perf_counter() - begun
                    for start in ("cold", "warm"):
                        row = _run(cfg, raw, Path(tmp) / f"{start}{workers}-{repeat}.zarr", cluster.scheduler_address)
                        runs.append({"workers": workers, "start": start, "repeat": repeat, "members": args.members,
                                     "cluster_start_s": started,
                                     "members_per_minute": 60 * args.members / row["wall_s"], **row})
                load.append(round(os.getloadavg()[0], 2))
    rows = []
    for workers in (1, 2):
        for start in ("cold", "warm"):
            mine = [r for r in runs if r["workers"] == workers and r["start"] == start]
            rows.append({"workers": workers, "start": start, "members": args.members, "repeats": len(mine),
                         **{k: float(np.median([r[k] for r in mine])) for k in mine[0]
                            if k not in ("workers", "start", "repeat", "members")}})
    for row in rows[2:]:
        one = next(r for r in rows if r["workers"] == 1 and r["start"] == row["start"])
        row["scaling_efficiency"] = row["members_per_minute"] / one["members_per_minute"] / 2
        row["scaling_efficiency_per_repeat"] = [
            two["members_per_minute"] / single["members_per_minute"] / 2
            for two, single in zip((r for r in runs if r["workers"] == 2 and r["start"] == row["start"]),
                                   (r for r in runs if r["workers"] == 1 and r["start"] == row["start"]))]
    name = "ensemble_throughput" + ("_without_preload" if args.without_preload else "")
    path = write_results(name, {"rows": rows, "runs": runs, "load_average": load, "preload": not args.without_preload})
    print("\nEnsemble throughput (Burgers members on a local cluster; template, members and finalisation timed)\n")
    print(markdown_table(rows, [("workers", "workers", "d"), ("start", "run", "s"), ("members", "members", "d"),
                                ("cluster_start_s", "start s", ".1f"), ("wall_s", "wall s", ".1f"),
                                ("members_per_minute", "members / min", ".1f"),
                                ("scaling_efficiency", "scaling efficiency", ".2f"),
                                ("member_seconds_mean", "s per member", ".2f"),
                                ("serial_s", "serial s (client)", ".2f"), ("client_cpu_s", "client CPU s", ".2f"),
                                ("write_share", "store writes / member time", ".1%"),
                                ("rel_l2", "worst rel. L2", ".1e")]))
    for row in rows[2:]:
        print(f"scaling efficiency, {row['start']}, per repeat: "
              + ", ".join(f"{e:.2f}" for e in row["scaling_efficiency_per_repeat"]))
    print(f"load average (1 min) at start and after each cluster: {load}")
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
