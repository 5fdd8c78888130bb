"""`drg schema`: print the canonical discharge contract, generated from schemas.discharge."""

from __future__ import annotations

from schemas.discharge import markdown_table


def register(sub) -> None:
    parser = sub.add_parser("schema", help="print the canonical discharge schema (Markdown)")
    parser.set_defaults(func=run)


def run(args) -> int:
    print(markdown_table())
    return 0
