"""Whether two nights produced the same tables: the check that an incremental night equals a full recompute.

Why a module and not a test helper: it is how the incremental mode is proven (tests/test_incremental.py)
and measured (bench/bench_incremental.py), and an operator can run it the same way on a real lake
against a `--full` rehearsal on a copy. What may differ is what identifies a run, not what it computed:
run ids, release ids and dates, and timestamps are left out; floating-point columns may differ by a
relative 1e-12 (the weights are built from exact sums, so in practice they are bit-equal).

Per-case tables are compared in Spark (rows of one side missing from the other, both ways, doubles
rounded to 12 significant digits); per-run and published tables are small and compared on the driver,
matched on their non-floating columns.
"""

from __future__ import annotations

import math

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import lake as lk
from jobs.pricing.calibration import calibrated_by

# what identifies a run or where a row was read from (two lakes fed from two landing folders), not what
# was computed
IGNORED = {"run_id", "calibration_id", "calibration_run_id", "release_id", "release_date", "published_at",
           "ingested_at", "validated_at", "recorded_at",
           "dip_run_id", "source_file"}
TOLERANCE = 1e-12
# (layer, table, how its rows of one night are found)
CASE_TABLES = (("silver", "discharges"), ("silver", "case_quality"), ("gold", "grouped_cases"))
LAKE_TABLES = (("gold", "hospital_quality"),)
# DIP's gold tables hold the latest `drg dip` run only (replaced whole), compared as they stand when present
DIP_BIG = (("gold", "dip_case_scores"),)
DIP_SMALL = (("gold", "dip_catalogue"), ("gold", "dip_point_values"), ("gold", "dip_hospital_indices"),
             ("gold", "dip_monitoring"))
RUN_TABLES = (("gold", "drg_weights"), ("gold", "base_rates"), ("gold", "hospital_indices"),
              ("gold", "grouping_quality"), ("gold", "calibrations"))
BIG_RUN_TABLES = (("gold", "case_payments"),)
RELEASE_TABLES = ("drg_weights", "base_rates", "group_stats", "hospital_indices")
DIP_RELEASE_TABLES = ("dip_catalogue", "dip_point_values", "dip_hospital_indices")


def _kept(df: DataFrame) -> DataFrame:
    return df.select(*sorted(c for c in df.columns if c not in IGNORED))


def _rounded(df: DataFrame) -> DataFrame:
    """Doubles to 12 significant digits (as text), so the exact comparison of big tables tolerates 1e-12."""
    cols = []
    for f in df.schema.fields:
        if isinstance(f.dataType, (T.DoubleType, T.FloatType)):
            cols.append(F.format_string("%.11e", F.col(f.name)).alias(f.name))
        else:
            cols.append(F.col(f.name))
    return df.select(*cols)


def _big(name: str, a: DataFrame, b: DataFrame) -> list[str]:
    a, b = _rounded(_kept(a)), _rounded(_kept(b))
    if a.columns != b.columns:
        return [f"{name}: columns differ: {a.columns} vs {b.columns}"]
    only_a, only_b = a.exceptAll(b).count(), b.exceptAll(a).count()
    if only_a or only_b:
        return [f"{name}: {only_a} row(s) only in the first, {only_b} only in the second"]
    return []


def _close(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return abs(x - y) <= TOLERANCE * max(1.0, abs(x), abs(y))
    return x == y


def _small(name: str, a: DataFrame, b: DataFrame) -> list[str]:
    a, b = _kept(a), _kept(b)
    if a.columns != b.columns:
        return [f"{name}: columns differ: {a.columns} vs {b.columns}"]
    exact = [i for i, f in enumerate(a.schema.fields) if not isinstance(f.dataType, (T.DoubleType, T.FloatType))]

    def rows(df: DataFrame) -> list[tuple]:
        return sorted((tuple(r) for r in df.collect()), key=lambda r: tuple(repr(r[i]) for i in exact) + (repr(r),))

    ra, rb = rows(a), rows(b)
    if len(ra) != len(rb):
        return [f"{name}: {len(ra)} rows vs {len(rb)}"]
    for x, y in zip(ra, rb, strict=True):
        if not all(_close(u, v) for u, v in zip(x, y, strict=True)):
            cols = [c for c, u, v in zip(a.columns, x, y, strict=True) if not _close(u, v)]
            return [f"{name}: rows differ in {', '.join(cols)}: {x} vs {y}"]
    return []


def _release_of(spark: SparkSession, lake: str, run_id: str) -> str | None:
    rows = lk.read(spark, lake, "published", "releases").where(
        (F.col("run_id") == run_id) & (F.col("status") == "complete")).select("release_id").collect()
    return rows[0][0] if rows else None


def _calibration_run(spark: SparkSession, lake: str, run_id: str) -> str:
    calibrated = calibrated_by(spark, lake, run_id)
    return calibrated[1] if calibrated else run_id


def differences(spark: SparkSession, lake_a: str, run_a: str, lake_b: str, run_b: str) -> list[str]:
    """What differs between the tables of run A in lake A and run B in lake B ([] when they are the same).

    Per-case and lake-wide tables are compared as they stand (each lake's latest state), per-run gold
    tables by run id, published tables by the runs' releases. A run that settled its new cases at an
    earlier calibration (gold.calibrations) stands for that calibration's run and release.
    """
    out: list[str] = []
    for layer, table in CASE_TABLES:
        out += _big(f"{layer}.{table}", lk.read(spark, lake_a, layer, table), lk.read(spark, lake_b, layer, table))
    for tables, compare in ((LAKE_TABLES, _small), (DIP_SMALL, _small), (DIP_BIG, _big)):
        for layer, table in tables:
            there = [lk.exists(spark, lk.table_path(lake, layer, table)) for lake in (lake_a, lake_b)]
            if there[0] != there[1]:
                out.append(f"{layer}.{table}: only in {lake_a if there[0] else lake_b}")
            elif there[0]:
                out += compare(f"{layer}.{table}", lk.read(spark, lake_a, layer, table),
                               lk.read(spark, lake_b, layer, table))
    # a night that settled its cases at an earlier calibration is compared by that calibration's run
    run_a, run_b = (_calibration_run(spark, lake, run) for lake, run in ((lake_a, run_a), (lake_b, run_b)))
    for tables, compare in ((RUN_TABLES, _small), (BIG_RUN_TABLES, _big)):
        for layer, table in tables:
            a = lk.read(spark, lake_a, layer, table).where(F.col("run_id") == run_a)
            b = lk.read(spark, lake_b, layer, table).where(F.col("run_id") == run_b)
            out += compare(f"{layer}.{table}", a, b)
    rel_a, rel_b = _release_of(spark, lake_a, run_a), _release_of(spark, lake_b, run_b)
    if rel_a is None or rel_b is None:
        return [*out, f"no complete release for run {run_a if rel_a is None else run_b}"]
    dip = [t for t in DIP_RELEASE_TABLES if lk.exists(spark, lk.table_path(lake_a, "published", t))
           or lk.exists(spark, lk.table_path(lake_b, "published", t))]
    for table in (*RELEASE_TABLES, *dip):
        a = lk.read(spark, lake_a, "published", table).where(F.col("release_id") == rel_a)
        b = lk.read(spark, lake_b, "published", table).where(F.col("release_id") == rel_b)
        out += _small(f"published.{table}", a, b)
    return out
