"""Recalibration on a schedule: weights fixed for a payment period, nights within it settle their cases.

Three nights into one lake under a policy with `recalibration: {every: month}`. The first two batches are
delivered in November, the third on 1 December:
- night 1 calibrates on the lake's first delivery and publishes (DRG weights and the DIP catalogue);
- night 2 (November) settles its batch at night 1's weights and DIP catalogue and publishes nothing new;
- then a forced night re-estimates the same calibration from scratch (`--force`: pricing and publishing
  redone over every case, nothing settled), which must give night 2's tables: the same weights, rates
  and payments, the settled cases included (that the per-case tables of an incremental night equal a
  full recompute's is tests/test_incremental.py's);
- night 3 (December) recalibrates on the batches delivered before December and pays its own batch too.
"""

from __future__ import annotations

import shutil

import pytest
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.demo import write_config
from jobs.lake_diff import differences
from jobs.nightly import load_config, nightly
from jobs.pricing.calibration import calibration, delivery_date, period_start
from jobs.pricing.policy import load_policy, with_schedule
from jobs.synth import DEFAULT_PACK, generate
from jobs.synth.write import write_batches

DECEMBER = "2026-12-01"


def _steps(spark, lake: str, run_id: str) -> dict:
    return {r.step: r for r in lk.read(spark, lake, "ops", "runs").where(F.col("run_id") == run_id).collect()}


@pytest.fixture(scope="module")
def monthly(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("recalibration")
    policy = with_schedule(root, "month")
    frames = generate(spark, 900, 1, 6, 12, str(DEFAULT_PACK), batches=3)
    folders = sorted(write_batches(spark, *frames, str(root / "generated")))
    region = folders[0].split("/")[0]
    december = f"{region}/{DECEMBER}"  # the third delivery arrives in the next month
    shutil.move(root / "generated" / folders[2], root / "generated" / december)
    folders[2] = december
    cfg = load_config(write_config(root, region, DEFAULT_PACK))  # DRG and DIP
    cfg = cfg.model_copy(update={"policy": policy, "quality_gate": False})
    runs, releases, dip_scores = {}, {}, {}

    def night(name: str, force: bool = False) -> None:
        runs[name] = name
        releases[name] = nightly(spark, cfg, run_id=name, force=force).release["release_id"]
        # DIP's gold tables hold one build: kept per night to compare the settled rows with a rebuild's
        dip_scores[name] = lk.read(spark, cfg.lake, "gold", "dip_case_scores").drop("run_id").collect()

    for i, folder in enumerate(folders, start=1):
        shutil.copytree(root / "generated" / folder, root / "landing" / folder)
        night(f"night{i}")
        if i == 2:
            night("re-estimate", force=True)
    return cfg.lake, runs, releases, load_policy(policy), dip_scores


def test_a_settling_night_equals_a_re_estimate(spark, monthly):
    lake, runs, releases, _, dip_scores = monthly
    assert releases["re-estimate"] != releases["night1"]  # re-estimated and published again
    diffs = differences(spark, lake, runs["night2"], lake, runs["re-estimate"])
    assert diffs == []  # DIP's published catalogue, point values and indices included
    assert differences(spark, lake, runs["night1"], lake, runs["night3"])  # the comparison can fail
    # the DIP case scores night 2 added to night 1's build are the rebuild's, row for row
    assert sorted(dip_scores["night2"]) == sorted(dip_scores["re-estimate"])
    assert len(dip_scores["night2"]) > len(dip_scores["night1"])


def test_a_night_within_the_period_settles_at_the_release_in_force(spark, monthly):
    lake, runs, releases, _, dip_scores = monthly
    first, second = runs["night1"], runs["night2"]
    steps = _steps(spark, lake, second)
    assert "calibration unchanged (month)" in steps["price"].note and f"settled at run {first}" in steps["price"].note
    assert steps["publish"].note.endswith("stays in force (calibration unchanged)")
    assert releases["night2"] == releases["night1"]
    # no weights of its own; its batch's cases are paid under the calibration run
    assert lk.read(spark, lake, "gold", "drg_weights").where(F.col("run_id") == second).count() == 0
    batches = sorted(r.batch_id for r in lk.read(spark, lake, "bronze", "batches").collect())
    paid = lk.read(spark, lake, "gold", "case_payments").where(F.col("run_id") == first)
    by_batch = {r.batch_id: r["count"] for r in paid.groupBy("batch_id").count().collect()}
    assert set(by_batch) == set(batches[:2]) and steps["price"].rows_out == by_batch[batches[1]] > 0
    assert steps["price"].rows_in >= steps["price"].rows_out  # priceable cases; a new DRG has no weight
    # the weights are night 1's, estimated on the first delivery only
    weights = lk.read(spark, lake, "gold", "drg_weights").where(F.col("run_id") == first)
    assert weights.agg(F.sum("n_cases")).first()[0] == by_batch[batches[0]]
    # DIP scores the batch against night 1's catalogue: rows of night 1's build, nothing rebuilt
    added = [r for r in dip_scores["night2"] if r.batch_id == batches[1]]
    assert steps["dip"].rows_out == len(added) > 0 and f"at run {first}'s catalogue" in steps["dip"].note
    assert steps["dip"].rows_in >= steps["dip"].rows_out  # base-period cases; a new key may have no packet
    assert {r.batch_id for r in dip_scores["night1"]} == {batches[0]}
    assert sorted(r for r in dip_scores["night2"] if r.batch_id == batches[0]) == sorted(dip_scores["night1"])


def test_a_new_period_recalibrates_on_the_batches_delivered_before_it(spark, monthly):
    lake, runs, releases, *_ = monthly
    third = runs["night3"]
    steps = _steps(spark, lake, third)
    assert "settled" not in steps["price"].note and steps["publish"].note == f"release {releases['night3']}"
    assert steps["price"].note.endswith(f"period from {DECEMBER}: 2 batch(es) delivered before the period")
    first = _steps(spark, lake, runs["night1"])["price"].note
    assert first.endswith("weights for the period from 2026-11-01: 1 batch(es) of the first delivery")
    cal = lk.read(spark, lake, "gold", "calibrations").where(F.col("run_id") == third).first()
    assert (str(cal.period_start), cal.n_batches, cal.calibration_run_id) == (DECEMBER, 2, third)
    paid = lk.read(spark, lake, "gold", "case_payments").where(F.col("run_id") == third)
    by_batch = {r.batch_id: r["count"] for r in paid.groupBy("batch_id").count().collect()}
    assert DECEMBER in by_batch and len(by_batch) == 3  # December's cases are paid at December's weights
    weights = lk.read(spark, lake, "gold", "drg_weights").where(F.col("run_id") == third)
    assert weights.agg(F.sum("n_cases")).first()[0] == sum(n for b, n in by_batch.items() if b != DECEMBER)
    # compared with the latest release of another calibration (the re-estimate of November's)
    assert weights.where(F.col("prev_rw").isNotNull()).count() > 0
    night1 = lk.read(spark, lake, "gold", "drg_weights").where(F.col("run_id") == runs["night1"])
    assert night1.where(F.col("prev_rw").isNotNull()).count() == 0  # the first calibration has none
    again = lk.read(spark, lake, "gold", "drg_weights").where(F.col("run_id") == runs["re-estimate"])
    assert again.where(F.col("prev_rw").isNotNull()).count() == 0  # a re-estimate is not compared with itself


def test_the_calibration_is_chosen_by_delivery_date(monthly):
    from datetime import datetime

    from jobs.night_plan import BatchKey

    policy = monthly[3]

    class Row:
        def __init__(self, batch_id, ingested_at=None):
            self.region, self.batch_id, self.ingested_at = "r", batch_id, ingested_at

    assert delivery_date("2026-03-05", None).isoformat() == "2026-03-05"
    assert delivery_date("night-7", datetime(2026, 4, 2, 3)).isoformat() == "2026-04-02"
    assert str(period_start(delivery_date("2026-05-31", None), "quarter")) == "2026-04-01"
    rows = [Row("2026-01-30"), Row("2026-02-27"), Row("2026-03-01"), Row("2026-03-09")]
    march = calibration(rows, policy)
    assert march.batches == (BatchKey("r", "2026-01-30"), BatchKey("r", "2026-02-27"))
    assert str(march.period_start) == "2026-03-01" and not march.first_delivery
    first = calibration(rows[2:], policy)
    assert first.batches == (BatchKey("r", "2026-03-01"),) and first.first_delivery
    assert calibration(rows, policy).calibration_id == march.calibration_id != first.calibration_id
    yearly = policy.model_copy(update={"recalibration": policy.recalibration.model_copy(update={"every": "year"})})
    assert calibration(rows, yearly).batches == (BatchKey("r", "2026-01-30"),)
