"""The GPU branches without a GPU: assembly, TSQR and solves through a strict CuPy stand-in.

``tests/strict_namespace/cupy.py`` is a NumPy-backed array type that, like CuPy, keeps results
on its "device" through NumPy's dispatch protocols and refuses implicit conversion to NumPy;
with it as ``cupy``, every ``device="gpu"`` branch runs on any machine, and an accidental
host conversion in those branches fails here (where a real CuPy is installed, it is used).
"""

import importlib
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

STAND_IN = Path(__file__).resolve().parent / "strict_namespace"


@pytest.fixture
def cupy(monkeypatch):
    try:
        import cupy as real  # noqa: F401 - a machine with CuPy tests the real thing

        from pipeline.backend import gpu_available

        if gpu_available():
            yield real
            return
    except ImportError:
        pass
    monkeypatch.syspath_prepend(str(STAND_IN))
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    module = importlib.import_module("cupy")
    yield module
    sys.modules.pop("cupy", None)


def test_the_stand_in_refuses_implicit_conversion(cupy):
    x = cupy.asarray([1.0, 2.0])
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(x)
    y = np.tanh(x) * 2.0 + x  # ufuncs and operators stay on the device
    assert type(y).__module__ == "cupy"
    np.testing.assert_array_equal(y.get(), np.tanh([1.0, 2.0]) * 2 + [1.0, 2.0])


def test_device_assembly_and_tsqr_follow_the_host_path(cupy, monkeypatch):
    import pipeline.linalg.tsqr as tsqr
    from pipeline.cluster import compute
    from pipeline.linalg import LeastSquaresFactor, tsqr_factor
    from pipeline.nn import feature_matrix, root_seed, sample_network

    merges = []
    original = tsqr._merge_stacked
    monkeypatch.setattr(tsqr, "_merge_stacked", lambda factors: merges.append(len(factors)) or original(factors))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(8000, 2))
    y = np.sin(3 * x[:, 0]) * x[:, 1]
    net = sample_network(x, y[:, None], widths=[200], activation="tanh", sampler="swim", seed=root_seed(0)).compute()
    factors = []
    for xp in (np, cupy):
        xd = da.from_array(xp.asarray(x), chunks=(2000, -1), asarray=False)
        yd = da.from_array(xp.asarray(y[:, None]), chunks=(2000, -1), asarray=False)
        design = feature_matrix(xd, net, intercept=True, append=yd)
        assert type(design.blocks[0].compute()).__module__.split(".")[0] == xp.__name__
        (r,) = compute(tsqr_factor(design, overwrite_blocks=True), scheduler="synchronous")
        factors.append(LeastSquaresFactor(r, n_columns=201))
    assert merges, "the device merge of the R factors never ran"
    host, device = factors
    s = host.singular_values
    # the same backward-stable QR of the same rows: singular values agree to rounding of s_0
    assert np.max(np.abs(device.singular_values - s)) / s[0] < 1e-12
    h, d = host.solve(rcond=1e-8), device.solve(rcond=1e-8)
    assert abs(d.residual_norms[0] - h.residual_norms[0]) <= 1e-8 * h.residual_norms[0] + 1e-13 * np.linalg.norm(y)


def test_a_static_solve_on_the_device_equals_the_host_solve(cupy, monkeypatch):
    import pipeline.linalg.tsqr as tsqr
    from pipeline.pde import get_problem, solve_static

    leaves = []
    original = tsqr._reduce_stacked
    monkeypatch.setattr(tsqr, "_reduce_stacked", lambda m: leaves.append(type(m).__module__) or original(m))
    problem = get_problem("poisson_sin2d")
    settings = {"width": 300, "n_interior": 2000, "n_boundary": 400, "seed": 1, "chunk_rows": 700}
    host = solve_static(problem, **settings)
    assert not leaves
    device = solve_static(problem, device="gpu", **settings)
    assert len(leaves) >= 3 and set(leaves) == {"cupy"}  # every row block was reduced on the device
    x = np.random.default_rng(3).uniform(size=(500, 2))
    exact = problem.truth(x)
    for solution in (host, device):
        assert np.linalg.norm(solution(x) - exact) / np.linalg.norm(exact) < 1e-7
    # the same rows and basis; only the QR kernels differ (LAPACK dtpqrt vs qr(mode="r")):
    # the fields agree to the solve's own accuracy
    assert np.abs(device(x) - host(x)).max() <= 1e-7 * np.abs(exact).max()
    assert device.rank == host.rank


@pytest.mark.parametrize("name, settings", [
    # nonlinear, compliant basis, hyper-reduced: rows nominated from device blocks
    ("burgers", {"width": 200, "n_interior": 900, "chunk_rows": 300, "weight_scale": 5.0, "bias_scale": 5.0,
                 "hyper_reduction": True}),
    # the exact nonlinear term (rows × k matrices gathered from device blocks)
    ("reaction_logistic", {"hyper_reduction": False, "chunk_rows": 300}),
    # linear, penalty rows for time-dependent boundary data, exact propagation
    ("heat_2d", {"width": 150, "n_interior": 700, "n_boundary": 200, "chunk_rows": 300}),
])
def test_a_short_evolution_on_the_device_equals_the_host_run(cupy, monkeypatch, name, settings):
    import pipeline.linalg.tsqr as tsqr
    from pipeline.pde import get_problem
    from pipeline.pde.evolution import Evolution

    leaves = []
    original = tsqr._reduce_stacked
    monkeypatch.setattr(tsqr, "_reduce_stacked", lambda m: leaves.append(type(m).__module__) or original(m))
    problem = get_problem(name, nu=0.1) if name == "burgers" else get_problem(name)  # no shock: resolved
    host = Evolution(problem, seed=2, **settings).run()
    assert not leaves
    device_run = Evolution(problem, seed=2, device="gpu", **settings)
    device = device_run.run()
    # the projection's and the initial fit's row blocks were all reduced on the device
    assert len(leaves) >= 4 and set(leaves) == {"cupy"}
    assert device_run.projections[0].rank == host.projections[0].rank
    # the same rows and basis; only the QR and GEMM kernels differ.  Their rounding (eps) is
    # amplified by at most the inverse of the reduced solves' relative truncation (prune): on
    # a GPU, reaction_logistic (prune 1e-10) differed by 1.7e-6 of its maximum, the others < 1e-6
    prune = host.settings["prune"]
    tolerance = max(1e-6, 4 * np.finfo(float).eps / prune) if prune else 1e-6
    scale = np.abs(host.fields).max()
    assert np.abs(device.fields - host.fields).max() <= tolerance * scale
    assert abs(device.error() - host.error()) <= 0.01 * host.error() + 1e-9
