"""Keeping the lake's tables healthy as nights accumulate: retention, compaction, VACUUM.

Why each piece, and why these defaults (all settable under `maintenance:` in the nightly config):
- Per-run gold tables (`gold.case_payments` above all: one row per priced case per night) keep the rows
  of the last `keep_runs` priced runs (default 7: a week of nights to compare or re-publish). Publishing
  copies what a release needs into `published/`, so older run rows are dead weight; a run's rows sit in
  files of their own (replaceWhere per run), so deleting a run removes whole files without a rewrite.
- Each night's incremental writes add a few small files per table. Once a table holds `compact_min_files`
  files (default 64) it is compacted (Delta OPTIMIZE, bin-packing) with only files under `small_file_mb`
  (default 64 MiB) rewritten into files of up to `target_file_mb` (default 256 MiB): earlier compacted
  files are never rewritten again, so a night's compaction costs what the recent nights added, and
  files stay large enough for object stores (~100-1000 MiB is the usual sweet spot) while a 10M-case
  table of ~1 GiB still splits over several tasks on a small cluster.
- VACUUM deletes files that no version within `vacuum_retain_hours` (default 168 = 7 days, Delta's own
  default) still references: readers of the last week's versions, and a night running concurrently
  with the VACUUM, keep working. Maintenance as a whole (retention, compaction, VACUUM) runs at most
  once per `vacuum_interval_hours` (default 24: once a night for a daily schedule, not again for a
  same-day re-run or catch-up night, which then spends nothing on it: checking 11 tables' file counts
  and properties alone costs seconds of Delta snapshot work, and a few more small files wait a day).
- Published tables are never vacuumed and keep their whole Delta log (`delta.logRetentionDuration` is
  raised to `published_log_retention_days`, default 3650): releases are append-only and each records
  the Delta versions of its tables, so `versionAsOf` reads of any release keep working for years. The
  releases are read by release_id as well (jobs/releases.py), which no retention touches.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from delta.tables import DeltaTable
from pydantic import BaseModel, ConfigDict, Field
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk

# tables the nightly appends to batch by batch or run by run, i.e. the ones that collect small files
GROWING = (("bronze", "discharges_raw"), ("silver", "discharges"), ("silver", "quarantine"),
           ("silver", "case_quality"), ("gold", "grouped_cases"), ("gold", "case_payments"))
PER_RUN = ("drg_weights", "base_rates", "case_payments", "hospital_indices", "grouping_quality", "calibrations")
PUBLISHED = ("releases", "drg_weights", "base_rates", "group_stats", "hospital_indices")


class MaintenanceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    keep_runs: int = Field(7, ge=1)
    compact_min_files: int = Field(64, ge=2)
    small_file_mb: int = Field(64, ge=1)
    target_file_mb: int = Field(256, ge=1)
    vacuum_retain_hours: float = Field(168.0, ge=0)
    vacuum_interval_hours: float = Field(24.0, ge=0)
    published_log_retention_days: int = Field(3650, ge=30)


def _sql_path(path: str) -> str:
    return "delta.`" + path.replace("`", "``") + "`"


def keep_recent_runs(spark: SparkSession, lake: str, keep: int) -> int:
    """Delete the rows of all but the last `keep` priced runs from the per-run gold tables; runs deleted."""
    weights = lk.table_path(lake, "gold", "drg_weights")
    if not lk.exists(spark, weights):
        return 0
    history = DeltaTable.forPath(spark, weights).history().where(F.col("userMetadata").isNotNull())
    runs = [r.userMetadata for r in history.groupBy("userMetadata").agg(F.max("version").alias("v"))
            .orderBy(F.desc("v")).collect()]
    old = runs[keep:]
    if not old:
        return 0
    for table in PER_RUN:
        path = lk.table_path(lake, "gold", table)
        if lk.exists(spark, path):
            DeltaTable.forPath(spark, path).delete(F.col("run_id").isin(old))
    return len(old)


def compact(spark: SparkSession, path: str, spec: MaintenanceSpec) -> bool:
    """Bin-pack the table's small files once it holds `compact_min_files` files; True when it did."""
    if not lk.exists(spark, path):
        return False
    if DeltaTable.forPath(spark, path).detail().first()["numFiles"] < spec.compact_min_files:
        return False
    conf = {"spark.databricks.delta.optimize.minFileSize": str(spec.small_file_mb * 2**20),
            "spark.databricks.delta.optimize.maxFileSize": str(spec.target_file_mb * 2**20)}
    before = {k: spark.conf.get(k, None) for k in conf}
    try:
        for k, v in conf.items():
            spark.conf.set(k, v)
        DeltaTable.forPath(spark, path).optimize().executeCompaction()
    finally:
        _restore(spark, before)
    return True


def _restore(spark: SparkSession, before: dict[str, str | None]) -> None:
    for k, v in before.items():
        if v is None:
            spark.conf.unset(k)
        else:
            spark.conf.set(k, v)


def protect_published(spark: SparkSession, lake: str, days: int) -> None:
    """Keep the Delta log of every published table for `days` (set once; later nights find it set)."""
    wanted = f"interval {days} days"
    for table in PUBLISHED:
        path = lk.table_path(lake, "published", table)
        if not lk.exists(spark, path):
            continue
        props = DeltaTable.forPath(spark, path).detail().first()["properties"] or {}
        if props.get("delta.logRetentionDuration") != wanted:
            spark.sql(f"ALTER TABLE {_sql_path(path)} SET TBLPROPERTIES "
                      f"('delta.logRetentionDuration' = '{wanted}')")


def vacuum(spark: SparkSession, lake: str, retain_hours: float) -> int:
    """VACUUM every table of the lake except the published ones; returns the number of tables vacuumed."""
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    before = spark.conf.get(check, None)
    if retain_hours < 168:  # Delta refuses short retention unless told that no reader needs older files
        spark.conf.set(check, "false")
    done = 0
    try:
        for layer in ("bronze", "silver", "gold", "ops"):
            for table in _tables(spark, lake, layer):
                DeltaTable.forPath(spark, lk.table_path(lake, layer, table)).vacuum(retain_hours)
                done += 1
    finally:
        _restore(spark, {check: before})
    return done


def _tables(spark: SparkSession, lake: str, layer: str) -> list[str]:
    """The Delta tables under `<lake>/<layer>/` (listed through Hadoop, so object stores work too)."""
    jvm = spark._jvm
    root = jvm.org.apache.hadoop.fs.Path(lk.table_path(lake, layer, "x")).getParent()
    fs = root.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(root):
        return []
    names = sorted(s.getPath().getName() for s in fs.listStatus(root) if s.isDirectory())
    return [n for n in names if lk.exists(spark, lk.table_path(lake, layer, n))]


def last_vacuum(spark: SparkSession, lake: str) -> datetime | None:
    """When the last nightly VACUUM ended (from ops.runs: a `maintain` step whose note says it vacuumed),
    else when the lake's first run started: a lake younger than the interval has nothing to vacuum yet."""
    path = lk.table_path(lake, "ops", "runs")
    if not lk.exists(spark, path):
        return None
    runs = spark.read.format("delta").load(path)
    vacuumed = F.col("step") == "maintain"
    if "note" in runs.columns:
        vacuumed &= (F.col("status") == "ok") & F.col("note").contains("vacuumed")
    row = runs.agg(F.max(F.when(vacuumed, F.col("ended_at"))), F.min("started_at")).first()
    return row[0] or row[1]


def maintain(spark: SparkSession, lake: str, spec: MaintenanceSpec, now: datetime | None = None) -> str:
    """Tonight's maintenance; returns what it did, for ops.runs."""
    done = []
    now = now or datetime.now(UTC).replace(tzinfo=None)
    last = last_vacuum(spark, lake)
    # Run retention and VACUUM together, at most once per interval: both cost commits or listings
    # whatever they find, and a day's delay changes nothing for either.
    due = last is None or now - last >= timedelta(hours=spec.vacuum_interval_hours)
    if not due:  # a re-run or an extra night within the interval: its few files wait for the next one
        return f"nothing due (maintenance ran within the last {spec.vacuum_interval_hours:g} h)"
    dropped = keep_recent_runs(spark, lake, spec.keep_runs)
    if dropped:
        done.append(f"dropped {dropped} old run(s) from per-run gold tables")
    compacted = [f"{layer}.{table}" for layer, table in GROWING
                 if compact(spark, lk.table_path(lake, layer, table), spec)]
    if compacted:
        done.append(f"compacted {', '.join(compacted)}")
    protect_published(spark, lake, spec.published_log_retention_days)  # before the VACUUM, every time
    n = vacuum(spark, lake, spec.vacuum_retain_hours)
    done.append(f"vacuumed {n} tables (retain {spec.vacuum_retain_hours:g} h)")
    return "; ".join(done)
