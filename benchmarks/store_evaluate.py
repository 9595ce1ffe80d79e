"""Evaluating a stored time-dependent run anywhere: interpolation of the dense trajectory.

A Burgers store (the shipped workflow, four windows) is evaluated at 400 random (x, t) pairs
and at 1 / 5 / 20 distinct times; CPU seconds (one BLAS thread) of ``open_result(...).evaluate``
are reported next to the seconds of integrating the member anew (what the previous store
layout did per distinct time), and the largest difference from a fresh integration.

    python benchmarks/store_evaluate.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _harness import ROOT, markdown_table, write_results  # noqa: E402


def main() -> None:
    from threadpoolctl import threadpool_limits

    from pipeline import open_result
    from pipeline.cli import main as cli
    from pipeline.config import load_workflow
    from pipeline.ensemble import expand_members
    from pipeline.pde import get_problem
    from pipeline.pde.evolution import Evolution

    workflow = ROOT / "workflows" / "burgers.yaml"
    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        store = Path(tmp) / "burgers.zarr"
        assert cli(["run", str(workflow), "--output", str(store), "--quiet"]) == 0
        cfg, raw = load_workflow(workflow)
        member = expand_members(cfg, raw)[0][0]
        rng = np.random.default_rng(0)
        result = open_result(store)
        for label, n_times in (("400 random (x, t)", 400), ("1 time", 1), ("5 times", 5), ("20 times", 20)):
            points = rng.uniform(-1, 1, size=(400, 1))
            times = rng.uniform(0, 1, size=n_times)[rng.integers(0, n_times, size=400)] if n_times < 400 \
                else rng.uniform(0, 1, size=400)
            cpu = time.process_time()
            values = result.evaluate(points, times).values[0]
            cpu = time.process_time() - cpu
            order = np.argsort(times)
            cpu_fresh = time.process_time()
            fresh = Evolution(get_problem("burgers"), seed=member.seed, windows=4).run(times[order], points[order])
            cpu_fresh = time.process_time() - cpu_fresh
            expected = np.empty(400)
            expected[order] = np.diagonal(fresh.fields)
            rows.append({"case": label, "distinct_times": int(len(np.unique(times))), "evaluate_cpu_s": cpu,
                         "integrate_again_cpu_s": cpu_fresh,
                         "max_difference": float(np.abs(values - expected).max() / np.abs(expected).max())})
    path = write_results("store_evaluate", {"workflow": "workflows/burgers.yaml", "rows": rows})
    print("\nEvaluating a Burgers store (one BLAS thread)\n")
    print(markdown_table(rows, [("case", "points", "s"), ("distinct_times", "distinct times", "d"),
                                ("evaluate_cpu_s", "evaluate CPU s", ".3f"),
                                ("integrate_again_cpu_s", "fresh integration CPU s", ".2f"),
                                ("max_difference", "max |difference| / max |u|", ".1e")]))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
