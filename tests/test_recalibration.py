"""Recalibration on a schedule: weights fixed for a payment period, nights within it settle their cases.

Three nights into an incremental lake and the settling night also into a `--full` copy (as in
tests/test_incremental.py), under a policy with `recalibration: {every: month}`. The first two batches
are delivered in November, the third on 1 December:
- night 1 calibrates on the lake's first delivery and publishes;
- night 2 (November) settles its batch at night 1's weights and publishes nothing new;
- night 3 (December) recalibrates on the batches delivered before December and pays its own batch too.
After the settling night both lakes' tables must be equal, as for nightly recalibration.
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
    lakes = {}
    for mode in ("inc", "full"):
        (root / mode).mkdir()
        cfg = load_config(write_config(root / mode, region, DEFAULT_PACK, methods=("drg",)))
        lakes[mode] = cfg.model_copy(update={"policy": policy, "quality_gate": False})
    nights = []
    for i, folder in enumerate(folders, start=1):
        runs = {}
        for mode, cfg in lakes.items():
            shutil.copytree(root / "generated" / folder, root / mode / "landing" / folder)
            if i == 1 and mode == "full":
                shutil.copytree(lakes["inc"].lake, cfg.lake)
                runs[mode] = runs["inc"]
                continue
            if i == 3 and mode == "full":  # a recalibrating night is the nightly case, proven elsewhere
                continue
            run_id = f"{mode}-night{i}"
            runs[mode] = run_id
            runs[f"{mode}-release"] = nightly(spark, cfg, run_id=run_id, full=mode == "full").release["release_id"]
        nights.append(runs)
    return {mode: cfg.lake for mode, cfg in lakes.items()}, nights, load_policy(policy)


def test_a_settling_night_equals_a_full_recompute(spark, monthly):
    lakes, nights, _ = monthly
    runs = nights[1]
    diffs = differences(spark, lakes["inc"], runs["inc"], lakes["full"], runs["full"])
    # the per-case tables are compared as they stand, and the incremental lake has had a third night
    assert [d for d in diffs if not d.startswith(("silver.", "gold.grouped_cases", "gold.hospital_quality"))] == []


def test_a_night_within_the_period_settles_at_the_release_in_force(spark, monthly):
    lakes, nights, _ = monthly
    lake = lakes["inc"]
    first, second = nights[0]["inc"], nights[1]["inc"]
    steps = _steps(spark, lake, second)
    assert "calibration unchanged (month)" in steps["price"].note and f"settled at run {first}" in steps["price"].note
    assert steps["publish"].note.endswith("stays in force (calibration unchanged)")
    assert nights[1]["inc-release"] == nights[0]["inc-release"]
    # no weights of its own; its batch's cases are paid under the calibration run
    assert lk.read(spark, lake, "gold", "drg_weights").where(F.col("run_id") == second).count() == 0
    batches = sorted(r.batch_id for r in lk.read(spark, lake, "bronze", "batches").collect())
    paid = lk.read(spark, lake, "gold", "case_payments").where(F.col("run_id") == first)
    by_batch = {r.batch_id: r["count"] for r in paid.groupBy("batch_id").count().collect()}
    assert set(by_batch) == set(batches[:2]) and steps["price"].rows_in == by_batch[batches[1]] > 0
    # the weights are night 1's, estimated on the first delivery only
    weights = lk.read(spark, lake, "gold", "drg_weights").where(F.col("run_id") == first)
    assert weights.agg(F.sum("n_cases")).first()[0] == by_batch[batches[0]]
    # the recompute re-estimated the same weights from the same batch and published them again
    assert nights[1]["full-release"] != nights[0]["inc-release"]


def test_a_new_period_recalibrates_on_the_batches_delivered_before_it(spark, monthly):
    lakes, nights, _ = monthly
    lake, third = lakes["inc"], nights[2]["inc"]
    steps = _steps(spark, lake, third)
    assert "settled" not in steps["price"].note and steps["publish"].note == f"release {nights[2]['inc-release']}"
    assert steps["price"].note.endswith(f"period from {DECEMBER}: 2 batch(es) delivered before the period")
    first = _steps(spark, lake, nights[0]["inc"])["price"].note
    assert first.endswith("weights for the period from 2026-11-01: 1 batch(es) of the first delivery")
    cal = lk.read(spark, lake, "gold", "calibrations").where(F.col("run_id") == third).first()
    assert (str(cal.period_start), cal.n_batches, cal.calibration_run_id) == (DECEMBER, 2, third)
    paid = lk.read(spark, lake, "gold", "case_payments").where(F.col("run_id") == third)
    by_batch = {r.batch_id: r["count"] for r in paid.groupBy("batch_id").count().collect()}
    assert DECEMBER in by_batch and len(by_batch) == 3  # December's cases are paid at December's weights
    weights = lk.read(spark, lake, "gold", "drg_weights").where(F.col("run_id") == third)
    assert weights.agg(F.sum("n_cases")).first()[0] == sum(n for b, n in by_batch.items() if b != DECEMBER)
    # its previous weights are night 1's release (another calibration), in both lakes alike
    assert weights.where(F.col("prev_rw").isNotNull()).count() > 0


def test_the_calibration_is_chosen_by_delivery_date(monthly):
    from datetime import datetime

    from jobs.night_plan import BatchKey

    _, _, policy = monthly

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
