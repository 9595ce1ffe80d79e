"""Output layers of the estimators: ridge with an unpenalised intercept, read off the TSQR
factor, and its λ chosen by exact leave-one-out (docs/design.md §3.2.1).

The TSQR of ``[Φ | 1 | Y]`` gives ``R̃`` with ``[Φ | 1 | Y] = Q R̃``.  The intercept column is
``1 = Q t`` (``t`` the column of ``R̃``), so centring the data is a projection of the small
factor: ``(I - 11ᵀ/m) [Φ | Y] = Q (I - t tᵀ/tᵀt) R̃_{Φ,Y} = Q [G_Φ | G_Y]``, and the column
means are ``tᵀ R̃ / m``.  With ``G_Φ = U S Vᵀ`` and ``Uᵀ G_Y`` every ridge solution

    c(λ) = V diag(s / (s² + λ)) Uᵀ G_Y,      b = ȳ - μᵀ c,

its training residual and the GCV criterion follow for a whole path of λ in O(k · n_out) per
λ, as in ``sklearn.linear_model.Ridge`` (the intercept is not penalised).  The leave-one-out
residual of a training row ``i`` needs its leverage,

    h_i(λ) = 1/m + Σ_j (p_ij)² / (s_j² + λ),     p_i = (φ_i - μ) V,

which the R-only TSQR does not hold but any row's features give: it is evaluated on the
training rows the client holds (every row up to ``fitting.LOO_ROWS``, else a uniform sample of
the sampling pool, which makes the curve an unbiased estimate of the leave-one-out error), at
O(p k²) once plus O(p k) per λ.  The GCV criterion needs the singular values only.
"""

from __future__ import annotations

import contextlib

import numpy as np
import scipy.linalg

from pipeline.backend import COMPUTE_DTYPE, to_host
from pipeline.cluster import large_dense_step

__all__ = ["RidgeFactor", "choose", "loo_of_fit", "relative_grid"]

#: λ / s_0² of the automatic path: four per decade from rcond² (the truncation's own scale)
#: to 100 (every neuron shrunk to nothing: the constant model)
POINTS_PER_DECADE = 4
GRID_TOP = 2.0
GRID_FLOOR = -20.0
#: leave-one-out residuals with 1 - h_i below this are taken as infinite: the row is
#: (nearly) interpolated and e_i / (1 - h_i) is rounding noise over rounding noise
MIN_ONE_MINUS_LEVERAGE = 1e-6
#: numbers per block of leave-one-out fitted values (32 MiB)
LOO_BLOCK = 4 * 2**20


def relative_grid(rcond) -> np.ndarray:
    """λ / s_0² of the automatic path, ascending."""
    bottom = GRID_FLOOR if rcond is None else max(GRID_FLOOR, 2.0 * np.log10(rcond))
    n = int(round((GRID_TOP - bottom) * POINTS_PER_DECADE)) + 1
    return np.logspace(bottom, GRID_TOP, n)


def _svd(a):
    with large_dense_step() if a.shape[1] >= 1000 else contextlib.nullcontext():
        try:
            return scipy.linalg.svd(a, full_matrices=False, lapack_driver="gesdd", check_finite=False)
        except np.linalg.LinAlgError:  # divide and conquer failed to converge: QR iteration
            return scipy.linalg.svd(a, full_matrices=False, lapack_driver="gesvd", check_finite=False)


class RidgeFactor:
    """Ridge regression on ``[Φ | 1 | Y]`` with an unpenalised intercept, from its TSQR factor.

    Args:
        r: the ``(k + 1 + n_out)²`` triangular factor, the intercept in column ``k``.
        width: ``k``, the number of features.
        n_rows: ``m``, the number of rows the factor reduces.
        rcond: truncation (directions with ``s_j <= rcond · s_0`` are dropped), or None for
            NumPy's ``eps · max(m, k)``.
    """

    def __init__(self, r, width: int, n_rows: int, rcond=None):
        r = np.triu(to_host(r).astype(COMPUTE_DTYPE, copy=False))
        k, self.m = int(width), int(n_rows)
        t = r[:, k]
        body = np.delete(r, k, axis=1)
        tb = t @ body
        self.means = tb / self.m  # column means of [Φ | Y]
        tt = float(t @ t)
        g = body - np.outer(t, tb / tt) if tt > 0 else body
        self.mu, self.y_mean = self.means[:k], self.means[k:]
        self.u, self.s, self.vt = _svd(g[:, :k])
        self.uy = self.u.T @ g[:, k:]
        self.outside = np.sum((g[:, k:] - self.u @ self.uy) ** 2, axis=0)
        s0 = self.s[0] if self.s.size else 0.0
        cut = rcond if rcond is not None else np.finfo(COMPUTE_DTYPE).eps * max(self.m, k)
        self.keep = self.s > cut * s0 if s0 > 0 else np.zeros(self.s.shape, bool)
        self.scale = s0 * s0

    @property
    def width(self) -> int:
        return self.vt.shape[1]

    def _filters(self, lam) -> np.ndarray:
        """``f_j(λ)`` for each λ of ``lam``: ``(L, k)``."""
        lam = np.atleast_1d(np.asarray(lam, dtype=COMPUTE_DTYPE))[:, None]
        s2 = self.s * self.s
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(lam > 0, s2 / (s2 + lam), 1.0)
        return np.where(self.keep, f, 0.0)

    def _inverse(self, lam) -> np.ndarray:
        """``f_j / s_j²`` (``1 / (s_j² + λ)`` where kept): ``(L, k)``."""
        s2 = np.where(self.keep, self.s * self.s, 1.0)
        return self._filters(lam) / s2

    def path(self, relative) -> np.ndarray:
        """The absolute λ of a relative grid (``λ / s_0²``)."""
        return np.asarray(relative, dtype=COMPUTE_DTYPE) * self.scale

    def rss(self, lam) -> np.ndarray:
        """Training residual ``‖y_c - Φ_c c(λ)‖²``: ``(L, n_out)``."""
        one_minus = 1.0 - self._filters(lam)
        return self.outside + (one_minus * one_minus) @ (self.uy * self.uy)

    def gcv(self, lam) -> np.ndarray:
        """``m · RSS / (m - 1 - Σ f)²`` (the intercept counts one degree of freedom): ``(L, n_out)``."""
        dof = 1.0 + self._filters(lam).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.m * self.rss(lam) / ((self.m - dof) ** 2)[:, None]
        return np.where((self.m - dof)[:, None] > 0, out, np.inf)

    def coef(self, lam) -> np.ndarray:
        """Coefficients ``(k + 1, n_out)``, the intercept last; ``lam`` one λ or one per output."""
        n_out = self.uy.shape[1]
        lam = np.broadcast_to(np.asarray(lam, dtype=COMPUTE_DTYPE), (n_out,))
        s = np.where(self.keep, self.s, 1.0)
        weights = (self._filters(lam) / s).T * self.uy  # (k, n_out): column j filtered by λ_j
        c = self.vt.T @ weights
        return np.vstack([c, self.y_mean - self.mu @ c])

    def rows(self, x_features, y) -> tuple[np.ndarray, np.ndarray]:
        """``(p, y_c)`` of training rows: features in the basis ``V``, centred targets."""
        p = (np.asarray(x_features, dtype=COMPUTE_DTYPE) - self.mu) @ self.vt.T
        return p, np.asarray(y, dtype=COMPUTE_DTYPE) - self.y_mean

    def _loo(self, lam, rows, outputs=slice(None)):
        p, y_c = rows
        inverse = self._inverse(lam)  # (L, k)
        one_minus_h = 1.0 - 1.0 / self.m - (p * p) @ inverse.T  # (p, L)
        weights = inverse * np.where(self.keep, self.s, 1.0)  # f / s: (L, k)
        return one_minus_h, weights, y_c[:, outputs], self.uy[:, outputs]

    def loo_curve(self, lam, rows) -> np.ndarray:
        """Mean squared leave-one-out residual of the ``rows`` per λ and output: ``(L, n_out)``.

        Infinite where a row is (nearly) interpolated (``1 - h < MIN_ONE_MINUS_LEVERAGE``).
        The fitted values of a group of λ come from one matrix product (``LOO_BLOCK`` numbers).
        """
        lam = np.atleast_1d(lam)
        one_minus_h, weights, y_c, uy = self._loo(lam, rows)
        p, n_out = rows[0], y_c.shape[1]
        curve = np.full((len(lam), n_out), np.inf)
        valid = one_minus_h.min(axis=0, initial=np.inf) > MIN_ONE_MINUS_LEVERAGE
        group = max(1, LOO_BLOCK // max(1, p.shape[0] * n_out))
        todo = np.flatnonzero(valid)
        for start in range(0, len(todo), group):
            idx = todo[start : start + group]
            coef = (weights[idx][:, :, None] * uy[None]).transpose(1, 0, 2).reshape(len(uy), -1)
            fitted = (p @ coef).reshape(p.shape[0], len(idx), n_out)
            e = (y_c[:, None, :] - fitted) / one_minus_h[:, idx, None]
            curve[idx] = np.mean(e * e, axis=0)
        return curve

    def loo_residuals(self, lam, rows) -> np.ndarray:
        """Leave-one-out residuals ``(p, n_out)`` of the rows, ``lam`` one λ per output."""
        p, y_c = rows
        lam = np.broadcast_to(np.asarray(lam, dtype=COMPUTE_DTYPE), (y_c.shape[1],))
        out = np.empty_like(y_c)
        for j, value in enumerate(lam):
            one_minus_h, weights, yj, uy = self._loo([value], rows, slice(j, j + 1))
            with np.errstate(divide="ignore", invalid="ignore"):
                out[:, j] = (yj[:, 0] - p @ (weights[0] * uy[:, 0])) / one_minus_h[:, 0]
            out[one_minus_h[:, 0] <= MIN_ONE_MINUS_LEVERAGE, j] = np.inf
        return out


def choose(curve: np.ndarray) -> np.ndarray:
    """Index of the minimum of each column of ``curve`` ``(L, n)``; on ties the larger λ."""
    flipped = curve[::-1]
    finite = np.isfinite(flipped).any(axis=0)
    index = len(curve) - 1 - np.argmin(np.where(np.isfinite(flipped), flipped, np.inf), axis=0)
    return np.where(finite, index, len(curve) - 1)  # nothing finite: the most regularised


def loo_of_fit(factor, coef, x_features, y, rcond) -> np.ndarray | None:
    """Leave-one-out residuals ``(p, n_out)`` of a truncated-SVD fit of ``[Φ | 1]`` (no ridge).

    ``factor`` is the :class:`~pipeline.linalg.LeastSquaresFactor` the solution came from;
    None where some row is (nearly) interpolated and its residual would be rounding noise.
    """
    u, s, vt = factor.svd
    f = factor.filter_factors(rcond, None)
    design = np.hstack([x_features, np.ones((len(x_features), 1))])
    p = design @ vt.T
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(f > 0, f / np.where(s > 0, s * s, 1.0), 0.0)
    one_minus_h = 1.0 - (p * p) @ inverse
    if not (one_minus_h > MIN_ONE_MINUS_LEVERAGE).all():
        return None
    return (y - design @ coef) / one_minus_h[:, None]
