"""Least squares at 2e5 × 1000: TSQR + truncated SVD against numpy.linalg.lstsq and scipy.linalg.lstsq.

The matrix is ``[tanh(X Wᵀ + b) | 1]`` for 999 SWIM neurons on 2e5 points (cond > 1e12) and
the right-hand side ``sin(πx)·cos(πy)``; every contender starts from the points ``X`` and
builds the matrix itself, the way its users would: the LAPACK drivers from a NumPy array
built in memory, the pipeline block by block inside its TSQR (the matrix is never formed).
All solve with the cut-off rcond = 1e-10.  Targets (issue 2): CPU-time ratio <= 1.3 and
peak-memory ratio <= 0.5 against numpy.linalg.lstsq, with the same residual.

    python benchmarks/lstsq_vs_lapack.py [--rows 200000] [--cols 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import problems  # noqa: E402
from _harness import GB, blas_threads, entry, markdown_table, measure, run_isolated, write_results  # noqa: E402

RCOND = 1e-10


def run_contender(spec: dict) -> dict:
    rows, width = spec["rows"], spec["cols"] - 1
    network = problems.sampled_network(width)
    x = problems.points(rows)
    y = problems.target(x)

    if spec["solver"] in ("numpy", "scipy"):
        def solve():
            a = problems.dense_features(network, x)
            if spec["solver"] == "numpy":
                coef = np.linalg.lstsq(a, y, rcond=RCOND)[0]
            else:
                import scipy.linalg

                coef = scipy.linalg.lstsq(a, y, cond=RCOND, check_finite=False)[0]
            return coef, float(np.linalg.norm(a @ coef - y))

        (coef, residual), metrics = measure(solve)
        factor_residual = None
    else:
        import dask.array as da

        from pipeline.cluster import compute
        from pipeline.linalg import LeastSquaresFactor, default_chunk_rows, tsqr_factor
        from pipeline.nn import feature_matrix

        def solve():
            chunk = default_chunk_rows(width + 2, rows)
            xd = da.from_array(x, chunks=(chunk, -1))
            design = feature_matrix(xd, network, intercept=True, append=da.from_array(y[:, None], chunks=(chunk, -1)))
            (r,) = compute(tsqr_factor(design, overwrite_blocks=True))
            sol = LeastSquaresFactor(r, n_columns=width + 1, n_rows=rows).solve(rcond=RCOND)
            return sol

        sol, metrics = measure(solve)
        coef, factor_residual = sol.coef[:, 0], float(sol.residual_norms[0])
        residual = problems.streamed_residual(network, coef, x, y)
    return {**spec, **metrics, "residual": residual, "factor_residual": factor_residual,
            "coef_norm": float(np.linalg.norm(coef))}


CONTENDERS = [
    {"label": "numpy.linalg.lstsq (1 BLAS thread)", "solver": "numpy", "threads": 1},
    {"label": "numpy.linalg.lstsq (2 BLAS threads)", "solver": "numpy", "threads": 2},
    {"label": "scipy.linalg.lstsq gelsd (1 BLAS thread)", "solver": "scipy", "threads": 1},
    {"label": "pipeline TSQR (2 Dask threads x 1 BLAS)", "solver": "pipeline", "threads": None},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--cols", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    for c in CONTENDERS:
        spec = {**c, "rows": args.rows, "cols": args.cols}
        env = blas_threads(c["threads"]) if c["threads"] else {}
        result = run_isolated(__file__, spec, env=env)
        rows.append(result)
        print(f"  {c['label']}: {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} CPU-s, "
              f"{result['peak_rss_bytes'] / GB:.2f} GB peak", file=sys.stderr)
    base = rows[0]
    for r in rows:
        r["cpu_ratio"] = r["cpu_s"] / base["cpu_s"]
        r["wall_ratio"] = r["wall_s"] / base["wall_s"]
        r["peak_ratio"] = r["peak_rss_bytes"] / base["peak_rss_bytes"]
        r["residual_rel_diff"] = abs(r["residual"] - base["residual"]) / base["residual"]
        r["peak_gb"] = r["peak_rss_bytes"] / GB
        r["increment_gb"] = r["peak_increment_bytes"] / GB
    ours = rows[-1]
    summary = {
        "cpu_ratio_vs_numpy": ours["cpu_ratio"],
        "peak_memory_ratio_vs_numpy": ours["peak_ratio"],
        "residual_rel_diff_vs_numpy": ours["residual_rel_diff"],
        "targets": {"cpu_ratio": 1.3, "peak_memory_ratio": 0.5},
        "met": ours["cpu_ratio"] <= 1.3 and ours["peak_ratio"] <= 0.5,
    }
    path = write_results("lstsq_vs_lapack", {"shape": [args.rows, args.cols], "rcond": RCOND,
                                             "contenders": rows, "summary": summary})
    print(f"\nLeast squares {args.rows} x {args.cols}, rcond {RCOND} (ratios against the first row)\n")
    print(markdown_table(rows, [
        ("label", "contender", ""), ("wall_s", "wall s", ".1f"), ("cpu_s", "CPU s", ".1f"),
        ("cpu_ratio", "CPU ratio", ".2f"), ("peak_gb", "peak GB", ".2f"), ("increment_gb", "+GB in call", ".2f"),
        ("peak_ratio", "peak ratio", ".2f"), ("residual", "residual", ".6e"), ("residual_rel_diff", "vs numpy", ".1e"),
    ]))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    entry(run_contender, main)
