"""Pricing: answers worked out by hand on tiny data, plus recovery of known weights on generated data."""

from __future__ import annotations

import math

import pytest
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.errors import PipelineError
from jobs.price import Priced, price_run, write
from jobs.pricing.indices import hospital_indices
from jobs.pricing.payments import classify_and_unit
from jobs.pricing.policy import Policy, load_policy
from jobs.pricing.sim import recovery_errors, simulate_cases
from jobs.pricing.weights import normal_cdf, relative_weights
from schemas.pricing import TABLES

CASE_COLS = "region_code string, hospital_id string, case_id string, drg string, adrg string, mdc string, "
CASE_COLS += "fund string, los_days double, total_cost double"


def policy(**overrides):
    """The shipped default policy with top-level fields replaced, validated again."""
    return Policy.model_validate({**load_policy().model_dump(), **overrides})


def no_tail(p=None):
    p = p or load_policy()
    return p.model_copy(update={"trim": p.trim.model_copy(update={"tail_correction": False})})


def cases_df(spark, rows):
    """rows: (drg, adrg, cost[, hospital, los, fund]) -> a cases DataFrame with unique keys."""
    out = []
    for i, r in enumerate(rows):
        drg, adrg, cost = r[:3]
        hosp = r[3] if len(r) > 3 else "H1"
        los = r[4] if len(r) > 4 else 5.0
        fund = r[5] if len(r) > 5 else "employee"
        out.append(("R1", hosp, f"c{i}", drg, adrg, "MDC" + adrg[0], fund, float(los), float(cost)))
    return spark.createDataFrame(out, CASE_COLS)


# A: 18 inliers (900/1000/1100 x 6, mean 1000) + 2 gross errors; B: 10 cases, mean 3000.
A_ROWS = [("A11", "A1", c) for c in [900, 1000, 1100] * 6] + [("A11", "A1", 1e6)] * 2
B_ROWS = [("B13", "B1", c) for c in [2800, 2900, 3000, 3100, 3200] * 2]


def by_drg(df):
    return {r["drg"]: r for r in df.collect()}


def test_robust_trim_drops_masked_outliers_and_normalises(spark):
    cases = cases_df(spark, A_ROWS + B_ROWS)
    weights, flagged = relative_weights(cases, no_tail())
    w = by_drg(weights)
    # IQR fences on ln cost: ln 1000 +/- 3 x ln(1100/900)/1.349 = [640, 1562]: both 1e6 cases go.
    assert w["A11"]["n_trimmed"] == 2 and w["A11"]["trimmed_mean_cost"] == pytest.approx(1000)
    assert w["B13"]["n_trimmed"] == 0 and w["B13"]["trimmed_mean_cost"] == pytest.approx(3000)
    # Normalised on all 30 cases: (20 x 1000 + 10 x 3000) / 30 = 1666.67 -> 0.6 and 1.8.
    assert w["A11"]["rw"] == pytest.approx(0.6) and w["B13"]["rw"] == pytest.approx(1.8)
    assert w["A11"]["rw_raw"] == pytest.approx(1000 / (48000 / 28))  # overall trimmed mean of 28 inliers
    assert flagged.where(~F.col("inlier")).count() == 2
    assert w["A11"]["rw_ci_low"] < 0.6 < w["A11"]["rw_ci_high"]
    assert not w["A11"]["low_volume"] and w["A11"]["method"] == "own"


def test_plain_sd_trim_is_masked_by_two_outliers(spark):
    """With 2 of 20 at 1e6, mean + 3 SD of ln cost reaches past them: the classic trim keeps both."""
    cases = cases_df(spark, A_ROWS + B_ROWS)
    sd = no_tail()
    sd = sd.model_copy(update={"trim": sd.trim.model_copy(update={"method": "sd"})})
    w = by_drg(relative_weights(cases, sd)[0])
    assert w["A11"]["n_trimmed"] == 0
    assert w["A11"]["trimmed_mean_cost"] == pytest.approx((18000 + 2e6) / 20)


def test_tail_correction_matches_lognormal_mean(spark):
    """normal_cdf is accurate, and the corrected trimmed mean of lognormal data is near its true mean."""
    row = spark.range(1).select(normal_cdf(F.lit(1.0)).alias("a"), normal_cdf(F.lit(-2.0)).alias("b")).first()
    assert row["a"] == pytest.approx(0.8413447, abs=1e-6) and row["b"] == pytest.approx(0.0227501, abs=1e-6)
    sigma = 0.9
    gen = spark.range(20000).select(
        F.lit("R1").alias("region_code"),
        F.lit("H1").alias("hospital_id"),
        F.col("id").cast("string").alias("case_id"),
        F.lit("X11").alias("drg"),
        F.lit("X1").alias("adrg"),
        F.lit("MDCX").alias("mdc"),
        F.lit("employee").alias("fund"),
        F.lit(5.0).alias("los_days"),
        F.exp(F.randn(7) * sigma).alias("total_cost"),
    )
    true_mean = math.exp(sigma**2 / 2)
    strict = load_policy()
    strict = strict.model_copy(update={"trim": strict.trim.model_copy(update={"k": 2.0})})
    corrected = relative_weights(gen, strict)[0].first()
    plain = relative_weights(gen, no_tail(strict))[0].first()
    assert plain["trimmed_mean_cost"] < 0.93 * true_mean  # a 2-sigma trim loses ~8% of the mean
    assert corrected["rw_raw"] * plain["trimmed_mean_cost"] / plain["rw_raw"] == pytest.approx(true_mean, rel=0.03)


def test_low_volume_shrinks_towards_adrg(spark):
    # C11: 3 cases, mean 500 (below min_cases 10); C13: 20 cases, mean 2000; both ADRG C1.
    rows = [("C11", "C1", c) for c in (400, 500, 600)]
    rows += [("C13", "C1", c) for c in [1800, 1900, 2000, 2100, 2200] * 4]
    w = by_drg(relative_weights(cases_df(spark, rows), no_tail())[0])
    adrg_cost = (3 * 500 + 20 * 2000) / 23
    shrunk = 3 / 13 * 500 + 10 / 13 * adrg_cost
    assert w["C11"]["low_volume"] and w["C11"]["method"] == "shrunk_to_adrg"
    assert not w["C13"]["low_volume"]
    assert w["C11"]["rw"] / w["C13"]["rw"] == pytest.approx(shrunk / 2000)
    mean_rw = (3 * w["C11"]["rw"] + 20 * w["C13"]["rw"]) / 23
    assert mean_rw == pytest.approx(1.0)


def test_change_cap_holds_decrease_and_stays_normalised(spark):
    cases = cases_df(spark, A_ROWS + B_ROWS)
    capped = no_tail()
    capped = capped.model_copy(update={"change_cap": capped.change_cap.model_copy(update={"max_decrease": 0.1})})
    prev = spark.createDataFrame([("A11", 1.0), ("B13", 1.0)], "drg string, prev_rw double")
    w = by_drg(relative_weights(cases, capped, prev)[0])
    # Uncapped A would be 0.6 (< 0.9 floor): held at 0.9; B takes the rest: (30 - 20 x 0.9) / 10 = 1.2.
    assert w["A11"]["capped"] and w["A11"]["rw"] == pytest.approx(0.9)
    assert not w["B13"]["capped"] and w["B13"]["rw"] == pytest.approx(1.2)
    assert w["A11"]["rw_change"] == pytest.approx(-0.1)


def test_outlier_thresholds_per_rw_band_and_units(spark):
    # Region cost per unit RW = sum cost / sum RW = 39000 / 39 = 1000, so ratio = cost / (1000 x RW).
    rows = [
        ("n1", 0.5, 1400, "normal"),  # 2.8 <= 3x (RW <= 1)
        ("h1", 0.5, 1600, "high"),  # 3.2 > 3x
        ("h2", 1.5, 3150, "high"),  # 2.1 > 2x (1 < RW <= 2)
        ("n2", 1.5, 2850, "normal"),  # 1.9
        ("h3", 3.0, 4650, "high"),  # 1.55 > 1.5x (RW > 2)
        ("n3", 3.0, 4350, "normal"),  # 1.45
        ("l1", 1.0, 350, "low"),  # 0.35 < 0.4x
        ("f1", 28.0, 20650, "normal"),  # filler: 0.7375
    ]
    df = spark.createDataFrame(
        [("R1", "H1", cid, "D", "employee", rw, float(cost), 1.0) for cid, rw, cost, _ in rows],
        "region_code string, hospital_id string, case_id string, drg string, fund string, rw double, "
        "total_cost double, hospital_coef double",
    )
    got = {r["case_id"]: r for r in classify_and_unit(df, load_policy()).collect()}
    assert {cid: got[cid]["outlier_type"] for cid, *_ in rows} == {cid: t for cid, _, _, t in rows}
    assert got["h1"]["payment_units"] == pytest.approx(0.5 + 0.5 * (3.2 - 3.0))
    assert got["l1"]["payment_units"] == pytest.approx(0.35)
    assert got["n2"]["payment_units"] == pytest.approx(1.5)


def test_cmi_and_efficiency_indices(spark):
    payments = spark.createDataFrame(
        [
            ("R1", "H1", "A", 0.6, 1000.0, 4.0, "normal", 600.0),
            ("R1", "H1", "A", 0.6, 1000.0, 4.0, "normal", 600.0),
            ("R1", "H1", "B", 1.8, 3000.0, 8.0, "high", 1800.0),
            ("R1", "H2", "A", 0.6, 2000.0, 8.0, "low", 600.0),
        ],
        "region_code string, hospital_id string, drg string, rw double, total_cost double, los_days double, "
        "outlier_type string, payment double",
    )
    h = {r["hospital_id"]: r for r in hospital_indices(payments).collect()}
    assert h["H1"]["cmi"] == pytest.approx(1.0) and h["H1"]["total_weight"] == pytest.approx(3.0)
    # Region mean cost in A = 4000/3; H1: (2 x 1000/(4000/3) + 1 x 1) / 3 = 5/6; H2: 2000/(4000/3) = 1.5.
    assert h["H1"]["cost_efficiency_index"] == pytest.approx(5 / 6)
    assert h["H2"]["cost_efficiency_index"] == pytest.approx(1.5)
    assert h["H2"]["time_efficiency_index"] == pytest.approx(8 / (16 / 3))
    assert h["H1"]["high_outlier_share"] == pytest.approx(1 / 3) and h["H2"]["low_outlier_share"] == 1.0


def test_recovers_known_weights_on_contaminated_data(spark):
    """30 DRGs x ~600 cases, 3% gross high and 2% near-zero costs: robust beats naive and plain 3 SD."""
    truth = spark.createDataFrame(
        [(f"{chr(65 + i % 20)}{i:02d}1", 0.3 + 0.25 * i, 1.0) for i in range(30)],
        "drg string, true_rw double, share double",
    )
    cases = simulate_cases(truth, 18000, seed=3, sigma=0.6).localCheckpoint()

    def errors(p):
        err = recovery_errors(relative_weights(cases, p)[0], truth, 400)
        return err.agg(F.median("abs_err").alias("med"), F.max("abs_err").alias("max")).first()

    robust = errors(load_policy())
    naive = load_policy()
    naive = naive.model_copy(update={"trim": naive.trim.model_copy(update={"method": "none"})})
    sd = load_policy()
    sd = sd.model_copy(update={"trim": sd.trim.model_copy(update={"method": "sd", "tail_correction": False})})
    assert robust["med"] <= 0.025 and robust["max"] <= 0.09
    assert errors(naive)["max"] > robust["max"] and errors(sd)["max"] > robust["max"]


def test_policy_validation_names_the_field(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nversion: '1'\nbudgets: []\noutliers: {high_bands: [{rw_max: null, multiplier: 3}]}\n")
    with pytest.raises(PipelineError, match="budgets"):
        load_policy(bad)
    bad.write_text("name: x\nversion: '1'\ntrim: {methd: robust}\n")
    with pytest.raises(PipelineError, match="trim.methd"):
        load_policy(bad)


def grouped_table(spark, lake, rows):
    df = cases_df(spark, rows)
    df = (
        df.withColumnRenamed("fund", "payer")
        .withColumn("los_days", F.col("los_days").cast("int"))
        .withColumn("ungroupable_reason", F.lit(None).cast("string"))
        .withColumn("pack_version", F.lit("1.1"))
        .withColumn("batch_id", F.lit("2026-01-31"))
    )
    bad = df.limit(1).withColumn("case_id", F.lit("ungroupable")).withColumn("ungroupable_reason", F.lit("no pdx"))
    lk.overwrite(df.unionByName(bad), lk.table_path(lake, "gold", "grouped_cases"))


def test_price_end_to_end_budget_neutral_and_rerunnable(spark, lake):
    funds = ["employee", "resident", "employee"] * 10
    rows = [(d, a, c, f"H{i % 2}", 5, funds[i]) for i, (d, a, c) in enumerate(A_ROWS + B_ROWS)]
    grouped_table(spark, lake, rows)
    p = policy(
        budgets=[
            {"fund": "employee", "amount": 50000.0},
            {"fund": "resident", "share_of_cost": 0.9},
        ]
    )
    priced = price_run(spark, lake, p, "RUN1")
    for name, df in priced.frames.items():
        assert [f.name for f in df.schema.fields] == TABLES[name].fieldNames()
    write(priced, lake, "RUN1")
    # Re-running the run replaces its rows (the case table is where doubled rows would show).
    write(Priced({"case_payments": priced.frames["case_payments"]}, None, priced.calibration), lake, "RUN1")
    pay = lk.read(spark, lake, "gold", "case_payments")
    assert pay.count() == 30 and pay.where("case_id = 'ungroupable'").count() == 0
    rates = {r["fund"]: r for r in lk.read(spark, lake, "gold", "base_rates").collect()}
    assert rates["employee"]["budget"] == 50000.0
    for r in rates.values():
        assert abs(r["budget_gap_pct"]) < 0.1
        paid = pay.where(F.col("fund") == r["fund"]).agg(F.sum("payment")).first()[0]
        assert paid == pytest.approx(r["budget"], rel=1e-9)
    quality = lk.read(spark, lake, "gold", "grouping_quality").first()
    assert quality["n_cases"] == 30 and quality["policy_version"] == p.version
    assert 0 < quality["riv_cost_trimmed"] <= 1


def test_price_without_grouped_cases_is_one_line_error(spark, lake):
    with pytest.raises(PipelineError, match="gold.grouped_cases"):
        price_run(spark, lake, load_policy(), "RUN1")
