"""Ensembles: members from seeds and parameter sweeps.

A workflow's ``ensemble`` section expands into members: every point of the sweep (the
cartesian product of the swept values, or the values zipped) times ``members`` replicates.
Each member gets its own validated configuration and a seed spawned from the one root seed
``basis.seed``, so a member's result depends only on its own index and settings.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import numpy as np

from pipeline.config import validate
from pipeline.nn.seeding import child_seed

__all__ = ["Member", "expand_members"]


@dataclass(frozen=True)
class Member:
    index: int
    replicate: int
    sweep: dict  # dotted key -> value of this member's sweep point
    config: dict  # the validated workflow of this member
    seed: np.random.SeedSequence

    @property
    def label(self) -> str:
        point = ", ".join(f"{k}={v}" for k, v in self.sweep.items())
        return f"member {self.index}" + (f" ({point}, replicate {self.replicate})" if point else "")


def _set(raw: dict, dotted: str, value) -> None:
    node = raw
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def expand_members(cfg: dict, raw: dict) -> list[Member]:
    """The members of a validated workflow (``raw`` is its unvalidated mapping)."""
    ensemble = cfg["ensemble"]
    sweep = ensemble["sweep"]
    keys = list(sweep)
    if not keys:
        points = [()]
    elif ensemble["mode"] == "zip":
        points = list(zip(*(sweep[k] for k in keys)))
    else:
        points = list(itertools.product(*(sweep[k] for k in keys)))
    root = np.random.SeedSequence(cfg["basis"]["seed"])
    members = []
    for point in points:
        member_raw = copy.deepcopy(raw)
        member_raw.setdefault("ensemble", {})["sweep"] = {}
        for key, value in zip(keys, point):
            _set(member_raw, key, value)
        member_cfg = validate(member_raw)
        for replicate in range(ensemble["members"]):
            index = len(members)
            members.append(Member(index, replicate, dict(zip(keys, point)), member_cfg, child_seed(root, index)))
    return members
