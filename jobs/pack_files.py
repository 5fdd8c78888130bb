"""Pack folders on disk: where a pack is (a path, or a shipped pack's name), its CSV tables read and
written, and the code-system header that every pack format's manifest shares.

Why a module of its own: both pack formats (jobs.definitions, format 1, and jobs.schemes.pack, the
rule packs of format 2) read and write the same kind of folder, and jobs.definitions dispatches to the
rule-pack parser; with the file handling here, imports run one way (definitions -> schemes.pack -> here).
"""

from __future__ import annotations

import csv
from importlib.resources.abc import Traversable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from jobs.config import locate
from jobs.errors import PipelineError

BUILTIN_PACKS = "jobs.packs"


class CodeSystem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    diagnosis: str
    procedure: str


def locate_pack(pack: str | Path | Traversable) -> Traversable:
    """A pack folder by path, or a shipped pack by name (`demo`): see jobs.config.locate."""
    return locate(pack, BUILTIN_PACKS)


def read_csv(path: Traversable, columns: list[str]) -> list[dict]:
    """A pack table's rows as dicts of trimmed strings; a missing file, column or bad encoding is one line."""
    if not path.is_file():
        raise PipelineError(f"definitions pack: missing {path}")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise PipelineError(f"definitions pack: {path} lacks column(s) {', '.join(missing)}")
            return [{c: (row[c] or "").strip() for c in columns} for row in reader]
    except UnicodeDecodeError as exc:
        raise PipelineError(f"definitions pack: {path} is not UTF-8 ({exc.reason})") from exc
    except csv.Error as exc:
        raise PipelineError(f"definitions pack: {path} is not valid CSV ({exc})") from exc


def write_csv(path: Path, header: list[str], rows) -> int:
    """Write one pack table (UTF-8, header row, `\\n` line ends; None as empty); returns the row count."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        n = 0
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
            n += 1
    return n
