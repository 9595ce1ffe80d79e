"""Systems of static PDEs, nonlinear static solves and the source inversion, against exact solutions.

Tolerances: each registry problem meets its benchmark target at its defaults
(``benchmarks/systems.py``); here smaller bases keep the suite fast, and the bounds sit one to
two orders above what those bases reach on any seed tried — a wrong Jacobian, a wrong jet or a
lost boundary row gives errors of order one.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.pde import Box, ConvergenceError, Equation, Periodic, SystemProblem, get_problem, solve_system
from pipeline.pde.fields import Jet, jet_key
from pipeline.pde.inverse import estimate_source, source_inversion_case
from pipeline.pde.observations import Observations, load_observations
from pipeline.pde.system_problems import BRATU_CRITICAL


def test_jet_keys_name_fields_and_axes():
    assert jet_key("u_xy", ("u", "p"), 2) == ("u", (1, 1))
    assert jet_key("p", ("u", "p"), 3) == ("p", (0, 0, 0))
    assert jet_key(("u", (0, 2)), ("u",), 2) == ("u", (0, 2))
    with pytest.raises(KeyError, match="no field 'q'"):
        jet_key("q_x", ("u",), 1)
    with pytest.raises(KeyError, match="axes are the letters 'xy'"):
        jet_key("u_z", ("u",), 2)


@pytest.mark.parametrize("branch", ["lower", "upper"])
def test_bratu_both_branches_match_the_closed_form(branch):
    solution = solve_system(get_problem("bratu", lam=1.0, branch=branch))
    assert solution.errors()["u"] < 1e-8
    history = [h["residual"] for h in solution.history]
    assert history[-1] < 1e-6 * history[0]


def test_bratu_near_the_fold_by_continuation():
    assert 3.5138 < BRATU_CRITICAL < 3.5139
    solution = solve_system(get_problem("bratu", lam=3.5, branch="upper"))
    assert {h["stage"] for h in solution.history} == {0, 1}  # λ = 1, then the target
    assert solution.errors()["u"] < 1e-8
    lower = solve_system(get_problem("bratu", lam=3.5))
    assert lower.errors()["u"] < 1e-8
    x = np.array([[0.5]])
    assert lower(x)[0, 0] < 1.2 < solution(x)[0, 0]  # two distinct solutions


def test_a_linear_system_is_one_solve_and_elasticity_matches_the_exact_displacement():
    problem = get_problem("elasticity_2d")
    solution = solve_system(problem, width=300, n_interior=1000, n_boundary=400)
    assert len(solution.history) == 1
    assert max(solution.errors().values()) < 1e-5


def test_kovasznay_flow_velocity_and_pressure_up_to_a_constant():
    problem = get_problem("kovasznay")
    solution = solve_system(problem, width=250, n_interior=900, n_boundary=400)
    errors = solution.errors()
    assert errors["u"] < 1e-4 and errors["v"] < 1e-3 and errors["p"] < 1e-3
    x = problem.evaluation_points()[:50]
    # the divergence vanishes to the accuracy of the fit
    div = solution.derivative("u", x, (1, 0)) + solution.derivative("v", x, (0, 1))
    assert np.max(np.abs(div)) < 1e-2


def test_nonlinear_poisson_converges_quadratically():
    solution = solve_system(get_problem("nonlinear_poisson"), width=300, n_interior=1000, n_boundary=400)
    assert solution.errors()["u"] < 1e-6
    r = [h["residual"] for h in solution.history]
    assert r[2] < 1e-1 * r[1] and r[3] < 1e-3 * r[2]


def test_periodic_systems_and_a_coupling_term():
    # u'' = v, v = -π² sin(πx)·…: u = sin(π x), v = -π² sin(π x) on [0, 2], periodic
    problem = SystemProblem(
        "coupled", Box([0.0], [2.0]), ("u", "v"),
        (Equation(lambda x, U, p: U["u_xx"] - U["v"], name="a"),
         Equation(lambda x, U, p: U["v"] + np.pi ** 2 * np.sin(np.pi * x[:, 0]), name="b"),
         Equation(lambda x, U, p: U["u"] - np.sin(np.pi * x[:, 0]), on=lambda pts: pts[:, 0] < 1, name="pin")),
        periodic=(Periodic(axis=0, derivatives=1),),
        exact={"u": lambda x: np.sin(np.pi * x[:, 0]), "v": lambda x: -np.pi ** 2 * np.sin(np.pi * x[:, 0])})
    solution = solve_system(problem, width=120, n_interior=400, n_boundary=4)
    assert max(solution.errors().values()) < 1e-7


def _bratu(lam):
    return SystemProblem("bratu_beyond", Box([0.0], [1.0]), ("u",),
                         (Equation(lambda x, U, p: U["u_xx"] + lam * np.exp(U["u"]), name="pde"),
                          Equation(lambda x, U, p: U["u"], on=None, name="wall")))


def test_a_problem_without_solution_raises_with_its_history():
    with pytest.raises(ConvergenceError, match="Gauss–Newton") as info:
        solve_system(_bratu(5.0), width=60, n_interior=200, n_boundary=2, max_iterations=12)
    assert info.value.history and "residual" in info.value.history[0]


def test_bad_systems_are_refused_before_work():
    domain = Box([0.0], [1.0])
    with pytest.raises(ValueError, match="complex step"):
        solve_system(SystemProblem("abs", domain, ("u",), (Equation(lambda x, U, p: np.abs(U["u"]) - 1.0),
                                                           Equation(lambda x, U, p: U["u"], on=None))))
    with pytest.raises(ValueError, match="no field 'w'"):
        solve_system(SystemProblem("w", domain, ("u",), (Equation(lambda x, U, p: U["w_xx"], name="pde"),
                                                         Equation(lambda x, U, p: U["u"], on=None))))
    with pytest.raises(ValueError, match="exact names unknown field"):
        SystemProblem("e", domain, ("u",), (Equation(lambda x, U, p: U["u"]),), exact={"v": np.sin})
    with pytest.raises(ValueError, match="field names must be distinct"):
        SystemProblem("d", domain, ("u", "u"), (Equation(lambda x, U, p: U["u"]),))
    with pytest.raises(ValueError, match="one value per point"):
        solve_system(SystemProblem("s", domain, ("u",), (Equation(lambda x, U, p: U["u"][:1]),
                                                         Equation(lambda x, U, p: U["u"], on=None))))
    with pytest.raises(ValueError, match="continuation param 'mu'"):
        solve_system(get_problem("bratu"), continuation={"param": "mu", "values": [1.0]})
    with pytest.raises(ValueError, match="below the fold"):
        get_problem("bratu", lam=4.0)
    with pytest.raises(ValueError, match="x0\\+"):  # a boundary part left without an equation
        SystemProblem("open", domain, ("u",), (Equation(lambda x, U, p: U["u_xx"]),
                                               Equation(lambda x, U, p: U["u"], on="x0-")))


def test_jets_refuse_malformed_keys():
    jet = Jet({("u", (0,)): np.ones(2)}, ("u",), 1)
    with pytest.raises(KeyError, match="multi-index tuple"):
        jet["u", 1]


def test_source_inversion_recovers_the_source_and_its_uncertainty():
    problem, observations, truth = source_inversion_case(200, 0.0, seed=0)
    x = problem.evaluation_points()
    clean = estimate_source(problem, observations, width=400, n_interior=1600, n_boundary=400)
    assert np.linalg.norm(clean.source(x) - truth(x)) / np.linalg.norm(truth(x)) < 1e-2
    problem, noisy_obs, truth = source_inversion_case(200, 0.01, seed=1)
    noisy = estimate_source(problem, noisy_obs, width=400, n_interior=1600, n_boundary=400)
    error = noisy.source(x) - truth(x)
    assert np.linalg.norm(error) / np.linalg.norm(truth(x)) < 0.3
    # the reported standard errors describe the actual error (not a hundred times off)
    ratio = np.sqrt(np.mean(error ** 2)) / np.sqrt(np.mean(noisy.source_std(x) ** 2))
    assert 0.1 < ratio < 10
    assert np.linalg.norm(noisy(x) - problem.exact(x)) / np.linalg.norm(problem.exact(x)) < 0.05


def test_observations_are_checked_and_read_from_files(tmp_path):
    problem, observations, _ = source_inversion_case(20, 0.0)
    outside = Observations(observations.points + 2.0, observations.values)
    with pytest.raises(ValueError, match="20 of 20 observation points lie outside the domain"):
        estimate_source(problem, outside)
    with pytest.raises(ValueError, match="cannot determine a source"):
        estimate_source(problem, observations, source_width=40)
    with pytest.raises(ValueError, match=r"\(n_points, n_fields\)"):
        Observations(np.zeros((3, 2)), np.zeros((3, 2)), ("u",))
    csv = tmp_path / "obs.csv"
    np.savetxt(csv, np.column_stack([observations.points, observations.values]), delimiter=",",
               header="x,y,u", comments="")
    read = load_observations(csv, dim=2, fields="u", noise=0.01)
    np.testing.assert_allclose(read.points, observations.points)
    np.testing.assert_allclose(read.values, observations.values)
    import xarray as xr

    grid = xr.Dataset({"u": (("x", "y"), np.arange(6.0).reshape(2, 3))}, coords={"x": [0.1, 0.2], "y": [0.1, 0.5, 0.9]})
    grid.to_zarr(tmp_path / "obs.zarr", consolidated=False)
    read = load_observations(tmp_path / "obs.zarr", dim=2, fields=("u",))
    assert read.points.shape == (6, 2) and read.values[:, 0].tolist() == list(np.arange(6.0))
    with pytest.raises(ValueError, match="lacks column"):
        load_observations(csv, dim=2, fields="v")


def test_a_system_workflow_stores_every_field_and_evaluates_them(tmp_path):
    import yaml

    from pipeline import open_result
    from pipeline.cli import main

    module = tmp_path / "coupled.py"
    module.write_text(
        "import numpy as np\n"
        "from pipeline.pde import Box, Equation, SystemProblem\n"
        "def build(k=1.0):\n"
        "    s = lambda x: np.sin(np.pi * x[:, 0])\n"
        "    return SystemProblem('coupled', Box([0.0], [1.0]), ('u', 'v'),\n"
        "        (Equation(lambda x, U, p: U['u_xx'] + np.pi ** 2 * U['v'], name='a'),\n"
        "         Equation(lambda x, U, p: U['v'] - k * s(x), name='b'),\n"
        "         Equation(lambda x, U, p: U['u'], on=None, name='wall')),\n"
        "        exact={'u': lambda x: k * s(x), 'v': lambda x: k * s(x)}, params={'k': k})\n")
    cfg = {"version": 1, "problem": {"module": f"{module}:build"}, "basis": {"width": 80},
           "collocation": {"n_interior": 300, "n_boundary": 2},
           "ensemble": {"sweep": {"problem.params.k": [1.0, 2.0]}}, "output": {"path": str(tmp_path / "s.zarr")}}
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "w.yaml"), "--scheduler", "threads", "--quiet"]) == 0
    result = open_result(tmp_path / "s.zarr", verify=True)
    root = result.tree["/"]
    assert root["u"].dims[-2:] == ("field", "x") and list(root["field"].values) == ["u", "v"]
    x = np.linspace(0.05, 0.95, 7)[:, None]
    values = result.evaluate(x)
    assert values.dims[-2:] == ("field", "point")
    k = np.asarray(root["k"].values if "k" in root else [1.0, 2.0]).reshape(-1, 1, 1, 1)
    exact = k * np.sin(np.pi * x[:, 0])
    assert np.max(np.abs(values.values - exact)) < 1e-6 * np.max(np.abs(exact))
    assert result.tree["diagnostics"]["iterations"].values.ravel().tolist() == [1, 1]  # linear: one solve
    cfg["solver"] = {"ridge": 1e-8}  # a key the system kind does not use is refused before work
    (tmp_path / "w2.yaml").write_text(yaml.safe_dump({**cfg, "output": {"path": str(tmp_path / "t.zarr")}}))
    assert main(["run", str(tmp_path / "w2.yaml"), "--scheduler", "threads", "--quiet"]) != 0
    assert not (tmp_path / "t.zarr").exists()


def test_a_source_of_known_form_is_recovered_to_its_statistical_accuracy():
    problem, observations, truth = source_inversion_case(200, 0.01, seed=2)
    shape = lambda x: np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1])  # noqa: E731
    estimate = estimate_source(problem, observations, source_functions=[shape], width=300, n_interior=1200,
                               n_boundary=400)
    amplitude, se = estimate.coef[0], np.sqrt(estimate.covariance[0, 0])
    # the amplitude's standard error is σ / ||G||: about 1e-3 relative for 200 points at 1 % noise
    assert se < 3e-3 * 2 * np.pi ** 2
    assert abs(amplitude + 2 * np.pi ** 2) < 4 * se
    with pytest.raises(ValueError, match="source_functions"):
        estimate_source(problem, observations, source_functions=[])


def _diffusion(k=1.0, amplitude=1.0):
    # -k u'' = A π² sin(πx) on [0, 1], u = 0 at both ends: u = (A / k) sin(πx)
    return SystemProblem(
        "diffusion", Box([0.0], [1.0]), ("u",),
        (Equation(lambda x, U, p: -p["k"] * U["u_xx"] - p["A"] * np.pi ** 2 * np.sin(np.pi * x[:, 0]), name="pde"),
         Equation(lambda x, U, p: U["u"], on=None, name="wall")),
        params={"k": k, "A": amplitude})


def test_parameters_of_a_static_system_from_observations_and_unidentifiable_ones_named():
    from pipeline.pde import IdentifiabilityError, estimate_parameters

    x = np.linspace(0.05, 0.95, 40)[:, None]
    observations = Observations(x, 0.5 * np.sin(np.pi * x[:, 0]))  # k = 2, A = 1
    settings = {"width": 60, "n_interior": 200, "n_boundary": 2}
    result = estimate_parameters(_diffusion(k=1.3), observations, ["k"], settings=settings)
    assert abs(result.estimates["k"] - 2.0) < 1e-6
    with pytest.raises(IdentifiabilityError, match=r"\['k', 'A'\]"):  # only A / k is seen
        estimate_parameters(_diffusion(k=1.3), observations, ["k", "A"], settings=settings)


def test_dirichlet_eigenfunctions_of_the_square_from_a_sampled_basis():
    from pipeline.cluster import compute
    from pipeline.nn import get_activation, get_sampler, sample_network
    from pipeline.pde import get_problem
    from pipeline.pde.eigenmodes import dirichlet_modes

    problem = get_problem("poisson_sin2d")
    pool = np.random.default_rng(0).random((3000, 2))
    (network,) = compute(sample_network(pool, None, widths=[400], activation=get_activation("tanh"),
                                        sampler=get_sampler("uswim"), seed=np.random.SeedSequence(0)))
    modes = dirichlet_modes(problem, network, 6)
    # −Δ on the unit square: π²(m² + n²) = 2, 5, 5, 8, 10, 10 × π² (measured to 1e-3 at width 600)
    np.testing.assert_allclose(modes.eigenvalues / np.pi ** 2, [2, 5, 5, 8, 10, 10], rtol=1e-2)
    assert modes.clusters() == [1, 3, 4, 6]  # a cut-off takes a whole eigenspace
    x = np.random.default_rng(1).random((2000, 2))
    first, exact = modes.modes(x)[:, 0], np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1])
    assert abs(np.corrcoef(first, exact)[0, 1]) > 1 - 1e-4
    np.testing.assert_allclose(modes(x)[:, 0], -modes.eigenvalues[0] * first)  # L φ = Δφ = −λφ


def test_a_source_in_eigenfunctions_meets_the_target_where_the_network_cannot_and_refuses_what_it_cannot_do():
    problem, observations, truth = source_inversion_case(200, 0.01, seed=0)
    x = problem.evaluation_points()
    spectral = estimate_source(problem, observations, modes=20, seed=0)
    error = np.linalg.norm(spectral.source(x) - truth(x)) / np.linalg.norm(truth(x))
    assert error < 1e-2 and spectral.diagnostics["modes"] == 1  # 6.6e-4; the network: 9.7e-2
    assert np.all(np.isfinite(spectral.source_std(x)))
    with pytest.raises(ValueError, match="modes must be a positive integer"):
        estimate_source(problem, observations, modes=0)
    with pytest.raises(ValueError, match="not both"):
        estimate_source(problem, observations, modes=4, source_functions=[lambda p: p[:, 0]])
    with pytest.raises(ValueError, match="Dirichlet conditions on the whole boundary"):
        estimate_source(get_problem("poisson_mixed"), observations, modes=4)
    with pytest.raises(ValueError, match="shape must be"):
        source_inversion_case(shape="square")
