"""Checks of single workflow values and of sections (each returns ``None`` or what is wrong).

:class:`pipeline.config.Field` and :class:`pipeline.config.Section` call them; the message is
completed with the dotted key and the value by the validator.
"""

from __future__ import annotations

import math
import re


def positive_int(v):
    return None if v >= 1 else "must be >= 1"


def non_negative_int(v):
    return None if v >= 0 else "must be >= 0"


def fraction_open(v):
    return None if 0 < v < 1 else "must lie in (0, 1)"


def fraction_half_open(v):
    return None if 0 <= v < 1 else "must lie in [0, 1)"


def non_negative(v):
    return None if math.isfinite(v) and v >= 0 else "must be a finite number >= 0"


def positive(v):
    return None if math.isfinite(v) and v > 0 else "must be a finite number > 0"


def widths(v):
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    if not v or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in v):
        return "must be a positive integer or a list of positive integers (one width per layer)"
    return None


def module_spec(v):
    path, sep, name = v.rpartition(":")
    if not sep or not path.endswith(".py") or not name.isidentifier():
        return "must be 'path/to/file.py:function' (a file and the function that builds the problem)"
    return None


CLUSTER_KINDS = ("local", "address", "slurm", "kubernetes")
_MEMORY = re.compile(r"\d+(\.\d+)?\s*([KMGTP]i?B?)?", re.IGNORECASE)
_WALLTIME = re.compile(r"(\d+-)?\d{1,2}(:\d{2}){1,2}|\d+")


def scheduler_address(v):
    return None if re.fullmatch(r"(tcp|tls|ucx|inproc)://\S+", v) else "must be a scheduler address such as tcp://host:8786"


def memory_text(v):
    return None if _MEMORY.fullmatch(v.strip()) else "must be an amount such as 4GB or 16GiB"


def walltime_text(v):
    return None if _WALLTIME.fullmatch(v.strip()) else "must be a Slurm time such as 01:00:00 or 1-12:00:00"


def strings(v):
    return None if all(isinstance(x, str) for x in v) else "must be a list of strings"


def string_mapping(v):
    ok = all(isinstance(k, str) and isinstance(x, (str, int, float)) and not isinstance(x, bool) for k, x in v.items())
    return None if ok else "must map names to strings or numbers"


def kubernetes_resources(v):
    if set(v) - {"requests", "limits"}:
        return "may only hold 'requests' and 'limits'"
    for part in v.values():
        if not isinstance(part, dict) or string_mapping(part) is not None:
            return "requests and limits must map resource names (cpu, memory, nvidia.com/gpu) to amounts"
    return None


def adaptive_bounds(section):
    lo, hi = section["minimum"], section["maximum"]
    if (lo is None) != (hi is None):
        return "compute.cluster.slurm.adaptive needs both minimum and maximum (or neither)"
    if lo is not None and lo > hi:
        return f"compute.cluster.slurm.adaptive.minimum ({lo}) exceeds maximum ({hi})"
    return None


def slurm_shape(section):
    cores, processes = section["cores"], section["processes"]
    if processes is not None and cores is not None and (processes > cores or cores % processes):
        return (f"compute.cluster.slurm.processes ({processes}) must divide compute.cluster.slurm.cores ({cores}): "
                "each worker process gets cores / processes threads")
    return None


def compute_consistency(compute):
    cluster = compute["cluster"]
    if cluster["kind"] == "address" and not cluster["address"]:
        return "compute.cluster.kind 'address' needs compute.cluster.address (e.g. tcp://host:8786)"
    if compute["scheduler"] != "local" and cluster["kind"] != "local":
        return (f"compute.scheduler is {compute['scheduler']!r} but compute.cluster.kind is {cluster['kind']!r}: "
                "choose one (leave compute.scheduler at 'local' to use compute.cluster)")
    return None
