"""The ``pipeline`` command.

``pipeline run WORKFLOW [--set KEY=VALUE ...] [--quiet]`` validates the workflow, runs it and
prints its metrics.  Errors in the input print one message and exit with status 2, without a
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from pipeline import __version__
from pipeline.config import ConfigError, load_workflow

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"swim-pipeline {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a workflow file")
    run.add_argument("workflow", help="path of the YAML workflow")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a key, e.g. --set model.hidden_layer_sizes=1024 (repeatable)")
    run.add_argument("--json", dest="json_path", metavar="PATH", help="also write the metrics as JSON")
    run.add_argument("--quiet", action="store_true", help="print only the metrics")
    return parser


def _run(args) -> int:
    from pipeline.runner import run_supervised

    cfg = load_workflow(args.workflow, args.overrides)
    log = (lambda *a, **k: None) if args.quiet else (lambda *a, **k: print(*a, file=sys.stderr, **k))
    metrics = run_supervised(cfg, log=log)
    width = max(len(k) for k in metrics)
    for key, value in metrics.items():
        shown = f"{value:.3e}" if isinstance(value, float) and key not in ("fit_wall_seconds", "fit_cpu_seconds") \
            else (f"{value:.2f}" if isinstance(value, float) else value)
        print(f"{key:<{width}}  {shown}")
    if args.json_path:
        with open(args.json_path, "x") as fh:  # never overwrite an existing file
            json.dump(metrics, fh, indent=2)
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
    except (ConfigError, ValueError, FileExistsError) as err:
        print(f"pipeline: error: {err}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
