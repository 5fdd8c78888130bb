"""Case scores, outliers, 特例单议, settlement point values and payments.

Order that avoids circularity (dip.md §9): packet scores -> year-start point value -> each case's
standard (base case score x year-start point value) for the outlier test -> case scores -> total score
of the settlement year per fund -> settlement point value -> payments.
"""

from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.dip.policy import DipPolicy
from jobs.exact import exact_sum


def _literal_map(mapping: dict) -> Column | None:
    return F.create_map(*[F.lit(x) for kv in mapping.items() for x in kv]) if mapping else None


def hospital_coefficient(hospital_id: Column, policy: DipPolicy) -> Column:
    """医疗机构调节系数: by hospital, else by the hospital's level, else the default (as DRG pricing)."""
    coefs = policy.hospital_coefficients
    options = []
    by_hospital = _literal_map(coefs.by_hospital)
    if by_hospital is not None:
        options.append(F.try_element_at(by_hospital, hospital_id))
    levels, by_level = _literal_map(coefs.levels), _literal_map(coefs.by_level)
    if levels is not None and by_level is not None:
        options.append(F.try_element_at(by_level, F.try_element_at(levels, hospital_id)))
    return F.coalesce(*[o.cast("double") for o in options], F.lit(float(coefs.default)))


def packet_info(packets: DataFrame, catalogue: DataFrame) -> DataFrame:
    """Per (diagnosis_key, procedure_key): what scoring a case needs of its packet (a small table, joined
    to the cases by broadcast): packet, kind, score, means, 基层 flag, adopted subtype coefficients."""
    subs = F.coalesce("subtypes", F.array().cast(catalogue.schema["subtypes"].dataType))
    sub_coef = lambda sev: F.try_element_at(  # noqa: E731 - the adopted subtype's coefficient for a severity
        F.transform(F.filter(subs, lambda s: s["severity"] == sev), lambda s: s["coefficient"]), F.lit(1))
    return packets.select("diagnosis_key", "procedure_key", "packet_code").join(
        catalogue.select("packet_code", "kind", "score", "mean_cost", "mean_los", "primary_care",
                         sub_coef("MCC").alias("coef_mcc"), sub_coef("CC").alias("coef_cc")),
        "packet_code",
    )


def case_scores(cases: DataFrame, info: DataFrame, point_value: float, policy: DipPolicy) -> DataFrame:
    """Per case: packet, subtype, coefficients, ratio to the standard, outlier, case score.

    base = packet score x hospital coefficient (1 for 基层 packets) x subtype coefficient;
    ratio = cost / (base x year-start point value); low (< low_ratio): cost / point value;
    high (> high_ratio): base x (ratio - 1) (`ratio_minus_one`) or base (`none`); else base.
    """
    out = policy.outliers
    joined = cases.join(F.broadcast(info), ["diagnosis_key", "procedure_key"])
    subtype_coef = (F.when(F.col("severity") == "MCC", F.col("coef_mcc"))
                    .when(F.col("severity") == "CC", F.col("coef_cc")))
    hosp = F.when(F.col("primary_care"), F.lit(1.0)).otherwise(hospital_coefficient(F.col("hospital_id"), policy))
    base = F.col("score") * F.col("hospital_coef") * F.col("subtype_coef")
    ratio = F.try_divide(F.col("cost"), F.col("base_score") * F.lit(point_value))  # null for a 0-score packet
    high = F.col("base_score") * (F.col("cost_ratio") - 1) if out.high_formula == "ratio_minus_one" \
        else F.col("base_score")
    return joined.select(
        "region_code", "hospital_id", "case_id", "batch_id", "fund", "year", "cost", "los", "packet_code", "kind",
        "score", "mean_cost", "mean_los",
        F.when(subtype_coef.isNotNull(), F.when(F.col("severity") == "MCC", "severe").otherwise("moderate"))
        .alias("subtype"),
        F.coalesce(subtype_coef, F.lit(1.0)).alias("subtype_coef"),
        hosp.alias("hospital_coef"),
    ).withColumn("base_score", base).withColumn("cost_ratio", ratio).withColumn(
        "outlier",
        F.when(F.col("cost_ratio") < out.low_ratio, "low").when(F.col("cost_ratio") > out.high_ratio, "high"),
    ).withColumn(
        "case_score",
        F.when(F.col("outlier") == "low", F.col("cost") / F.lit(point_value))
        .when(F.col("outlier") == "high", high).otherwise(F.col("base_score")),
    )


def case_totals(scored: DataFrame, policy: DipPolicy) -> DataFrame:
    """Per (region, hospital, fund, discharge year): the case counts and exact sums every later figure
    needs (fund totals, hospital indices, region summary), and the cost ratios above the 特例单议 ratio.

    Why one aggregation: the settlement point value, the 特例单议 cutoff and every index are functions of
    these few hundred rows, so the scored cases are aggregated once (the second and last pass over the
    cases before they are written)."""
    idx = F.try_divide(F.col("los"), F.col("mean_los"))
    flag = lambda cond: F.sum(F.when(cond, 1).otherwise(0)).cast("long")  # noqa: E731
    return scored.groupBy("region_code", "hospital_id", "fund", "year").agg(
        F.count("*").alias("n"),
        exact_sum("score").alias("score_sum"),
        exact_sum(F.try_divide(F.col("cost"), F.col("mean_cost"))).alias("cost_index_sum"),
        exact_sum(idx).alias("time_index_sum"), F.count(idx).alias("time_index_n"),
        flag(F.col("kind") == "core").alias("n_core"),
        flag(F.col("outlier") == "low").alias("n_low"), flag(F.col("outlier") == "high").alias("n_high"),
        exact_sum("case_score").alias("case_score_sum"),
        exact_sum("cost").alias("cost_sum"),
        F.collect_list(F.when(F.col("cost_ratio") > policy.outliers.special_review_ratio, F.col("cost_ratio")))
        .alias("review_ratios"),
    )


def special_review_cutoff(totals: list, n_cases: int, policy: DipPolicy) -> float | None:
    """The lowest cost ratio flagged for 特例单议: cases above special_review_ratio, highest ratio first,
    at most special_review_share of all scored cases (S1: <= 5 per mille of the region's discharges).
    None when nothing qualifies. `totals`: the collected case_totals rows."""
    limit = int(n_cases * policy.outliers.special_review_share)
    ratios = sorted((r for row in totals for r in row["review_ratios"]), reverse=True)[:limit]
    return ratios[-1] if ratios else None


def fund_totals(totals: list, year: int) -> dict[str, dict]:
    """Per fund, the settlement year's n, total cost and total case score, from the collected
    case_totals rows (math.fsum: correctly rounded, so independent of the rows' order)."""
    funds: dict[str, list] = {}
    for row in totals:
        if row["year"] == year:
            funds.setdefault(row["fund"], []).append(row)
    return {fund: {"fund": fund, "n_cases": sum(r["n"] for r in rows),
                   "total_cost": math.fsum(r["cost_sum"] for r in rows),
                   "total_score": math.fsum(r["case_score_sum"] for r in rows)}
            for fund, rows in funds.items()}


def point_values(totals: dict[str, dict], year_start: float, year: int, policy: DipPolicy) -> list[dict]:
    """结算点值 per fund = (budget / payment ratio) / total score of the settlement year (S1 P4); budget
    default = payment ratio x the year's cost (budget neutral). An `all` row pools the funds."""
    rows = []
    for fund in sorted(t for t in totals if t is not None):
        t = totals[fund]
        cfg = next((f for f in policy.funds if f.fund == fund), None)
        ratio = cfg.payment_ratio if cfg else 1.0
        budget = cfg.budget if cfg and cfg.budget is not None else ratio * t["total_cost"]
        rows.append({
            "fund": fund, "settlement_year": year, "n_cases": t["n_cases"], "total_cost": t["total_cost"],
            "total_score": t["total_score"], "budget": budget, "payment_ratio": ratio,
            "budget_neutral": not (cfg and cfg.budget is not None),
            "year_start_point_value": year_start,
            "settlement_point_value": (budget / ratio) / t["total_score"] if t["total_score"] else None,
        })
    n = sum(r["n_cases"] for r in rows)
    cost = sum(r["total_cost"] for r in rows)
    score = sum(r["total_score"] for r in rows)
    budget = sum(r["budget"] for r in rows)
    paid = sum(r["budget"] / r["payment_ratio"] for r in rows)
    rows.append({
        "fund": "all", "settlement_year": year, "n_cases": n, "total_cost": cost, "total_score": score,
        "budget": budget, "payment_ratio": budget / paid if paid else None,
        "budget_neutral": all(r["budget_neutral"] for r in rows), "year_start_point_value": year_start,
        "settlement_point_value": paid / score if score else None,
    })
    return rows


def payment_rate(rows: list[dict]) -> Column:
    """Yuan paid per case score point, by the case's fund: settlement point value x payment ratio
    (S1 Y3); null for a fund without a settlement point value."""
    per_fund = [r for r in rows if r["fund"] != "all"]
    spv = _literal_map({r["fund"]: r["settlement_point_value"] for r in per_fund})
    share = _literal_map({r["fund"]: r["payment_ratio"] for r in per_fund})
    if spv is None:
        return F.lit(None).cast("double")
    return F.try_element_at(spv, F.col("fund")) * F.try_element_at(share, F.col("fund"))


def with_payments(scored: DataFrame, rows: list[dict], cutoff: float | None, year: int) -> DataFrame:
    """Settlement-year cases are paid case score x settlement point value x payment ratio (S1 Y3); earlier
    base years only set the scores (payment null). Flags 特例单议 at or above the cutoff ratio."""
    review = F.col("cost_ratio") >= F.lit(cutoff) if cutoff is not None else F.lit(False)
    return scored.withColumn("special_review", F.coalesce(review, F.lit(False))).withColumn(
        "payment", F.when(F.col("year") == year, F.col("case_score") * payment_rate(rows)))
