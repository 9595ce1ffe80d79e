"""GPU readiness: CuPy-chunk assembly and the TSQR solve against the NumPy path, and their speed.

Where CuPy and a CUDA device are present this script

1. assembles one row block of ``[Φ(X) | 1 | y]`` from CuPy points and compares it with the
   NumPy block (relative difference < 1e-10 required);
2. solves the same least-squares problem by the TSQR with CuPy blocks and with NumPy blocks
   and compares singular values, residual norms and fitted values (< 1e-10 required);
3. times the row-block QR on the device (GFLOP/s), the device's FP64 GEMM in the same run
   (the fraction of it the QR reaches), and the whole assembly + TSQR against the CPU path
   on the same host;
4. runs a short time-dependent problem (2-D Allen–Cahn, ``--evolution-rows`` collocation
   rows, exact and hyper-reduced) with its projection on the device and on the host: exact,
   the fields agree to < 1e-6 of their maximum; hyper-reduced, both are equally accurate
   (the interpolation rows may differ), and the wall times.

It finishes in well under 5 minutes on an H100/H200.  Without a GPU it writes a "skipped"
result and exits 0; ``--dry-run`` runs every step with NumPy standing in for CuPy (to check
the script itself on a CPU machine).

    python benchmarks/gpu_check.py [--rows 1000000] [--cols 1024] [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import problems  # noqa: E402
from _harness import markdown_table, write_results  # noqa: E402


def _device_info(xp) -> dict:
    if xp is np:
        return {"device": "NumPy stand-in (dry run)"}
    props = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return {"device": name, "memory_gb": props["totalGlobalMem"] / 1e9, "cupy": xp.__version__}


def _sync(xp) -> None:
    if xp is not np:
        xp.cuda.Device().synchronize()


def _best_time(fn, xp, repeats: int = 3) -> float:
    fn()  # warm-up (kernel compilation, cuSOLVER workspace)
    _sync(xp)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(xp)
        best = min(best, time.perf_counter() - start)
    return best


def _solve(x, y, network, chunk, scheduler):
    import dask.array as da

    from pipeline.cluster import compute
    from pipeline.linalg import LeastSquaresFactor, tsqr_factor
    from pipeline.nn import feature_matrix

    xd = da.from_array(x, chunks=(chunk, -1))
    yd = da.from_array(y[:, None], chunks=(chunk, -1))
    design = feature_matrix(xd, network, intercept=True, append=yd)
    (r,) = compute(tsqr_factor(design, overwrite_blocks=True), scheduler=scheduler)
    return LeastSquaresFactor(r, n_columns=network.width + 1, n_rows=x.shape[0])


def run(args) -> dict:
    from pipeline.backend import gpu_available, to_host
    from pipeline.linalg import default_chunk_rows
    from pipeline.nn import feature_matrix

    if args.dry_run:
        xp = np
    elif gpu_available():
        import cupy as xp
    else:
        return {"status": "skipped", "reason": "CuPy or a CUDA device is not available on this machine"}

    rows, width = args.rows, args.cols - 1
    network = problems.sampled_network(width)
    x = problems.points(rows)
    y = problems.target(x)
    chunk = default_chunk_rows(width + 2, rows)
    x_dev, y_dev = xp.asarray(x), xp.asarray(y)

    # 1. assembly of one block
    host_block = np.asarray(feature_matrix(x[:chunk], network, intercept=True, append=y[:chunk, None]).compute())
    dev_block = to_host(feature_matrix(x_dev[:chunk], network, intercept=True, append=y_dev[:chunk, None]).compute())
    assembly_diff = float(np.max(np.abs(dev_block - host_block)) / np.max(np.abs(host_block)))

    # 2. the whole solve, device against host (timed: assembly + TSQR + transfer of R)
    start = time.perf_counter()
    host_factor = _solve(x, y, network, chunk, scheduler="threads")
    host_seconds = time.perf_counter() - start
    _solve(x_dev, y_dev, network, chunk, scheduler="synchronous")  # warm-up
    _sync(xp)
    start = time.perf_counter()
    dev_factor = _solve(x_dev, y_dev, network, chunk, scheduler="synchronous")
    dev_seconds = time.perf_counter() - start

    s_host, s_dev = host_factor.singular_values, dev_factor.singular_values
    comparisons = {"singular_values (rel. to s_max)": float(np.max(np.abs(s_dev - s_host)) / s_host[0])}
    xt = problems.points(20_000, seed=5)
    phi = np.column_stack([network(xt), np.ones(len(xt))])
    for rcond in (1e-8, 1e-10):
        h, d = host_factor.solve(rcond=rcond), dev_factor.solve(rcond=rcond)
        # The residual norm is small against ‖y‖ (an accurate fit), so it carries an absolute
        # error of about eps·‖y‖ on either path: compare it relative to ‖y‖, not to itself.
        comparisons[f"residual norm (rel. to |y|), rcond {rcond:.0e}"] = float(
            abs(d.residual_norms[0] - h.residual_norms[0]) / np.linalg.norm(y))
        fit_h, fit_d = phi @ h.coef, phi @ d.coef
        comparisons[f"fitted values, rcond {rcond:.0e}"] = float(np.linalg.norm(fit_d - fit_h) / np.linalg.norm(fit_h))

    # 3. kernel rates on the device
    from pipeline.linalg.tsqr import reduce_block

    block = xp.asarray(host_block)
    n = block.shape[1]
    qr_seconds = _best_time(lambda: reduce_block(block), xp)
    qr_gflops = (2 * block.shape[0] * n * n - 2 * n**3 / 3) / qr_seconds / 1e9
    m = 8192 if xp is not np else 2048
    a = xp.asarray(np.random.default_rng(0).standard_normal((m, m)))
    gemm_gflops = 2 * m**3 / _best_time(lambda: a @ a, xp) / 1e9

    # 4. a short evolution: projection, interpolation rows and fit on the device
    from pipeline.pde import get_problem
    from pipeline.pde.evolution import Evolution

    # With the exact nonlinear term both paths integrate the same reduced system: the fields
    # agree to rounding.  Hyper-reduced, the interpolation rows come out of pivoted QRs whose
    # near-ties break differently on the two devices; both row sets are valid, so the fields
    # differ by up to the hyper-reduction error and the check is that both are equally accurate.
    problem = get_problem("allen_cahn_2d", T=0.25)
    device = "cpu" if xp is np else "gpu"
    evolution = {}
    for hyper in (False, True):
        settings = {"n_interior": args.evolution_rows, "width": 1000, "hyper_reduction": hyper, "seed": 0}
        start = time.perf_counter()
        host_run = Evolution(problem, **settings).run()
        host_seconds_ev = time.perf_counter() - start
        start = time.perf_counter()
        dev_run = Evolution(problem, device=device, **settings).run()
        dev_seconds_ev = time.perf_counter() - start
        evolution["hyper" if hyper else "exact"] = {
            "fields_rel_diff": float(np.abs(dev_run.fields - host_run.fields).max() / np.abs(host_run.fields).max()),
            "rel_l2_host": host_run.error(), "rel_l2_device": dev_run.error(),
            "cpu_path_seconds": host_seconds_ev, "device_path_seconds": dev_seconds_ev,
        }
    exact, hyper = evolution["exact"], evolution["hyper"]
    evolution_ok = (exact["fields_rel_diff"] < 1e-6
                    and max(hyper["rel_l2_host"], hyper["rel_l2_device"]) < 1e-3
                    and hyper["rel_l2_device"] < 1.5 * hyper["rel_l2_host"]
                    and hyper["fields_rel_diff"] < 2 * hyper["rel_l2_host"])

    checks_passed = assembly_diff < 1e-10 and all(v < 1e-10 for v in comparisons.values()) and evolution_ok
    return {
        "status": "ok" if checks_passed else "mismatch",
        **_device_info(xp),
        "rows": rows, "cols": args.cols, "chunk_rows": chunk,
        "assembly_rel_diff": assembly_diff,
        "solve_rel_diffs": comparisons,
        "row_block_qr_gflops": qr_gflops,
        "fp64_gemm_gflops": gemm_gflops,
        "qr_fraction_of_gemm": qr_gflops / gemm_gflops,
        "cpu_path_seconds": host_seconds,
        "device_path_seconds": dev_seconds,
        "speedup_over_cpu": host_seconds / dev_seconds,
        "evolution_rows": args.evolution_rows,
        "evolution": evolution,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=1024)
    parser.add_argument("--evolution-rows", type=int, default=40_000, help="collocation rows of the evolution check")
    parser.add_argument("--dry-run", action="store_true", help="NumPy stands in for CuPy")
    args = parser.parse_args()
    start = time.perf_counter()
    result = run(args)
    result["total_seconds"] = time.perf_counter() - start
    path = write_results("gpu_check" + ("_dry_run" if args.dry_run else ""), result)
    if result["status"] == "skipped":
        print(f"gpu_check skipped: {result['reason']} (written to {path})")
        return 0
    print(f"\nGPU check on {result['device']}: {result['rows']} x {result['cols']}, blocks of {result['chunk_rows']} rows\n")
    rows = [{"check": "assembly of one block", "value": result["assembly_rel_diff"]}]
    rows += [{"check": k, "value": v} for k, v in result["solve_rel_diffs"].items()]
    for term, ev in result["evolution"].items():
        rows += [{"check": f"evolution fields ({result['evolution_rows']} rows, {term} term)", "value": ev["fields_rel_diff"]}]
    print(markdown_table(rows, [("check", "relative difference device vs NumPy", ""), ("value", "value", ".2e")]))
    print()
    print(markdown_table([result], [
        ("row_block_qr_gflops", "row-block QR GFLOP/s", ".0f"), ("fp64_gemm_gflops", "FP64 GEMM GFLOP/s", ".0f"),
        ("qr_fraction_of_gemm", "QR / GEMM", ".2f"), ("cpu_path_seconds", "CPU path s", ".2f"),
        ("device_path_seconds", "device path s", ".2f"), ("speedup_over_cpu", "speed-up", ".1f"),
        ("total_seconds", "script s", ".0f"),
    ]))
    print()
    print(markdown_table([{"term": k, **v} for k, v in result["evolution"].items()], [
        ("term", "evolution", ""), ("rel_l2_host", "rel. L2 host", ".2e"), ("rel_l2_device", "rel. L2 device", ".2e"),
        ("cpu_path_seconds", "CPU path s", ".1f"), ("device_path_seconds", "device path s", ".1f"),
    ]))
    print(f"\nstatus: {result['status']}; written to {path}")
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
