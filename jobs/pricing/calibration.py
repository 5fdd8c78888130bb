"""Which batches set the weights in force, and whether tonight's weights are the release's.

Why a calibration is a set of batches: a payer fixes its weights and rates for a payment period
(`recalibration.every`) and settles the period's cases at them. Defining the calibration by the data
(the batches delivered before the period began, dated by their batch id) rather than by which nights
happened to run keeps the rule that an incremental night equals a full recompute: both see the same
batches and so calibrate on the same ones. With `every: night` the calibration is every batch, which is
the nightly re-estimation over the reference period.

A night whose calibration is the one the release in force was priced on only prices its new batches
(a `Settlement`): the weights, rates and cost per unit of weight are read back from that release's run
(gold.calibrations says which run a pricing run took them from), and DIP scores the same batches against
that run's catalogue and point values (jobs.dip.stage.settle).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.night_plan import BatchKey, batch_predicate, content_hash, model_hash
from jobs.pricing.policy import Policy
from jobs.published import read_log
from jobs.releases import resolve

TABLE = ("gold", "calibrations")


def delivery_date(batch_id: str, ingested_at) -> date | None:
    """The day a batch was delivered: its id's leading YYYY-MM-DD, else the day it was ingested."""
    try:
        return date.fromisoformat(batch_id[:10])
    except ValueError:
        return ingested_at.date() if ingested_at is not None else None


def period_start(day: date, every: str) -> date:
    """The first day of the payment period holding `day`."""
    if every == "month":
        return day.replace(day=1)
    if every == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)  # year


@dataclass(frozen=True)
class Calibration:
    """The batches whose cases set the weights and rates, and an id equal for the same batches, schedule
    and policy. A batch re-sent under its id keeps the id: the night that re-reads it re-validates
    everything (jobs.night_plan), so it re-estimates rather than settles."""

    batches: tuple[BatchKey, ...] | None  # None: every batch in the lake (every: night)
    period_start: date | None  # the payment period these weights are in force for (None: every night)
    calibration_id: str
    first_delivery: bool = False  # no batch was delivered before the period: the lake's first delivery

    def describe(self) -> str:
        if self.batches is None:
            return "weights re-estimated on every batch"
        which = "of the first delivery" if self.first_delivery else "delivered before the period"
        return f"weights for the period from {self.period_start}: {len(self.batches)} batch(es) {which}"


def calibration(batches: list, policy: Policy) -> Calibration:
    """The calibration for a lake holding `batches` (bronze.batches rows: region, batch_id, ingested_at):
    every batch, or those delivered before the latest delivery's period began, or, when none was, those
    of the first delivery date."""
    every = policy.recalibration.every
    if every == "night" or not batches:
        keys = sorted((r.region, r.batch_id) for r in batches)
        return Calibration(None, None, content_hash(["night", keys, model_hash(policy)]))
    dated = [(delivery_date(r.batch_id, r.ingested_at), r) for r in batches]
    start = period_start(max(d for d, _ in dated if d is not None), every)
    chosen = [r for d, r in dated if d is not None and d < start]
    first = not chosen
    if first:
        earliest = min(d for d, _ in dated if d is not None)
        chosen = [r for d, r in dated if d == earliest]
    keys = sorted((r.region, r.batch_id) for r in chosen)
    return Calibration(tuple(BatchKey(r, b) for r, b in keys), start,
                       content_hash([every, str(start), keys, model_hash(policy)]), first)


def in_calibration(cases: DataFrame, cal: Calibration) -> DataFrame:
    """The cases of the calibration's batches (all of them for a nightly calibration)."""
    if cal.batches is None:
        return cases
    keys = cases.sparkSession.createDataFrame([(b.region, b.batch_id) for b in cal.batches],
                                              "region_code string, batch_id string")
    return cases.join(F.broadcast(keys), ["region_code", "batch_id"], "left_semi")


def calibrated_by(spark: SparkSession, lake: str, run_id: str) -> tuple[str, str] | None:
    """(calibration id, the run whose weights it is) of a pricing run, or None before calibrations existed."""
    path = lk.table_path(lake, *TABLE)
    if not lk.exists(spark, path):
        return None
    row = (spark.read.format("delta").load(path).where(F.col("run_id") == run_id)
           .select("calibration_id", "calibration_run_id").first())
    return (row[0], row[1]) if row else None


def previous_release(spark: SparkSession, lake: str, calibration_id: str | None,
                     log: list[dict] | None = None) -> dict | None:
    """The latest complete release of another calibration than `calibration_id`: the weights a new
    calibration is compared with (change caps, `previous` weights, rw_change). A release of the same
    calibration is the same estimate, republished, so a recompute finds what the night that first
    made it found. `log`: published.releases' rows when the caller has read them."""
    done = [r for r in (read_log(spark, lake) if log is None else log) if r.get("status") == "complete"]
    path = lk.table_path(lake, *TABLE)
    if done and calibration_id is not None and lk.exists(spark, path):
        same = {r.run_id for r in spark.read.format("delta").load(path)
                .where(F.col("calibration_id") == calibration_id).select("run_id").distinct().collect()}
        done = [r for r in done if r["run_id"] not in same]
    return resolve(done) if done else None


@dataclass(frozen=True)
class Settlement:
    """A night's new batches paid at the release in force, whose calibration is still tonight's: their
    cases become rows of the run that estimated it (so that run's rows are every case paid at it) and
    nothing new is published."""

    release: dict  # the release in force: its published.releases row
    batches: tuple[BatchKey, ...]

    @property
    def run_id(self) -> str:
        """The run that estimated the release's weights (and built its DIP catalogue)."""
        return self.release["run_id"]

    @property
    def where(self) -> str:
        """The settled batches' rows of a per-case gold table: the calibration run's rows of those batches."""
        return f"run_id = '{self.run_id}' AND ({batch_predicate(list(self.batches))})"


def release_in_force(spark: SparkSession, lake: str, calibration_id: str) -> dict | None:
    """The latest complete release (its published.releases row) when it is of calibration
    `calibration_id` (a release is published by the run that estimated its weights), else None."""
    done = [r for r in read_log(spark, lake) if r.get("status") == "complete"]
    release = resolve(done) if done else None
    calibrated = calibrated_by(spark, lake, release["run_id"]) if release else None
    return release if calibrated is not None and calibrated[0] == calibration_id else None


def settlement(spark: SparkSession, lake: str, cal: Calibration, new: list[BatchKey]) -> Settlement | None:
    """How a night that brings only `new` batches (nothing else changed) pays them: at the release in
    force when tonight's calibration is still its calibration, else None (the night re-estimates)."""
    in_force = release_in_force(spark, lake, cal.calibration_id)
    return Settlement(in_force, tuple(new)) if in_force is not None else None
