"""The lake: every table lives at `<lake>/<layer>/<table>` as a path-based Delta table.

Why one module: idempotency and crash safety are properties of *how* we write, so every stage writes
through these few functions. Each write is one Delta commit (atomic: a crash leaves the previous
version readable) and carries the run id in the commit's userMetadata, so any table can be read as of a
run. Re-running a batch replaces exactly the rows it owns (`replaceWhere`), never appends twice.

Why `stats_columns`: Delta collects min/max statistics for the first 32 columns of every file it writes,
which on a wide per-case table costs more than encoding the data. Case tables name the few columns
their replaceWhere predicates and readers filter on (region, batch, run); those are all data skipping
needs, because each write holds one region's batch or one run, so the files are clustered by them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.errors import PipelineError

LAYERS = ("bronze", "silver", "gold", "published", "ops")
WRITERS = 4  # table operations run at once by `concurrently`
_FRESH_WRITES: set[tuple[str, str]] = set()  # (table path, predicate) first written by an append here
_FRESH_LOCK = threading.Lock()
T = TypeVar("T")


def table_path(lake: str, layer: str, table: str) -> str:
    if layer not in LAYERS:
        raise PipelineError(f"unknown lake layer {layer!r}; expected one of {', '.join(LAYERS)}")
    return f"{str(lake).rstrip('/')}/{layer}/{table}"


def local_folder(lake: str) -> Path | None:
    """The lake as a local folder (plain path, `file:` or `file://` URI), or None for object-store URIs
    (s3a://, abfss://, gs://, dbfs:): for what Delta does not write, such as locks and GX's files."""
    text = str(lake)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    if text.startswith("file:"):
        return Path(text[len("file:"):])
    if "://" in text or text.startswith("dbfs:"):
        return None
    return Path(text)


def exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def read(
    spark: SparkSession,
    lake: str,
    layer: str,
    table: str,
    version: int | None = None,
) -> DataFrame:
    """Read a table, optionally as of a Delta version; a missing table is a clear error."""
    path = table_path(lake, layer, table)
    if not exists(spark, path):
        raise PipelineError(f"table {layer}.{table} not found at {path}: run the stage that writes it first")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def _writer(
    df: DataFrame, run_id: str | None, partition_by: Iterable[str] | None, stats_columns: Iterable[str] | None
):
    writer = df.write.format("delta")
    if run_id:
        writer = writer.option("userMetadata", run_id)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    if stats_columns:  # a table property, fixed when the table is created
        writer = writer.option("delta.dataSkippingStatsColumns", ",".join(stats_columns))
    return writer


def replace_where(
    df: DataFrame,
    path: str,
    predicate: str,
    run_id: str | None = None,
    partition_by: Iterable[str] | None = None,
    stats_columns: Iterable[str] | None = None,
    merge_schema: bool = False,
    fresh: bool = False,
) -> None:
    """Atomically replace the rows matching `predicate` with `df` (creates the table on first write).

    Every row of `df` must satisfy `predicate`; Delta checks this, which is what makes re-runs exact.
    merge_schema: columns `df` adds to an existing table are added to it (older rows read as null).
    fresh: the caller knows no row matched `predicate` before this process ran (its key is a run id this
    process minted, jobs.runs.minted), so the first write of `predicate` to this table is an append.
    Same commit, same result; but a replaceWhere first reconstructs the table's file list to find what
    to remove (Spark jobs over the Delta log: about 0.3-0.8 s a table however small, against 0.25 s for
    the whole append), and a night writes some twenty run-keyed rows and tables. A second write of the
    same `predicate` (a retry after a failure, whose first attempt may have committed) replaces.
    """
    if fresh:
        with _FRESH_LOCK:
            fresh = (path, predicate) not in _FRESH_WRITES
            _FRESH_WRITES.add((path, predicate))
    writer = _writer(df, run_id, partition_by, stats_columns)
    writer = writer.mode("append") if fresh else writer.mode("overwrite")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    if not fresh and DeltaTable.isDeltaTable(df.sparkSession, path):
        writer = writer.option("replaceWhere", predicate)
    writer.save(path)


def overwrite(
    df: DataFrame,
    path: str,
    run_id: str | None = None,
    partition_by: Iterable[str] | None = None,
    stats_columns: Iterable[str] | None = None,
) -> None:
    """Replace the whole table in one commit (for tables that are recomputed as a whole)."""
    _writer(df, run_id, partition_by, stats_columns).mode("overwrite").option("overwriteSchema", "true").save(path)


def concurrently(calls: Iterable[Callable[[], T]]) -> list[T]:
    """Run independent table operations (writes, each its own table's commit, or small reads) at once;
    their results in order.

    Why: a stage that writes several small tables spends most of each write on the driver (planning,
    Delta's snapshot and commit, file listing) while the other core idles, so writes overlap well.
    Each table still gets exactly one atomic commit, so crash safety is unchanged; every call runs to
    its end, then the first failure (in the given order) is raised."""
    calls = list(calls)
    if len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=min(WRITERS, len(calls)), thread_name_prefix="drg-write") as pool:
        futures = [pool.submit(call) for call in calls]
    return [f.result() for f in futures]


def version(spark: SparkSession, path: str) -> int:
    """Current Delta version of a table (-1 when it does not exist yet)."""
    if not exists(spark, path):
        return -1
    return DeltaTable.forPath(spark, path).history(1).select("version").first()[0]


def version_of_run(spark: SparkSession, path: str, run_id: str) -> int | None:
    """The last version committed by `run_id` (from commit userMetadata), for reads as of a run."""
    if not exists(spark, path):
        return None
    row = (
        DeltaTable.forPath(spark, path)
        .history()
        .where(F.col("userMetadata") == run_id)
        .agg({"version": "max"})
        .first()
    )
    return row[0] if row else None
