"""TSQR least squares against scipy.linalg.lstsq and explicit formulas."""

import dask.array as da
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.linalg import LeastSquaresFactor, factorize, lstsq, merge_factors, reduce_block, tsqr_factor
from pipeline.linalg.tsqr import _merge_stacked, _reduce_stacked, augmented_block
from pipeline.nn import feature_matrix, root_seed, sample_network


def _well_conditioned(rng, m=3000, n=40, k=3):
    a = rng.normal(size=(m, n)) @ np.diag(np.linspace(1, 3, n))
    b = rng.normal(size=(m, k))
    return a, b


@pytest.mark.parametrize("chunk_rows, split_every", [(3000, 8), (250, 2), (97, 8), (40, 3)])
def test_equals_scipy_on_well_conditioned_problems(rng, chunk_rows, split_every):
    a, b = _well_conditioned(rng)
    sol = lstsq(a, b, rcond=1e-12, chunk_rows=chunk_rows, split_every=split_every)
    ref, _, rank, s = scipy.linalg.lstsq(a, b, cond=1e-12)
    assert np.max(np.abs(sol.coef - ref)) / np.max(np.abs(ref)) < 1e-10
    assert sol.rank == rank
    np.testing.assert_allclose(sol.singular_values, s, rtol=1e-12)
    np.testing.assert_allclose(sol.residual_norms, np.linalg.norm(a @ ref - b, axis=0), rtol=1e-10)


def test_dask_input_vector_rhs_and_row_weights(rng):
    a, b = _well_conditioned(rng, k=1)
    w = rng.uniform(0.1, 10.0, size=a.shape[0])
    sol = lstsq(da.from_array(a, chunks=(700, -1)), da.from_array(b[:, 0], chunks=500), row_weights=w, rcond=1e-12)
    ref = scipy.linalg.lstsq(a * w[:, None], b[:, 0] * w, cond=1e-12)[0]
    assert sol.coef.shape == (a.shape[1],)
    assert np.max(np.abs(sol.coef - ref)) / np.max(np.abs(ref)) < 1e-10
    np.testing.assert_allclose(sol.residual_norms[0], np.linalg.norm(w * (a @ ref - b[:, 0])), rtol=1e-10)


def _sampled_network_matrix(n_points=4000, width=400):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(n_points, 2))
    y = np.sin(np.pi * x[:, 0]) * np.cos(np.pi * x[:, 1])
    net = sample_network(x[:1000], y[:1000, None], widths=[width], activation="tanh", sampler="swim",
                         seed=root_seed(0)).compute()
    a = np.asarray(feature_matrix(x, net, intercept=True).compute())
    return a, y


def test_matches_scipy_residual_on_an_ill_conditioned_sampled_network_matrix():
    a, y = _sampled_network_matrix()
    s = scipy.linalg.svdvals(a)
    assert s[0] / s[-1] > 1e12
    noisy = y + 1e-4 * np.random.default_rng(9).normal(size=y.shape)
    for target in (noisy, y):
        for rcond in (1e-8, 1e-10, 1e-12):
            ours = lstsq(a, target, rcond=rcond, chunk_rows=900)
            ref, _, rank, _ = scipy.linalg.lstsq(a, target, cond=rcond)
            assert ours.rank == rank
            ref_residual = np.linalg.norm(a @ ref - target)
            our_residual = np.linalg.norm(a @ ours.coef - target)
            # Evaluating ||A x - y|| in floating point is itself only good to about
            # eps·sqrt(n)·(||A|| ||x|| + ||y||) (the rounding of the product, norm-wise), which
            # with coefficients of norm up to 1e5 (rcond 1e-12) is far above 1e-8 of the
            # residual: the tolerance is that bound, or scipy's own spread between its two SVD
            # drivers where that is looser, and never tighter than 1e-8 (the residual differed
            # from scipy's by 1.5e-8 here and 1.7e-8 on another machine at rcond 1e-10).
            gelss = scipy.linalg.lstsq(a, target, cond=rcond, lapack_driver="gelss")[0]
            spread = abs(np.linalg.norm(a @ gelss - target) - ref_residual) / ref_residual
            x_norm = max(np.linalg.norm(ref), np.linalg.norm(ours.coef))
            rounding = np.finfo(float).eps * np.sqrt(a.shape[1]) * (s[0] * x_norm + np.linalg.norm(target))
            tol = max(1e-8, 10 * spread, rounding / ref_residual)
            assert abs(our_residual - ref_residual) / ref_residual < tol
            # and the residual read off the factor is the true one
            assert abs(ours.residual_norms[0] - our_residual) / our_residual < 1e-5
            # singular values agree with the SVD of the whole matrix (relative to the largest)
            assert np.max(np.abs(ours.singular_values - s)) / s[0] < 1e-13


def test_ridge_equals_the_augmented_problem(rng):
    a, b = _well_conditioned(rng, m=500, n=30, k=2)
    lam = 3.7
    sol = lstsq(a, b, ridge=lam)
    augmented = np.vstack([a, np.sqrt(lam) * np.eye(a.shape[1])])
    ref = scipy.linalg.lstsq(augmented, np.vstack([b, np.zeros((a.shape[1], 2))]))[0]
    np.testing.assert_allclose(sol.coef, ref, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(sol.residual_norms, np.linalg.norm(a @ ref - b, axis=0), rtol=1e-10)


def test_a_regularisation_path_reuses_one_factor(rng):
    a, b = _well_conditioned(rng, m=800, n=25, k=1)
    factor = factorize(a, b[:, 0])
    residuals = [factor.solve(ridge=lam).residual_norms[0] for lam in (1e-6, 1e-2, 1, 100)]
    assert residuals == sorted(residuals)  # more regularisation, larger residual
    assert factor.solve(rcond=1e-12).coef.shape == (25,)


def test_rank_deficiency_is_reported_not_raised(rng):
    a = rng.normal(size=(300, 10))
    a = np.hstack([a, a[:, :4]])  # four duplicated columns
    b = rng.normal(size=300)
    sol = lstsq(a, b, rcond=1e-10)
    ref, _, rank, _ = scipy.linalg.lstsq(a, b, cond=1e-10)
    assert sol.rank == rank == 10
    np.testing.assert_allclose(sol.coef, ref, atol=1e-12)  # the minimum-norm solution
    assert sol.condition_number == np.inf or sol.condition_number > 1e12


def test_more_columns_than_rows(rng):
    a, b = rng.normal(size=(12, 30)), rng.normal(size=(12, 2))
    sol = lstsq(a, b, rcond=1e-12)
    ref = scipy.linalg.lstsq(a, b, cond=1e-12)[0]
    np.testing.assert_allclose(sol.coef, ref, atol=1e-12)
    assert sol.rank == 12
    assert np.all(sol.residual_norms < 1e-12)


def test_generic_kernels_equal_the_lapack_ones(rng):
    # The stacked-QR kernels are the CuPy path; NumPy exercises the same code.
    blocks = [augmented_block(rng.normal(size=(rows, 20)), rng.normal(size=rows)) for rows in (50, 7, 33)]
    lapack = merge_factors([reduce_block(b) for b in blocks])
    generic = _merge_stacked([_reduce_stacked(b) for b in blocks])
    np.testing.assert_allclose(np.abs(np.triu(lapack)), np.abs(np.triu(generic)), atol=1e-12)
    gram = np.vstack(blocks).T @ np.vstack(blocks)
    np.testing.assert_allclose(np.triu(lapack).T @ np.triu(lapack), gram, rtol=1e-11, atol=1e-11)


def test_tsqr_factor_builds_a_lazy_graph(rng):
    a = da.from_array(rng.normal(size=(1000, 5)), chunks=(100, 5))
    graph = tsqr_factor(a, da.ones(1000, chunks=100), split_every=4)
    factor = LeastSquaresFactor(graph.compute(), n_columns=5)
    assert factor.r.shape == (6, 6) and factor.n_rhs == 1


def test_bad_input_names_the_argument(rng):
    a, b = _well_conditioned(rng, m=100, n=5, k=1)
    with pytest.raises(ValueError, match="rcond"):
        lstsq(a, b, rcond=0.0)
    with pytest.raises(ValueError, match="rcond"):
        lstsq(a, b, rcond=-1e-3)
    with pytest.raises(ValueError, match="ridge"):
        lstsq(a, b, ridge=-1.0)
    with pytest.raises(ValueError, match="rows"):
        lstsq(a, b[:50], rcond=1e-10)
    with pytest.raises(ValueError, match="row_weights"):
        lstsq(a, b, row_weights=np.ones(7), rcond=1e-10)
    bad = a.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lstsq(bad, b, rcond=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 120), n=st.integers(1, 12), k=st.integers(1, 3),
    chunk=st.integers(1, 60), split_every=st.integers(2, 5), seed=st.integers(0, 2**16),
)
def test_property_equals_scipy_for_any_shape_and_chunking(m, n, k, chunk, split_every, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(m, n)), rng.normal(size=(m, k))
    sol = lstsq(da.from_array(a, chunks=(chunk, n)), b, rcond=1e-10, split_every=split_every)
    ref = scipy.linalg.lstsq(a, b, cond=1e-10)[0]
    np.testing.assert_allclose(a @ sol.coef, a @ ref, atol=1e-9 * max(1.0, np.abs(b).max()))
    np.testing.assert_allclose(sol.coef, ref, atol=1e-8 * max(1.0, np.abs(ref).max()))


def test_pivoted_columns_drop_dependent_columns_and_keep_forced_ones(rng):
    from pipeline.linalg import pivoted_columns

    base = rng.normal(size=(200, 6))
    a = np.column_stack([np.ones(200), base, base[:, 0] + base[:, 1], 2 * base[:, 3], np.zeros(200)])
    r = np.linalg.qr(a, mode="r")
    kept = pivoted_columns(r, 1e-10, keep_first=1)
    assert kept[0] == 0 and len(kept) == 7  # the intercept and six independent columns
    np.testing.assert_array_equal(kept, np.sort(kept))
    assert np.linalg.matrix_rank(a[:, kept]) == 7
    with pytest.raises(ValueError, match="tolerance"):
        pivoted_columns(r, 0.0)
