"""Continuous-time networks for LTI systems against scipy.signal.lsim and direct exponentials."""

import numpy as np
import pytest
import scipy.signal

from pipeline.models.lti import LTINetwork
from pipeline.models.lti_systems import convection_diffusion, diffusion_2d, jordan_system, mass_spring_chain


def _rel(y, ref):
    ref = ref.reshape(y.shape)
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


def _input(t, m):
    return np.column_stack([np.sin(2 * np.pi * t * (i + 1)) + 0.5 * (t > 0.3 + 0.2 * i) for i in range(m)])


@pytest.mark.parametrize("hold, interp", [("foh", True), ("zoh", False)])
def test_jordan_block_system_to_1e10(hold, interp):
    A, B, C, D = jordan_system()
    t = np.linspace(0, 5, 501)
    u = _input(t, 2)
    net = LTINetwork(A, B, C, D)
    assert net.method == "schur-blocks" and 4 in net.layers["cascaded_blocks"]  # the Jordan block stays whole
    _, ref, _ = scipy.signal.lsim((A, B, C, D), u, t, interp=interp)
    result = net.simulate(t, u, hold=hold)
    assert _rel(result.y, ref) < 1e-10
    assert result.error_estimate < 1e-10


def test_convection_diffusion_at_peclet_097_to_1e8():
    A, B, C, D = convection_diffusion(100, 0.97)
    A = A.toarray()
    assert np.linalg.cond(np.linalg.eig(A)[1]) > 1e12  # plain eigendecomposition breaks here
    t = np.linspace(0, 2, 1001)
    u = _input(t, 1)
    net = LTINetwork(A, B, C, D)
    assert net.method == "schur-blocks"
    _, ref, _ = scipy.signal.lsim((A, B, C, D), u, t)
    assert _rel(net.simulate(t, u).y, ref) < 1e-8


def test_mass_spring_chain_uses_second_order_neurons():
    A, B, C, D = mass_spring_chain(30)
    net = LTINetwork(A, B, C, D)
    assert net.layers == {"first_order": 0, "second_order": 30, "cascaded_blocks": []}
    t = np.linspace(0, 60, 3001)
    u = np.sin(0.5 * t)[:, None]
    _, ref, _ = scipy.signal.lsim((A, B, C, D), u, t)
    assert _rel(net.simulate(t, u).y, ref) < 1e-10


def test_diffusion_all_modes_and_slowest_modes_with_static_correction():
    A, B, C, D = diffusion_2d(30)  # 900 states (the 3600-state case is in the benchmark)
    t = np.linspace(0, 1, 1001)
    u = _input(t, 1)
    _, ref, _ = scipy.signal.lsim((A.toarray(), B, C, D), u, t)
    full = LTINetwork(A, B, C, D)
    assert full.layers["first_order"] == 900
    assert _rel(full.simulate(t, u).y, ref) < 1e-10
    truncated = LTINetwork(A, B, C, D, modes=100)
    result = truncated.simulate(t, u)
    assert _rel(result.y, ref) < 1e-4
    max_error = np.abs(result.y - ref.reshape(result.y.shape)).max() / np.abs(ref).max()
    assert max_error < 3 * result.error_estimate  # the a-priori estimate is of the right size
    # the steady-state correction of the dropped modes is what brings the 100 modes to 1e-4
    uncorrected = result.y - u @ (truncated.d_effective - D).T
    assert _rel(uncorrected, ref) > 10 * _rel(result.y, ref)


def test_bad_input():
    with pytest.raises(ValueError, match="square"):
        LTINetwork(np.zeros((2, 3)), np.zeros((2, 1)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="B must have 2 rows"):
        LTINetwork(-np.eye(2), np.zeros((3, 1)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="C must have 2 columns"):
        LTINetwork(-np.eye(2), np.zeros((2, 1)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        LTINetwork(np.array([[np.nan, 0], [0, -1.0]]), np.zeros((2, 1)), np.zeros((1, 2)))
    net = LTINetwork(-np.eye(2), np.ones((2, 1)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="uniformly spaced"):
        net.simulate(np.array([0, 0.1, 0.3]), np.zeros(3))
    with pytest.raises(ValueError, match="u must be finite"):
        net.simulate(np.linspace(0, 1, 5), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="modes must be"):
        LTINetwork(-np.eye(2), np.ones((2, 1)), np.ones((1, 2)), modes=5)


def test_first_order_step_maps_match_the_augmented_matrix_exponential():
    """Closed-form φ1, φ2 of first-order neurons equal the blocks of expm([[λh, bh, 0], [0, 0, 1], [0, 0, 0]])."""
    import scipy.linalg

    from pipeline.models.lti import _phi_functions

    for z in [0.0, 1e-13, -1e-6, 0.2, -0.49, 0.5, -0.7, 3.0, -40.0]:
        e = scipy.linalg.expm(np.array([[z, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
        phi0, phi1, phi2 = _phi_functions(np.array([z]))
        np.testing.assert_allclose([phi0[0], phi1[0], phi2[0]], [e[0, 0], e[0, 1], e[0, 2]], rtol=1e-13)
    # stiff modes: no overflow, the limits -1/z and -1/z - 1/z^2 hold
    _, phi1, phi2 = _phi_functions(np.array([-1e6]))
    np.testing.assert_allclose([phi1[0], phi2[0]], [1e-6, 1e-6 - 1e-12], rtol=1e-12)
