import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """A script of ``benchmarks/`` as a module (they are scripts, not a package one imports)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}_under_test", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def sin_cos(x):
    return np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1])


def rel_l2(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


#: the arrays that differ between any two runs: wall and CPU seconds
TIMINGS = ("diagnostics/wall_seconds", "diagnostics/cpu_seconds")


def assert_stores_equal(a, b, skip=TIMINGS) -> int:
    """Every array of two zarr stores, in every group, is bitwise equal (dtype, shape, values),
    but those named in ``skip`` (the timings); returns how many were compared."""
    import zarr

    left, right = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    names = sorted(n for n in _array_paths(left) if n not in skip)
    assert names and names == sorted(n for n in _array_paths(right) if n not in skip)
    for name in names:
        np.testing.assert_array_equal(left[name][...], right[name][...], err_msg=name, strict=True)
    return len(names)


def _array_paths(group, prefix=""):
    for name, node in group.members():
        if hasattr(node, "shape"):
            yield prefix + name
        else:
            yield from _array_paths(node, prefix + name + "/")
