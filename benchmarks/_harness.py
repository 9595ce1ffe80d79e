"""Shared machinery of the benchmarks: isolated contenders, measurements, JSON and tables.

Each contender runs in a fresh Python process (``script --contender SPEC``) so that its peak
memory is its own; the parent runs all contenders of a comparison one after another in the
same invocation, so ratios compare runs on the same (shared, noisy) machine at the same time.
A child reports wall and CPU seconds of the measured call (CPU = all threads of the process),
the process's peak resident memory during the call and its increment over the memory held
just before it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(fn, *args, repeats: int = 1, **kwargs) -> tuple[object, dict]:
    """Run ``fn`` ``repeats`` times; return the last result and this process's metrics.

    ``wall_s``/``cpu_s`` are those of the fastest run (the one least disturbed by other load
    on a shared machine), ``wall_median_s`` the median; the peak memory is the highest of all
    runs.
    """
    import resource

    runs, peak, increment, result = [], 0, 0, None
    for _ in range(repeats):
        result = None  # release the previous run's result before measuring the next
        rss_before = (_status_kb("VmRSS") or 0) * 1024
        exact_peak = _reset_peak()
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn(*args, **kwargs)
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
        run_peak = (_status_kb("VmHWM") if exact_peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) or 0
        run_peak *= 1024
        peak, increment = max(peak, run_peak), max(increment, run_peak - rss_before)
    walls = sorted(w for w, _ in runs)
    best = min(runs)
    return result, {
        "wall_s": best[0],
        "cpu_s": best[1],
        "wall_median_s": walls[len(walls) // 2],
        "repeats": repeats,
        "peak_rss_bytes": peak,
        "peak_increment_bytes": increment,
    }


def child_main(run_contender) -> None:
    """Entry point of a contender process: ``--contender JSON`` → one JSON line on stdout."""
    spec = json.loads(sys.argv[sys.argv.index("--contender") + 1])
    out = run_contender(spec)
    print("RESULT " + json.dumps(out), flush=True)


def entry(run_contender, main) -> None:
    """A benchmark script's ``__main__``: contender child with ``--contender``, else the parent."""
    if "--contender" in sys.argv:
        child_main(run_contender)
    else:
        main()


def run_isolated(script: str, spec: dict, *, env: dict | None = None, timeout: float = 3600) -> dict:
    """Run one contender in a fresh process and return its JSON report."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")])
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, script, "--contender", json.dumps(spec)],
        capture_output=True, text=True, env=full_env, timeout=timeout,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"contender {spec} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def blas_threads(n: int) -> dict:
    """Environment pinning every BLAS/OpenMP pool of a child process to ``n`` threads."""
    value = str(n)
    return {k: value for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def machine() -> dict:
    import numpy

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """``columns``: (key, header, format) triples; missing values print as '—'."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, rule]
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append("—" if value is None else (format(value, fmt) if fmt else str(value)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


GB = 1e9
