"""The ``pipeline`` command.

    pipeline run WORKFLOW [--output PATH] [--scheduler ADDRESS] [--workers N] [--device cpu|gpu]
                          [--cluster local|address|slurm|kubernetes]
                          [--set KEY=VALUE ...] [--overwrite | --resume] [--quiet]
    pipeline inspect STORE [--verify]
    pipeline plot STORE [-o FILE.png]
    pipeline problems

Errors in the input print one message and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline._version import __version__
from pipeline.config import ConfigError, load_workflow
from pipeline.validators import CLUSTER_KINDS

__all__ = ["main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """Argument errors as every other error: one line, exit status 2 (``--help`` shows the usage)."""

    def error(self, message):
        self.exit(2, f"pipeline: error: {message} ({self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="print the full traceback of an error (yours, for problem.module)")
    parser = _Parser(prog="pipeline", description="Sampled networks and PDE workflows on Dask.", parents=[common])
    parser.add_argument("--version", action="version", version=f"swim-pipeline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a workflow file into a zarr store", parents=[common])
    run.add_argument("workflow", help="path of the YAML workflow")
    run.add_argument("--output", metavar="PATH", help="the zarr store (default: output.path of the workflow)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="'local', 'threads', 'synchronous' or tcp://host:port")
    run.add_argument("--workers", type=_positive_int, metavar="N", help="workers of a local cluster")
    run.add_argument("--device", choices=("cpu", "gpu"), help="where feature blocks live")
    run.add_argument("--cluster", choices=CLUSTER_KINDS,
                     help="where the workers come from (compute.cluster.kind): local processes, a running "
                          "scheduler (compute.cluster.address), Slurm jobs or Kubernetes pods")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a key, e.g. --set basis.width=400 (repeatable)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing store")
    mode.add_argument("--resume", action="store_true", help="continue an interrupted run in its store")
    run.add_argument("--quiet", action="store_true", help="print only the metrics")
    inspect = sub.add_parser("inspect", help="what a store holds: the run, its settings and metrics", parents=[common])
    inspect.add_argument("store")
    inspect.add_argument("--verify", action="store_true",
                         help="check every chunk and metadata document against the done marks (exit 1 when damaged)")
    plot = sub.add_parser("plot", help="figures of a store (needs matplotlib)", parents=[common])
    plot.add_argument("store")
    plot.add_argument("-o", "--output", metavar="FILE.png", help="image file (default: STORE.png)")
    sub.add_parser("problems", help="the problem registry: names, parameters, references", parents=[common])
    return parser


def _print_metrics(metrics: dict) -> None:
    rows = [(k, v) for k, v in metrics.items() if not isinstance(v, (list, dict))]
    if not rows:
        print("(none: the run has not finished; continue it with --resume)")
        return
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        shown = f"{value:.3e}" if isinstance(value, float) and "seconds" not in key else (
            f"{value:.2f}" if isinstance(value, float) else value)
        print(f"{key:<{width}}  {shown}")
    members = metrics.get("per_member", [])
    if len(members) > 1:
        print("\nmember  rel_l2      wall s")
        for m in members:
            rel = m.get("rel_l2")
            wall = sum(v for v in m["wall_seconds"].values() if v is not None)
            print(f"{m['member']:>6}  {'—' if rel is None else f'{rel:.3e}':<10}  {wall:.2f}")


def _run(args) -> int:
    import logging

    from pipeline.workflows import run_workflow

    # a failing member or a lost scheduler is reported once, in one line, by the client; Dask's
    # own loggers stay quiet (distributed configures some children, e.g. distributed.client, itself)
    import distributed  # noqa: F401 - its logging configuration first, then ours over it

    for name in ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"compute.device={args.device}")
    if args.cluster:
        overrides.append(f"compute.cluster.kind={args.cluster}")
    cfg, raw = load_workflow(args.workflow, overrides)
    output = args.output or cfg["output"]["path"] or str(Path("results") / (Path(args.workflow).stem + ".zarr"))
    log = (lambda *a, **k: None) if args.quiet else (lambda *a, **k: print(*a, file=sys.stderr, **k))
    metrics = run_workflow(cfg, raw, output=output, overwrite=args.overwrite, resume=args.resume,
                           scheduler=args.scheduler, workers=args.workers, quiet=args.quiet, log=log)
    _print_metrics(metrics)
    log(f"results: {output}  (open with pipeline.open_result or xr.open_datatree(path, engine='zarr'))")
    return 0


def _without_nulls(node):
    if isinstance(node, dict):
        pruned = {k: _without_nulls(v) for k, v in node.items() if v is not None}
        return {k: v for k, v in pruned.items() if v not in ({}, [])}
    return node


def _inspect(args) -> int:
    import json

    import yaml

    from pipeline.workflows import open_result

    if args.verify:
        from pipeline.integrity import verify

        report = verify(args.store)
        print(report)
        if report.ok:
            return 0
        print(f"pipeline: store damaged: {report.summary()}; pipeline run WORKFLOW --resume repairs them",
              file=sys.stderr)
        return 1
    result = open_result(args.store)
    attrs = result.attrs
    print(f"store     {result.path}")
    for key in ("kind", "problem", "params", "members", "member_dims", "created", "version", "seed",
                "layout_version"):
        if key in attrs:
            print(f"{key:<9} {attrs[key]}")
    print("\nmetrics")
    _print_metrics(result.metrics)
    if "settings" in attrs:
        print("\nsettings (resolved: the problem's defaults and the workflow's keys, first member)")
        for key, value in json.loads(attrs["settings"]).items():
            print(f"  {key:<18} {value}")
    workflow = _without_nulls(yaml.safe_load(result.workflow) or {})
    print("\nworkflow (keys set or defaulted, nulls left out)\n"
          + "\n".join("  " + line for line in yaml.safe_dump(workflow, sort_keys=False).splitlines()))
    return 0


def _plot(args) -> int:
    from pipeline.workflows import open_result

    out = open_result(args.store).plot(args.output)
    print(out)
    return 0


def _problems(args) -> int:
    import inspect

    from pipeline.models.hamiltonian_systems import SYSTEMS
    from pipeline.models.lti_systems import LTI_SYSTEMS
    from pipeline.pde import PROBLEMS

    def line(name, kind, params, reference, summary):
        print(f"{name:<20} {kind:<11} params: {params or '—':<32} reference: {reference:<9} {summary}")

    def defaults(factory):
        return ", ".join(f"{k}={p.default!r}" for k, p in inspect.signature(factory).parameters.items())

    for name, spec in PROBLEMS.items():
        line(name, spec.kind, ", ".join(f"{k}={v!r}" for k, v in spec.params.items()), spec.truth, spec.summary)
    for name, factory in SYSTEMS.items():  # `hamiltonian:` workflows
        line(name, "hamiltonian", defaults(factory), "exact H", factory().description)
    for name, factory in LTI_SYSTEMS.items():  # `lti:` workflows
        doc = " ".join((factory.__doc__ or "").split()).replace("``", "")
        line(name, "lti", defaults(factory), "lsim", doc.split(". ")[0].rstrip(".") + ".")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    commands = {"run": _run, "inspect": _inspect, "plot": _plot, "problems": _problems}
    try:
        return commands[args.command](args)
    except (ConfigError, ValueError, OSError, ImportError) as err:  # OSError: ConnectionError, FileExistsError, …
        if getattr(args, "debug", False):
            import traceback

            traceback.print_exception(err)
        print(f"pipeline: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        from pipeline.pde.integrators import DivergenceError

        if not isinstance(err, DivergenceError):
            raise
        if getattr(args, "debug", False):
            import traceback

            traceback.print_exception(err)
        print(f"pipeline: diverged: {err}", file=sys.stderr)  # a result, not a crash: exit 3
        return 3
    except KeyboardInterrupt:  # pragma: no cover
        print("pipeline: interrupted; continue with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
