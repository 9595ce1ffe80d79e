"""Ensembles: members from seeds and parameter sweeps, and where each member lives in a store.

A workflow's ``ensemble`` section expands into members: every point of the sweep (the
cartesian product of the swept values, or the values zipped) times ``members`` replicates.
Each member gets its own validated configuration and a seed spawned from the one root seed
``basis.seed``, so a member's result depends only on its own index and settings.

In a store the sweep is not hidden in the member axis: a product sweep over
``problem.params.beta`` and ``basis.width`` gives the dimensions ``(beta, width, member)``,
a zipped sweep one dimension ``sweep`` carrying every swept key as a coordinate, and
``member`` only ever counts replicates, so ``u.mean("member")`` is a true ensemble mean
(docs/design.md §5.3).
"""

from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass

import numpy as np

from pipeline.config import validate
from pipeline.nn.seeding import child_seed

__all__ = ["Member", "MemberGrid", "expand_members"]

#: names no sweep dimension may take (they are the store's own dimensions)
RESERVED = {"member", "time", "point", "x", "y", "z", "dim", "window", "block", "neuron", "coefficient", "stage",
            "sv", "state", "output", "input", "piece", "node", "step", "trajectory", "orbit", "entry", "sweep", "ensemble",
            "field", "iteration", "parameter", "source_coefficient"}


@dataclass(frozen=True)
class Member:
    index: int  # flat index, the order of the graph's tasks
    replicate: int
    sweep: dict  # dotted key -> value of this member's sweep point
    config: dict  # the validated workflow of this member
    seed: np.random.SeedSequence
    position: tuple = ()  # index along each sweep dimension

    @property
    def label(self) -> str:
        point = ", ".join(f"{k}={v}" for k, v in self.sweep.items())
        return f"member {self.index}" + (f" ({point}, replicate {self.replicate})" if point else "")


@dataclass(frozen=True)
class MemberGrid:
    """The leading dimensions every member-indexed store variable carries.

    ``dims`` are the sweep dimensions followed by ``member`` (replicates); ``coords`` the
    swept values (``name -> (dims, values, attrs)``).
    """

    dims: tuple
    sizes: tuple
    coords: dict

    def region(self, member: Member) -> dict:
        """The store region of one member (one index along every member dimension)."""
        index = member.position + (member.replicate,)
        return {d: slice(i, i + 1) for d, i in zip(self.dims, index)}

    def position(self, member: Member) -> tuple:
        return member.position + (member.replicate,)


def _set(raw: dict, dotted: str, value) -> None:
    node = raw
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def sweep_dimension_names(keys) -> dict:
    """``dotted key -> dimension name``: the last part of the key (``problem.params.beta`` ->
    ``beta``) unless two keys share it or it is one of the store's own names."""
    short = [k.split(".")[-1] for k in keys]
    out = {}
    for key, name in zip(keys, short):
        if short.count(name) > 1 or name in RESERVED or not name.isidentifier():
            name = key.replace(".", "_")
        out[key] = name
    return out


def _coordinate(values) -> np.ndarray:
    """Swept values as a coordinate: numbers stay numbers (null: NaN), anything else text."""
    if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
        if any(v is None for v in values) or any(isinstance(v, float) for v in values):
            return np.array([np.nan if v is None else float(v) for v in values])
        return np.array(values, dtype=np.int64)
    return np.array([v if isinstance(v, str) else json.dumps(v) for v in values], dtype=str)


def expand_members(cfg: dict, raw: dict) -> tuple[list[Member], MemberGrid]:
    """The members of a validated workflow (``raw`` is its unvalidated mapping) and their grid."""
    ensemble = cfg["ensemble"]
    sweep = ensemble["sweep"]
    keys = list(sweep)
    names = sweep_dimension_names(keys)
    attrs = {k: {"long_name": k, "sweep_key": k} for k in keys}
    if not keys:
        points, positions = [()], [()]
        dims, sizes, coords = (), (), {}
    elif ensemble["mode"] == "zip":
        points = list(zip(*(sweep[k] for k in keys)))
        positions = [(i,) for i in range(len(points))]
        dims, sizes = ("sweep",), (len(points),)
        coords = {names[k]: (("sweep",), _coordinate(sweep[k]), attrs[k]) for k in keys}
    else:
        points = list(itertools.product(*(sweep[k] for k in keys)))
        positions = list(itertools.product(*(range(len(sweep[k])) for k in keys)))
        dims, sizes = tuple(names[k] for k in keys), tuple(len(sweep[k]) for k in keys)
        coords = {names[k]: ((names[k],), _coordinate(sweep[k]), attrs[k]) for k in keys}
    root = np.random.SeedSequence(cfg["basis"]["seed"])
    members = []
    for point, position in zip(points, positions):
        member_raw = copy.deepcopy(raw)
        member_raw["ensemble"] = {**(member_raw.get("ensemble") or {}), "sweep": {}}  # `ensemble: null` is allowed
        for key, value in zip(keys, point):
            _set(member_raw, key, value)
        member_cfg = validate(member_raw)
        for replicate in range(ensemble["members"]):
            index = len(members)
            members.append(Member(index, replicate, dict(zip(keys, point)), member_cfg, child_seed(root, index),
                                  tuple(position)))
    coords["member"] = (("member",), np.arange(ensemble["members"]), {"long_name": "replicate (seed spawned from basis.seed)"})
    grid = MemberGrid(dims + ("member",), sizes + (ensemble["members"],), coords)
    return members, grid
