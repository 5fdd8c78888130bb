"""Compare the published tables of two lakes (read without Spark, as statisticians read them)."""

from __future__ import annotations

import math

from jobs.releases import read_release
from schemas.publish import TABLES


def published(lake: str, table: str, storage_options: dict | None = None) -> dict[tuple, dict]:
    """The latest release's rows of `table`, keyed by the table's text columns (its group key)."""
    fields = TABLES[table]
    keys = [name for name, kind in fields if kind == "string"]
    frame = read_release(lake, table, storage_options=storage_options)
    rows = frame[[name for name, _ in fields]].to_dict("records")
    out = {tuple(r[k] for k in keys): r for r in rows}
    assert len(out) == len(rows), f"{table}: key columns {keys} are not unique"
    return out


def _same(a, b, tolerance: float) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return (a is None or a != a) and (b is None or b != b)
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))
    return a == b


def differences(a: dict[tuple, dict], b: dict[tuple, dict], tolerance: float = 1e-9) -> list[str]:
    """Human-readable differences: keys only on one side, and values further apart than `tolerance`
    (absolute below 1, relative above; text, counts and flags must be equal)."""
    out = [f"only in first: {k}" for k in sorted(a.keys() - b.keys(), key=str)]
    out += [f"only in second: {k}" for k in sorted(b.keys() - a.keys(), key=str)]
    for key in sorted(a.keys() & b.keys(), key=str):
        out += [f"{key} {col}: {a[key][col]!r} != {b[key][col]!r}"
                for col in a[key] if not _same(a[key][col], b[key][col], tolerance)]
    return out
