"""Hamiltonian networks without back-propagation (sampled, then one linear least squares).

``H(q, p) = Φ(x) c + c0`` with a sampled hidden layer and ``x = (q, p)``.  Hamilton's equations
are linear in ``c``: for every sample, ``∂_p Φ c = q̇`` and ``-∂_q Φ c = ṗ`` with gradient
features ``∂φ/∂x_j = σ'(w·x + b) w_j``, so the whole fit is one least-squares problem (reduced
by the row-block TSQR, ``2n`` rows per sample), plus one row fixing the additive constant at a
reference point.  Samplers: ELM, U-SWIM, SWIM with known values of H, and A-SWIM (U-SWIM, then
SWIM on the values of the first fit).

From flow-map data ``(x_k, x_{k+1})`` with step ``Δt`` the rows are the symplectic-Euler
relations ``q_{k+1} - q_k = Δt ∂_p H(q_{k+1}, p_k)``, ``p_{k+1} - p_k = -Δt ∂_q H(q_{k+1}, p_k)``.
That map of ``Ĥ`` is the exact flow of ``Ĥ + (Δt/2) ∂_qĤ · ∂_pĤ + O(Δt²)`` (backward error
analysis), so the fitted ``Ĥ`` is corrected to first order by ``H̃ = Ĥ + (Δt/2) ∂_qĤ · ∂_pĤ``.
"""

from __future__ import annotations

import numbers

import dask.array as da
import numpy as np

from pipeline.backend import COMPUTE_DTYPE
from pipeline.cluster import blas_limited, compute
from pipeline.linalg import LeastSquaresFactor, check_regularisation, default_chunk_rows, tsqr_factor
from pipeline.nn import (
    ELMSampler,
    SWIMSampler,
    child_seed,
    draw_pool_indices,
    get_activation,
    get_sampler,
    root_seed,
    sample_network,
)

__all__ = ["HamiltonianNetwork", "energy_drift", "symplectic_euler"]


def _check_states(x, name="x", dim=None):
    x = np.asarray(x, dtype=COMPUTE_DTYPE)
    if x.ndim != 2 or x.shape[1] % 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must be 2-D (n_samples, 2 n) with the q columns before the p columns, "
                         f"got shape {x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns (q and p), got {x.shape[1]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return x


def _gradient_rows(x_eval, targets, network):
    """Rows ``[∂_p Φ | 0 | q̇]`` and ``[-∂_q Φ | 0 | ṗ]`` for one block of samples (Fortran order)."""
    layer = network.layers[0]
    n = x_eval.shape[1] // 2
    z = layer.preactivation(x_eval)
    slope = layer.activation.derivative(z, 1, out=z)
    width = layer.width
    rows = np.empty((2 * n * len(x_eval), width + 2), dtype=COMPUTE_DTYPE, order="F")
    w = layer.weights
    for j in range(n):  # a loop over degrees of freedom, not points or neurons
        block_p = slice((j) * len(x_eval), (j + 1) * len(x_eval))
        block_q = slice((n + j) * len(x_eval), (n + j + 1) * len(x_eval))
        rows[block_p, :width] = slope * w[:, n + j]
        rows[block_q, :width] = -slope * w[:, j]
        rows[block_p, width + 1] = targets[:, j]
        rows[block_q, width + 1] = targets[:, n + j]
    rows[:, width] = 0.0
    return rows


def _design_block(block, network, dim):
    """``block`` packs ``[x_eval | targets]``; returns the Hamilton rows of those samples."""
    return _gradient_rows(block[:, :dim], block[:, dim:], network)


def _leading_rows(packed, chunks, network, dim, n_rows):
    """The first ``n_rows`` rows of the design ``map_blocks(_design_block, packed)``, in NumPy.

    The first ``N`` rows of a block's design are those of its first ``N`` samples, so only
    those are assembled (not whole blocks, and without a second Dask computation).
    """
    out, start, have = [], 0, 0
    for size in chunks:
        if have >= n_rows:
            break
        need = n_rows - have
        rows = _design_block(packed[start:start + min(size, need)], network, dim)[:need]
        out.append(rows)
        have += len(rows)
        start += size
    return np.concatenate(out)


def first_order_correction(gradient: np.ndarray, dt: float) -> np.ndarray:
    """``(Δt/2) ∂_qĤ · ∂_pĤ`` per state from ``∇Ĥ = [∂_qĤ | ∂_pĤ]`` (flow-map fits)."""
    n = gradient.shape[1] // 2
    return 0.5 * dt * np.sum(gradient[:, :n] * gradient[:, n:], axis=1)


class HamiltonianNetwork:
    """A sampled network fitted to Hamilton's equations (scikit-learn style).

    Parameters
    ----------
    width : int, default=1000
    activation : str or Activation, default="tanh"
    sampler : {"elm", "uswim", "aswim", "swim"} or sampler instance, default="elm"
        ``"swim"`` needs values of H (``fit(..., values=H)``).
    weight_scale, bias_scale : float, default=1.0, 1.0
        ELM scales: ``w ~ N(0, weight_scale² I)``, ``b ~ U[-bias_scale, bias_scale]``.
    rcond : float, default=1e-12
        Truncation of the least-squares solve.
    random_state : int or None
    pool_size : int, default=20000
        Points SWIM draws candidate pairs from.
    chunk_rows : int or None
        Samples per block of the least-squares reduction.

    Attributes
    ----------
    network_, coef_ (width,), intercept_, rank_, singular_values_, residual_norm_, dof_
    """

    def __init__(self, width=1000, *, activation="tanh", sampler="elm", weight_scale=1.0, bias_scale=1.0,
                 rcond=1e-12, random_state=None, pool_size=20_000, chunk_rows=None):
        self.width = width
        self.activation = activation
        self.sampler = sampler
        self.weight_scale = weight_scale
        self.bias_scale = bias_scale
        self.rcond = rcond
        self.random_state = random_state
        self.pool_size = pool_size
        self.chunk_rows = chunk_rows

    # -------------------------------------------------------------------- configuration
    def _sampler(self):
        if not (isinstance(self.width, numbers.Integral) and not isinstance(self.width, bool) and self.width >= 1):
            raise ValueError(f"width must be a positive integer, got {self.width!r}")
        check_regularisation(self.rcond, None)
        get_activation(self.activation).check_order(1)
        if self.sampler == "elm":
            return ELMSampler(self.weight_scale, self.bias_scale)
        return get_sampler(self.sampler)

    # -------------------------------------------------------------------- fitting
    @blas_limited
    def fit(self, x, dx, *, values=None, reference=None):
        """Fit ``H`` from states ``x`` ``(N, 2n)`` and time derivatives ``dx = (q̇, ṗ)``.

        ``values``: H at ``x`` (needed by ``sampler="swim"``; used only for sampling).
        ``reference``: ``(x_ref, H_ref)`` fixing the additive constant (default: H = 0 at the
        first sample).
        """
        sampler = self._sampler()
        x = _check_states(x)
        dx = _check_states(dx, "dx", x.shape[1])
        if len(dx) != len(x):
            raise ValueError(f"x and dx must have the same number of samples, got {len(x)} and {len(dx)}")
        if isinstance(sampler, SWIMSampler) and sampler.mode == "data" and values is None:
            raise ValueError("sampler 'swim' needs the values of H (fit(..., values=H)); use 'aswim' without them")
        if values is not None:
            values = np.asarray(values, dtype=COMPUTE_DTYPE).reshape(-1)
            if values.shape[0] != len(x) or not np.isfinite(values).all():
                raise ValueError("values must be finite, one per sample")
        return self._fit_rows(x, x, dx, sampler, values, reference)

    @blas_limited
    def fit_flow_map(self, x0, x1, dt: float, *, reference=None, correct: bool = True):
        """Fit from pairs ``(x_k, x_{k+1})`` of a flow map with step ``dt`` (symplectic Euler).

        With ``correct`` the first-order correction ``H̃ = Ĥ + (Δt/2) ∂_qĤ · ∂_pĤ`` is applied to
        ``predict``.
        """
        sampler = self._sampler()
        x0 = _check_states(x0, "x0")
        x1 = _check_states(x1, "x1", x0.shape[1])
        if len(x0) != len(x1):
            raise ValueError(f"x0 and x1 must have the same number of samples, got {len(x0)} and {len(x1)}")
        if not (isinstance(dt, numbers.Real) and np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive number, got {dt!r}")
        n = x0.shape[1] // 2
        x_eval = np.concatenate([x1[:, :n], x0[:, n:]], axis=1)  # (q_{k+1}, p_k)
        rates = (x1 - x0) / dt
        reference = (x0[:1], np.zeros(1)) if reference is None else reference
        self._fit_rows(x_eval, x0, rates, sampler, None, reference)
        self.flow_step_ = float(dt) if correct else None
        if correct:  # the anchor fixed Ĥ at the reference point; it must fix H̃ there
            x_ref = np.atleast_2d(np.asarray(reference[0], dtype=float))
            self.intercept_ -= float(first_order_correction(self.gradient(x_ref), dt)[0])
        return self

    def _fit_rows(self, x_eval, x_states, rates, sampler, values, reference):
        n_samples, dim = x_eval.shape
        self.dof_ = dim // 2
        self.flow_step_ = None
        root = root_seed(self.random_state)
        pool_idx = draw_pool_indices(n_samples, self.pool_size, child_seed(root, 0))
        pool = x_eval[pool_idx]
        x_ref, h_ref = (x_states[:1], np.zeros(1)) if reference is None else (
            np.atleast_2d(np.asarray(reference[0], dtype=float)), np.atleast_1d(np.asarray(reference[1], float)))
        if x_ref.shape != (1, dim):
            raise ValueError(f"reference must be (x_ref with {dim} entries, H_ref)")
        # samples per block: each sample gives `dim` rows of width + 2 columns
        rows = self.chunk_rows or max(1, default_chunk_rows(self.width + 2, n_samples * dim) // dim)
        packed_np = np.concatenate([x_eval, rates], axis=1)
        packed = da.from_array(packed_np, chunks=(rows, -1))
        for pass_index, kind in enumerate(sampler.passes):
            # SWIM samplers draw pairs by the values they are given (uniformly without): the
            # "fitted" pass of A-SWIM gives them the first fit's values on the pool
            if kind == "fitted":
                pool_values = self._raw(pool)[:, None]
            elif kind == "data" and values is not None:
                pool_values = values[pool_idx][:, None]
            else:
                pool_values = None
            (network,) = compute(sample_network(pool, pool_values, widths=[self.width], activation=self.activation,
                                                sampler=sampler, seed=child_seed(root, 1, pass_index)))
            design = da.map_blocks(_design_block, packed, network, dim,
                                   chunks=(tuple(2 * self.dof_ * c for c in packed.chunks[0]), (self.width + 2,)),
                                   dtype=COMPUTE_DTYPE)
            leading = _leading_rows(packed_np, packed.chunks[0], network, dim, min(256, design.shape[0]))
            anchor = self._anchor_row(network, x_ref, h_ref, leading)
            (r,) = compute(tsqr_factor(da.concatenate([design, anchor], axis=0), overwrite_blocks=True,
                                       name="the Hamilton rows"))
            solution = LeastSquaresFactor(r, n_columns=self.width + 1, n_rows=design.shape[0] + 1).solve(self.rcond)
            self.network_ = network
            self.coef_ = solution.coef[:-1, 0]
            self.intercept_ = float(solution.coef[-1, 0])
            self.rank_ = solution.rank
            self.singular_values_ = solution.singular_values
            self.residual_norm_ = float(solution.residual_norms[0])
        return self

    def _anchor_row(self, network, x_ref, h_ref, leading):
        """The row ``κ [Φ(x_ref) | 1 | H_ref]`` fixing the constant, weighted like the ``leading`` rows."""
        phi = network(x_ref)
        kappa = 10.0 * float(np.sqrt(np.mean(leading[:, :-2] ** 2)))
        row = np.concatenate([phi[0], [1.0], h_ref]) * max(kappa, 1.0)
        return da.from_array(row[None, :], chunks=(1, -1))

    # -------------------------------------------------------------------- prediction
    def _raw(self, x):
        return self.network_(np.asarray(x, dtype=COMPUTE_DTYPE)) @ self.coef_ + self.intercept_

    def gradient(self, x) -> np.ndarray:
        """``∇Ĥ`` ``(N, 2n)`` = ``[∂_qĤ | ∂_pĤ]`` of the fitted network (before any correction)."""
        x = _check_states(x, dim=2 * self.dof_)
        return self.network_.layers[0].gradient(x, self.coef_)

    @blas_limited
    def predict(self, x) -> np.ndarray:
        """``H`` at states ``x`` (flow-map fits include the first-order correction)."""
        x = _check_states(x, dim=2 * self.dof_)
        h = self._raw(x)
        if getattr(self, "flow_step_", None):
            h = h + first_order_correction(self.gradient(x), self.flow_step_)
        return h

    def vector_field(self, x) -> np.ndarray:
        """``(∂_pĤ, -∂_qĤ)``."""
        g = self.gradient(x)
        n = self.dof_
        return np.concatenate([g[:, n:], -g[:, :n]], axis=1)


def symplectic_euler(gradient, x0, dt: float, steps: int, *, tol: float = 1e-13, max_iter: int = 100) -> np.ndarray:
    """Roll out ``steps`` steps of symplectic Euler for a (possibly non-separable) Hamiltonian.

    ``p_{k+1} = p_k - Δt ∂_q H(q_k, p_{k+1})`` is solved by fixed-point iteration, then
    ``q_{k+1} = q_k + Δt ∂_p H(q_k, p_{k+1})``; ``gradient(x) -> [∂_qH | ∂_pH]`` works on a batch
    of states, so many trajectories roll out at once.  Returns ``(steps + 1, N, 2n)``.
    """
    x = _check_states(np.atleast_2d(x0), "x0")
    n = x.shape[1] // 2
    out = np.empty((steps + 1,) + x.shape)
    out[0] = x
    for k in range(steps):
        q, p = x[:, :n], x[:, n:]
        p_new = p.copy()
        for _ in range(max_iter):
            g = gradient(np.concatenate([q, p_new], axis=1))
            update = p - dt * g[:, :n]
            if np.max(np.abs(update - p_new)) <= tol * max(1.0, np.max(np.abs(update))):
                p_new = update
                break
            p_new = update
        g = gradient(np.concatenate([q, p_new], axis=1))
        x = np.concatenate([q + dt * g[:, n:], p_new], axis=1)
        out[k + 1] = x
    return out


def energy_drift(hamiltonian, trajectory: np.ndarray) -> float:
    """``max_k |H(x_k) - H(x_0)|`` over a rollout ``(steps + 1, N, 2n)`` (largest over trajectories)."""
    h = np.stack([hamiltonian(state) for state in trajectory])
    return float(np.max(np.abs(h - h[0])))
