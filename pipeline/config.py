"""Workflow files: schema, validation and ``--set`` overrides.

A workflow is a YAML mapping validated against :data:`SCHEMA` before anything runs.  Unknown
keys, wrong types and values out of range are :class:`ConfigError` s that name the dotted key
and what is allowed.  The format never executes code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from pipeline.datasets import DATASETS

__all__ = ["ConfigError", "Field", "SCHEMA", "Section", "apply_override", "load_workflow", "validate"]


class ConfigError(ValueError):
    """An invalid workflow; the message names the offending key."""


_REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One key of a section: accepted types, default, allowed values, extra check, doc."""

    types: type | tuple[type, ...]
    default: Any = _REQUIRED
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None
    doc: str = ""


@dataclass(frozen=True)
class Section:
    fields: dict[str, Any]
    doc: str = ""
    required: bool = False


def positive_int(v):
    return None if v >= 1 else "must be >= 1"


def fraction_open(v):
    return None if 0 < v < 1 else "must lie in (0, 1)"


def non_negative(v):
    return None if math.isfinite(v) and v >= 0 else "must be a finite number >= 0"


def widths(v):
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    if not v or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in v):
        return "must be a positive integer or a list of positive integers (one width per layer)"
    return None


_NUMBER = (int, float)

SCHEMA = Section(
    {
        "version": Field(int, 1, choices=(1,), doc="workflow format version"),
        "data": Section(
            {
                "function": Field(str, choices=tuple(DATASETS), doc="named synthetic data set (see `pipeline.datasets`)"),
                "n_train": Field(int, 10_000, check=positive_int, doc="training samples"),
                "n_test": Field(int, 10_000, check=positive_int, doc="test samples"),
                "noise": Field(_NUMBER, 0.0, check=non_negative, doc="std of Gaussian noise added to training targets"),
                "seed": Field(int, 0, check=lambda v: None if v >= 0 else "must be >= 0", doc="seed of the data draw"),
            },
            doc="supervised data",
            required=True,
        ),
        "model": Section(
            {
                "hidden_layer_sizes": Field((int, list), [512], check=widths, doc="width per hidden layer"),
                "activation": Field(str, "tanh", choices=("tanh", "sin", "relu", "logistic")),
                "sampler": Field(str, "swim", choices=("swim", "uswim", "aswim", "elm")),
                "rcond": Field((float, type(None)), 1e-10, check=fraction_open),
                "ridge": Field((float, int, type(None)), None, check=non_negative),
                "n_members": Field(int, 1, check=positive_int, doc="ensemble size"),
                "random_state": Field(int, 0, check=lambda v: None if v >= 0 else "must be >= 0"),
                "pool_size": Field(int, 20_000, check=lambda v: None if v >= 2 else "must be >= 2"),
            },
            doc="the sampled network",
        ),
        "compute": Section(
            {
                "scheduler": Field(str, "threads", choices=("threads", "synchronous", "processes")),
                "chunk_rows": Field((int, type(None)), None, check=positive_int),
            },
            doc="where and how the graph runs",
        ),
    }
)


def _type_names(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {int: "integer", float: "number", str: "string", list: "list", bool: "boolean", dict: "mapping",
             type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _validate_section(section: Section, raw, path: str) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'the workflow'} must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(section.fields))
    if unknown:
        where = f"in {path}" if path else "at the top level"
        raise ConfigError(
            f"unknown key {(path + '.' if path else '') + str(unknown[0])!r} {where}; "
            f"allowed keys: {', '.join(section.fields)}"
        )
    out = {}
    for key, spec in section.fields.items():
        dotted = f"{path}.{key}" if path else key
        if isinstance(spec, Section):
            if spec.required and key not in raw:
                raise ConfigError(f"missing required section {dotted!r}")
            out[key] = _validate_section(spec, raw.get(key), dotted)
            continue
        if key not in raw:
            if spec.default is _REQUIRED:
                raise ConfigError(f"missing required key {dotted!r} ({spec.doc})")
            out[key] = spec.default
            continue
        value = raw[key]
        types = spec.types if isinstance(spec.types, tuple) else (spec.types,)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise ConfigError(f"{dotted} must be {_type_names(spec.types)}, got {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise ConfigError(f"{dotted} must be one of {', '.join(map(str, spec.choices))}; got {value!r}")
        if spec.check is not None and value is not None:
            problem = spec.check(value)
            if problem:
                raise ConfigError(f"{dotted} {problem}; got {value!r}")
        out[key] = value
    return out


def validate(raw: dict) -> dict:
    """The validated workflow with every default filled in."""
    return _validate_section(SCHEMA, raw, "")


def apply_override(raw: dict, assignment: str) -> dict:
    """Apply ``KEY=VALUE`` (dotted key, YAML value) to a raw workflow mapping, in place."""
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE (for example model.rcond=1e-8), got {assignment!r}")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {key}: cannot parse value {value!r}: {err}") from None
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part!r} is not a section")
    node[parts[-1]] = parsed
    return raw


def load_workflow(path: str | Path, overrides: list[str] | tuple = ()) -> dict:
    """Read, override and validate a workflow file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"workflow file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a workflow must be a YAML mapping, got {type(raw).__name__}")
    for assignment in overrides:
        apply_override(raw, assignment)
    return validate(raw)
