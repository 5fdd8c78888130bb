"""Run ids: one per stage invocation or per night, stamped on every commit and row a run writes."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime

_MINTED: set[str] = set()
_LOCK = threading.Lock()


def new_run_id(now: datetime | None = None) -> str:
    """`YYYYMMDDTHHMMSSZ-xxxxxx`: sortable by time, unique across concurrent runs."""
    now = now or datetime.now(UTC)
    run_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
    with _LOCK:
        _MINTED.add(run_id)
    return run_id


def minted(run_id: str) -> bool:
    """Whether this process made `run_id` (new_run_id), so no table can hold a row of it yet.

    Why it matters: a row keyed by such an id is written with a blind append instead of Delta's
    replaceWhere, which first reconstructs the table's file list to find rows to remove (jobs.lake
    `fresh`, which appends only the first write of a key to a table). An id given from outside
    (`--run-id`, a re-run) may have rows and is always replaced."""
    with _LOCK:
        return run_id in _MINTED
