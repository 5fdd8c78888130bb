"""`drg dip --lake LAKE [--policy FILE]`: DIP beside DRG, from silver's priceable cases to five gold tables.

Steps (each a pure DataFrame function in this package): keys per case (cases.py) -> key statistics, one
pass over the cases -> packet map, scores, subtypes, year-start point value on that small table
(catalogue.py) -> case scores, their totals per hospital and fund (one more pass), 特例单议, settlement
point values, payments (payments.py) -> monitoring from those totals (monitoring.py). The keyed cases
are cached by the first pass, so silver is read once.

Reading of the formula sheet (dip.md §4 F1/F4, §5 P1), the one place it is decided:
- m_i = sum_y w_y mean_{i,y} / sum_y w_y over the base years y where packet i has cases (w = 1:2:7 oldest
  to latest), i.e. weights on yearly means, renormalised over the years present;
- M is the same weighted mean over *all* base-period priceable cases: M = sum_y w_y mean_y / sum_y w_y,
  mean_y = mean cost of every case discharged in year y ("mean cost of all local discharges", F1);
- score_i = m_i / M x 1000;
- year-start point value = sum_y w_y C_y / sum_y w_y S_y, C_y = total cost of year y's cases, S_y = sum of
  their packet scores (no hospital or subtype coefficients, no outlier adjustments).
Gold tables are replaced whole by each build (one commit each, stamped with the run id): re-running
changes nothing, and an earlier run stays readable as of its Delta version. A night that settles new
batches at the release in force (scheduled recalibration) builds nothing: it adds its batches' case
scores to the release's run (`settle`), as DRG pricing adds their payments.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.conform import stamped
from jobs.dip import attributes as attr
from jobs.dip import cases as cs
from jobs.dip import catalogue as cat
from jobs.dip import monitoring, payments
from jobs.dip.policy import DipPolicy, load_dip_policy
from jobs.errors import PipelineError
from jobs.night_plan import batch_predicate
from jobs.pricing.calibration import Calibration, Settlement, in_calibration
from jobs.runs import new_run_id
from schemas.dip import GOLD
from schemas.publish import ddl

CASE_STATS = ["run_id", "region_code", "batch_id", "packet_code"]  # data skipping of dip_case_scores


@dataclass
class DipResult:
    run_id: str
    base_years: list[int]
    overall_mean_cost: float
    year_start_point_value: float
    frames: dict[str, DataFrame]
    cached: list[DataFrame]

    def release(self) -> None:
        """Drop the cached cases once the frames are written (they are read lazily until then)."""
        for df in self.cached:
            df.unpersist()


def _trimmed_stats(cases: DataFrame, packets: DataFrame, policy: DipPolicy) -> DataFrame:
    """Key statistics of the cases inside their packet's [lower, upper] cost quantiles (packets with at
    least trim.min_cases cases; smaller packets keep every case)."""
    t = policy.trim
    with_packet = cases.join(F.broadcast(packets.select(*cat.KEYS, "packet_code")), list(cat.KEYS))
    fences = with_packet.groupBy("packet_code").agg(
        F.count("*").alias("_n"), F.percentile_approx("cost", [t.lower, t.upper], 100000).alias("_q"))
    kept = with_packet.join(F.broadcast(fences), "packet_code").where(
        (F.col("_n") < t.min_cases) | F.col("cost").between(F.col("_q")[0], F.col("_q")[1]))
    return cat.key_stats(kept)


def build(cases: DataFrame, attributes: DataFrame, policy: DipPolicy, run_id: str,
          cal: Calibration | None = None) -> DipResult:
    """All five gold tables from priceable cases (cases.priceable_cases' columns), not yet written.

    `cal`: the DRG calibration (jobs.pricing.calibration). Its batches' cases set the catalogue, the point
    values, the 特例单议 cutoff and the indices, as they set the DRG weights: under a recalibration
    schedule the catalogue stays fixed for the payment period, later batches are scored against it (here,
    or by `settle` on the night they arrive) and a full recompute answers what the nights answered. None:
    every case (every: night, and `drg dip`). Every base-period case is scored and paid either way.

    Spark jobs over the cases: the keyed cases are cached by the first (the key statistics), aggregated
    once more after scoring (payments.case_totals) and read a last time when the case scores are
    written; everything between runs on tables the size of the catalogue. Call `release()` on the
    result once its frames are written."""
    def calibrating(df: DataFrame) -> DataFrame:
        return df if cal is None else in_calibration(df, cal)

    keyed = cs.keyed(cases)
    if policy.procedure_key == "main_plus_related":  # keys measured on the base period: years first
        years = cs.base_years([r[0] for r in calibrating(cases).select("year").distinct().collect()], policy)
        keyed = keyed.where(F.col("year").isin(*years))
        keyed = cat.related_keys(keyed, policy, measured_on=calibrating(keyed))
    keyed = keyed.select(*cs.CASE_KEY, "batch_id", "fund", "year", "cost", "los", "severity", *cat.KEYS).persist()
    stats = cat.key_stats(calibrating(keyed)).localCheckpoint()  # fills the cache: the one read of the input
    per_year = cat.year_totals(stats)
    years = cs.base_years(list(per_year), policy)
    if not any(y in per_year for y in years):
        keyed.unpersist()
        raise PipelineError(f"no priceable cases in the base years {years}: nothing to build a DIP catalogue from")
    weights = policy.weights_for(years)
    keyed_base = keyed.where(F.col("year").isin(*years))
    big_m = cat.overall_mean(per_year, weights)
    packets = cat.packet_map(stats, attributes, policy, years).localCheckpoint()
    trimmed = cat.trimmed_means(_trimmed_stats(calibrating(keyed_base), packets, policy), packets, weights) \
        if policy.trim.enabled else None
    catalogue = cat.catalogue(packets, weights, big_m, policy, trimmed).localCheckpoint()
    pv, shape = cat.year_start_point_value(catalogue, weights, per_year, monitoring.catalogue_shape(catalogue))
    catalogue = catalogue.drop(*[f"n_{y}" for y in years])

    info = payments.packet_info(cat.assign_packets(keyed_base, catalogue, attributes), catalogue).localCheckpoint()
    scored = payments.case_scores(keyed_base, info, pv, policy)
    totals = payments.case_totals(calibrating(scored), policy).localCheckpoint()
    collected = totals.collect()
    latest = max(years)
    rows = payments.point_values(payments.fund_totals(collected, latest), pv, latest, policy)
    n_cases = sum(per_year[y][0] for y in years if y in per_year)
    cutoff = payments.special_review_cutoff(collected, n_cases, policy)
    indices = monitoring.indices(totals, latest, payments.payment_rate(rows), cutoff).localCheckpoint()

    spark = cases.sparkSession
    frames = {
        "dip_catalogue": catalogue.withColumns({
            "base_years": F.array(*[F.lit(y) for y in years]), "overall_mean_cost": F.lit(big_m)}),
        "dip_case_scores": _case_scores(scored, rows, cutoff, latest),
        "dip_point_values": spark.createDataFrame(rows, ddl(GOLD["dip_point_values"][:-2])),
        "dip_hospital_indices": monitoring.hospital_indices(indices),
        "dip_monitoring": monitoring.region_summary(indices, shape, latest, cutoff),
    }
    run = {"run_id": run_id, "policy_version": policy.version}
    frames = {name: stamped(df, run, GOLD[name]) for name, df in frames.items()}
    return DipResult(run_id, years, big_m, pv, frames, [keyed])


def _case_scores(scored: DataFrame, rows: list[dict], cutoff: float | None, year: int) -> DataFrame:
    """gold.dip_case_scores' columns (before the run's stamp) of scored cases, paid at the point values."""
    return payments.with_payments(scored, rows, cutoff, year).withColumnsRenamed(
        {"year": "discharge_year", "score": "packet_score", "cost": "total_cost"})


def write(result: DipResult, lake: str) -> None:
    """Replace each DIP gold table in one commit stamped with the run id (the tables written at once)."""
    lk.concurrently(
        partial(lk.overwrite, df, lk.table_path(lake, "gold", name), result.run_id,
                stats_columns=CASE_STATS if name == "dip_case_scores" else None)
        for name, df in result.frames.items())


def _attributes(spark: SparkSession, policy: DipPolicy) -> DataFrame:
    """The procedure attribute table the policy names (packets' `<dx3>:<attribute>`), as a DataFrame."""
    return attr.attribute_table(spark, attr.read_rows(policy.attributes_path()))


def settle(spark: SparkSession, lake: str, policy: DipPolicy, run_id: str,
           settlement: Settlement) -> tuple[int, int] | None:
    """Score and pay the settled batches' cases at the DIP tables of the release's run, as that run's
    rows of gold.dip_case_scores (replacing exactly those batches' rows); the run's catalogue, point
    values, indices and monitoring stay as they are, as the DRG weights do.

    Returns the batches' base-period cases and the rows written (a case whose packet the catalogue lacks
    is not scored), or None when gold holds no DIP build of that run under this policy (a lake from
    before the cutoff was kept, or `main_plus_related` keys, which are measured on the calibration's
    cases): the caller then builds in full, which gives the same tables.

    Why it equals the full build: both score through the same catalogue, packet assignment
    (catalogue.assign_packets), year-start point value, 特例单议 cutoff and settlement point values,
    which a night that only adds batches to a fixed calibration does not change."""
    calibrated = settlement.run_id
    summary_path = lk.table_path(lake, "gold", "dip_monitoring")
    if policy.procedure_key != "all" or not lk.exists(spark, summary_path):
        return None
    summary = spark.read.format("delta").load(summary_path)
    if "special_review_cutoff" not in summary.columns:
        return None
    summary = summary.where((F.col("run_id") == calibrated) & (F.col("policy_version") == policy.version)).first()
    if summary is None:
        return None

    def of_run(table: str) -> DataFrame:
        return lk.read(spark, lake, "gold", table).where(F.col("run_id") == calibrated)

    catalogue = of_run("dip_catalogue").localCheckpoint()
    years = catalogue.select("base_years").first()[0]
    rows = [r.asDict() for r in of_run("dip_point_values").collect()]
    cases = cs.priceable_cases(spark, lake, policy).where(batch_predicate(list(settlement.batches)))
    keyed = cs.keyed(cases).where(F.col("year").isin(*years))
    info = payments.packet_info(cat.assign_packets(keyed, catalogue, _attributes(spark, policy)), catalogue)
    scored = payments.case_scores(keyed, info, rows[0]["year_start_point_value"], policy)
    frame = stamped(_case_scores(scored, rows, summary["special_review_cutoff"], summary["settlement_year"]),
                    {"run_id": calibrated, "policy_version": policy.version}, GOLD["dip_case_scores"])
    path = lk.table_path(lake, "gold", "dip_case_scores")
    lk.replace_where(frame, path, settlement.where, run_id, fresh=False, stats_columns=CASE_STATS)
    return keyed.count(), spark.read.format("delta").load(path).where(settlement.where).count()


def dip(spark: SparkSession, lake: str, policy: DipPolicy, run_id: str | None = None,
        cal: Calibration | None = None) -> DipResult:
    """Read silver, build and write the DIP gold tables (from `cal`'s batches, see `build`); returns what
    was written."""
    run_id = run_id or new_run_id()
    cases = cs.priceable_cases(spark, lake, policy)  # build caches the keyed cases: silver is read once
    result = build(cases, _attributes(spark, policy), policy, run_id, cal)
    try:
        write(result, lake)
    finally:
        result.release()
    return result


def register(sub) -> None:
    p = sub.add_parser("dip", help="DIP: build the packet catalogue, score it, set point values, pay cases")
    p.add_argument("--lake", required=True, help="lake root folder or URI")
    p.add_argument("--policy", help="DIP policy YAML (default: the shipped dip-default.yaml)")
    p.add_argument("--run-id", help="run id to stamp (default: a new one)")
    p.set_defaults(func=run)


def run(args) -> int:
    from jobs.spark import get_spark, parse_conf

    policy = load_dip_policy(args.policy)
    spark = get_spark("drg-dip", parse_conf(args.conf))
    result = dip(spark, args.lake, policy, args.run_id)
    summary = lk.read(spark, args.lake, "gold", "dip_monitoring").first()
    print(
        f"dip: run {result.run_id}, policy {policy.version}, base years {result.base_years}: "
        f"{summary['n_base_cases']} cases, {summary['n_core_packets']} core + "
        f"{summary['n_comprehensive_packets']} comprehensive packets, {summary['n_subtypes']} subtypes; "
        f"M {result.overall_mean_cost:.2f} yuan, year-start point value {result.year_start_point_value:.4f} "
        f"yuan/point; core share {summary['core_share']:.3f} in {summary['settlement_year']}"
    )
    return 0
