"""BLAS threads of the public entry points: ``evolve`` and ``solve_static`` from a plain process.

Each contender runs in a fresh process on a *loaded* machine (a busy loop holds one of the
cores, as another user's job would):

- ``one thread (env)``: BLAS pinned to one thread by the environment: the reference figure;
- ``default env``: a plain Python process (OpenBLAS starts one thread per core); the entry
  points pin BLAS themselves (``pipeline.cluster.blas_limited``);
- ``default env, unpinned``: the same with that pinning switched off: what a caller got
  before the entry points limited BLAS.

    python benchmarks/blas_threads.py
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import blas_threads, entry, markdown_table, measure, run_isolated, write_results  # noqa: E402

CASES = {
    "evolve(burgers)": ("evolve", "burgers"),
    "solve_static(poisson_sin2d)": ("solve_static", "poisson_sin2d"),
}


def run_contender(spec: dict) -> dict:
    import pipeline.cluster as cluster
    from pipeline.pde import evolve, get_problem, solve_static

    if spec["unpinned"]:  # the entry points as they were: no limit of their own
        cluster.single_blas_thread = contextlib.nullcontext
    solver = {"evolve": evolve, "solve_static": solve_static}[spec["solver"]]
    problem = get_problem(spec["problem"])
    result, metrics = measure(solver, problem, repeats=1)
    from threadpoolctl import threadpool_info

    threads = max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")
    return {**metrics, "error": float(result.error()), "blas_threads_outside": threads}


def _busy(stop):
    while not stop.is_set():
        sum(range(10_000))


def main() -> None:
    script = str(Path(__file__).resolve())
    rows = []
    stop = multiprocessing.Event()
    load = multiprocessing.Process(target=_busy, args=(stop,), daemon=True)
    load.start()  # another job holds one of the two cores
    time.sleep(1.0)
    try:
        for label, (solver, problem) in CASES.items():
            for name, env, unpinned in (("one thread (env)", blas_threads(1), False), ("default env", {}, False),
                                        ("default env, unpinned", {}, True)):
                out = run_isolated(script, {"solver": solver, "problem": problem, "unpinned": unpinned}, env=env)
                rows.append({"case": label, "contender": name, **out})
                print(f"{label:<28} {name:<22} wall {out['wall_s']:.2f} s  CPU {out['cpu_s']:.2f} s", flush=True)
    finally:
        stop.set()
        load.join(5)
    for row in rows:
        reference = next(r for r in rows if r["case"] == row["case"] and r["contender"] == "one thread (env)")
        row["cpu_ratio"] = row["cpu_s"] / reference["cpu_s"]
        row["wall_ratio"] = row["wall_s"] / reference["wall_s"]
    path = write_results("blas_threads", {"load": "one busy-loop process on one of the cores", "rows": rows})
    print("\nBLAS threads of the entry points on a loaded machine (ratios against one thread by the environment)\n")
    print(markdown_table(rows, [("case", "call", "s"), ("contender", "process", "s"), ("wall_s", "wall s", ".2f"),
                                ("cpu_s", "CPU s", ".2f"), ("cpu_ratio", "CPU / one thread", ".2f"),
                                ("wall_ratio", "wall / one thread", ".2f"), ("error", "rel. L2", ".1e")]))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    entry(run_contender, main)
