import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def sin_cos(x):
    return np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1])


def rel_l2(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def assert_stores_equal(a, b) -> int:
    """Every array of two zarr stores is bitwise equal (dtype, shape, values); returns how many were compared."""
    import zarr

    left, right = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    names = sorted(name for name, _ in left.arrays())
    assert names and names == sorted(name for name, _ in right.arrays())
    for name in names:
        np.testing.assert_array_equal(left[name][...], right[name][...], err_msg=name, strict=True)
    return len(names)
