"""`drg`: one subcommand per stage. Each stage module registers its own parser.

Why a registry: stages are added independently; each module owns its options and its `run(args)`, and
this file only lists them. Every user-fixable failure is a PipelineError printed as one line, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from functools import partial

from jobs import server
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
    parser.add_argument(
        "--server", metavar="SOCKET",
        help=f"run the command in the warm driver of `drg serve` listening there (default: ${server.SERVER_ENV})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in STAGES:
        importlib.import_module(name).register(sub)
    server.register(sub)
    return parser


def main(argv: list[str] | None = None, *, in_server: bool = False) -> int:
    """Run one `drg` command: in a `drg serve` process when one is named (--server, DRG_SERVER) and
    answers, else here. `in_server`: the server itself is running it, so it never forwards."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    target = None if in_server else args.server or os.environ.get(server.SERVER_ENV)
    if target and args.command != "serve":
        code = server.forward(target, argv)
        if code is not None:
            return code
    try:
        if args.command == "serve":
            if in_server:
                raise PipelineError("already running in a server")
            return server.serve(args, partial(main, in_server=True))
        return int(args.func(args) or 0)
    except PipelineError as exc:
        print(f"drg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"drg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
