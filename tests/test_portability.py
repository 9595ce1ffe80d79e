"""The numerical tests under other BLAS kernels and thread counts (issue 13, item 8).

Every numerical tolerance of the suite is derived from the problem's conditioning and machine
epsilon, so it must hold whatever OpenBLAS kernel and however many BLAS threads run it.  This
runs the numerical test modules again in fresh processes with ``OPENBLAS_CORETYPE`` unset (this
machine's own kernel) and set to ``Haswell`` (AVX2 kernels: other summation orders than the
AVX-512 ones), each with 1 and 2 BLAS threads.  ``slow``: four runs of the numerical modules.

    pytest -m slow tests/test_portability.py -s
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NUMERICAL = ["test_activations.py", "test_linalg.py", "test_samplers.py", "test_models.py", "test_pde_operators.py",
             "test_pde_domains.py", "test_pde_static.py", "test_pde_dense.py", "test_pde_evolution.py",
             "test_hyperreduction.py", "test_allen_cahn_2d.py", "test_hamiltonian.py", "test_lti.py",
             "test_reproducibility.py"]
SETTINGS = [(coretype, threads) for coretype in (None, "Haswell") for threads in (1, 2)]


def _environment(coretype: str | None, threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    return env


def _kernel(env: dict) -> str:
    """The OpenBLAS kernel and thread count the environment gives (threadpoolctl's report)."""
    probe = ("import numpy, scipy.linalg; from threadpoolctl import threadpool_info; "
             "print(sorted({(i.get('architecture'), i.get('num_threads')) for i in threadpool_info()}))")
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize("coretype,threads", SETTINGS, ids=[f"{c or 'native'}-{t}threads" for c, t in SETTINGS])
def test_numerical_tests_pass_under_other_blas_kernels_and_threads(coretype, threads):
    env = _environment(coretype, threads)
    kernel = _kernel(env)
    if coretype:
        assert coretype in kernel, kernel  # the setting took effect
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           *[f"tests/{name}" for name in NUMERICAL]], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=3600)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    print(f"\nOPENBLAS_CORETYPE={coretype or '(unset)'} threads={threads} kernel={kernel}: {summary} "
          f"({time.monotonic() - start:.0f} s)")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
