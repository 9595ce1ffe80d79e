"""The lowest Dirichlet eigenfunctions of the Laplacian in a sampled basis, and the sources they
span: the spectral cut-off prior of an inverse source problem (docs/design.md §1.4).

For ``L = c Δ`` with ``u = g`` on the whole boundary, ``u = u_g + Σ a_k φ_k`` and ``f = L u =
Σ −c λ_k a_k φ_k``, with ``−Δ φ_k = λ_k φ_k``, ``φ_k = 0`` on the boundary.  The φ_k come from
Rayleigh–Ritz in the state's own network: the features restricted to the null space of the
boundary rows, made orthonormal on a cell-centred grid (the midpoint rule), then the
eigenvectors of the Dirichlet form ``∫ ∇u·∇v`` on that grid.  On the unit square with 600
tanh features and a 120² grid the first eigenvalues are 2, 5, 5, 8, 10 × π² to 1e-3.

The prior this brings: the source is a short sum of eigenfunctions, so it vanishes on the
boundary as they do.  At 1 % noise and 200 observations (``benchmarks/systems.py``) it fits a
source that is one (1.6e-3; the network source 9.7e-2), helps a smooth one that vanishes on
the boundary (3.4e-2 against 1.2e-1), and biases one that does not (3.8e-1 against 1.3e-1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.pde.conditions import BoundaryCondition

__all__ = ["ModeSource", "dirichlet_modes", "laplacian_scale"]

#: eigenvalues closer than this (relative) are one eigenspace: a cut-off takes all of it or none
CLUSTER = 1e-2


def laplacian_scale(problem) -> float:
    """``c`` of ``L = c Δ`` (a constant), with Dirichlet conditions on the whole boundary; else a ValueError."""
    terms = problem.operator.terms
    coefficient = terms[0].coefficient if len(terms) == 1 else None
    if len(terms) != 1 or terms[0].kind != "laplacian" or callable(coefficient) or not coefficient:
        raise ValueError(f"modes: the source's eigenfunctions are those of c·Δ with a constant c; the operator of "
                         f"{problem.name!r} is {problem.operator.name}: use the network source (modes=None)")
    if not problem.conditions or not all(isinstance(c, BoundaryCondition) and c.name == "dirichlet"
                                             for c in problem.conditions):
        raise ValueError(f"modes: the eigenfunctions need Dirichlet conditions on the whole boundary; {problem.name!r} "
                         "has others: use the network source (modes=None)")
    return float(coefficient)


@dataclass(frozen=True)
class ModeSource:
    """Sources ``L φ_k = −c λ_k φ_k`` (k < count): ``(n, count)`` at points ``x``."""

    layer: object  # the state's hidden layer
    coefficients: np.ndarray  # (width + 1, count): φ_k = [Φ | 1] coefficients[:, k]
    eigenvalues: np.ndarray  # λ_k of −Δ, ascending
    scale: float  # c of L = c Δ

    def modes(self, x) -> np.ndarray:
        """``(n, count)``: φ_k at ``x``."""
        x = np.asarray(x, dtype=float)
        return np.concatenate([self.layer(x), np.ones((len(x), 1))], axis=1) @ self.coefficients

    def __call__(self, x) -> np.ndarray:
        return self.modes(x) * (-self.scale * self.eigenvalues)

    def clusters(self) -> list[int]:
        """The mode counts that end an eigenspace (a cut-off between equal eigenvalues is arbitrary)."""
        lam = self.eigenvalues
        return [k for k in range(1, len(lam)) if lam[k] > lam[k - 1] * (1 + CLUSTER)] + [len(lam)]


def dirichlet_modes(problem, network, count: int, *, n_quadrature: int = 14_400, n_boundary: int = 800,
                    seed=0) -> ModeSource:
    """The ``count`` lowest eigenpairs of ``−Δ`` with ``φ = 0`` on the boundary, in ``network``'s features."""
    scale = laplacian_scale(problem)
    layer = network.layers[0]
    dim = problem.domain.dim
    x = problem.domain.sample_interior(n_quadrature, method="grid", seed=seed)
    edge = problem.domain.sample_boundary(n_boundary, method="grid", seed=seed).points

    def with_constant(values, constant):
        return np.concatenate([values, np.full((len(values), 1), constant)], axis=1)

    # the null space of the boundary rows: combinations that vanish on the boundary points
    _, sb, vb = np.linalg.svd(with_constant(layer(edge), 1.0), full_matrices=True)
    null = vb[int(np.count_nonzero(sb > 1e-9 * sb[0])):].T
    # orthonormal on the grid (equal weights): sampled features are nearly dependent, so by SVD
    _, r = np.linalg.qr(with_constant(layer(x), 1.0) @ null)
    _, s, vt = np.linalg.svd(r)
    keep = s > 1e-10 * s[0]
    if np.count_nonzero(keep) < count:
        raise ValueError(f"modes: the state's basis holds {np.count_nonzero(keep)} independent functions that vanish "
                         f"on the boundary, fewer than the {count} modes asked; lower modes or raise the width")
    basis = null @ (vt[keep].T / s[keep])
    form = np.zeros((basis.shape[1], basis.shape[1]))
    for axis in range(dim):  # the Dirichlet form Σ_i ∫ ∂_i u ∂_i v
        alpha = tuple(int(i == axis) for i in range(dim))
        g = with_constant(layer.derivative_features(x, alpha), 0.0) @ basis
        form += g.T @ g
    lam, vec = np.linalg.eigh(form)
    return ModeSource(layer, basis @ vec[:, :count], lam[:count], scale)


def spectral_cutoff(g: np.ndarray, y: np.ndarray, noise: float | None, ends: list[int], tau: float = 1.1):
    """``a`` on the first ``K`` modes by least squares, ``K`` the fewest whole eigenspaces whose misfit
    is within ``tau`` times the noise (the discrepancy principle; ``tau > 1`` as it requires), or by
    generalised cross-validation without a noise level.  Returns ``(a, covariance, K, curve)``."""
    n, count = g.shape
    fits, residuals = [], []
    for k in ends:
        a, *_ = np.linalg.lstsq(g[:, :k], y, rcond=None)
        fits.append(a)
        residuals.append(float(np.sum((g[:, :k] @ a - y) ** 2)))
    residuals = np.array(residuals)
    gcv = n * residuals / np.maximum(n - np.array(ends), 1) ** 2
    if noise:
        ok = residuals <= tau**2 * n * noise**2
        pick, method = (int(np.argmax(ok)) if ok.any() else int(np.argmin(gcv))), "discrepancy"
    else:
        pick, method = int(np.argmin(gcv)), "gcv"
    k = ends[pick]
    coef = np.zeros(count)
    coef[:k] = fits[pick]
    sigma2 = noise**2 if noise else residuals[pick] / max(n - k, 1)
    covariance = np.zeros((count, count))
    covariance[:k, :k] = sigma2 * np.linalg.pinv(g[:, :k].T @ g[:, :k])
    path = np.zeros((len(ends), count))
    for i, (kk, a) in enumerate(zip(ends, fits)):
        path[i, :kk] = a
    return coef, covariance, k, {"method": method, "modes": k, "ends": list(ends), "residual": np.sqrt(residuals).tolist(),
                                 "gcv": gcv.tolist(), "lambda": [], "coefficients": path}
