"""Static PDEs on large domains: local sampled bases on a grid of subdomains (docs/design.md §1.5).

The domain's bounding box is cut into boxes (:class:`~pipeline.pde.partition.Partition`); box
``i`` carries its own sampled basis ``u_i = Φ_i c_i + c0_i``, sampled in the box's own
coordinates so its scales are local.  Collocation rows (the PDE, the boundary conditions) touch
only the basis of the box they lie in; on every face between two boxes, continuity rows
``∂_n^m u_i = ∂_n^m u_j`` (``m = 0 … order - 1``) glue the bases.  The least squares is
block-sparse, and it is solved without ever forming it:

1. every box, in its own Dask task, factors its rows stacked on its face traces
   ``[A_i; T_i] = Q U S Vᵀ`` and returns only small factors — ``P_i = V S⁻¹`` (truncated at
   ``rcond``), the orthonormal traces ``F_i = T_i P_i`` per face and ``h_i = (A_i P_i)ᵀ b_i``;
2. the normal equations in those local coordinates are ``(I - couplings) z = h``
   (:class:`~pipeline.linalg.interface.InterfaceSystem`), solved by a sparse direct
   factorisation or by conjugate gradients; ``c_i = P_i z_i``.

Memory and work grow linearly with the number of boxes; a box's rows never leave its task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import dask
import dask.array as da
import numpy as np

from pipeline.backend import COMPUTE_DTYPE, namespace_of, to_host
from pipeline.cluster import blas_limited, compute, persist, scatter
from pipeline.linalg.interface import Coupling, InterfaceSystem
from pipeline.nn import child_seed, root_seed
from pipeline.nn.network import DenseLayer, SampledNetwork
from pipeline.nn.sampling import sample_layer_now
from pipeline.pde.conditions import Periodic
from pipeline.pde.operators import derivative, identity
from pipeline.pde.partition import Partition
from pipeline.pde.static import RowGroup, _group_rows, operator_columns, prepare_basis

__all__ = ["PARTITION_DEFAULTS", "PartitionedSolution", "prepare_partition", "solve_partitioned"]

#: settings of a partitioned solve beyond the static solver's (docs/design.md §1.5)
PARTITION_DEFAULTS = {
    "n_interface": None,  # points per face; None: the per-axis density of the interior points
    "continuity": None,  # derivatives glued across faces; None: the operator's order - 1
    "interface_solver": "auto",  # 'direct' (sparse LU), 'cg' or 'auto' (direct up to 3 000 unknowns)
    "interface_rtol": 1e-12,  # relative residual at which conjugate gradients stop
    # the coarse space: each box's directions whose traces keep this share of their norm
    # (poisson_waves, 8 × 8 boxes: 0.99 → 191 iterations, 0.9 → 64, 0.5 → 30 with a 30 % larger coarse system)
    "coarse_threshold": 0.9,
    # multiplier of the balanced continuity weights: smaller converges in fewer iterations with
    # larger jumps (poisson_waves, 8 × 8 boxes: 1 → 2.1e-6 in 64 iterations, 0.1 → 4.0e-6 in 55)
    "interface_weight": 1.0,
}


#: the most boxes a partition may have, and the fewest interior points per box
MAX_BOXES, MIN_POINTS_PER_BOX = 65_536, 16


@dataclass(frozen=True)
class _Job:
    """Everything one box's task needs: its points, its faces, the shared settings."""

    index: int
    lo: np.ndarray
    hi: np.ndarray
    groups: tuple  # (RowGroup without points, packed points) of the PDE and every condition
    faces: tuple  # (face number, side 0 lower / 1 upper, axis, this side's points) of every face of the box
    traces: tuple  # per axis: the continuity operators ∂^m along it, m = 0 … order - 1
    trace_weights: tuple  # per axis: one weight per order
    width: int
    pool_size: int
    activation: object
    sampler: object
    seed: np.random.SeedSequence
    rcond: float
    coarse_threshold: float
    operators: tuple = ()  # further operators L: the box returns (QU)_pdeᵀ [LΦ | L1] P for each


def local_layer(job: _Job) -> DenseLayer:
    """The box's basis, sampled on its own points in coordinates centred on the box.

    Centred, not rescaled: random-feature scales (``weight_scale``) stay absolute — the
    solution's frequencies — whatever the box size, and U-SWIM takes its scales from the
    box's own point pairs.
    """
    points = np.concatenate([p[:, : len(job.lo)] for _, p in job.groups if len(p)])
    rng = np.random.default_rng(child_seed(job.seed, 0))
    if len(points) > job.pool_size:
        points = points[np.sort(rng.choice(len(points), job.pool_size, replace=False))]
    centre = (job.lo + job.hi) / 2
    local = sample_layer_now(points - centre, None, width=job.width, activation=job.activation,
                             sampler=job.sampler, seed=child_seed(job.seed, 1))
    return DenseLayer(local.weights, local.biases - local.weights @ centre, local.activation)


def trace_rows(network, points, operators, weights):
    """``w_m [∂^m Φ | ∂^m 1]`` at face points, stacked over the orders ``m``."""
    blocks = [w * _group_rows(points, network, RowGroup("trace", None, (op,), None, points.shape[1]), with_rhs=False)
              for op, w in zip(operators, weights, strict=True)]
    return np.concatenate(blocks, axis=0)


def factor_box(job: _Job) -> tuple[np.ndarray, dict]:
    """One box's small factors: ``P = V S⁻¹`` and the interface part (the orthonormal traces per
    face, ``h``, the coarse vectors, the basis)."""
    layer = local_layer(job)
    network = SampledNetwork((layer,))
    rows = np.concatenate([_group_rows(packed, network, group) * group.weight
                           for group, packed in job.groups if len(packed)], axis=0)
    b, n_local = rows[:, -1].copy(), len(rows)
    traces = [trace_rows(network, points, job.traces[axis], job.trace_weights[axis]) for _, _, axis, points in job.faces]
    q, r = np.linalg.qr(np.concatenate([rows[:, :-1]] + traces, axis=0))
    u, s, vt = np.linalg.svd(r)
    rank = max(1, int(np.sum(s > job.rcond * s[0])))
    qu = q @ u[:, :rank]  # = [A; T] V S⁻¹, computed without dividing by small singular values
    starts = np.cumsum([n_local] + [len(t) for t in traces])
    basis_map = vt[:rank].T / s[:rank]  # P: local coordinates z -> coefficients c
    group, interior = job.groups[0]  # the PDE group comes first among the rows, with weight 1
    projected = [qu[: len(interior)].T @ (_group_rows(interior, network, replace(group, operators=(op,)),
                                                      with_rhs=False) @ basis_map) for op in job.operators]
    # copies, not views of qu: a view would keep all of qu (the box's rows) alive on the worker
    return basis_map, {
        "index": job.index, "layer": layer, "rank": rank, "condition": float(s[0] / s[rank - 1]),
        "h": qu[:n_local].T @ b, "b2": float(b @ b), "rows": n_local,
        "F": {(number, side): qu[starts[k]:starts[k + 1]].copy() for k, (number, side, _, _) in enumerate(job.faces)},
        "coarse": _coarse_vectors(qu[n_local:], job.coarse_threshold), "projected": projected,
    }


def _without_points(job: _Job) -> tuple[_Job, list]:
    """``(job without its point arrays, the arrays)``: the arrays travel apart (:func:`cluster.scatter`)."""
    arrays = [points for _, points in job.groups] + [points for *_, points in job.faces]
    return replace(job, groups=tuple((g, None) for g, _ in job.groups),
                   faces=tuple((*f[:3], None) for f in job.faces)), arrays


def _factor_box_apart(job: _Job, arrays: list):
    """:func:`factor_box` of a job whose point arrays came apart from it."""
    return factor_box(replace(job, groups=tuple((g, a) for (g, _), a in zip(job.groups, arrays)),
                              faces=tuple((*f[:3], a) for f, a in zip(job.faces, arrays[len(job.groups):]))))


def _coarse_vectors(traces: np.ndarray, threshold: float) -> np.ndarray:
    """The box's directions whose face traces carry at least ``threshold`` of their norm: the
    right singular vectors of its stacked orthonormal traces above ``threshold``.

    These are the modes the interface system couples strongly — nearly continuous across the
    faces, nearly free in the rows — and they hold its small eigenvalues; a coarse space of
    them (docs/design.md §3.6) takes conjugate gradients on 8 × 8 boxes from 7 700 iterations to
    64 (0.9), where quadratic polynomials per box only reached 2 800.
    """
    if len(traces) == 0:
        return np.zeros((traces.shape[1], 0))
    _, s, vt = np.linalg.svd(traces, full_matrices=False)
    return vt[: int(np.sum(s > threshold))].T.copy()  # a copy: the view would keep all of vt


@dataclass
class PartitionedSolution:
    """``u = Φ_i c_i + c0_i`` in box ``i`` of the partition."""

    problem: object
    partition: Partition
    boxes: np.ndarray  # the kept boxes (subdomain indices)
    layers: list[DenseLayer]
    coefs: list[np.ndarray]  # (width_i + 1,) per kept box: basis, then the constant
    settings: dict
    weights: dict
    info: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def width(self) -> int:
        """Neurons in all boxes together."""
        return int(sum(layer.width for layer in self.layers))

    @property
    def rank(self) -> int:
        return int(self.info.get("rank", 0))

    def __call__(self, x):
        return self.apply(None, x)

    def apply(self, operator, x, data=None):
        """``(L u)(x)`` for a linear operator (``None``: ``u``); a point outside every kept box gives NaN."""
        if isinstance(x, da.Array):
            return x.map_blocks(lambda b: self.apply(operator, b, data), drop_axis=1, dtype=COMPUTE_DTYPE)
        x = np.asarray(to_host(x), dtype=COMPUTE_DTYPE)
        operator = identity(1.0) if operator is None else operator
        data = data or {}
        slot = np.full(self.partition.size, -1)
        slot[self.boxes] = np.arange(len(self.boxes))
        owner = self.partition.owner(x, slot >= 0)
        owner = np.where(owner >= 0, slot[owner], -1)
        out = np.full(len(x), np.nan)
        for k in np.unique(owner[owner >= 0]):
            mask = owner == k
            cols = operator_columns(operator, self.layers[k], (), x[mask], {key: v[mask] for key, v in data.items()},
                                    namespace_of(x))
            out[mask] = cols[0] @ self.coefs[k][:-1] + cols[1][:, 0] * self.coefs[k][-1]
        return out

    def derivative(self, x, alpha):
        return self.apply(derivative(alpha), x)

    def error(self, x=None) -> float:
        """Relative L2 error against the problem's exact (or reference) solution at ``x``."""
        truth = self.problem.truth
        if truth is None:
            raise ValueError(f"problem {self.problem.name!r} has no exact or reference solution")
        x = self.problem.evaluation_points() if x is None else np.asarray(x, dtype=float)
        u, ref = self(x), np.asarray(truth(x))
        return float(np.linalg.norm(u - ref) / np.linalg.norm(ref))

    def diagnostics(self) -> dict:
        return {"width": self.width, "boxes": len(self.boxes), **self.info, "weights": dict(self.weights),
                "timings": dict(self.timings)}


def _split_settings(overrides):
    extra = {k: overrides.pop(k) for k in list(overrides) if k in PARTITION_DEFAULTS}
    settings = {**PARTITION_DEFAULTS, **{k: v for k, v in extra.items() if v is not None}}
    n_face, order = settings["n_interface"], settings["continuity"]
    if n_face is not None and (isinstance(n_face, bool) or not isinstance(n_face, (int, np.integer)) or n_face < 1):
        raise ValueError(f"n_interface must be a positive integer (points per face), got {n_face!r}")
    if order is not None and (isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0):
        raise ValueError(f"continuity must be a non-negative integer (derivative order glued), got {order!r}")
    if settings["interface_solver"] not in ("auto", "cg", "direct"):
        raise ValueError(f"interface_solver must be 'auto', 'cg' or 'direct', got {settings['interface_solver']!r}")
    if not (isinstance(settings["interface_weight"], (int, float)) and not isinstance(settings["interface_weight"], bool)
            and 0 < settings["interface_weight"] < np.inf):
        raise ValueError(f"interface_weight must be a positive number, got {settings['interface_weight']!r}")
    if not (isinstance(settings["coarse_threshold"], float) and 0 < settings["coarse_threshold"] < 1):
        raise ValueError(f"coarse_threshold must be a number in (0, 1), got {settings['coarse_threshold']!r}")
    if not (isinstance(settings["interface_rtol"], float) and 0 < settings["interface_rtol"] < 1):
        raise ValueError(f"interface_rtol must be a number in (0, 1), got {settings['interface_rtol']!r}")
    return settings


def _check_supported(problem, settings, sampler):
    reasons = [
        (bool(getattr(problem, "enrichments", ())), "enrichment functions"),
        ("fitted" in getattr(sampler, "passes", ()), "the 'aswim' sampler (a second, fitted pass)"),
        (settings["ridge"] is not None, "ridge"),
        (bool(settings["curvature_scale"]), "curvature_scale"),
        (bool(settings["active_directions"]), "active_directions"),
        (bool(settings.get("prune")), "prune"),
        (settings.get("device", "cpu") != "cpu", "device 'gpu'"),
    ]
    for bad, what in reasons:
        if bad:
            raise ValueError(f"a partitioned basis does not support {what}; solve problem {problem.name!r} "
                             "without 'partition' for it")


def _rms(network, packed, group):
    rows = _group_rows(packed[:256], network, group, with_rhs=False)
    return float(np.sqrt(np.mean(rows**2))) if rows.size else 0.0


def _balance(jobs, groups, traces, kappa, interface_weight):
    """Row weights as the static solver's, ``kappa · sqrt(n_pde / n_rows) · rms(LΦ) / rms(BΦ)``,
    with counts per box and the scales of the box holding most of each group's points."""
    def biggest(k):
        return max(jobs, key=lambda j: len(j.groups[k][1]))

    def per_box(counts):
        held = [c for c in counts if c]
        return max(1.0, float(np.mean(held))) if held else 1.0

    first = biggest(0)
    network = SampledNetwork((local_layer(first),))
    interior = first.groups[0][1]
    reference = _rms(network, interior, groups[0])
    n_pde = per_box([len(j.groups[0][1]) for j in jobs])

    def weight(scale, n_rows):
        return kappa * np.sqrt(n_pde / n_rows) * (reference / scale if scale > 0 else 1.0)

    weights = [1.0]
    for k, group in enumerate(groups[1:], start=1):
        job = biggest(k)
        scale = _rms(SampledNetwork((local_layer(job),)), job.groups[k][1], group) if len(job.groups[k][1]) else 0.0
        weights.append(group.weight if group.weight is not None else weight(
            scale, per_box([len(j.groups[k][1]) for j in jobs])))
    face_rows = per_box([sum(len(p) for _, _, _, p in j.faces) for j in jobs])
    trace_weights = tuple(
        tuple(interface_weight * weight(_rms(network, interior, RowGroup("trace", None, (op,), None, interior.shape[1])), face_rows)
              for op in ops) for ops in traces)
    return weights, trace_weights


def prepare_partition(problem, partition, overrides: dict):
    """``(partition, settings, activation, sampler)`` of a partitioned solve, all checked, no work done."""
    overrides = dict(overrides)
    extra = _split_settings(overrides)
    settings, activation, sampler = prepare_basis(problem, overrides)
    settings.update(extra)
    _check_supported(problem, settings, sampler)
    part = Partition.of(problem.domain, partition)
    if part.size > MAX_BOXES:
        raise ValueError(f"partition {list(part.counts)} has {part.size} boxes; at most {MAX_BOXES} are supported")
    boxes = len(part.meeting(problem.domain))
    if settings["n_interior"] < MIN_POINTS_PER_BOX * boxes:
        raise ValueError(f"n_interior ({settings['n_interior']}) gives fewer than {MIN_POINTS_PER_BOX} collocation "
                         f"points to each of the {boxes} boxes of partition {list(part.counts)} that meet the domain; "
                         "raise n_interior or use fewer boxes")
    return part, settings, activation, sampler


@dataclass
class Factored:
    """A partition's boxes factored: what a solve (or a projection in time) needs of them.

    Each box's ``P`` stays where its task ran (persisted on the cluster's workers); only the
    interface parts travel here, and only the coefficients come back from ``P z``.
    """

    partition: Partition
    boxes: np.ndarray  # kept box indices
    results: list  # per kept box: the interface part of :func:`factor_box` (all but ``P``)
    handles: tuple  # per kept box: its persisted ``P``
    system: InterfaceSystem
    weights: dict
    info: dict
    timings: dict

    def coefficients(self, z: np.ndarray) -> list[np.ndarray]:
        """``c_i = P_i z_i`` of every box for the stacked local coordinates ``z`` (``(n,)`` or ``(n, m)``)."""
        blocks = [self.system.block(z, k) for k in range(len(self.results))]
        return list(compute(*[dask.delayed(_apply_basis_map)(h, b) for h, b in zip(self.handles, blocks)]))

    def solution(self, problem, z, settings, timings, coefs=None) -> PartitionedSolution:
        """The fields of the local coordinates ``z`` (all boxes stacked)."""
        coefs = self.coefficients(z) if coefs is None else coefs
        return PartitionedSolution(problem, self.partition, self.boxes, [r["layer"] for r in self.results], coefs,
                                   settings, self.weights, dict(self.info), timings)

    def jump(self, z) -> float:
        """The continuity rows' residual relative to the data's norm."""
        sys = self.system
        jump = sum(float(np.sum((c.f_lower @ sys.block(z, c.lower) - c.f_upper @ sys.block(z, c.upper)) ** 2))
                   for c in sys.couplings)
        return float(np.sqrt(jump / max(sum(r["b2"] for r in self.results), 1e-300)))


def _face_sets(problem, part, slot, n_face, seed):
    """The faces between kept boxes (periodic ones for periodic conditions) and each box's share."""
    periodic = sorted({c.axis for c in problem.conditions if isinstance(c, Periodic)})
    faces = [f for f in part.faces(periodic) if slot[f.lower] >= 0 and slot[f.upper] >= 0]
    points = [part.face_points(problem.domain, f, n_face, seed) for f in faces]
    faces, points = zip(*[(f, p) for f, p in zip(faces, points) if len(p)]) if faces else ((), ())
    box_faces = [[] for _ in range(int(np.sum(slot >= 0)))]
    for number, (f, p) in enumerate(zip(faces, points)):
        shifted = p.copy()
        shifted[:, f.axis] -= f.period
        box_faces[slot[f.lower]].append((number, 0, f.axis, p))
        box_faces[slot[f.upper]].append((number, 1, f.axis, shifted))
    return faces, box_faces


def factor_partition(problem, part, settings, activation, sampler, operators=()) -> Factored:
    """Points, local bases, each box's factor (Dask tasks) and the interface system of a partition."""
    timings, start = {}, time.perf_counter()
    root, d = root_seed(settings["seed"]), problem.domain.dim
    interior = part.interior_points(problem.domain, settings["n_interior"], settings["points"], child_seed(root, 4))
    groups = [g for g in problem.row_groups(2, settings["n_boundary"], method="uniform", seed=child_seed(root, 0))
              if not g.paired]  # periodic pairs become periodic faces
    packed = [None] + [np.asarray(g.points) for g in groups[1:]]
    held = np.array([len(p) > 0 for p in interior])
    kept = np.flatnonzero(held)
    if len(kept) == 0:
        raise ValueError(f"no box of the partition {part.counts} holds an interior point; raise n_interior")
    owners = [None] + [part.owner(p[:, :d], held) for p in packed[1:]]
    for g, o in zip(groups[1:], owners[1:]):
        if np.any(o < 0):
            raise ValueError(f"{int(np.sum(o < 0))} points of condition {g.name!r} lie in boxes without interior "
                             f"points; raise n_interior or use fewer boxes than {part.counts}")
    slot = np.full(part.size, -1)
    slot[kept] = np.arange(len(kept))
    order = max(1, problem.operator.order) if settings["continuity"] is None else settings["continuity"] + 1
    traces = tuple(tuple(derivative(tuple(m if k == a else 0 for k in range(d))) for m in range(order))
                   for a in range(d))
    per_box = max(1, round(settings["n_interior"] / len(kept)))
    # the interior's per-axis density (twice as many: same error on 6 × 6 boxes of 700, twice the traces)
    n_face = settings["n_interface"] or (1 if d == 1 else int(np.ceil(per_box ** ((d - 1) / d))))
    faces, box_faces = _face_sets(problem, part, slot, n_face, child_seed(root, 5))
    width = part.width_per_box(problem.domain, settings["width"])
    lo, hi = part.boxes()

    def jobs(weights, trace_weights):
        return [_Job(int(i), lo[i], hi[i],
                     tuple([(replace(groups[0], points=None, weight=1.0), interior[i])] + [
                         (replace(g, points=None, weight=float(weights[k])), packed[k][owners[k] == i])
                         for k, g in enumerate(groups) if k]),
                     tuple(box_faces[slot[i]]), traces, trace_weights, width, settings["pool_size"], activation,
                     sampler, child_seed(root, 2, int(i)), settings["rcond"], settings["coarse_threshold"],
                     tuple(operators)) for i in kept]

    weights, trace_weights = _balance(jobs([1.0] * len(groups), ((1.0,) * order,) * d), groups, traces,
                                      settings["kappa"], settings["interface_weight"])
    timings["points"] = time.perf_counter() - start
    start = time.perf_counter()
    # the points go to the workers ahead of the graph (cluster.scatter); P and the interface part as two
    # keys: P stays on the workers, the interface part comes here once and is then freed (design §3.6)
    skeletons, arrays = zip(*[_without_points(j) for j in jobs(weights, trace_weights)])
    arrays = scatter(list(arrays))
    parts = persist(*[p for j, a in zip(skeletons, arrays)
                      for p in dask.delayed(_factor_box_apart, pure=True, nout=2)(j, a)])
    handles = parts[0::2]
    results = list(compute(*parts[1::2]))
    del parts
    timings["local_factors"] = time.perf_counter() - start
    couplings = [Coupling(int(slot[f.lower]), int(slot[f.upper]), results[slot[f.lower]]["F"][(number, 0)],
                          results[slot[f.upper]]["F"][(number, 1)]) for number, f in enumerate(faces)]
    system = InterfaceSystem([r["rank"] for r in results], couplings, [r["coarse"] for r in results])
    names = {g.name: float(w) for g, w in zip(groups, weights)}
    names.update({f"continuity_{m}": float(w) for m, w in enumerate(trace_weights[0])})
    info = {"rank": int(system.n), "faces": len(faces), "points_per_face": n_face, "width_per_box": width,
            "rows": int(sum(r["rows"] for r in results)), "max_box_condition": max(r["condition"] for r in results),
            "box_ranks": [r["rank"] for r in results], "box_conditions": [r["condition"] for r in results]}
    return Factored(part, kept, results, handles, system, names, info, timings)


def _apply_basis_map(basis_map: np.ndarray, z: np.ndarray) -> np.ndarray:
    return basis_map @ z


@blas_limited
def solve_partitioned(problem, partition, **overrides) -> PartitionedSolution:
    """Solve a :class:`~pipeline.pde.problems.StaticProblem` with a local basis per subdomain.

    ``partition``: boxes per axis (an int for every axis, or a list).  ``width``,
    ``n_interior`` and ``n_boundary`` are totals over the domain; the static solver's other
    settings apply per box, plus :data:`PARTITION_DEFAULTS`.  Periodic conditions join the last
    box along their axis to the first by continuity rows.
    """
    part, settings, activation, sampler = prepare_partition(problem, partition, overrides)
    factored = factor_partition(problem, part, settings, activation, sampler)
    start = time.perf_counter()
    z, solve_info = factored.system.solve(np.concatenate([r["h"] for r in factored.results]),
                                          settings["interface_solver"], settings["interface_rtol"])
    timings = {**factored.timings, "interface": time.perf_counter() - start}
    solution = factored.solution(problem, z, settings, timings)
    solution.info.update(interface=solve_info, interface_jump=factored.jump(z))
    return solution
