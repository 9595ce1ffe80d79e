"""Large domains: a grid of boxes, local bases, continuity rows and the interface system.

Every error is measured against the exact solution at points the solve never saw.  The bounds
sit one to three orders above what the method reaches here (``benchmarks/large_domain.py``
records the figures), and far below what a broken gluing gives: without the continuity rows the
boxes' solutions are unrelated and the error is of order one.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from pipeline import open_result
from pipeline.cli import main
from pipeline.linalg.interface import Coupling, InterfaceSystem
from pipeline.pde import get_problem
from pipeline.pde.partition import Partition
from pipeline.pde.partitioned import solve_partitioned

WAVES = dict(width=600, n_interior=1600, n_boundary=400)


def test_the_grid_locates_points_and_lists_its_faces():
    part = Partition(np.zeros(2), np.array([3.0, 2.0]), (3, 2))
    assert part.size == 6 and np.allclose(part.spacing, 1.0)
    x = np.array([[0.5, 0.5], [2.5, 1.5], [1.0, 0.2], [3.0, 2.0]])
    assert part.locate(x).tolist() == [0, 5, 2, 5]  # a face point goes to the upper box; the far corner is kept
    faces = part.faces()
    assert len(faces) == 2 * 2 + 3 * 1
    assert all(f.upper - f.lower == (2 if f.axis == 0 else 1) for f in faces)
    kept = np.ones(6, dtype=bool)
    kept[2] = False
    assert part.owner(x[2:3], kept).tolist() == [0]  # across the face, to the kept neighbour


def test_the_l_shape_keeps_three_of_four_boxes():
    problem = get_problem("poisson_lshape", enrich=False)
    part = Partition.of(problem.domain, 2)
    assert len(part.meeting(problem.domain)) == 3
    solution = solve_partitioned(problem, 2, **WAVES)
    assert len(solution.boxes) == 3
    x = problem.evaluation_points()
    assert np.isfinite(solution(x)).all()  # the re-entrant edges belong to the kept boxes
    # the corner singularity limits both; the global basis of the same width reaches 3e-2 … 4e-2
    assert solution.error() < 5e-2


def _random_system(rng, sizes=(5, 7, 6), faces=((0, 1), (1, 2), (0, 2))):
    couplings = []
    for i, j in faces:
        f = rng.standard_normal((4, sizes[i] + sizes[j]))
        f /= 2 * np.linalg.norm(f, 2)  # keeps N positive definite
        couplings.append(Coupling(i, j, f[:, :sizes[i]], -f[:, sizes[i]:]))
    return InterfaceSystem(list(sizes), couplings)


def test_the_interface_system_matches_its_matrix_and_both_solvers_agree():
    rng = np.random.default_rng(0)
    system = _random_system(rng)
    z = rng.standard_normal(system.n)
    dense = system.matrix().toarray()
    assert np.allclose(system.matvec(z), dense @ z, atol=1e-14)
    assert np.allclose(dense, dense.T)
    h = rng.standard_normal(system.n)
    exact = np.linalg.solve(dense, h)
    for method in ("direct", "cg"):
        got, info = system.solve(h, method, rtol=1e-13)
        assert info["method"] == method and info["residual"] < 1e-12
        assert np.linalg.norm(got - exact) < 1e-10 * np.linalg.norm(exact) * np.linalg.cond(dense)


def test_the_block_matrix_adds_blocks_at_one_place_and_skips_empty_blocks():
    from pipeline.linalg.interface import _block_matrix

    rng = np.random.default_rng(3)
    sizes = [3, 0, 5, 2]  # a box without coarse vectors gives an empty block
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    entries = [(int(i), int(j), rng.standard_normal((sizes[i], sizes[j]))) for i, j in rng.integers(0, 4, (12, 2))]
    entries += [(2, 2, rng.standard_normal((5, 5))), (2, 2, rng.standard_normal((5, 5)))]  # a periodic self-face
    dense = np.zeros((offsets[-1], offsets[-1]))
    for i, j, block in entries:
        dense[offsets[i]:offsets[i + 1], offsets[j]:offsets[j + 1]] += block
    got = _block_matrix(entries, offsets)
    got.check_format(full_check=True)
    assert got.format == "csc" and got.has_sorted_indices and got.indices.dtype == np.int32
    assert np.array_equal(got.toarray(), dense)


def test_a_box_returns_its_traces_as_arrays_of_their_own():
    """A view of the box's whole factor ``QU`` would keep all its rows alive on the worker."""
    import dask

    from pipeline.pde import partitioned

    problem = get_problem("poisson_waves", waves=1.0)
    part, settings, activation, sampler = partitioned.prepare_partition(problem, 2, dict(WAVES))
    with dask.config.set(scheduler="synchronous"):
        factored = partitioned.factor_partition(problem, part, settings, activation, sampler)
    for result in factored.results:
        assert "P" not in result and result["coarse"].base is None
        assert all(f.base is None for f in result["F"].values())


def test_boxes_glued_by_continuity_rows_match_the_exact_solution():
    problem = get_problem("poisson_waves", waves=1.0)
    solution = solve_partitioned(problem, 2, **WAVES)
    assert solution.width == 600 and len(solution.layers) == 4
    assert solution.error() < 1e-7  # measured 1e-10 … 3e-10 over seeds 0-2
    # across the face x = 1/2: the two boxes' bases agree in value and normal derivative
    y = np.linspace(0.05, 0.95, 7)
    left, right = np.column_stack([np.full(7, 0.5 - 1e-12), y]), np.column_stack([np.full(7, 0.5), y])
    assert np.allclose(solution(left), solution(right), atol=1e-7)
    assert np.allclose(solution.derivative(left, (1, 0)), solution.derivative(right, (1, 0)), atol=1e-5)
    assert solution.info["interface_jump"] < 1e-6


def test_a_fourth_order_problem_glues_three_derivatives():
    solution = solve_partitioned(get_problem("beam_static"), 4, width=80, n_interior=200, n_boundary=2)
    assert solution.info["faces"] == 3
    assert solution.error() < 1e-10  # measured 2e-13 … 5e-13


def test_conjugate_gradients_with_the_coarse_space_agree_with_the_direct_solve():
    problem = get_problem("poisson_waves", waves=1.0)
    x = np.random.default_rng(7).random((500, 2))
    direct = solve_partitioned(problem, [3, 2], interface_solver="direct", **WAVES)
    cg = solve_partitioned(problem, [3, 2], interface_solver="cg", **WAVES)
    assert cg.info["interface"]["iterations"] > 0
    scale = np.linalg.norm(direct(x))
    assert np.linalg.norm(cg(x) - direct(x)) < 1e-6 * scale
    assert cg.error() < 1e-6


def test_several_waves_per_box_reach_the_global_basis_accuracy_class():
    problem = get_problem("poisson_waves", waves=3.0)
    solution = solve_partitioned(problem, 2, width=1600, n_interior=4000, n_boundary=800, weight_scale=15.0)
    assert solution.error() < 1e-7  # measured 1.8e-9 … 2.9e-9 over seeds 0-2 (4 × 4 boxes: 1e-5 … 4e-5)


@pytest.mark.parametrize("partition, settings, message", [
    ([2, 2, 2], {}, "partition must be"),
    (0, {}, "partition must be"),
    (2, {"ridge": 1e-8}, "does not support ridge"),
    (2, {"sampler": "aswim"}, "aswim"),
    (2, {"interface_solver": "qr"}, "interface_solver"),
    (2, {"n_interface": 0}, "n_interface"),
])
def test_bad_settings_are_refused_by_name(partition, settings, message):
    with pytest.raises(ValueError, match=message):
        solve_partitioned(get_problem("poisson_waves", waves=1.0), partition, **settings)


def test_periodic_conditions_join_the_last_box_to_the_first():
    problem = get_problem("poisson_periodic")  # periodic in x
    solution = solve_partitioned(problem, [2, 1], width=1200, n_interior=4000, n_boundary=800)
    assert solution.info["faces"] == 2  # the interior face and the periodic one
    assert solution.error() < 1e-6  # measured 2e-8 … 4e-8 (one global basis: 2e-8)
    y = np.linspace(0.1, 0.9, 5)
    left, right = np.column_stack([np.zeros(5), y]), np.column_stack([np.ones(5), y])
    assert np.allclose(solution(left), solution(right), atol=1e-6)


def _run(tmp_path, cfg):
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(cfg))
    return main(["run", str(tmp_path / "w.yaml"), "--scheduler", "threads", "--quiet"])


def test_a_partitioned_workflow_stores_the_local_bases_and_evaluates_anywhere(tmp_path):
    cfg = {"version": 1, "problem": {"name": "poisson_waves", "params": {"waves": 1.0}},
           "basis": {"width": 600, "partition": [2, 2]}, "collocation": {"n_interior": 1600, "n_boundary": 400},
           "ensemble": {"members": 2}, "output": {"path": str(tmp_path / "p.zarr")}}
    assert _run(tmp_path, cfg) == 0
    result = open_result(tmp_path / "p.zarr", verify=True)
    assert result.attrs["kind"] == "partitioned"
    assert result.tree["basis"]["weights"].shape == (2, 4, 150, 2)
    rel_l2 = result.tree["diagnostics"]["rel_l2"].values
    assert np.all(rel_l2 < 1e-7)
    assert np.isfinite(result.tree["diagnostics"]["cpu_seconds"].values).all()  # factor, interface, write
    x = np.random.default_rng(3).random((300, 2))
    exact = get_problem("poisson_waves", waves=1.0).exact(x)
    u = np.asarray(result.evaluate(x))
    assert u.shape == (2, 300)
    assert np.all(np.linalg.norm(u - exact, axis=1) < 1e-6 * np.linalg.norm(exact))


def test_a_partitioned_evolution_workflow_stores_every_output_time_and_evaluates_anywhere_in_space(tmp_path):
    cfg = {"version": 1, "problem": {"name": "advection_diffusion", "params": {"waves": 10.0, "T": 2.0}},
           "basis": {"partition": 5}, "ensemble": {"members": 2}, "output": {"path": str(tmp_path / "a.zarr")}}
    assert _run(tmp_path, cfg) == 0
    result = open_result(tmp_path / "a.zarr", verify=True)
    assert result.attrs["kind"] == "partitioned_evolution"
    root = result.tree["/"]
    assert root["u"].dims == ("member", "time", "x") and root.sizes["time"] == 11
    assert result.tree["coefficients"]["c"].dims == ("member", "time", "block", "coefficient")
    assert result.tree["basis"]["weights"].shape == (2, 5, 60, 1)  # 300 neurons (the problem's default) on 5 boxes
    assert np.all(result.tree["diagnostics"]["rel_l2"].values < 1e-8)  # measured 1e-12
    assert np.all(result.tree["diagnostics"]["interface_jump"].values < 1e-8)
    assert np.isfinite(result.tree["diagnostics"]["cpu_seconds"].values).all()  # factor, integrate, write
    problem = get_problem("advection_diffusion", waves=10.0, T=2.0)
    rng = np.random.default_rng(3)
    x = 10.0 * rng.random((300, 1))
    t = rng.choice(root["time"].values, 300)
    exact = np.array([problem.truth(x[i:i + 1], t[i])[0] for i in range(300)])
    u = np.asarray(result.evaluate(x, times=t))
    assert u.shape == (2, 300)
    assert np.all(np.linalg.norm(u - exact, axis=1) < 1e-8 * np.linalg.norm(exact))
    with pytest.raises(ValueError, match="output times only"):
        result.evaluate(x, times=np.full(300, 0.33))


@pytest.mark.parametrize("cfg, message", [
    ({"problem": {"name": "burgers"}, "basis": {"partition": 4}}, "basis.partition: a partitioned evolution needs a linear"),
    ({"problem": {"name": "heat_1d"}, "basis": {"partition": 4}, "time": {"windows": 2}},
     "time.windows does not apply to partitioned time-dependent PDE workflows"),
    ({"problem": {"name": "heat_1d"}, "basis": {"partition": 4}, "solver": {"interface_solver": "cg"}},
     "solver.interface_solver does not apply to partitioned time-dependent PDE workflows"),
    ({"problem": {"name": "advection_diffusion", "params": {"waves": 10.0}}, "basis": {"partition": 5},
      "ensemble": {"sweep": {"problem.params.waves": [10.0, 12.0]}}}, "the swept parameters change the output points"),
])
def test_a_partition_of_a_time_dependent_problem_refuses_what_it_cannot_do_before_work(tmp_path, capsys, cfg, message):
    cfg = {"version": 1, **cfg, "output": {"path": str(tmp_path / "h.zarr")}}
    assert _run(tmp_path, cfg) != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "h.zarr").exists()


def test_advection_diffusion_over_many_wavelengths_on_a_partition_matches_exact():
    from pipeline.pde.partitioned_evolution import evolve_partitioned

    problem = get_problem("advection_diffusion", waves=10.0, T=2.0)
    evolution = evolve_partitioned(problem, 5)
    assert len(evolution.times) == 11 and evolution.info["faces"] == 5  # 4 interior faces, 1 periodic
    assert evolution.error() < 1e-8  # measured 3e-12 (200 wavelengths on 50 boxes: 1e-12, benchmarks/large_domain.py)


def test_the_matrix_free_propagation_matches_the_dense_exponentials():
    from pipeline.pde.partitioned_evolution import evolve_partitioned

    problem = get_problem("advection_diffusion", waves=10.0, T=2.0)
    dense = evolve_partitioned(problem, 5, propagation="dense")
    free = evolve_partitioned(problem, 5, propagation="matrix-free")
    assert dense.info["propagation"] == "dense" and free.info["propagation"] == "matrix-free"
    x = 10.0 * np.random.default_rng(5).random((400, 1))
    # the same local coordinates propagated two ways: they agree to the exponentials' rounding
    # (measured 1e-13 relative); a wrong operator (N or H transposed, a missing N⁻¹) differs at O(1)
    for k in (1, 5, 10):
        u, v = dense(x, k), free(x, k)
        assert np.linalg.norm(u - v) < 1e-10 * np.linalg.norm(u)
    assert free.error() < 1e-8
    with pytest.raises(ValueError, match="propagation must be one of"):
        evolve_partitioned(problem, 5, propagation="krylov")


def test_the_taylor_propagation_matches_scipy_expm_and_stiff_operators_go_dense_or_are_refused():
    import scipy.linalg
    from scipy.sparse.linalg import aslinearoperator

    from pipeline.pde import partitioned_evolution as pe

    rng = np.random.default_rng(7)
    q = np.linalg.qr(rng.standard_normal((60, 60)))[0]
    a = q @ np.diag(-rng.uniform(0.0, 30.0, 60)) @ q.T + 5.0 * rng.standard_normal((60, 60)) / 60  # non-normal
    z0, times = rng.standard_normal(60), np.linspace(0.0, 0.7, 8)
    op = aslinearoperator(a)
    states = pe._propagate_matrix_free(op, z0, times, pe.taylor_plan(op, 0.7))
    for k, t in enumerate(times):  # an independent reference: scaling and squaring of the dense matrix
        ref = scipy.linalg.expm(t * a) @ z0
        assert np.linalg.norm(states[:, k] - ref) < 1e-12 * max(1.0, np.linalg.norm(ref))
    never = lambda: pytest.fail("small operators are formed without a plan")  # noqa: E731
    assert pe._choose("auto", pe.DENSE_RANK, never) == ("dense", None)
    assert pe._choose("auto", 5000, lambda: (55, 10)) == ("matrix-free", (55, 10))
    assert pe._choose("auto", 5000, lambda: (55, 10**6)) == ("dense", None)  # stiff, small enough to form
    with pytest.raises(ValueError, match="reduced operator is stiff"):
        pe._choose("auto", pe.MAX_DENSE_RANK + 1, lambda: (55, 10**6))
    with pytest.raises(ValueError, match="reduced operator is stiff"):
        pe._choose("matrix-free", 5000, lambda: (55, 10**6))
    with pytest.raises(ValueError, match="dense reduced operator is formed up to"):
        pe._choose("dense", pe.MAX_DENSE_RANK + 1, never)


def test_two_dimensional_advection_diffusion_on_a_partition_matches_exact():
    from pipeline.pde.partitioned_evolution import evolve_partitioned

    problem = get_problem("advection_diffusion", waves=2.0, dim=2, T=0.5)
    evolution = evolve_partitioned(problem, [2, 2], propagation="matrix-free")
    assert evolution.info["faces"] == 8  # 2 interior and 2 periodic faces per axis
    x = 2.0 * np.random.default_rng(6).random((2000, 2))
    assert evolution.error(x) < 1e-6  # measured 3e-8 at T = 1 (one box per wavelength, 200 features each)
    with pytest.raises(ValueError, match="dim must be 1 or 2"):
        get_problem("advection_diffusion", dim=3)


def test_homogeneous_dirichlet_conditions_hold_in_time_on_a_partition():
    from pipeline.pde.partitioned_evolution import evolve_partitioned

    evolution = evolve_partitioned(get_problem("heat_1d"), 4, width=120, n_interior=600, n_boundary=2)
    assert evolution.error() < 1e-5  # measured 1.8e-6 (one box: 6.8e-7)
    ends = np.array([[0.0], [1.0]])
    assert np.all(np.abs(evolution(ends, -1)) < 1e-5)


def test_a_partitioned_evolution_refuses_what_it_cannot_integrate():
    from pipeline.pde.partitioned_evolution import evolve_partitioned

    with pytest.raises(ValueError, match="linear, autonomous, first-order"):
        evolve_partitioned(get_problem("burgers"), 2)
    with pytest.raises(ValueError, match="linear, autonomous, first-order"):
        evolve_partitioned(get_problem("wave_1d"), 2)


def test_a_split_partition_sends_the_boxes_points_ahead_of_the_graph_and_solves_the_same():
    import dask
    from distributed import Client, Future

    from pipeline.cluster import on_cluster, scatter

    assert scatter([np.ones(3)])[0] is not None and not isinstance(scatter([np.ones(3)])[0], Future)
    problem = get_problem("poisson_waves", waves=1.0)
    with dask.config.set(scheduler="synchronous"):
        here = solve_partitioned(problem, 2, **WAVES)
    with Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as client, \
            on_cluster(client):
        assert all(isinstance(f, Future) for f in scatter([np.ones(3), np.zeros(2)]))
        there = solve_partitioned(problem, 2, **WAVES)
    x = np.random.default_rng(8).random((200, 2))
    # the same boxes, points and factors; BLAS threads in the workers may round differently (1.5e-11
    # relative on CI), a wrong box's points would differ at the method's error (~1e-8) or worse
    scale = np.max(np.abs(here(x)))
    np.testing.assert_allclose(there(x), here(x), rtol=0, atol=1e-9 * scale)
