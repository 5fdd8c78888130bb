"""The run log (`ops.runs`) and the lake lock: what an unattended night leaves behind for operators.

Why a context manager per step: every step of a night must leave one row saying what it read, wrote and
quarantined, or why it failed, even when the failure is an exception deep inside Spark. `step()` times
the block, records `ok` / `skipped` / `failed` (with a one-line error) and re-raises, so the caller's
control flow is unchanged.

Why replaceWhere on (run_id, step) with retries: a re-run of the same run id (resume after a crash)
replaces its own rows instead of duplicating them, and two runs recording at the same moment are
serialised by Delta's optimistic concurrency: the loser of a commit race gets a concurrency exception
and simply tries again against the new table version. (delta-spark 4 converts the JVM's conflict into
its Python class only once `delta.exceptions.captured` is imported; without it the retry never fired
and the night's grouping and validation threads, recording at the same moment, failed the night.)

Why a background writer (`RunLog`): a row is a Delta commit of its own (about half a second), and a
night records seven; the nightly hands its rows to one writer thread, which commits them in order
while the next step runs, and waits for them before maintenance and before it returns. A failed step's
row is still written before its error propagates.

Why a lock file as well: Delta keeps each table consistent, but two nights interleaving their steps
would compute releases from each other's half-finished inputs. The lock makes the second run refuse
before it writes anything. It is an atomic create-if-absent of `<lake>/_nightly.lock` (jobs.lake_files):
`O_CREAT | O_EXCL` on a local or POSIX-shared filesystem, a conditional PUT (`If-None-Match: *`) on S3,
`create(overwrite=false)` on HDFS, ABFS and GCS, so it holds on object storage too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import delta.exceptions.captured  # noqa: F401  (makes PySpark raise Delta's commit conflicts as the classes below)
from delta import exceptions as delta_errors
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from jobs import lake as lk
from jobs import lake_files
from jobs.errors import PipelineError
from jobs.progress import StepDisplay
from jobs.runs import minted

RUNS_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType(), False),
    T.StructField("step", T.StringType(), False),
    T.StructField("started_at", T.TimestampType(), False),
    T.StructField("ended_at", T.TimestampType(), False),
    T.StructField("rows_in", T.LongType()),
    T.StructField("rows_out", T.LongType()),
    T.StructField("rows_quarantined", T.LongType()),
    T.StructField("status", T.StringType(), False),
    T.StructField("error", T.StringType()),
    T.StructField("note", T.StringType()),  # what the step decided and why (e.g. incremental or full)
])
STATUSES = ("ok", "failed", "skipped")
ERROR_MAX_CHARS = 500
# Delta's commit conflicts: siblings, not subclasses of DeltaConcurrentModificationException
COMMIT_RACES = tuple(getattr(delta_errors, name) for name in delta_errors.__all__)
COMMIT_ATTEMPTS = 6
LOCK_FILE = "_nightly.lock"
DEFAULT_STALE_AFTER = timedelta(hours=12)
GARBLED_GRACE = timedelta(seconds=60)


def one_line(exc: BaseException) -> str:
    """A failure as one line: PipelineErrors are already written for operators; anything else gets its
    type and first message line (a JVM trace's first line names the Java exception and its message)."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    line = first if isinstance(exc, PipelineError) else f"{type(exc).__name__}: {first}".rstrip(": ")
    return line if len(line) <= ERROR_MAX_CHARS else line[: ERROR_MAX_CHARS - 3] + "..."


@dataclass
class StepRecord:
    """One row of ops.runs while its step runs; the block fills in counts via `rows()` or `skip()`."""

    run_id: str
    step: str
    started_at: datetime
    ended_at: datetime | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_quarantined: int | None = None
    status: str = "ok"
    error: str | None = None
    note: str | None = field(default=None, compare=False)  # shown on the display and stored in ops.runs

    def rows(self, in_: int | None = None, out: int | None = None, quarantined: int | None = None) -> None:
        """Add counts (a step that loops over batches calls this once per batch)."""

        def add(current: int | None, more: int | None) -> int | None:
            return current if more is None else (current or 0) + int(more)

        self.rows_in = add(self.rows_in, in_)
        self.rows_out = add(self.rows_out, out)
        self.rows_quarantined = add(self.rows_quarantined, quarantined)

    def skip(self, reason: str) -> None:
        """Mark the step as having nothing to do (e.g. no new batch); it is recorded as `skipped`."""
        self.status = "skipped"
        self.note = reason

    @property
    def seconds(self) -> float:
        end = self.ended_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    def as_row(self) -> tuple:
        return (self.run_id, self.step, self.started_at, self.ended_at, self.rows_in, self.rows_out,
                self.rows_quarantined, self.status, self.error, self.note)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def record(spark: SparkSession, lake: str, rec: StepRecord) -> None:
    """Write (or replace) the row of (run_id, step) in ops.runs, retrying lost commit races."""
    if rec.status not in STATUSES:
        raise ValueError(f"run log status must be one of {STATUSES}, got {rec.status!r}")
    path = lk.table_path(lake, "ops", "runs")
    df = spark.createDataFrame([rec.as_row()], RUNS_SCHEMA)
    predicate = f"run_id = {_sql_literal(rec.run_id)} AND step = {_sql_literal(rec.step)}"
    for attempt in range(COMMIT_ATTEMPTS):
        try:
            # merge_schema: lakes from before `note`; a minted run id's rows are new (appended)
            lk.replace_where(df, path, predicate, rec.run_id, merge_schema=True, fresh=minted(rec.run_id))
            return
        except COMMIT_RACES:
            if attempt == COMMIT_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * 2**attempt * random.uniform(0.5, 1.5))  # jittered: racers part


class RunLog:
    """Records ops.runs rows on one background thread, in the order given (see the module docstring).

    `flush()` waits for every row handed over so far and raises the first recording failure."""

    def __init__(self, spark: SparkSession, lake: str) -> None:
        self.spark, self.lake = spark, lake
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drg-runlog")
        self._pending: list[Future] = []
        self._lock = threading.Lock()  # steps of two threads (validation, grouping) hand rows over

    def submit(self, rec: StepRecord) -> None:
        with self._lock:
            self._pending.append(self._pool.submit(record, self.spark, self.lake, dataclasses.replace(rec)))

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        errors = [f.exception() for f in pending]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    def close(self) -> None:
        """Wait for the writer thread to finish every row handed over."""
        self._pool.shutdown(wait=True)


@contextmanager
def background_log(spark: SparkSession, lake: str) -> Iterator[RunLog]:
    """A RunLog for the block; leaving it waits for its rows. A recording failure fails the block unless
    the block already failed, whose error then propagates (the recording problem goes to stderr)."""
    log = RunLog(spark, lake)
    try:
        yield log
    except BaseException:
        try:
            log.flush()
        except Exception as log_exc:
            print(f"drg: could not record a step in ops.runs: {one_line(log_exc)}", file=sys.stderr)
        raise
    finally:
        log.close()
    log.flush()


@contextmanager
def step(
    spark: SparkSession,
    lake: str,
    run_id: str,
    name: str,
    display: StepDisplay | None = None,
    log: RunLog | None = None,
) -> Iterator[StepRecord]:
    """Run a block as step `name` of `run_id` and record it in ops.runs; failures are recorded and re-raised.

    `log`: record through that background writer (a failure's row is still written before re-raising).
    If recording the failure itself fails (say the lake became unreachable), the original error still
    propagates; the recording problem is reported on stderr so it is not lost either.
    """
    def write(row: StepRecord) -> None:
        if log is not None:
            log.submit(row)
        else:
            record(spark, lake, row)

    rec = StepRecord(run_id, name, datetime.now(UTC))
    spark.sparkContext.setJobGroup(f"{run_id}/{name}", f"drg {name} ({run_id})")  # the Spark UI groups jobs by step
    if display is not None:
        display.started(name)
    try:
        yield rec
    except BaseException as exc:
        rec.status, rec.error, rec.ended_at = "failed", one_line(exc), datetime.now(UTC)
        if display is not None:
            display.finished(rec)
        try:
            write(rec)
            if log is not None:
                log.flush()
        except Exception as log_exc:  # never mask the step's own failure
            print(f"drg: could not record failed step {name} in ops.runs: {one_line(log_exc)}", file=sys.stderr)
        raise
    rec.ended_at = datetime.now(UTC)
    write(rec)
    if display is not None:
        display.finished(rec)


# --- lake lock -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    run_id: str
    pid: int
    host: str
    since: datetime

    def describe(self, lake: str) -> str:
        return (f"lake {lake} is locked by run {self.run_id} since {self.since.isoformat(timespec='seconds')} "
                f"(pid {self.pid} on host {self.host})")


def lock_path(lake: str) -> str:
    return f"{str(lake).rstrip('/')}/{LOCK_FILE}"


def _read_holder(path: str, spark: SparkSession | None = None) -> LockHolder | None:
    """The lock's holder; None when the file vanished meanwhile. A garbled lock file (its holder is
    between create and write, or died there) is reported with pid -1 and the file's modification time."""
    text = lake_files.read_text(path, spark)
    if text is None:
        return None
    try:
        data = json.loads(text)
        return LockHolder(str(data["run_id"]), int(data["pid"]), str(data["host"]),
                          datetime.fromisoformat(data["since"]))
    except (ValueError, KeyError, TypeError):
        return LockHolder("unknown", -1, "unknown", lake_files.modified(path, spark) or datetime.now(UTC))


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale(holder: LockHolder, stale_after: timedelta, now: datetime | None = None) -> bool:
    """A lock is stale when its process is gone (checkable only on the same host) or it is too old."""
    now = now or datetime.now(UTC)
    if holder.pid < 0:  # garbled: give a holder still writing it a minute before calling it dead
        return now - holder.since > GARBLED_GRACE
    if holder.host == socket.gethostname() and not _pid_alive(holder.pid):
        return True
    return now - holder.since > stale_after


def _create(path: str, run_id: str, spark: SparkSession | None) -> bool:
    """Atomically create the lock file with our identity; False if it already exists."""
    holder = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
              "since": datetime.now(UTC).isoformat()}
    return lake_files.create_exclusive(path, json.dumps(holder), spark)


def _break_stale(path: str, judged: LockHolder, spark: SparkSession | None) -> None:
    """Remove a stale lock without racing another breaker: a second exclusive file serialises breakers,
    and the lock is re-read under it so a lock freshly taken by someone else is never removed."""
    guard = path + ".break"
    if not lake_files.create_exclusive(guard, "", spark):
        # Another process is breaking it now; a guard left by a breaker that died is old and removable.
        since = lake_files.modified(guard, spark)
        if since is not None and datetime.now(UTC) - since > GARBLED_GRACE:
            lake_files.delete(guard, spark)
        return
    try:
        if _read_holder(path, spark) == judged:
            lake_files.delete(path, spark)
    finally:
        lake_files.delete(guard, spark)


@dataclass(frozen=True)
class LakeLock:
    lake: str
    run_id: str
    path: str  # the lock file: <lake>/_nightly.lock, local or on object storage
    broke: LockHolder | None = None  # the stale holder this acquisition replaced, if any
    spark: SparkSession | None = field(default=None, compare=False, repr=False)


def acquire(
    lake: str, run_id: str, stale_after: timedelta = DEFAULT_STALE_AFTER, spark: SparkSession | None = None
) -> LakeLock:
    """Take the lake's nightly lock or raise PipelineError naming the holder; stale locks are broken.
    A lake on object storage is reached through `spark` (default: the active session)."""
    path = lock_path(lake)
    broke = None
    for _ in range(3):  # create, or break a stale lock and create; a live holder ends the loop
        if _create(path, run_id, spark):
            return LakeLock(lake, run_id, path, broke, spark)
        holder = _read_holder(path, spark)
        if holder is None:
            continue  # released between our create and our read
        if not is_stale(holder, stale_after):
            raise PipelineError(holder.describe(lake))
        _break_stale(path, holder, spark)
        broke = holder
    holder = _read_holder(path, spark)
    raise PipelineError(holder.describe(lake) if holder else f"lake {lake}: could not take the nightly lock")


def release(lock: LakeLock) -> None:
    """Remove the lock only if it is still ours (a run that overran `stale_after` may have lost it)."""
    holder = _read_holder(lock.path, lock.spark)
    if holder is not None and holder.run_id == lock.run_id and holder.pid == os.getpid():
        lake_files.delete(lock.path, lock.spark)


@contextmanager
def lake_lock(
    lake: str, run_id: str, stale_after: timedelta = DEFAULT_STALE_AFTER, spark: SparkSession | None = None
) -> Iterator[LakeLock]:
    """Hold the lake's nightly lock for the block: `with lake_lock(lake, run_id): ...`."""
    lock = acquire(lake, run_id, stale_after, spark)
    try:
        yield lock
    finally:
        release(lock)
