"""The cases DIP uses, and their packet keys: pure column expressions over silver's cleaned cases.

Why silver and not gold.grouped_cases: DIP runs beside DRG on the same cleaned cases and must not
depend on the grouper. The quality verdict (silver.case_quality `priceable`) decides which cases count,
and its `severity` (MCC / CC / NONE after the pack's exclusions) feeds the severity subtypes.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.dip.policy import DipPolicy
from jobs.errors import PipelineError
from schemas.discharge import CASE_KEY


def diagnosis_key(principal_dx: Column) -> Column:
    """The principal diagnosis at 亚目 level: its first 5 characters (`K35.900x001` -> `K35.9`,
    `I10.x05` -> `I10.x`); of a dagger-asterisk pair (`E11.400x021+G63.2*`, either order) the dagger
    part: the first of up to three `+` parts not ending in `*`. The code is kept as coded otherwise (no
    case folding), since reformatting would hide coding errors.

    Built-in functions only (no lambdas): Spark interprets higher-order functions row by row, and this
    runs on every case."""
    parts = F.split(F.trim(principal_dx), r"\s*\+\s*")
    part = [F.try_element_at(parts, F.lit(i)) for i in (1, 2, 3)]
    dagger = F.coalesce(*[F.when(~p.endswith("*"), p) for p in part], part[0])
    return F.substring(F.trim(F.regexp_replace(dagger, "[†*]", "")), 1, 5)


def procedure_codes(principal_proc: Column, other_procs: Column) -> Column:
    """Every coded procedure, trimmed, deduplicated and sorted (code-point order, as Python's sorted).
    Built-in functions only, as diagnosis_key: the codes are joined, trimmed around each `+` and split."""
    listed = F.concat(F.array(principal_proc), F.coalesce(other_procs, F.array().cast("array<string>")))
    codes = F.split(F.trim(F.array_join(listed, "+")), r"\s*\+\s*")  # array_join skips nulls
    return F.array_sort(F.array_distinct(F.array_remove(codes, "")))


def procedure_key_all(principal_proc: Column, other_procs: Column) -> Column:
    """`all` (v1.0 practice): the procedure codes joined by `+`; "" when there is none (a non-null key
    keeps every later join an equi-join; the catalogue shows it as null)."""
    return F.array_join(procedure_codes(principal_proc, other_procs), "+")


def priceable_cases(spark: SparkSession, lake: str, policy: DipPolicy) -> DataFrame:
    """Priceable silver cases with what DIP needs: key, fund, year, cost, LOS, codes, severity."""
    discharges = lk.read(spark, lake, "silver", "discharges")
    quality = lk.read(spark, lake, "silver", "case_quality")
    missing = [c for c in ("priceable", "severity") if c not in quality.columns]
    if missing:
        raise PipelineError(f"table silver.case_quality lacks column(s) {', '.join(missing)}: re-run drg validate")
    ok = quality.where(F.col("priceable")).select(*CASE_KEY, "severity")
    cases = discharges.join(ok, list(CASE_KEY))
    if policy.regions:
        cases = cases.where(F.col("region_code").isin(*policy.regions))
    return cases.where(F.col("discharge_date").isNotNull() & F.col("total_cost").isNotNull()).select(
        *CASE_KEY, "batch_id",
        F.lower(F.trim("payer")).alias("fund"),
        F.year("discharge_date").alias("year"),
        F.col("total_cost").cast("double").alias("cost"),
        F.col("los_days").cast("double").alias("los"),
        "principal_dx", "principal_proc", "other_procs",
        F.coalesce("severity", F.lit("NONE")).alias("severity"),
    )


def base_years(available: list[int], policy: DipPolicy) -> list[int]:
    """The policy's fixed years, else the latest n_base_years discharge years among `available`."""
    if policy.base_years:
        return sorted(policy.base_years)
    if not available:
        raise PipelineError("no priceable cases with a discharge date and cost: run drg ingest and drg validate first")
    return sorted(available)[-policy.n_base_years:]


def keyed(cases: DataFrame) -> DataFrame:
    """Cases with diagnosis_key and procedure_key (`all` rule); related-procedure keys
    (`main_plus_related`) are set afterwards by `jobs.dip.catalogue.related_keys`."""
    return cases.select(
        *CASE_KEY, "batch_id", "fund", "year", "cost", "los", "severity", "principal_proc", "other_procs",
        diagnosis_key(F.col("principal_dx")).alias("diagnosis_key"),
        procedure_key_all(F.col("principal_proc"), F.col("other_procs")).alias("procedure_key"),
    ).where(F.col("diagnosis_key") != "")
