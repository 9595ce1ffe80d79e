"""Workflow files: schema, validation and ``--set`` overrides (format version 1).

A workflow is a YAML mapping validated against :data:`SCHEMA` before anything runs.  Unknown
keys, wrong types and values out of range are :class:`ConfigError` s that name the dotted key
and what is allowed.  The format never executes code: a user's own problem is imported from
the Python file the workflow names explicitly (``problem.module: path/to/file.py:factory``).

A workflow names exactly one task section: a PDE ``problem`` (registry name and parameters),
supervised ``data`` (with a ``model``), a ``hamiltonian`` or an ``lti`` system; the section
selects the workflow kind (:mod:`pipeline.workflows`), which declares the other keys that take
effect for it; any other key a workflow sets is refused before work.  Every solver setting
left out (or null) takes the problem's own default, measured to meet its accuracy target.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.nn.activations import ACTIVATIONS as _ACTIVATION_REGISTRY
from pipeline.nn.samplers import SAMPLERS as _SAMPLER_REGISTRY
from pipeline.yaml_input import MAX_BYTES, read_yaml

__all__ = [
    "ALWAYS_APPLIES",
    "SCHEMA",
    "TASK_SECTIONS",
    "ConfigError",
    "Field",
    "Section",
    "apply_override",
    "load_workflow",
    "register_sections",
    "validate",
]


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
    """A mapping of fields; ``optional`` sections are ``None`` when absent.

    ``check(validated) -> message | None`` relates the section's fields to each other.
    """

    fields: dict[str, Any]
    doc: str = ""
    optional: bool = False
    check: Callable[[dict], str | None] | None = None


from pipeline.validators import (  # noqa: F401 - re-exported for the workflow kinds' sections
    CLUSTER_KINDS,
    adaptive_bounds,
    compute_consistency,
    fraction_half_open,
    fraction_open,
    kubernetes_resources,
    memory_text,
    module_spec,
    non_negative,
    non_negative_int,
    positive,
    positive_int,
    scheduler_address,
    slurm_shape,
    string_mapping,
    strings,
    walltime_text,
    widths,
)

#: members of one run (sweep points × replicates) and values per swept key: each member is a task
#: and a slice of the store; beyond these the planning alone takes minutes
MAX_MEMBERS = 100_000
MAX_SWEEP_VALUES = 10_000

_NUMBER = (int, float)
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
_NONE = type(None)
NUMBER, NULL = _NUMBER, _NONE  # for the sections the workflow kinds declare
SAMPLERS = tuple(_SAMPLER_REGISTRY)  # the names pipeline.nn resolves: a new sampler is one entry there
ACTIVATIONS = tuple(_ACTIVATION_REGISTRY)
POINT_RULES = ("uniform", "sobol", "halton", "grid")
METHODS = ("exact", "RK45", "RK23", "DOP853", "LSODA", "BDF", "Radau")

def _partition(value) -> str | None:
    values = value if isinstance(value, list) else [value]
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        return "must be a positive integer or a list of positive integers (boxes per axis)"
    return None


SCHEMA = Section({
    "version": Field(int, 1, choices=(1,), doc="workflow format version"),
    "basis": Section({
        "width": Field((int, _NONE), None, check=positive_int, doc="neurons of the hidden layer"),
        "activation": Field((str, _NONE), None, choices=ACTIVATIONS + (None,)),
        "sampler": Field((str, _NONE), None, choices=SAMPLERS + (None,)),
        "weight_scale": Field((float, _NONE), None, check=positive, doc="ELM: w ~ N(0, scale² I)"),
        "bias_scale": Field((float, _NONE), None, check=positive, doc="ELM: b ~ U[-scale, scale]"),
        "curvature_scale": Field((float, _NONE), None, check=non_negative,
                                 doc="ELM: quadratic neurons σ(w·x + a||x||² + b), a ~ U[-scale, scale]"),
        "active_directions": Field((int, _NONE), None, check=non_negative_int,
                                   doc="static: re-sample along the k leading gradient directions of a first solve"),
        "active_scale": Field((float, _NONE), None, check=non_negative,
                              doc="static: std of the weights along those directions"),
        "partition": Field((int, list, _NONE), None, check=_partition,
                           doc="static: boxes per axis (an int, or one per axis), a local basis in each; width is the "
                               "total"),
        "seed": Field(int, 0, check=non_negative_int, doc="root seed (members are spawned from it)"),
    }, doc="the sampled basis (null: the problem's default)"),
    "collocation": Section({
        "n_interior": Field((int, _NONE), None, check=positive_int),
        "n_boundary": Field((int, _NONE), None, check=non_negative_int),
        "points": Field((str, _NONE), None, choices=POINT_RULES + (None,)),
        "n_interface": Field((int, _NONE), None, check=positive_int,
                             doc="with basis.partition: points per face between boxes (null: the interior's "
                                 "density per axis)"),
    }, doc="collocation points"),
    "solver": Section({
        "rcond": Field((float, _NONE), None, check=fraction_open, doc="truncated-SVD cut-off"),
        "ridge": Field((float, int, _NONE), None, check=non_negative, doc="Tikhonov λ (static problems)"),
        "kappa": Field((float, int, _NONE), None, check=positive, doc="boundary weight multiplier"),
        "relaxation": Field((float, int, _NONE), None, check=positive, doc="boundary relaxation rate (evolution)"),
        "boundary": Field((str, _NONE), None, choices=("penalty", "compliant", None), doc="evolution only"),
        "interface_solver": Field((str, _NONE), None, choices=("auto", "direct", "cg", None),
                                  doc="with basis.partition: the interface system by sparse LU, conjugate gradients, "
                                      "or auto (LU up to 3 000 unknowns)"),
        "interface_weight": Field((float, int, _NONE), None, check=positive,
                                  doc="with basis.partition: multiplier of the continuity rows' weights"),
        "prune": Field((float, int, _NONE), None, check=fraction_half_open,
                       doc="drop basis functions a pivoted QR finds dependent at this relative threshold (0: keep all)"),
    }, doc="least squares"),
    "time": Section({
        "outputs": Field((int, _NONE), None, check=lambda v: None if v >= 2 else "must be >= 2",
                         doc="output times (null: the problem's error grid)"),
        "method": Field((str, _NONE), None, choices=METHODS + (None,)),
        "windows": Field((int, _NONE), None, check=positive_int, doc="windows written one by one"),
        "blocks": Field((int, _NONE), None, check=positive_int, doc="time blocks re-sampling the basis"),
        "rtol": Field((float, _NONE), None, check=positive),
        "atol": Field((float, _NONE), None, check=positive),
        "adaptive_points": Field((float, _NONE), None, check=fraction_half_open),
        "hyper_reduction": Field((bool, _NONE), None,
                                 doc="nonlinear terms at interpolation rows only (null: where those are at most a quarter "
                                     "of the rows)"),
        "hyper_oversampling": Field((float, int, _NONE), None,
                                    check=lambda v: None if v >= 1 else "must be >= 1",
                                    doc="interpolation rows per column of the interpolation basis (null: automatic)"),
        "hyper_basis": Field((str, _NONE), None, choices=("gradients", "values", None),
                             doc="interpolation basis: the fields N reads (values), or also every first derivative "
                                 "(gradients); null: gradients in 1-D, values otherwise"),
    }, doc="time integration (evolution problems)"),
    "ensemble": Section({
        "members": Field(int, 1, check=positive_int, doc="members per sweep point (seeds spawned from basis.seed)"),
        "sweep": Field(dict, {}, doc="dotted key -> list of values, e.g. {basis.width: [200, 400]}"),
        "mode": Field(str, "product", choices=("product", "zip"), doc="cartesian product or zipped sweep"),
    }, doc="ensembles and parameter sweeps"),
    "output": Section({
        "path": Field((str, _NONE), None, doc="zarr store (default: results/<workflow name>.zarr)"),
        "dtype": Field(str, "float32", choices=("float32", "float64"), doc="stored fields"),
    }, doc="the result store"),
    "compute": Section({
        "scheduler": Field(str, "local", doc="'local' (LocalCluster), 'threads', 'synchronous' or an address "
                                             "such as tcp://host:8786"),
        "workers": Field((int, _NONE), None, check=positive_int, doc="local workers (default: cores)"),
        "threads": Field(int, 1, check=positive_int, doc="threads per local worker"),
        "device": Field(str, "cpu", choices=("cpu", "gpu")),
        "chunk_rows": Field((int, _NONE), None, check=positive_int, doc="rows per least-squares block"),
        "split_members": Field((str, bool), "auto", check=lambda v: None if v in (True, False, "auto")
                               else "must be true, false or auto",
                               doc="run a member's own graphs on the whole cluster (auto: when members are "
                                   "fewer than workers or too large for one)"),
        "timeout": Field(_NUMBER, 10.0, check=positive, doc="seconds to wait for a scheduler"),
        "memory_limit": Field((str, _NONE), None, check=memory_text,
                              doc="memory the sizes of a run are checked against before work, e.g. 64GB "
                                  "(null: this machine's)"),
        "dashboard": Field(bool, True, doc="start the Dask dashboard of a local cluster on a free port"),
        "tls": Section({
            "ca_file": Field((str, _NONE), None),
            "cert_file": Field((str, _NONE), None),
            "key_file": Field((str, _NONE), None),
        }, doc="TLS certificates for dask's Security"),
        "cluster": Section({
            "kind": Field(str, "local", choices=CLUSTER_KINDS,
                          doc="local (LocalCluster), address (a running scheduler), slurm (dask-jobqueue), "
                              "kubernetes (dask-kubernetes operator)"),
            "address": Field((str, _NONE), None, check=scheduler_address,
                             doc="kind address: the scheduler, e.g. tcp://host:8786 or tls://host:8786"),
            "startup_timeout": Field(_NUMBER, 600.0, check=positive,
                                     doc="slurm, kubernetes: seconds to wait for the workers asked for"),
            "slurm": Section({
                "queue": Field((str, _NONE), None, doc="partition (sbatch -p)"),
                "account": Field((str, _NONE), None, doc="sbatch -A"),
                "cores": Field((int, _NONE), None, check=positive_int, doc="cores per job (null: jobqueue.yaml)"),
                "processes": Field((int, _NONE), None, check=positive_int,
                                   doc="worker processes per job (null: jobqueue.yaml, else one per core)"),
                "memory": Field((str, _NONE), None, check=memory_text, doc="memory per job, e.g. 16GB (null: "
                                                                            "jobqueue.yaml)"),
                "walltime": Field((str, _NONE), None, check=walltime_text,
                                  doc="per job, HH:MM:SS or D-HH:MM:SS (null: jobqueue.yaml)"),
                "jobs": Field(int, 1, check=positive_int, doc="jobs to start (unless adaptive)"),
                "adaptive": Section({
                    "minimum": Field((int, _NONE), None, check=non_negative_int, doc="fewest jobs"),
                    "maximum": Field((int, _NONE), None, check=positive_int, doc="most jobs"),
                }, doc="scale between minimum and maximum jobs with the load (both set, or neither)",
                    check=adaptive_bounds),
                "job_extra_directives": Field(list, [], check=strings,
                                              doc="extra #SBATCH lines, e.g. ['--constraint=cpu', '--qos=normal']"),
                "job_script_prologue": Field(list, [], check=strings,
                                             doc="shell lines run before each worker (module load …)"),
                "interface": Field((str, _NONE), None, doc="network interface the workers listen on, e.g. ib0"),
                "local_directory": Field((str, _NONE), None, doc="worker scratch directory on the node"),
                "log_directory": Field((str, _NONE), None,
                                       doc="where the worker jobs write their logs (null: the directory of the run)"),
                "python": Field((str, _NONE), None, doc="python of the workers (default: this one)"),
            }, doc="dask-jobqueue SLURMCluster (pip install 'swim-pipeline[slurm]')", check=slurm_shape),
            "kubernetes": Section({
                "name": Field(str, "swim-pipeline", doc="DaskCluster name"),
                "image": Field(str, "ghcr.io/swim-pipeline/swim-pipeline:0.1.0", doc="image with this package"),
                "n_workers": Field(int, 2, check=positive_int),
                "namespace": Field((str, _NONE), None),
                "resources": Field(dict, {"requests": {"cpu": "1", "memory": "4Gi"},
                                          "limits": {"cpu": "1", "memory": "4Gi"}},
                                   check=kubernetes_resources, doc="per worker container"),
                "env": Field(dict, {}, check=string_mapping, doc="extra environment of every pod"),
                "cluster_spec": Field((str, _NONE), None,
                                      doc="a DaskCluster manifest used instead of image, n_workers, resources and env "
                                          "(volumes for the stores, node selectors): deploy/kubernetes/daskcluster.yaml"),
            }, doc="dask-kubernetes operator KubeCluster (pip install 'swim-pipeline[kubernetes]')"),
        }, doc="which cluster runs the graph when compute.scheduler is 'local' (the default)"),
    }, doc="where the graph runs", check=compute_consistency),
})


def _type_names(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {int: "integer", float: "number", str: "string", list: "list", bool: "boolean", dict: "mapping",
             type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _validate_section(section: Section, raw, path: str):
    if raw is None:
        if section.optional:
            return None
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
            out[key] = _validate_section(spec, raw.get(key), dotted)
            continue
        if key not in raw:
            if spec.default is _REQUIRED:
                raise ConfigError(f"missing required key {dotted!r} ({spec.doc})")
            out[key] = copy.deepcopy(spec.default)
            continue
        value = raw[key]
        types = spec.types if isinstance(spec.types, tuple) else (spec.types,)
        if float in types and isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-6 (no dot) as text; it is meant as a number
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > 1e300:  # float() would overflow: far beyond any setting's range anyway
                raise ConfigError(f"{dotted} must be a number of at most 1e300 in size, got a {len(str(value))}-digit "
                                  "integer")
            value = float(value)
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise ConfigError(f"{dotted} must be {_type_names(spec.types)}, got {value!r}")
        if spec.choices is not None and value not in spec.choices:
            shown = ", ".join(str(c) for c in spec.choices if c is not None)
            raise ConfigError(f"{dotted} must be one of {shown}; got {value!r}")
        if spec.check is not None and value is not None:
            problem = spec.check(value)
            if problem:
                raise ConfigError(f"{dotted} {problem}; got {value!r}")
        out[key] = value
    if section.check is not None and "." in path:  # nested sections; top-level ones in validate()
        problem = section.check(out)
        if problem:
            raise ConfigError(problem)
    return out


#: keys every workflow kind honours (whole sections, or dotted keys); which other keys take
#: effect is declared by each kind (:attr:`pipeline.workflows.base.WorkflowKind.keys`)
ALWAYS_APPLIES = ("version", "ensemble", "output", "basis.seed", "compute.scheduler", "compute.workers",
                  "compute.threads", "compute.timeout", "compute.tls", "compute.dashboard", "compute.device",
                  "compute.cluster", "compute.memory_limit")

#: the sections of which a workflow names exactly one: what it runs (each workflow kind
#: registers its own, with :func:`register_sections`)
TASK_SECTIONS: dict[str, str] = {}


def register_sections(task: str, sections: dict[str, Section], what: str) -> None:
    """Add a workflow kind's sections to :data:`SCHEMA`: its task section ``task`` (a workflow
    names exactly one) and any other section it brings (e.g. ``model`` with ``data``)."""
    for name, section in sections.items():
        known = SCHEMA.fields.get(name)
        if known is not None and known is not section:
            raise ValueError(f"config section {name!r} is registered twice, differently")
    generic = {k: v for k, v in SCHEMA.fields.items() if k != "version" and k not in sections}
    ordered = {"version": SCHEMA.fields["version"], **{k: v for k, v in generic.items() if k in TASK_SECTIONS},
               **sections, **{k: v for k, v in generic.items() if k not in TASK_SECTIONS}}
    SCHEMA.fields.clear()
    SCHEMA.fields.update(ordered)
    TASK_SECTIONS[task] = what


def validate(raw: dict) -> dict:
    """The validated workflow with every default filled in."""
    cfg = _validate_section(SCHEMA, raw, "")
    present = [s for s in TASK_SECTIONS if cfg[s] is not None]
    if not TASK_SECTIONS:  # pragma: no cover - the kinds register on import of pipeline.workflows
        raise ConfigError("no workflow kinds are registered: import pipeline.workflows first")
    if len(present) != 1:
        choices = ", ".join(f"{s!r} ({what})" for s, what in TASK_SECTIONS.items())
        raise ConfigError(f"a workflow needs exactly one of the sections {choices}; got "
                          f"{', '.join(repr(s) for s in present) or 'none'}")
    for name, section in SCHEMA.fields.items():
        if isinstance(section, Section) and section.check is not None and cfg[name] is not None:
            problem = section.check(cfg[name])
            if problem:
                raise ConfigError(problem)
    sweep = cfg["ensemble"]["sweep"]
    lengths = set()
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"ensemble.sweep.{key} must be a non-empty list of values, got {values!r}")
        if len(values) > MAX_SWEEP_VALUES:
            raise ConfigError(f"ensemble.sweep.{key} has {len(values)} values; at most {MAX_SWEEP_VALUES} per key")
        lengths.add(len(values))
    points = max(lengths, default=1) if cfg["ensemble"]["mode"] == "zip" else math.prod(len(v) for v in sweep.values())
    if points * cfg["ensemble"]["members"] > MAX_MEMBERS:
        raise ConfigError(f"ensemble: {points} sweep point(s) × ensemble.members {cfg['ensemble']['members']} = "
                          f"{points * cfg['ensemble']['members']} members; at most {MAX_MEMBERS} in one run "
                          "(split the sweep over several runs)")
    for key, values in sweep.items():
        probe = copy.deepcopy(raw)
        _assign(probe, key, values[0], where=f"ensemble.sweep key {key!r}")
        _validate_section(SCHEMA, probe, "")  # every swept value must itself be valid
        for value in values:
            _assign(probe, key, value, where=f"ensemble.sweep key {key!r}")
            _validate_section(SCHEMA, probe, "")
    if cfg["ensemble"]["mode"] == "zip" and len(lengths) > 1:
        raise ConfigError(f"ensemble.mode 'zip' needs sweep lists of one length, got lengths {sorted(lengths)}")
    return cfg


def _assign(raw: dict, key: str, value, *, where: str) -> None:
    node = raw
    parts = key.split(".")
    if parts[0] not in SCHEMA.fields:
        raise ConfigError(f"{where}: unknown section {parts[0]!r}; sections: {', '.join(SCHEMA.fields)}")
    spec = SCHEMA
    for part in parts[:-1]:
        if isinstance(spec, Section):
            if part not in spec.fields and not (spec is SCHEMA.fields.get("problem") and part == "params"):
                raise ConfigError(f"{where}: {key!r} does not exist")
            spec = spec.fields.get(part)
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: {part!r} is not a section")
    if isinstance(spec, Section) and parts[-1] not in spec.fields:
        raise ConfigError(f"{where}: {key!r} does not exist; allowed keys of {'.'.join(parts[:-1])}: "
                          f"{', '.join(spec.fields)}")
    node[parts[-1]] = value


def apply_override(raw: dict, assignment: str) -> dict:
    """Apply ``KEY=VALUE`` (dotted key, YAML value) to a raw workflow mapping, in place."""
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE (for example solver.rcond=1e-8), got {assignment!r}")
    shown = key if key.isprintable() else repr(key)  # a message stays one line
    parsed = read_yaml(value, f"--set {shown}")
    _assign(raw, key, parsed, where=f"--set {shown}")
    return raw


def load_workflow(path: str | Path, overrides: list[str] | tuple = ()) -> tuple[dict, dict]:
    """Read, override and validate a workflow file; returns ``(validated, raw)``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"workflow file {str(path)!r} does not exist")
    if path.stat().st_size > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 1024} KiB; a workflow is a few kB of settings")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read as UTF-8 text ({err})") from None
    raw = read_yaml(text, str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a workflow must be a YAML mapping, got {type(raw).__name__}")
    _resolve_module_path(raw, path.parent)
    for assignment in overrides:  # --set paths stay relative to the current directory, as on a shell
        apply_override(raw, assignment)
    return validate(raw), raw


def _resolve_module_path(raw: dict, base: Path) -> None:
    """A relative ``problem.module`` file (and ``inverse.observations``) in a workflow is relative to the
    workflow's directory."""
    section = raw.get("problem")
    module = section.get("module") if isinstance(section, dict) else None
    if isinstance(module, str) and module_spec(module) is None:
        file, _, name = module.rpartition(":")
        if not Path(file).is_absolute():
            section["module"] = f"{(base / file).resolve()}:{name}"
    inverse = raw.get("inverse")
    observations = inverse.get("observations") if isinstance(inverse, dict) else None
    if isinstance(observations, str) and "://" not in observations and not Path(observations).is_absolute():
        inverse["observations"] = str((base / observations).resolve())
