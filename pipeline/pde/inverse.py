"""Inverse static problems: an unknown source field of ``L u = s`` fitted to observations of ``u``.

The source is a second sampled network, ``s = Ψ a`` (``source_width`` neurons and a
constant).  Everything is linear in ``a``, so the state is eliminated (variable projection):
one TSQR of the collocation rows ``[L Φ | Ψ | 0]`` / ``κ [B Φ | 0 | g]`` — the state's
operator rows with one right-hand side per source function and one for the boundary data —
gives the state's response ``C`` to every source function at once; at the observation points
``u(x_obs) = G a + u_g``.  The few coefficients ``a`` come from the small problem
``min ||G a - (d - u_g)||² + λ ||∇s||²`` (Tikhonov in the source's H¹ seminorm plus a tiny L²
term), λ by generalised cross-validation or, with a stated noise level, by the discrepancy
principle; standard errors of ``s`` from the covariance of the regularised estimator
(docs/design.md §1.4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import dask
import dask.array as da
import numpy as np

from pipeline.backend import COMPUTE_DTYPE
from pipeline.cluster import blas_limited, compute
from pipeline.linalg import LeastSquaresFactor, default_chunk_rows, tsqr_factor
from pipeline.nn import child_seed, root_seed, sample_network
from pipeline.pde.eigenmodes import ModeSource, dirichlet_modes, laplacian_scale, spectral_cutoff
from pipeline.pde.observations import Observations
from pipeline.pde.operators import multi_indices
from pipeline.pde.static import _balance_weights, _group_rows, _unpack, prepare_basis

__all__ = ["FunctionSource", "NetworkSource", "STATE_DEFAULTS", "SourceEstimate", "estimate_source",
           "source_inversion_case"]

#: the state basis of an inversion (the data, not the forward problem's accuracy, limit it)
STATE_DEFAULTS = {"width": 600, "n_interior": 2500, "n_boundary": 600, "sampler": "uswim", "rcond": 1e-13}


def _seminorm_rows(network, x, order):
    """``[∂^α Ψ | ∂^α 1]`` for every multi-index of ``order``, stacked: the seminorm's quadrature rows."""
    layer = network.layers[0]
    blocks = []
    for alpha in multi_indices(x.shape[1], order):
        g = layer.derivative_features(x, alpha) if order else layer(x)
        const = np.zeros((len(x), 1)) if order else np.ones((len(x), 1))
        blocks.append(np.concatenate([g, const], axis=1))
    return np.concatenate(blocks)


def _with_constant(network, x):
    return np.concatenate([network(np.asarray(x, dtype=COMPUTE_DTYPE)), np.ones((len(x), 1))], axis=1)


@dataclass(frozen=True)
class NetworkSource:
    """A source ``Ψ a`` on a sampled network and a constant (regularised in a seminorm)."""

    network: object

    def __call__(self, x) -> np.ndarray:
        return _with_constant(self.network, x)


@dataclass(frozen=True)
class FunctionSource:
    """A source ``Σ a_k g_k`` on given functions (a parametric family: no regularisation)."""

    functions: tuple

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=COMPUTE_DTYPE)
        return np.stack([np.asarray(g(x), dtype=COMPUTE_DTYPE).reshape(len(x)) for g in self.functions], axis=1)


def _rows(packed, state, source, group, n_source, interior):
    """``[L Φ | L 1 | (Ψ | 1 | 0) or (0 | g)]`` of one block of a group, weighted."""
    a = _group_rows(packed, state, group, with_rhs=False)
    x, data, _ = _unpack(packed, group)
    b = np.zeros((len(a), n_source + 1))
    if interior:
        b[:, :n_source] = source(x)
    else:
        b[:, -1] = group.rhs(x, data) if group.rhs is not None else 0.0
    out = np.concatenate([a, b], axis=1)
    if group.weight not in (None, 1.0):
        out *= group.weight
    return out


@dataclass
class SourceEstimate:
    """The estimated source ``s = Ψ a`` and state ``u``, with diagnostics and uncertainty."""

    problem: object
    state: object  # the state's network Φ
    source_basis: object  # NetworkSource (Ψ and a constant) or FunctionSource
    response: np.ndarray  # (width + 1, n_source + 1): state coefficients per source function, then g
    coef: np.ndarray  # a: (n_source,)
    covariance: np.ndarray  # of a
    regularisation: float
    curve: dict
    diagnostics: dict = field(default_factory=dict)

    def source(self, x) -> np.ndarray:
        return self.source_basis(x) @ self.coef

    def source_basis_layer(self):
        """``(layer, [c | c0])``: the source as one hidden layer's features and a constant (the
        source's own network, or for eigenfunction sources the state's)."""
        if isinstance(self.source_basis, ModeSource):
            b = self.source_basis
            return b.layer, b.coefficients @ (-b.scale * b.eigenvalues * self.coef)
        if isinstance(self.source_basis, NetworkSource):
            return self.source_basis.network.layers[0], self.coef
        raise ValueError("a source of given functions has no layer")

    def source_std(self, x) -> np.ndarray:
        """The standard error of the source at ``x`` (from the estimator's covariance)."""
        psi = self.source_basis(x)
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", psi, self.covariance, psi), 0.0))

    def __call__(self, x) -> np.ndarray:
        """The state ``u`` at ``x``."""
        coef = self.response[:, :-1] @ self.coef + self.response[:, -1]
        return _with_constant(self.state, x) @ coef


def _seminorm_gram(source, pool, order):
    """``M`` of ``|s|²_{H^order}`` on the pool, plus a tiny L² term fixing what the seminorm leaves free."""
    g = _seminorm_rows(source, pool, order) / np.sqrt(len(pool))
    psi = _with_constant(source, pool) / np.sqrt(len(pool))
    gram = g.T @ g
    return gram + 1e-6 * np.trace(gram) / np.trace(psi.T @ psi) * (psi.T @ psi)


def _tikhonov(g, y, gram, noise, n_lambda=60):
    """``a(λ)`` minimising ``||G a - y||² + λ aᵀ M a``; λ by GCV, or the discrepancy principle."""
    w, v = np.linalg.eigh(gram)
    w = np.maximum(w, w.max() * 1e-14)
    transform = v / np.sqrt(w)  # a = T b turns the seminorm into ||b||²
    u, s, vt = np.linalg.svd(g @ transform, full_matrices=False)
    uty = u.T @ y
    outside = float(y @ y - uty @ uty)
    lambdas = np.logspace(np.log10(s[0] ** 2) - 16, np.log10(s[0] ** 2) + 1, n_lambda)
    n = len(y)
    residuals, gcv = [], []
    for lam in lambdas:
        f = s ** 2 / (s ** 2 + lam)
        r2 = float(np.sum(((1 - f) * uty) ** 2) + outside)
        residuals.append(r2)
        gcv.append(n * r2 / (n - f.sum()) ** 2)
    residuals, gcv = np.array(residuals), np.array(gcv)
    path = [transform @ (vt.T @ (s / (s ** 2 + lam) * uty)) for lam in lambdas]  # a(λ) along the path
    if noise:  # the largest λ whose residual stays within the noise
        ok = residuals <= n * noise ** 2
        lam = float(lambdas[ok][-1]) if ok.any() else float(lambdas[np.argmin(gcv)])
        method = "discrepancy"
    else:
        lam, method = float(lambdas[np.argmin(gcv)]), "gcv"
    f = s ** 2 / (s ** 2 + lam)
    b = vt.T @ (f / s * uty)
    r2 = float(np.sum(((1 - f) * uty) ** 2) + outside)
    sigma2 = noise ** 2 if noise else r2 / max(n - f.sum(), 1.0)
    # Cov(a) = σ² T V diag(f²/s²) Vᵀ Tᵀ for the regularised estimator a = T V diag(f/s) Uᵀ y
    half = transform @ vt.T * (f / s)
    return transform @ b, sigma2 * half @ half.T, lam, {"lambda": lambdas.tolist(), "gcv": gcv.tolist(),
                                                        "residual": np.sqrt(residuals).tolist(), "method": method,
                                                        "coefficients": np.array(path)}


def _ordinary(g, y, noise):
    """Least squares without regularisation (a parametric source), with its covariance."""
    u, s, vt = np.linalg.svd(g, full_matrices=False)
    keep = s > 1e-12 * s[0]
    coef = vt[keep].T @ ((u[:, keep].T @ y) / s[keep])
    r2 = float(np.sum((g @ coef - y) ** 2))
    sigma2 = noise ** 2 if noise else r2 / max(len(y) - int(keep.sum()), 1)
    half = vt[keep].T / s[keep]
    return coef, sigma2 * half @ half.T, 0.0, {"method": "least squares", "lambda": [], "gcv": [], "residual": []}


@blas_limited
def estimate_source(problem, observations: Observations, *, source_width: int = 40, smoothness: int = 2,
                    select: str = "auto", source_functions=None, modes: int | None = None,
                    **settings) -> SourceEstimate:
    """The source ``f`` of a :class:`~pipeline.pde.problems.StaticProblem` ``L u = f`` from observations of ``u``.

    ``problem.source`` is ignored (unknown); its operator, domain and boundary conditions are
    used.  ``observations``: points inside the domain, values of ``u``, and optionally the
    noise standard deviation (then λ by the discrepancy principle, else by GCV).  Solver
    settings as :func:`~pipeline.pde.static.solve_static` (``width``, ``n_interior``, …; by
    default :data:`STATE_DEFAULTS`, not the forward problem's own).  ``smoothness``: the order
    of the penalised seminorm (2 measured best on ``benchmarks/systems.py``'s case, against
    0 and 1); ``select``: ``"discrepancy"`` (the largest λ whose misfit stays within the stated
    noise), ``"gcv"``, or ``"auto"`` (default): the discrepancy principle when the observations
    state their noise, else GCV.  Measured on the benchmark case over ten bases: GCV 0.10–0.32,
    the discrepancy principle 0.106–0.117 (GCV's minimum is flat and moves with the basis).

    ``source_functions``: a parametric family ``[g_1, …, g_K]`` instead of the network (the
    source's form known, its amplitudes not): the amplitudes by ordinary least squares, with
    standard errors ``σ² (GᵀG)⁻¹`` (σ the stated noise, else from the misfit).

    ``modes``: instead of the network, the source in the lowest ``modes`` Dirichlet eigenfunctions
    of the operator (``L = c Δ``, Dirichlet conditions; :mod:`pipeline.pde.eigenmodes`), as few
    whole eigenspaces as the discrepancy principle (``τ = 1.1``) or GCV needs — spectral cut-off.
    Its prior: the source vanishes on the boundary as the eigenfunctions do (measured in
    ``benchmarks/systems.py`` on a source that does and one that does not).
    """
    if select not in ("auto", "gcv", "discrepancy"):
        raise ValueError(f"select must be 'auto', 'gcv' or 'discrepancy', got {select!r}")
    if select == "discrepancy" and not observations.noise:
        raise ValueError("select='discrepancy' needs the observations' noise level")
    if isinstance(smoothness, bool) or not isinstance(smoothness, (int, np.integer)) or not 0 <= smoothness <= 3:
        raise ValueError(f"smoothness must be an integer in [0, 3], got {smoothness!r}")
    settings = {**STATE_DEFAULTS, **settings}
    if isinstance(source_width, bool) or not isinstance(source_width, (int, np.integer)) or source_width < 1:
        raise ValueError(f"source_width must be a positive integer, got {source_width!r}")
    observations.check(problem.domain, fields=("u",))
    if source_functions is not None:
        source_functions = tuple(source_functions)
        if not source_functions or not all(callable(g) for g in source_functions):
            raise ValueError("source_functions must be a non-empty sequence of functions g(x) -> (n,)")
    if modes is not None:
        if isinstance(modes, bool) or not isinstance(modes, (int, np.integer)) or modes < 1:
            raise ValueError(f"modes must be a positive integer (eigenfunctions of the source), got {modes!r}")
        if source_functions is not None:
            raise ValueError("give either source_functions or modes, not both")
        laplacian_scale(problem)  # the operator and conditions the eigenfunctions need, before any work
    n_source = (len(source_functions) if source_functions is not None else modes if modes is not None
                else source_width + 1)
    if len(observations) <= n_source:
        raise ValueError(f"{len(observations)} observations cannot determine a source of {n_source} "
                         "coefficients; lower source_width or add observations")
    s, activation, sampler = prepare_basis(problem, {k: v for k, v in settings.items()})
    if "fitted" in sampler.passes:
        raise ValueError("estimate_source samples its bases without function values: use 'uswim' or 'elm'")
    start = time.perf_counter()
    root = root_seed(s["seed"])
    n_cols = s["width"] + 1 + n_source + 1
    chunk = s.get("chunk_rows") or default_chunk_rows(n_cols, s["n_interior"])
    groups = problem.row_groups(s["n_interior"], s["n_boundary"], method=s["points"], seed=child_seed(root, 0),
                                chunk_rows=chunk)
    pool = problem.pool(s["pool_size"], seed=child_seed(root, 1))
    networks = [sample_network(pool, None, widths=[s["width"]], activation=activation, sampler=sampler,
                               seed=child_seed(root, 2))]
    if modes is None and source_functions is None:  # the source's own network: only when it is the source
        networks.append(sample_network(pool, None, widths=[source_width], activation=activation, sampler=sampler,
                                       seed=child_seed(root, 3)))
    state, *own = compute(*networks)
    network = own[0] if own else None
    if modes is not None:
        source = dirichlet_modes(problem, state, modes, seed=child_seed(root, 5))
    else:
        source = FunctionSource(source_functions) if source_functions is not None else NetworkSource(network)
    groups = _balance_weights(groups, state, s["kappa"])
    st, so = dask.delayed(state, pure=True), dask.delayed(source, pure=True)
    parts = []
    for i, g in enumerate(groups):
        points = g.points if isinstance(g.points, da.Array) else da.from_array(np.asarray(g.points),
                                                                               chunks=(chunk, -1))
        per = len(g.operators) if g.paired else 1
        parts.append(da.map_blocks(_rows, points, st, so, replace(g, points=None), n_source, i == 0,
                                   chunks=(tuple(c * per for c in points.chunks[0]), (n_cols,)),
                                   dtype=COMPUTE_DTYPE, meta=np.empty((0, 0))))
    rows = da.concatenate(parts)
    (r,) = compute(tsqr_factor(rows, overwrite_blocks=True, name="the collocation rows"))
    factor = LeastSquaresFactor(r, n_columns=s["width"] + 1, n_rows=rows.shape[0])
    response = factor.solve(s["rcond"], s["ridge"]).coef  # (width + 1, n_source + 1)
    timings = {"state": time.perf_counter() - start}
    start = time.perf_counter()
    at_obs = _with_constant(state, observations.points) @ response
    y = observations.values[:, 0] - at_obs[:, -1]
    noise = observations.noise if select in ("auto", "discrepancy") else None
    if modes is not None:
        coef, cov, used, curve = spectral_cutoff(at_obs[:, :-1], y, noise, source.clusters())
        lam = 0.0
    elif source_functions is None:
        coef, cov, lam, curve = _tikhonov(at_obs[:, :-1], y, _seminorm_gram(network, pool[:2000], smoothness), noise)
    else:
        coef, cov, lam, curve = _ordinary(at_obs[:, :-1], y, observations.noise)
    timings["regularised"] = time.perf_counter() - start
    diagnostics = {"width": s["width"], "source_width": n_source, "rank": int(factor.solve(s["rcond"]).rank),
                   "lambda": lam, "method": curve["method"], "observations": len(observations),
                   "modes": curve.get("modes"),
                   "misfit_rms": float(np.sqrt(np.mean((at_obs[:, :-1] @ coef - y) ** 2))), "timings": timings}
    return SourceEstimate(problem, state, source, response, coef, cov, lam, curve, diagnostics)


def _exp_bubble():
    """``u = x(1−x) y(1−y) e^{x+y}`` (zero on the boundary of the unit square) and ``f = Δu``, which is not."""
    from pipeline.pde.conditions import Dirichlet
    from pipeline.pde.domains import Box
    from pipeline.pde.operators import laplacian
    from pipeline.pde.problems import StaticProblem

    def exact(x):
        return x[:, 0] * (1 - x[:, 0]) * x[:, 1] * (1 - x[:, 1]) * np.exp(x[:, 0] + x[:, 1])

    def source(x):
        px, py, e = x[:, 0] * (1 - x[:, 0]), x[:, 1] * (1 - x[:, 1]), np.exp(x[:, 0] + x[:, 1])
        # (p e)'' = (p'' + 2p' + p) e along each axis, p'' = -2, p' = 1 - 2x
        return ((-2 + 2 * (1 - 2 * x[:, 0]) + px) * py + (-2 + 2 * (1 - 2 * x[:, 1]) + py) * px) * e

    return StaticProblem("poisson_exp_bubble", Box.cube(2), laplacian(2), source, (Dirichlet(0.0),), exact=exact,
                         description="Δu = f, u = x(1−x)y(1−y)e^{x+y}: a source that does not vanish on the boundary")


def _bubble_source():
    """``f = 16 x(1−x) y(1−y) eˣ``, zero on the boundary but no eigenfunction, and ``u`` with ``Δu = f``,
    ``u = 0`` on the boundary by its sine series (80² terms; the coefficients of the two factors by
    400-point Gauss–Legendre; they decay as m⁻³, the series' error is below 1e-7 of ``u``)."""
    from numpy.polynomial.legendre import leggauss

    from pipeline.pde.conditions import Dirichlet
    from pipeline.pde.domains import Box
    from pipeline.pde.operators import laplacian
    from pipeline.pde.problems import StaticProblem

    m = np.arange(1, 81)
    t, w = leggauss(400)
    t, w = (t + 1) / 2, w / 2
    sines = np.sin(np.pi * np.outer(m, t))
    gx, gy = 2 * sines @ (w * 4 * t * (1 - t) * np.exp(t)), 2 * sines @ (w * 4 * t * (1 - t))
    coef = -np.outer(gx, gy) / (np.pi**2 * (m[:, None] ** 2 + m[None, :] ** 2))

    def exact(x):
        return np.einsum("im,mn,in->i", np.sin(np.pi * np.outer(x[:, 0], m)), coef, np.sin(np.pi * np.outer(x[:, 1], m)))

    def source(x):
        return 16 * x[:, 0] * (1 - x[:, 0]) * x[:, 1] * (1 - x[:, 1]) * np.exp(x[:, 0])

    return StaticProblem("poisson_bubble_source", Box.cube(2), laplacian(2), source, (Dirichlet(0.0),), exact=exact,
                         description="Δu = f, f = 16x(1−x)y(1−y)eˣ: zero on the boundary, not an eigenfunction")


#: the true states of :func:`source_inversion_case`, and how their source meets the boundary
SHAPES = {"sine": "u = sin πx sin πy, f = −2π²u: the first Dirichlet eigenfunction",
          "bubble": "f = 16x(1−x)y(1−y)eˣ: zero on the boundary, many eigenfunctions",
          "exp": "u = x(1−x)y(1−y)e^(x+y): f is not zero on the boundary"}


def source_inversion_case(n_observations: int = 200, noise: float = 0.01, seed: int = 0, shape: str = "sine"):
    """The benchmark case: ``Δu = f`` on the unit square with ``u = 0`` on the boundary, the truth
    one of :data:`SHAPES` (``"sine"``: ``poisson_sin2d``), ``n_observations`` uniform random points,
    Gaussian noise of standard deviation ``noise · max|u|``.  Returns ``(problem, observations,
    true source)``."""
    from pipeline.pde.problems import get_problem

    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    problem = {"sine": lambda: get_problem("poisson_sin2d"), "exp": _exp_bubble, "bubble": _bubble_source}[shape]()
    g = (np.sqrt(5.0) - 1.0) / 2.0  # x(1−x)eˣ peaks where 1 − x − x² = 0
    peak = {"sine": 1.0, "exp": (g * (1.0 - g) * np.exp(g)) ** 2}.get(shape)  # max |u|, on a fine grid for "bubble"
    if peak is None:
        peak = float(np.max(np.abs(problem.exact(problem.domain.sample_interior(40_000, method="grid")))))
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (n_observations, 2))
    sigma = noise * peak
    values = problem.exact(x) + sigma * rng.standard_normal(n_observations)
    return problem, Observations(x, values, ("u",), sigma or None), problem.source
