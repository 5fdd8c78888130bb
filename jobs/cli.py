"""`drg`: one subcommand per stage. Each stage module registers its own parser.

Why a registry: stages are added independently; each module owns its options and its `run(args)`, and
this file only lists them. Every user-fixable failure is a PipelineError printed as one line, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from jobs.errors import PipelineError

# Modules exposing `register(subparsers)`; each sets `func` on its parser.
STAGES = (
    "jobs.schema_cmd",
    "jobs.ingest",
    "jobs.synth",
    "jobs.definitions",
    "jobs.group",
    "jobs.validate",
    "jobs.price",
    "jobs.publish",
    "jobs.stats",
    "jobs.names",
    "jobs.nightly",
    "jobs.demo",
    "jobs.dip.stage",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drg", description="DRG grouping and recalibration on Spark + Delta")
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="Spark configuration override"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in STAGES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PipelineError as exc:
        print(f"drg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"drg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
