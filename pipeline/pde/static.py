"""Static PDEs ``L u = f`` in Ω, ``B u = g`` on ∂Ω by one least-squares solve (docs/design.md §1.3).

The solution is sought as ``u(x) = Φ(x) c + c0`` with a sampled basis ``Φ``.  Interior
collocation rows ``[L Φ | L1 | f]`` and weighted boundary rows ``κ [B Φ | B1 | g]`` are
assembled block by block (Dask arrays, NumPy or CuPy blocks) and reduced by the TSQR; the
coefficients come from the truncated SVD of the small factor.  A-SWIM solves once with a
U-SWIM basis, re-samples the basis by SWIM with the approximate solution as the function
values, and solves again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import dask
import dask.array as da
import numpy as np

from pipeline.backend import COMPUTE_DTYPE, namespace_for, namespace_of, to_host
from pipeline.cluster import blas_limited, compute
from pipeline.linalg import LeastSquaresFactor, LeastSquaresSolution, check_regularisation, default_chunk_rows, tsqr_factor
from pipeline.nn import ELMSampler, SWIMSampler, child_seed, get_activation, get_sampler, root_seed, sample_network
from pipeline.nn.network import SampledNetwork
from pipeline.pde.domains import METHODS
from pipeline.pde.operators import LinearOperator, derivative, identity

__all__ = ["RowGroup", "StaticSolution", "assemble_rows", "operator_columns", "operator_rows", "solve_static"]

#: Settings every problem may override in its ``defaults``.
GLOBAL_DEFAULTS = {
    "width": 1000,
    "activation": "tanh",
    "sampler": "uswim",
    "n_interior": 4000,
    "n_boundary": 800,
    "points": "uniform",
    "rcond": 1e-12,
    "ridge": None,
    "pool_size": 4000,
    "kappa": 1.0,
    "weight_scale": 1.0,  # ELM only: w ~ N(0, weight_scale² I)
    "bias_scale": 1.0,  # ELM only: b ~ U[-bias_scale, bias_scale]
    "curvature_scale": 0.0,  # ELM only: quadratic neurons σ(w·x + a||x||² + b), a ~ U[-scale, scale]
    "active_directions": 0,  # k > 0: re-sample once along the k leading directions of the first solve's gradients
    "active_scale": 1.0,  # std of the weight components along those directions
}


@dataclass(frozen=True)
class RowGroup:
    """Collocation rows of one kind: the PDE in the interior, or one boundary condition.

    ``points`` packs, per row, the point, then (``normals``) its outward normal, then
    (``paired``) the partner point of a periodic pair.  A row is
    ``weight · [ (L Φ)(x) | (L 1)(x) | (L s_k)(x) … | rhs(x) ]`` for the basis ``Φ``, the
    constant and the enrichment functions ``s_k``; a periodic pair gives the difference of the
    rows at its two points (one row per operator).
    """

    name: str
    points: object  # (n, d · blocks) NumPy or Dask array
    operators: tuple[LinearOperator, ...]
    rhs: Callable | None
    dim: int
    normals: bool = False
    paired: bool = False
    weight: float | None = None  # None: balanced by the solver; the interior group has 1.0
    enrichments: tuple = ()

    @property
    def n_rows(self) -> int:
        return int(self.points.shape[0]) * (len(self.operators) if self.paired else 1)


def _unpack(packed, group: RowGroup):
    d = group.dim
    x = packed[:, :d]
    data = {"normal": packed[:, d : 2 * d]} if group.normals else {}
    partner = packed[:, d : 2 * d] if group.paired else None
    return x, data, partner


def operator_columns(op, layer, enrichments, x, data, xp):
    """``[L Φ | L 1 | L s_k …]`` at the points ``x``, as a list of column blocks."""
    cols = [op.features(layer, x, data), op.constant_column(x, data)[:, None]]
    for e in enrichments:
        cols.append(xp.asarray(e.apply(op, to_host(x), {k: to_host(v) for k, v in data.items()}))[:, None])
    return cols


def operator_rows(op, network: SampledNetwork, x, data=None, enrichments=()):
    """``[L Φ | L 1 | L s_k …]`` at the points ``x`` as one ``(n, width + 1 + n_e)`` array."""
    xp = namespace_of(x)
    cols = operator_columns(op, network.layers[0], enrichments, xp.asarray(x, dtype=COMPUTE_DTYPE), data or {}, xp)
    return xp.concatenate(cols, axis=1)


def _group_rows(packed, network: SampledNetwork, group: RowGroup, with_rhs: bool = True):
    """The unweighted rows ``[L Φ | L1 | L s_k … (| rhs)]`` of one block of a group."""
    xp = namespace_of(packed)
    layer = network.layers[0]
    x, data, partner = _unpack(packed, group)
    n_cols = layer.width + 1 + len(group.enrichments) + int(with_rhs)
    blocks = []
    for op in group.operators:
        rows = xp.empty((x.shape[0], n_cols), dtype=COMPUTE_DTYPE, order="F")
        start = 0
        for col in operator_columns(op, layer, group.enrichments, x, data, xp):
            rows[:, start : start + col.shape[1]] = col
            start += col.shape[1]
        if group.paired:
            start = 0
            for col in operator_columns(op, layer, group.enrichments, partner, data, xp):
                rows[:, start : start + col.shape[1]] -= col
                start += col.shape[1]
        if with_rhs:
            rows[:, -1] = 0.0 if group.rhs is None else xp.asarray(group.rhs(x, data), dtype=COMPUTE_DTYPE)
        blocks.append(rows)
    return xp.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]


def _weighted_rows(packed, network, group):
    rows = _group_rows(packed, network, group)
    if group.weight not in (None, 1.0):
        rows *= group.weight
    return rows


def assemble_rows(groups, network: SampledNetwork) -> da.Array:
    """All weighted rows ``[Φ-part | constant | rhs]`` as one row-chunked Dask array."""
    net = dask.delayed(network, pure=True)
    n_cols = network.width + 2 + (len(groups[0].enrichments) if groups else 0)
    # every group in row blocks of the interior's size: a boundary group held as one block was
    # the largest allocation of a run (2e6 × 4000: 1e5 boundary rows, 3.2 GB in one task)
    first = groups[0].points if groups else None
    chunk = first.chunks[0][0] if isinstance(first, da.Array) else default_chunk_rows(
        n_cols, sum(len(g.points) for g in groups))
    parts = []
    for group in groups:
        per_point = len(group.operators) if group.paired else 1
        points = group.points if isinstance(group.points, da.Array) else da.from_array(
            group.points, chunks=(max(1, chunk // per_point), -1))
        spec = replace(group, points=None)  # the kernel gets its points as the block, not inside the spec
        parts.append(
            da.map_blocks(
                _weighted_rows, points, net, spec,
                chunks=(tuple(c * per_point for c in points.chunks[0]), (n_cols,)),
                dtype=COMPUTE_DTYPE,
                meta=namespace_of(points._meta).empty((0, 0), dtype=COMPUTE_DTYPE),
            )
        )
    return da.concatenate(parts, axis=0)


@dataclass
class StaticSolution:
    """``u = Φ c + c0`` with its problem, basis, coefficients and diagnostics."""

    problem: object
    network: SampledNetwork
    coef: np.ndarray  # (width + 1 + n_enrichments,): basis, then c0, then enrichments
    solution: LeastSquaresSolution
    settings: dict
    weights: dict
    timings: dict = field(default_factory=dict)
    #: with ``active_directions``: the directions of the re-sampling pass and their trace shares
    active_subspace: dict | None = None

    @property
    def width(self) -> int:
        return self.network.width

    @property
    def rank(self) -> int:
        return self.solution.rank

    def __call__(self, x):
        """``u`` at points ``(n, d)`` (NumPy, CuPy or Dask)."""
        return self.apply(None, x)

    def apply(self, operator: LinearOperator | None, x, data=None):
        """``(L u)(x)`` for a linear operator (``None``: ``u`` itself)."""
        if isinstance(x, da.Array):
            return x.map_blocks(lambda b: self.apply(operator, b, data), drop_axis=1, dtype=COMPUTE_DTYPE)
        xp = namespace_of(x)
        x = xp.asarray(x, dtype=COMPUTE_DTYPE)
        layer = self.network.layers[0]
        enrichments = getattr(self.problem, "enrichments", ())
        operator = identity(1.0) if operator is None else operator
        cols = operator_columns(operator, layer, enrichments, x, data or {}, xp)
        c = xp.asarray(self.coef)
        out = cols[0] @ c[: layer.width]
        for k, col in enumerate(cols[1:]):
            out += col[:, 0] * c[layer.width + k]
        return out

    def derivative(self, x, alpha):
        """``∂^α u`` at ``x``."""
        return self.apply(derivative(alpha), x)

    def error(self, x=None) -> float:
        """Relative L2 error against the problem's exact (or reference) solution at ``x``.

        ``x`` defaults to the problem's evaluation points (e.g. a 101 × 101 grid).
        """
        truth = self.problem.truth
        if truth is None:
            raise ValueError(f"problem {self.problem.name!r} has no exact or reference solution")
        x = self.problem.evaluation_points() if x is None else np.asarray(x, dtype=float)
        u, ref = to_host(self(x)), np.asarray(truth(x))
        return float(np.linalg.norm(u - ref) / np.linalg.norm(ref))

    def residuals(self, n_interior: int = 2000, n_boundary: int = 500, seed: int = 12345) -> dict:
        """Root-mean-square residuals ``L u - f`` of the PDE and ``B u - g`` of each condition
        on fresh validation points (absolute: a condition's data may vanish, e.g. ``∂u/∂n = 0``).
        """
        problem = self.problem
        groups = problem.row_groups(n_interior, n_boundary, method="uniform", seed=root_seed(seed))
        out = {}
        for group in groups:
            packed = np.asarray(group.points)
            rows = _group_rows(packed, self.network, group)
            r = rows[:, :-1] @ self.coef - rows[:, -1]  # noqa: the rows already hold every column
            out[group.name] = float(np.sqrt(np.mean(r**2)))
        return out

    def diagnostics(self) -> dict:
        s = self.solution.singular_values
        return {
            "width": self.width,
            "rank": self.rank,
            "condition_number": float(s[0] / s[-1]) if s[-1] > 0 else float("inf"),
            "relative_residual": float(self.solution.relative_residuals[0]),
            "weights": dict(self.weights),
            "timings": dict(self.timings),
        }


def resolve_settings(problem, overrides: dict) -> dict:
    """The solver settings of a problem: the overrides, its defaults, then the global ones (validated)."""
    unknown = sorted(set(overrides) - set(GLOBAL_DEFAULTS) - {"seed", "chunk_rows", "device", "prune"})
    if unknown:
        raise ValueError(f"unknown solver setting {unknown[0]!r}; allowed: {', '.join(sorted(GLOBAL_DEFAULTS))}, "
                         "seed, chunk_rows, device, prune")
    settings = {**GLOBAL_DEFAULTS, **getattr(problem, "defaults", {}),
                **{k: v for k, v in overrides.items() if v is not None}}
    settings.setdefault("seed", 0)
    settings.setdefault("device", "cpu")
    for key in ("width", "n_interior", "pool_size"):
        v = settings[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{key} must be a positive integer, got {v!r}")
    if settings["n_interior"] < 2:  # one point: no pair to sample a neuron from, a rank-one fit of anything
        raise ValueError(f"n_interior must be at least 2 collocation points, got {settings['n_interior']}")
    if isinstance(settings["n_boundary"], bool) or not isinstance(settings["n_boundary"], (int, np.integer)) \
            or settings["n_boundary"] < 0:
        raise ValueError(f"n_boundary must be a non-negative integer, got {settings['n_boundary']!r}")
    if settings["points"] not in METHODS:
        raise ValueError(f"points must be one of {METHODS}, got {settings['points']!r}")
    if not (np.isfinite(settings["kappa"]) and settings["kappa"] > 0):
        raise ValueError(f"kappa (the boundary weight multiplier) must be a positive number, got {settings['kappa']!r}")
    k = settings["active_directions"]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= problem.domain.dim:
        raise ValueError(f"active_directions must be an integer in [0, {problem.domain.dim}] (the dimension), got {k!r}")
    for key in ("curvature_scale", "active_scale"):
        if not (isinstance(settings[key], (int, float, np.floating)) and np.isfinite(settings[key])
                and settings[key] >= 0):
            raise ValueError(f"{key} must be a finite non-negative number, got {settings[key]!r}")
    check_regularisation(settings["rcond"], settings["ridge"])
    return settings


def prepare_basis(problem, overrides: dict):
    """``(settings, activation, sampler)`` of a solve, every setting checked (no work done)."""
    settings = resolve_settings(problem, overrides)
    activation = get_activation(settings["activation"])
    sampler = settings["sampler"]
    if sampler == "elm":
        sampler = ELMSampler(settings["weight_scale"], settings["bias_scale"], settings["curvature_scale"])
    elif settings["curvature_scale"]:
        raise ValueError("curvature_scale (quadratic neurons) applies to the 'elm' sampler only")
    sampler = get_sampler(sampler)
    if settings["active_directions"] and "fitted" in sampler.passes:
        raise ValueError("active_directions adds its own re-sampling pass; use it with 'elm' or 'uswim', not 'aswim'")
    check_basis(problem, activation, sampler)
    if problem.conditions and settings["n_boundary"] == 0:
        raise ValueError(f"problem {problem.name!r} has boundary conditions, so n_boundary must be positive")
    return settings, activation, sampler


def check_basis(problem, activation, sampler) -> None:
    """Raise before any work when the basis cannot represent the problem's operators."""
    dim = problem.domain.dim
    problem.operator.check_dim(dim)
    orders = [problem.operator.order] + [c.max_order(dim) for c in problem.conditions]
    activation.check_order(max(orders))
    if isinstance(sampler, SWIMSampler) and sampler.mode == "data":
        raise ValueError(
            "sampler 'swim' needs function values, which a PDE does not have before it is solved; "
            "use 'aswim' (SWIM on the values of a first U-SWIM solve), 'uswim' or 'elm'"
        )


def _balance_weights(groups, network, kappa: float) -> list[RowGroup]:
    """Penalty κ per boundary group: ``kappa · sqrt(n_int / n_g) · rms(L Φ) / rms(B Φ)``."""
    interior = groups[0]

    def rms(group):
        sample = np.asarray(group.points[:256] if not isinstance(group.points, da.Array)
                            else group.points[:256].compute())
        rows = _group_rows(sample, network, group, with_rhs=False)
        return float(np.sqrt(np.mean(rows**2))) if rows.size else 0.0

    reference = rms(interior)
    out = [interior]
    for g in groups[1:]:
        if g.weight is not None:  # set by the user
            out.append(g)
            continue
        scale = rms(g)
        w = kappa * np.sqrt(max(interior.n_rows, 1) / max(g.n_rows, 1)) * (reference / scale if scale > 0 else 1.0)
        out.append(replace(g, weight=float(w)))
    return out


def _to_device(groups, device):
    if device == "cpu":
        return groups
    xp = namespace_for(device)
    first = groups[0].points
    chunk = first.chunks[0][0] if isinstance(first, da.Array) else max(1, len(first))
    return [replace(g, points=(g.points if isinstance(g.points, da.Array) else da.from_array(g.points, chunks=(chunk, -1)))
                    .map_blocks(xp.asarray, dtype=COMPUTE_DTYPE, meta=xp.empty((0, 0)))) for g in groups]


@blas_limited
def solve_static(problem, **overrides) -> StaticSolution:
    """Solve a :class:`~pipeline.pde.problems.StaticProblem`.

    Settings (each optional, defaulting to the problem's own ``defaults``, then
    :data:`GLOBAL_DEFAULTS`): ``width``, ``activation``, ``sampler`` (``uswim``, ``aswim``,
    ``elm`` with ``weight_scale``/``bias_scale``/``curvature_scale``, or a sampler instance), ``n_interior``,
    ``n_boundary``, ``points`` (point rule),
    ``rcond``, ``ridge``, ``pool_size``, ``kappa`` (multiplier of the automatic boundary
    weights), ``seed``, ``chunk_rows``, ``device`` (``cpu`` / ``gpu``), ``prune``,
    ``active_directions`` / ``active_scale`` (a second ELM pass whose weights also vary along
    the ``k`` leading directions of the first solve's gradient covariance; see
    :func:`active_subspace`).
    """
    settings, activation, sampler = prepare_basis(problem, overrides)

    timings = {}
    root = root_seed(settings["seed"])
    start = time.perf_counter()
    groups = problem.row_groups(
        settings["n_interior"], settings["n_boundary"], method=settings["points"], seed=child_seed(root, 0),
        chunk_rows=settings.get("chunk_rows") or default_chunk_rows(settings["width"] + 2, settings["n_interior"]),
    )
    pool = problem.pool(settings["pool_size"], seed=child_seed(root, 1))
    timings["points"] = time.perf_counter() - start

    network, solution, weights, active = None, None, {}, None
    passes = tuple(sampler.passes) + (("active",) if settings["active_directions"] else ())
    for pass_index, values in enumerate(passes):
        start = time.perf_counter()
        if values == "active":
            fitted = StaticSolution(problem, network, solution.coef[:, 0], solution, settings, weights)
            active = active_subspace(fitted, pool, settings["active_directions"])
            pool_values = None
            pass_sampler = ELMSampler(settings["weight_scale"], settings["bias_scale"], settings["curvature_scale"],
                                      directions=active["directions"], direction_scale=settings["active_scale"])
        elif values == "fitted":
            fitted = StaticSolution(problem, network, solution.coef[:, 0], solution, settings, weights)
            pool_values, pass_sampler = fitted(pool)[:, None], sampler  # SWIM draws by the values given
        else:
            pool_values, pass_sampler = None, sampler
        (network,) = compute(sample_network(pool, pool_values, widths=[settings["width"]], activation=activation,
                                            sampler=pass_sampler, seed=child_seed(root, 2, pass_index)))
        if settings.get("prune"):
            network = _prune(network, groups, settings["prune"], child_seed(root, 3, pass_index))
        weighted = _balance_weights(groups, network, settings["kappa"])
        weights = {g.name: g.weight for g in weighted[1:]}
        timings[f"sample_{pass_index}"] = time.perf_counter() - start
        start = time.perf_counter()
        design = assemble_rows(_to_device(weighted, settings["device"]), network)
        (r,) = compute(tsqr_factor(design, overwrite_blocks=True, name="the collocation rows"))
        solution = LeastSquaresFactor(r, n_columns=design.shape[1] - 1, n_rows=design.shape[0]).solve(
            settings["rcond"], settings["ridge"])
        timings[f"solve_{pass_index}"] = time.perf_counter() - start
    return StaticSolution(problem, network, solution.coef[:, 0], solution, settings, weights, timings, active)


def active_subspace(solution: "StaticSolution", points, k: int) -> dict:
    """The ``k`` leading eigenvectors of ``C = mean ∇u ∇uᵀ`` of a solution over ``points``.

    The directions along which the solution varies most (Constantine's active subspace): a
    function of few linear combinations of many inputs shows them as a gap in the spectrum of
    ``C``.  Returns the directions ``(d, k)``, the share of ``trace C`` each carries and the
    share of the next one (the gap).
    """
    points = np.asarray(points, dtype=COMPUTE_DTYPE)
    layer = solution.network.layers[0]
    grad = to_host(layer.gradient(points, solution.coef[: layer.width]))
    cov = grad.T @ grad / len(points)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = np.maximum(values[order], 0.0), vectors[:, order]
    share = values / max(float(values.sum()), 1e-300)
    return {"directions": vectors[:, :k], "share": share[:k].tolist(),
            "next_share": float(share[k]) if k < len(share) else 0.0}


def _prune(network, groups, tol, seed):
    """Drop basis functions a column-pivoted QR of a sketch of the rows finds dependent."""
    from pipeline.linalg import pivoted_columns

    rng = np.random.default_rng(seed)
    rows = []
    for g in groups:
        n = g.points.shape[0]
        take = np.sort(rng.choice(n, size=min(n, network.width + 1), replace=False))
        pts = g.points[take]
        if isinstance(pts, da.Array):  # only the sketch's rows travel, not the point set
            (pts,) = compute(pts)
        rows.append(_group_rows(np.asarray(pts), network, g, with_rhs=False))
    sketch = np.concatenate(rows)
    width = network.width
    fixed = sketch.shape[1] - width  # the constant and the enrichments: always kept
    sketch = np.concatenate([sketch[:, width:], sketch[:, :width]], axis=1)
    kept = pivoted_columns(np.linalg.qr(sketch, mode="r"), tol, keep_first=fixed)
    return network.select_features(kept[fixed:] - fixed)
