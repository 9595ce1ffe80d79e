import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def sin_cos(x):
    return np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1])


def rel_l2(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))
