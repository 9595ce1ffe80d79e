"""Continuous-time networks for linear time-invariant systems, constructed without training.

Given ``x' = A x + B u``, ``y = C x + D u``, the network is a set of parallel "horizontal"
layers of neurons that all see the input and feed the output: first-order neurons
``z' = λ z + b·u`` for real modes, second-order neurons (a real 2 × 2 block, i.e.
``η'' - 2a η' + (a² + b²) η = …``) for complex pairs — real arithmetic only — and, where the
modal transformation is ill-conditioned (non-normal or defective ``A``), small cascaded blocks
from a block-diagonalised real Schur form.  Large sparse systems keep only their ``k`` slowest
modes (``scipy.sparse.linalg.eigsh``/``eigs`` in shift-invert mode) and add the steady-state
response of the dropped ones to the feed-through.

Simulation is exact per step for piecewise-constant (``hold="zoh"``) or piecewise-linear
(``"foh"``) inputs: every block's step map comes from one small matrix exponential, and a
step costs O(number of states) — no dense n × n products.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pipeline.cluster import blas_limited

__all__ = ["LTINetwork", "LTIResult"]

EPS = np.finfo(float).eps


@dataclass
class LTIResult:
    t: np.ndarray
    y: np.ndarray  # (n_times, outputs)
    error_estimate: float  # a-priori bound on max |y - y_exact|, relative to max |y|
    seconds: float


@dataclass
class _Block:
    start: int
    size: int
    a: np.ndarray


def _as_matrix(m, name, shape=None):
    if sp.issparse(m):
        m = m.tocsr().astype(float)
        ok = np.isfinite(m.data).all()
    else:
        m = np.atleast_2d(np.asarray(m, dtype=float))
        ok = np.isfinite(m).all()
    if not ok:
        raise ValueError(f"{name} contains NaN or infinity")
    if shape is not None and m.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {m.shape}")
    return m


class LTINetwork:
    """A network of first-/second-order neurons (and small blocks) equivalent to ``(A, B, C, D)``.

    Args:
        A: ``(n, n)`` dense or sparse.
        B: ``(n, m)``; C: ``(p, n)``; D: ``(p, m)`` (default zero).
        modes: keep only the ``modes`` slowest modes (largest real parts) plus the steady-state
            correction; ``None`` keeps all (dense eigen- or Schur decomposition).
        cond_limit: largest acceptable condition number of the modal transformation; above it
            the Schur-based block fallback is used.
        block_bound: largest norm of a decoupling transformation between Schur blocks (larger
            clusters merge into one cascaded block).
    """

    @blas_limited
    def __init__(self, A, B, C, D=None, *, modes: int | None = None, cond_limit: float = 1e8,
                 block_bound: float = 1e3):
        A = _as_matrix(A, "A")
        if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
            raise ValueError(f"A must be a non-empty square matrix, got shape {A.shape}")
        n = A.shape[0]
        B = np.atleast_2d(np.asarray(B.toarray() if sp.issparse(B) else B, dtype=float))
        if B.shape[0] != n and B.ndim == 2 and B.shape[1] == n and B.shape[0] == 1:
            B = B.T
        B = _as_matrix(B, "B")
        if B.shape[0] != n:
            raise ValueError(f"B must have {n} rows (one per state), got shape {B.shape}")
        C = _as_matrix(C.toarray() if sp.issparse(C) else C, "C")
        if C.shape[1] != n:
            raise ValueError(f"C must have {n} columns (one per state), got shape {C.shape}")
        D = np.zeros((C.shape[0], B.shape[1])) if D is None else _as_matrix(D, "D", (C.shape[0], B.shape[1]))
        if modes is not None and not (isinstance(modes, (int, np.integer)) and 1 <= modes < n):
            raise ValueError(f"modes must be an integer in [1, {n - 1}] (or None for all), got {modes!r}")
        self.n, self.inputs, self.outputs = n, B.shape[1], C.shape[0]
        self.cond_limit, self.block_bound = float(cond_limit), float(block_bound)
        start = time.perf_counter()
        if modes is not None:
            self._truncated(A, B, C, D, int(modes))
        else:
            self._full(A.toarray() if sp.issparse(A) else A, B, C, D)
        self.construction_seconds = time.perf_counter() - start

    # ------------------------------------------------------------------ construction
    def _full(self, A, B, C, D):
        self.method, self.dropped = "modal", None
        if np.allclose(A, A.T, rtol=0, atol=1e-14 * np.abs(A).max()):
            lam, V = scipy.linalg.eigh(A)
            self._set_modal(V, V.T, B, C, D, [_Block(i, 1, lam[i:i + 1, None]) for i in range(len(lam))])
            self.transform_condition = 1.0
            return
        lam, V = scipy.linalg.eig(A)
        T, blocks = _real_modal(lam, V)
        cond = np.linalg.cond(T) if np.all(np.isfinite(T)) else np.inf
        if cond <= self.cond_limit:
            Tinv = np.linalg.solve(T, np.eye(self.n))
            self._set_modal(T, Tinv, B, C, D, _with_dynamics(blocks, Tinv @ A @ T))
            self.transform_condition = float(cond)
            return
        self.method = "schur-blocks"
        T, Tinv, _, blocks = _schur_blocks(A, self.block_bound)
        self._set_modal(T, Tinv, B, C, D, blocks)
        self.transform_condition = float(np.linalg.cond(T))

    def _set_modal(self, T, Tinv, B, C, D, blocks):
        # order the neurons: scalar ones, then pairs, then cascaded blocks, each group
        # contiguous, so a step is a few whole-array operations
        blocks = sorted(blocks, key=lambda b: (min(b.size, 3), b.start))
        perm = np.concatenate([np.arange(b.start, b.start + b.size) for b in blocks])
        start, placed = 0, []
        for b in blocks:
            placed.append(_Block(start, b.size, b.a))
            start += b.size
        self.blocks = placed
        self._scalar_rates = np.array([b.a[0, 0] for b in placed if b.size == 1])
        self.b_modal = (Tinv @ B)[perm]
        self.c_modal = (C @ T)[:, perm]
        self.d_effective = D.copy()
        self.x_to_modal = Tinv[perm]

    def _truncated(self, A, B, C, D, k):
        self.method = "truncated"
        A_sparse = A if sp.issparse(A) else sp.csr_matrix(A)
        symmetric = abs(A_sparse - A_sparse.T).max() <= 1e-14 * abs(A_sparse).max()
        # ARPACK starts from a random vector of its own: a seeded one makes networks reproducible
        v0 = np.random.default_rng(0).standard_normal(A_sparse.shape[0])
        if symmetric:
            lam, V = spla.eigsh(A_sparse.tocsc(), k=k, sigma=0, which="LM", v0=v0)
        else:
            lam, V = spla.eigs(A_sparse.tocsc(), k=k, sigma=0, which="LM", v0=v0)
            lam_left, W = spla.eigs(A_sparse.T.tocsc(), k=k, sigma=0, which="LM", v0=v0)
            order = [int(np.argmin(np.abs(lam_left - l))) for l in lam]
            W = W[:, order].conj()
            W = W / np.sum(W * V, axis=0)  # bi-orthonormal: W^T V = I
        T, blocks = _real_modal(lam, V)
        if not symmetric:
            Wr, _ = _real_modal(lam, W.conj())
            Tinv = np.linalg.solve(Wr.T @ T, Wr.T)
        else:
            Tinv = T.T
        M = Tinv @ (A_sparse @ T)
        self._set_modal(T, Tinv, B, C, D, _with_dynamics(blocks, M))
        # steady state of the dropped modes: -C A⁻¹ B minus what the kept modes already give
        full_static = -C @ spla.splu(A_sparse.tocsc()).solve(B)
        kept_static = -(C @ T) @ np.linalg.solve(M, Tinv @ B)
        self.d_effective = D + full_static - kept_static
        self.dropped = {"slowest_dropped_rate": float(np.max(np.abs(lam.real))), "kept": k}
        self.transform_condition = float(np.linalg.cond(T))

    # ------------------------------------------------------------------ description
    @property
    def layers(self) -> dict:
        """Neuron counts: first-order, second-order, and the sizes of cascaded blocks."""
        sizes = [b.size for b in self.blocks]
        return {"first_order": sizes.count(1), "second_order": sizes.count(2),
                "cascaded_blocks": sorted(s for s in sizes if s > 2)}

    # ------------------------------------------------------------------ simulation
    def _step_maps(self, h: float, hold: str):
        """Step maps per group of neurons: ``(slice, Φ, Γ0, Γ1)`` (Γ1 only for FOH).

        These are the blocks of ``exp([[A_b h, B_b h, 0], [0, 0, I], [0, 0, 0]])``: ``e^{A_b h}``,
        ``h φ1(A_b h) B_b`` (input at the step start) and ``h φ2(A_b h) B_b`` (input increment).
        First-order neurons (one group, Φ a vector) use the closed forms of φ1, φ2; the pairs
        (one group, Φ ``(pairs, 2, 2)``) and each cascaded block (Φ ``(k, k)``) come from batched
        matrix exponentials, one call per block size.
        """
        m = self.inputs
        foh = hold == "foh"
        groups = []
        n1 = self._scalar_rates.size
        if n1:
            phi0, phi1, phi2 = _phi_functions(self._scalar_rates * h)
            b = self.b_modal[:n1]
            groups.append((slice(0, n1), phi0, h * phi1[:, None] * b, h * phi2[:, None] * b if foh else None))
        larger = [b for b in self.blocks if b.size > 1]
        maps = {}
        for k in sorted({b.size for b in larger}):
            members = [b for b in larger if b.size == k]
            aug = np.zeros((len(members), k + 2 * m, k + 2 * m))
            for row, b in enumerate(members):
                aug[row, :k, :k] = b.a * h
                aug[row, :k, k:k + m] = self.b_modal[b.start:b.start + k] * h
            aug[:, k:k + m, k + m:] = np.eye(m)
            e = scipy.linalg.expm(aug)
            maps[k] = (e[:, :k, :k], e[:, :k, k:k + m], e[:, :k, k + m:])
        if 2 in maps:  # the pairs are contiguous after the first-order neurons
            phi, g0, g1 = maps[2]
            groups.append((slice(n1, n1 + 2 * len(phi)), phi, g0.reshape(-1, m), g1.reshape(-1, m) if foh else None))
        for k, members in ((k, [b for b in larger if b.size == k]) for k in maps if k > 2):
            phi, g0, g1 = maps[k]
            for row, b in enumerate(members):
                groups.append((slice(b.start, b.start + k), phi[row], g0[row], g1[row] if foh else None))
        return groups

    @blas_limited
    def simulate(self, t, u, *, hold: str = "foh", x0=None) -> LTIResult:
        """Outputs at the times ``t`` (uniform) for inputs ``u`` ``(len(t), m)`` sampled there."""
        if hold not in ("zoh", "foh"):
            raise ValueError(f"hold must be 'zoh' (piecewise constant) or 'foh' (piecewise linear), got {hold!r}")
        t = np.asarray(t, dtype=float)
        if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0):
            raise ValueError("t must be an increasing 1-D array of at least two times")
        h = float(t[1] - t[0])
        if not np.allclose(np.diff(t), h, rtol=1e-9, atol=0):
            raise ValueError("t must be uniformly spaced (one exact step map per block)")
        u = np.asarray(u, dtype=float)
        if u.ndim == 1:
            u = u[:, None]
        if u.shape != (len(t), self.inputs) or not np.isfinite(u).all():
            raise ValueError(f"u must be finite with shape ({len(t)}, {self.inputs}), got {u.shape}")
        start = time.perf_counter()
        z = np.zeros(self.x_to_modal.shape[0]) if x0 is None else self.x_to_modal @ np.asarray(x0, dtype=float)
        # neurons are grouped (scalars, pairs, cascaded blocks), each group a contiguous slice;
        # the input terms of every step are computed at once (one GEMM per group)
        du = np.vstack([np.diff(u, axis=0), np.zeros((1, self.inputs))])
        states = np.empty((len(t), z.size))
        states[0] = z
        for sl, phi, g0, g1 in self._step_maps(h, hold):
            forcing = u @ g0.T
            if g1 is not None:
                forcing += du @ g1.T
            zg = z[sl].copy()
            if phi.ndim == 1:  # first-order neurons
                for k in range(len(t) - 1):
                    zg *= phi
                    zg += forcing[k]
                    states[k + 1, sl] = zg
            elif phi.ndim == 3:  # second-order neurons, a 2 × 2 map each
                zg, forcing = zg.reshape(-1, 2), forcing.reshape(len(t), -1, 2)
                for k in range(len(t) - 1):
                    zg = np.einsum("bij,bj->bi", phi, zg) + forcing[k]
                    states[k + 1, sl] = zg.ravel()
            else:  # one cascaded block
                for k in range(len(t) - 1):
                    zg = phi @ zg + forcing[k]
                    states[k + 1, sl] = zg
        y = states @ self.c_modal.T + u @ self.d_effective.T
        seconds = time.perf_counter() - start
        return LTIResult(t, y, self._error_estimate(y, u, h), seconds)

    def _error_estimate(self, y, u, h) -> float:
        """Rounding through the transformation, plus the dynamics of dropped modes."""
        scale = max(float(np.max(np.abs(y))), 1e-300)
        estimate = 10 * EPS * self.transform_condition * max(1.0, float(np.max(np.abs(self.c_modal))) *
                                                               float(np.max(np.abs(self.b_modal))) *
                                                               float(np.max(np.abs(u)) + 1e-300) / scale)
        if self.dropped is not None:
            rate = self.dropped["slowest_dropped_rate"]
            slope = float(np.max(np.abs(np.diff(u, axis=0)))) / h if len(u) > 1 else 0.0
            # a dropped mode of rate r lags the static response by ~ u'/r; bounded by the static gain
            gain = float(np.max(np.abs(self.d_effective))) + 1e-300
            estimate += gain * slope / rate / scale
        return float(estimate)


def _phi_functions(z):
    """``e^z``, ``φ1(z) = (e^z - 1)/z`` and ``φ2(z) = (e^z - 1 - z)/z²`` to full relative accuracy.

    Near zero the quotients cancel catastrophically, so there they are summed from their Taylor
    series ``φ_j(z) = Σ_n z^n / (n + j)!`` (25 terms: the truncation is below 1e-30 for |z| < 1/2).
    """
    z = np.asarray(z, dtype=float)
    small = np.abs(z) < 0.5
    zs = np.where(small, z, 0.0)
    series1, series2 = np.zeros_like(z), np.zeros_like(z)
    for n in range(24, -1, -1):  # Horner, innermost term first
        series1 = 1.0 + series1 * zs / (n + 2)
        series2 = 1.0 + series2 * zs / (n + 3)
    series2 = series2 / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        em1 = np.expm1(z)
        direct1 = em1 / z
        direct2 = (em1 - z) / (z * z)
    return np.exp(z), np.where(small, series1, direct1), np.where(small, series2, direct2)


def _with_dynamics(blocks, M):
    """The blocks with their dynamics: the diagonal blocks of the transformed ``M = T⁻¹ A T``."""
    return [_Block(b.start, b.size, M[b.start:b.start + b.size, b.start:b.start + b.size]) for b in blocks]


def _real_modal(lam, V):
    """Real basis of (possibly complex) eigenvectors: [Re v, Im v] per conjugate pair."""
    n = len(lam)
    cols, blocks, used = [], [], np.zeros(n, dtype=bool)
    order = np.argsort(-lam.real, kind="stable")
    for i in order:
        if used[i]:
            continue
        if abs(lam[i].imag) <= 1e-12 * max(1.0, abs(lam[i])):
            blocks.append(_Block(len(cols), 1, np.array([[lam[i].real]])))
            cols.append(np.real(V[:, i]))
            used[i] = True
        else:
            j = next((j for j in order if not used[j] and j != i and abs(lam[j] - np.conj(lam[i])) <= 1e-8 * abs(lam[i])),
                     None)
            v = V[:, i] if lam[i].imag > 0 else V[:, j] if j is not None else V[:, i]
            blocks.append(_Block(len(cols), 2, None))
            cols.extend([np.real(v), np.imag(v)])
            used[i] = True
            if j is not None:
                used[j] = True
    return np.column_stack(cols), blocks


def _schur_blocks(A, bound):
    """Block-diagonalise the real Schur form, merging clusters whose decoupling is ill-conditioned.

    Returns ``T``, ``T⁻¹``, the block-diagonal ``T⁻¹ A T`` and its blocks.
    """
    S, Q = scipy.linalg.schur(A, output="real")
    n = S.shape[0]
    # diagonal blocks of the quasi-triangular form (1 × 1 or 2 × 2)
    edges, i = [0], 0
    while i < n:
        i += 2 if i + 1 < n and abs(S[i + 1, i]) > 0 else 1
        edges.append(i)
    T, Tinv = Q.copy(), Q.T.copy()
    blocks, start = [], 0
    pos = 1
    while start < n:
        split = None
        while pos < len(edges) - 1:
            j = edges[pos]
            S11, S22, S12 = S[start:j, start:j], S[j:, j:], S[start:j, j:]
            try:
                X = scipy.linalg.solve_sylvester(S11, -S22, -S12)
            except (np.linalg.LinAlgError, ValueError):
                X = None
            if X is not None and np.all(np.isfinite(X)) and np.linalg.norm(X, 2) <= bound:
                split = (j, X)
                break
            pos += 1
        if split is None:
            blocks.append(_Block(start, n - start, S[start:, start:].copy()))
            break
        j, X = split
        # x = [[I, X], [0, I]] x̃ decouples the leading block: S12 becomes 0
        S[start:j, j:] = 0.0
        T[:, j:] += T[:, start:j] @ X
        Tinv[start:j, :] -= X @ Tinv[j:, :]
        blocks.append(_Block(start, j - start, S[start:j, start:j].copy()))
        start, pos = j, pos + 1
    return T, Tinv, S, blocks
