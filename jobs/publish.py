"""Publish: promote a priced run to a versioned, shareable release, and compare two releases.

Why this shape:
- Atomic without relying on one Delta commit across tables: every published table is append-only and
  keyed (partitioned) by release_id; all data tables are written first, and the `published.releases`
  row is written last. Readers find releases only through that log (jobs.releases.resolve), so a crash
  before the log row leaves the previous release the latest complete one; the next publish of the run
  replaces the partial rows (replaceWhere on release_id) before writing the log row.
- Readable for years: a past release is a filter on release_id, not Delta time travel, which VACUUM
  and log retention break after days.
- Safe to share: only the aggregate columns of schemas.publish are selected from gold (no case rows, no
  patient or case identifiers); any cell built from fewer than k cases is suppressed or merged, and the
  rule is written into the release log.
- Statistics are computed in Spark (one grouping-sets aggregation over the run's cases); only
  aggregates reach the driver.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from functools import partial

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs import lake_files
from jobs.conform import stamped
from jobs.dip.publish import release_frames
from jobs.errors import PipelineError
from jobs.exact import exact_mean, exact_stddev, exact_sum, in_fixed_order
from jobs.ingest import check_name
from jobs.names import OTHER, names_of, with_code_names, with_place_names
from jobs.pricing.calibration import calibrated_by, previous_release
from jobs.published import read_log, release_frame
from jobs.releases import RELEASES_TABLE, resolve
from jobs.runs import minted
from jobs.spark import get_spark, parse_conf
from jobs.suppression import region_cells, suppress
from schemas import publish as S
from schemas.discharge import CASE_KEY

DEFAULT_K = 10
PERCENTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
PERCENTILE_ACCURACY = 10000
_RUN_ID = re.compile(r"^(\d{4})(\d{2})(\d{2})T\d{6}Z-([0-9a-f]+)$")


# ---------------------------------------------------------------------------------------------- releases
def release_id_for(run_id: str, name: str | None = None) -> str:
    """`R2026-11-23-<run suffix>` from a standard run id, else the given `--release` name."""
    if name:
        return check_name("release name", name)
    match = _RUN_ID.match(run_id)
    if match:
        year, month, day, suffix = match.groups()
        return f"R{year}-{month}-{day}-{suffix}"
    return "R-" + check_name("run id", run_id)


def release_date_for(run_id: str) -> date:
    """The night the run priced (from its id), so a re-publish days later keeps the release's date."""
    match = _RUN_ID.match(run_id)
    if match:
        return date(int(match[1]), int(match[2]), int(match[3]))
    return datetime.now(UTC).date()


# ---------------------------------------------------------------------------------------- frame builders
def _pick(df: DataFrame, fields) -> list[Column]:
    """Select `fields` (name, type) from df in order; a column the input lacks becomes a typed null."""
    present = set(df.columns)
    return [
        (F.col(name).try_cast(kind) if name in present else F.lit(None).cast(kind)).alias(name)
        for name, kind in fields
    ]


def _data(fields):
    """The (name, type) pairs a frame builder computes: the contract without the name columns."""
    return [(n, t) for n, t in fields if n not in S.NAME_COLUMNS]


def _stamp(df: DataFrame, table: str, meta: dict) -> DataFrame:
    """Add the release columns and keep exactly the published columns of `table`, in order and types."""
    return stamped(df, {name: meta[name] for name, _ in S.RELEASE_COLUMNS}, S.table_fields(table))


def weights_frame(weights: DataFrame, previous: DataFrame | None, k: int) -> DataFrame:
    """Every DRG keeps its weight (payment needs it); counts and CIs of DRGs under k are suppressed.

    previous_rw is the weight of the previous release, else the prior weight pricing used.
    """
    out = weights.select(*_pick(weights, _data(S.DRG_WEIGHTS)), F.col("prev_rw").alias("_prior"))
    if previous is not None:
        out = out.drop("previous_rw").join(previous, "drg", "left")
    out = out.withColumn("previous_rw", F.coalesce("previous_rw", "_prior")).drop("_prior")
    out = out.withColumn("rw_change", F.try_divide("rw", "previous_rw") - 1)
    return suppress(out, k, ("n_cases", "rw_ci_low", "rw_ci_high")).select(*S.data_columns(S.DRG_WEIGHTS))


def hospitals_frame(indices: DataFrame, k: int) -> DataFrame:
    stats = [n for n in S.data_columns(S.HOSPITAL_INDICES) if n not in ("region_code", "hospital_id", "suppressed")]
    return suppress(indices.select(*_pick(indices, _data(S.HOSPITAL_INDICES))), k, stats)


def cases_frame(payments: DataFrame, grouped: DataFrame | None, weights: DataFrame) -> DataFrame:
    """The run's priced cases with what statistics need: keys of the DRG tree, region, cost, LOS, RW.

    LOS comes from gold.grouped_cases (`grouped`), or, when `grouped` is None, from `payments` itself
    (pricing's own priced cases, which carry the same los_days it read from gold.grouped_cases).
    """
    tree = F.broadcast(weights.select("drg", "adrg", "mdc").dropDuplicates(["drg"]))
    if grouped is not None:
        los = grouped.select(*CASE_KEY, "los_days")
        payments = payments.select(*CASE_KEY, "drg", "rw", "total_cost").join(los, list(CASE_KEY), "left")
    return (
        payments.select(*CASE_KEY, "drg", "rw", "total_cost", "los_days")
        .join(tree, "drg", "left")
        .select("mdc", "adrg", "drg", "region_code", F.col("total_cost").alias("cost"),
                F.col("los_days").cast("double").alias("los"), "rw")
    )


def _summary(value: str) -> list[Column]:
    quantiles = F.percentile_approx(value, list(PERCENTILES), PERCENTILE_ACCURACY)
    names = ("p10", "p25", "median", "p75", "p90")
    return [
        exact_mean(value).alias(f"{value}_mean"),
        exact_stddev(value).alias(f"{value}_sd"),
        F.try_divide(exact_stddev(value), exact_mean(value)).alias(f"{value}_cv"),
        *[quantiles[i].alias(f"{value}_{name}") for i, name in enumerate(names)],
    ]


def group_stats_frame(cases: DataFrame, weights_pub: DataFrame, k: int) -> DataFrame:
    """n, mean, SD, CV and percentiles of cost and LOS at every level, in one grouping-sets pass."""
    cells = F.broadcast(region_cells(cases, k))
    # equal percentiles however the cases were stored (an incremental night equals a full recompute)
    data = in_fixed_order(cases.join(cells, ["drg", "region_code"], "left"), "drg", "region_code", "cost", "los", "rw")
    tree = ["mdc", "adrg", "drg"]
    sets = [tree, [*tree, "cell"], ["mdc", "adrg"], ["mdc"], ["region_code"], []]
    flags = {c: F.grouping(c).alias(f"_g_{c}") for c in ("mdc", "adrg", "drg", "cell", "region_code")}
    stats = data.groupingSets(sets, *tree, "cell", "region_code").agg(
        F.count("*").alias("n_cases"), *_summary("cost"), *_summary("los"),
        exact_mean("rw").alias("_mean_rw"), *flags.values(),
    )
    grouped = {c: F.col(f"_g_{c}") == 0 for c in flags}
    level = (
        F.when(grouped["cell"], "drg_region").when(grouped["drg"], "drg").when(grouped["adrg"], "adrg")
        .when(grouped["mdc"], "mdc").when(grouped["region_code"], "region").otherwise("all")
    )
    by_drg = F.broadcast(weights_pub.select("drg", F.col("rw").alias("_drg_rw"), "previous_rw"))
    per_drg = F.col("level").isin("drg", "drg_region")
    stats = (
        stats.withColumn("level", level)
        .withColumn("region_code", F.coalesce("cell", "region_code"))
        .join(by_drg, "drg", "left")
        .withColumn("rw", F.when(per_drg, F.col("_drg_rw")).otherwise(F.col("_mean_rw")))
        .withColumn("previous_rw", F.when(per_drg, F.col("previous_rw")))
        .withColumn("rw_change", F.try_divide("rw", "previous_rw") - 1)
    )
    stat_names = [n for n, _ in S.STAT_COLUMNS] + ["previous_rw", "rw_change"]
    return suppress(stats, k, stat_names).select(*S.data_columns(S.GROUP_STATS))


# ------------------------------------------------------------------------------------------------ publish
def _run_rows(spark: SparkSession, lake: str, table: str, run_id: str) -> DataFrame:
    return lk.read(spark, lake, "gold", table).where(F.col("run_id") == run_id)


def _run_versions(spark: SparkSession, lake: str, weights: DataFrame, run_id: str) -> tuple:
    """(pack_version, policy_version) of the run; a run that was never priced is a clear error."""
    row = weights.select(*_pick(weights, (("pack_version", "string"), ("policy_version", "string")))).first()
    if row is None:
        runs = lk.read(spark, lake, "gold", "drg_weights").select("run_id").distinct().orderBy(F.desc("run_id"))
        known = ", ".join(r[0] for r in runs.limit(5).collect()) or "none"
        raise PipelineError(f"run {run_id} has no rows in gold.drg_weights (latest priced runs: {known})")
    return row["pack_version"], row["policy_version"]


def _write_release_table(spark: SparkSession, lake: str, table: str, frame: DataFrame, meta: dict,
                         fresh: bool, merge_schema: bool = False) -> int:
    """Replace the release's rows of published.<table> with `frame` (one commit); its new Delta version.
    fresh: the release id is new (made from a run id this process minted), so the rows are appended."""
    path = lk.table_path(lake, "published", table)
    lk.replace_where(frame, path, f"release_id = '{meta['release_id']}'", meta["run_id"], ["release_id"],
                     merge_schema=merge_schema, fresh=fresh)
    return lk.version(spark, path)


def publish(
    spark: SparkSession,
    lake: str,
    run_id: str,
    release_name: str | None = None,
    k: int = DEFAULT_K,
    with_report: bool = True,
    cases: DataFrame | None = None,
) -> dict:
    """Promote the gold rows of `run_id` to a release; returns its published.releases row.

    Publishing a run that already has a complete release changes nothing (same id, no new rows).
    `cases`: the run's priced cases as pricing computed them (jobs.price.price_run, same process);
    without them they are read back from gold.case_payments and gold.grouped_cases (same rows).
    """
    if k < 1:
        raise PipelineError(f"--k must be at least 1, got {k}")
    release_id = release_id_for(run_id, release_name)
    fresh = release_name is None and minted(run_id)  # no partial rows of an earlier attempt to replace
    log = read_log(spark, lake)
    done = [r for r in log if r["release_id"] == release_id and r["status"] == "complete"]
    if done:
        if done[0]["run_id"] != run_id:
            raise PipelineError(f"release {release_id} already exists for run {done[0]['run_id']}: pick another name")
        return done[0]

    weights = _run_rows(spark, lake, "drg_weights", run_id)
    pack_version, policy_version = _run_versions(spark, lake, weights, run_id)
    calibrated = calibrated_by(spark, lake, run_id)
    if calibrated is not None and calibrated[1] != run_id:
        raise PipelineError(f"run {run_id} settled cases at run {calibrated[1]}'s weights and has nothing of its "
                            f"own to publish: publish run {calibrated[1]}")
    previous = previous_release(spark, lake, calibrated[0] if calibrated else None, log)
    prev_weights = None
    if previous is not None:
        prev_weights = release_frame(spark, lake, "drg_weights", previous).select(
            "drg", F.col("rw").alias("previous_rw")
        )
    meta = {
        "release_id": release_id,
        "release_date": release_date_for(run_id),
        "run_id": run_id,
        "pack_version": pack_version,
        "policy_version": policy_version,
    }
    weights_pub = weights_frame(weights, prev_weights, k).cache()
    names = names_of(spark, lake, pack_version)
    if cases is None:
        cases = cases_frame(_run_rows(spark, lake, "case_payments", run_id),
                            lk.read(spark, lake, "gold", "grouped_cases"), weights)
    else:
        cases = cases_frame(cases, None, weights)
    rates = _run_rows(spark, lake, "base_rates", run_id)
    rates = suppress(rates.select(*_pick(rates, _data(S.BASE_RATES))), k, ("n_cases", "sum_rw_coef"))
    frames = {  # names beside every code: the pack's for MDC/ADRG/DRG, the reference tables' for places
        "drg_weights": with_code_names(weights_pub, names),
        "base_rates": with_place_names(spark, lake, rates),
        "group_stats": with_place_names(spark, lake, with_code_names(group_stats_frame(cases, weights_pub, k), names)),
        "hospital_indices": with_place_names(
            spark, lake, hospitals_frame(_run_rows(spark, lake, "hospital_indices", run_id), k)),
    }
    tables = {table: _stamp(frame, table, meta) for table, frame in frames.items()}
    dip = release_frames(spark, lake, meta, k)  # DIP's tables join the release when `drg dip` has run
    # every data table at once (each its own commit); the log row below stays the one that publishes.
    # merge_schema: a lake published before a column was added (e.g. the names) takes it, old rows null
    versions = dict(zip([*tables, *dip], lk.concurrently([
        *(partial(_write_release_table, spark, lake, t, f, meta, fresh, merge_schema=True) for t, f in tables.items()),
        *(partial(_write_release_table, spark, lake, t, f, meta, fresh) for t, f in dip.items()),
    ]), strict=True))
    weights_pub.unpersist()

    row = {
        **{key: meta[key] for key in ("release_id", "release_date", "run_id", "pack_version", "policy_version")},
        "release_name": release_name,
        "published_at": None,
        "k": k,
        "suppression_rule": S.SUPPRESSION_RULE.format(k=k),
        "previous_release_id": previous["release_id"] if previous else None,
        "table_versions": versions,
        "status": "complete",
    }
    names = [name for name, _ in S.RELEASES]
    entry = spark.createDataFrame([tuple(row[n] for n in names)], S.ddl(S.RELEASES)).withColumn(
        "published_at", F.current_timestamp()
    )
    # The commit that makes the release visible: everything above is invisible to readers until now.
    log_path = lk.table_path(lake, "published", RELEASES_TABLE)
    lk.replace_where(entry, log_path, f"release_id = '{release_id}'", run_id, fresh=fresh)
    row = resolve(read_log(spark, lake), release_id)
    if with_report:
        from jobs.report import write_report

        row["report"] = write_report(spark, lake, row)
    return row


# ------------------------------------------------------------------------------------------------ compare
def weight_moves(old: DataFrame, new: DataFrame, threshold: float) -> DataFrame:
    """DRGs whose weight moved by more than `threshold` (relative), plus DRGs added or dropped."""
    def named(frame: DataFrame) -> Column:  # a release published before names were kept: the code
        return F.col("drg_name") if "drg_name" in frame.columns else F.col("drg")

    a = old.select("drg", "adrg", named(old).alias("drg_name"), F.col("rw").alias("rw_a"))
    b = new.select("drg", F.col("adrg").alias("_adrg"), named(new).alias("_name"), F.col("rw").alias("rw_b"))
    change = F.try_divide("rw_b", "rw_a") - 1
    return (
        a.join(b, "drg", "full")
        .select("drg", F.coalesce("_name", "drg_name").alias("drg_name"), F.coalesce("adrg", "_adrg").alias("adrg"),
                "rw_a", "rw_b", change.alias("change"))
        .where(F.col("rw_a").isNull() | F.col("rw_b").isNull() | (F.abs(F.col("change")) > threshold))
        .orderBy(F.desc_nulls_first(F.abs(F.col("change"))), "drg")
    )


def payment_impact(cases: DataFrame, old: DataFrame, new: DataFrame, k: int) -> DataFrame:
    """What-if per hospital: the old period's cases paid with the new weights instead of the old.

    Weight effect only: each case keeps its base rate and hospital coefficient, and a DRG absent from
    the new release keeps its old weight. Hospitals with fewer than k cases are merged into OTHER.
    """
    rw = F.broadcast(
        old.select("drg", F.col("rw").alias("rw_a")).join(new.select("drg", F.col("rw").alias("rw_b")), "drg", "left")
    )
    unit = F.col("base_rate") * F.coalesce(F.col("hospital_coef"), F.lit(1.0))
    per_case = cases.join(rw, "drg", "inner").select(
        "region_code", "hospital_id",
        (unit * F.col("rw_a")).alias("paid_a"),
        (unit * F.coalesce("rw_b", "rw_a")).alias("paid_b"),
    )
    hospitals = per_case.groupBy("region_code", "hospital_id").agg(
        F.count("*").alias("n_cases"), exact_sum("paid_a").alias("paid_a"), exact_sum("paid_b").alias("paid_b")
    )
    small = F.col("n_cases") < k
    merged = hospitals.select(
        F.when(small, F.lit(OTHER)).otherwise(F.col("region_code")).alias("region_code"),
        F.when(small, F.lit(OTHER)).otherwise(F.col("hospital_id")).alias("hospital_id"),
        "n_cases", "paid_a", "paid_b",
    )
    return (
        merged.groupBy("region_code", "hospital_id")
        .agg(
            F.sum("n_cases").alias("n_cases"), exact_sum("paid_a").alias("paid_a"), exact_sum("paid_b").alias("paid_b")
        )
        .withColumn("change", F.col("paid_b") - F.col("paid_a"))
        .withColumn("change_pct", F.try_divide(F.col("change"), F.col("paid_a")) * 100)
        .orderBy(F.desc(F.abs(F.col("change"))))
    )


def compare(spark: SparkSession, lake: str, release_a: str, release_b: str, threshold: float = 0.05):
    """(moved DRGs, payment impact per hospital) between two releases, as small Spark DataFrames."""
    log = read_log(spark, lake)
    a, b = resolve(log, release_a), resolve(log, release_b)
    old = release_frame(spark, lake, "drg_weights", a)
    new = release_frame(spark, lake, "drg_weights", b)
    cases = _run_rows(spark, lake, "case_payments", a["run_id"])
    if cases.isEmpty():  # the old run's cases were replaced in gold: use the newer period's
        cases = _run_rows(spark, lake, "case_payments", b["run_id"])
    impact = with_place_names(spark, lake, payment_impact(cases, old, new, b["k"])).select(
        "region_code", "hospital_id", "hospital_name", "n_cases", "paid_a", "paid_b", "change", "change_pct"
    ).orderBy(F.desc(F.abs(F.col("change"))), "hospital_id")
    return a, b, weight_moves(old, new, threshold), impact


# ---------------------------------------------------------------------------------------------------- CLI
def register(sub) -> None:
    parser = sub.add_parser("publish", help="promote a priced run to a release, or compare two releases")
    parser.add_argument("--lake", required=True, help="lake root folder or URI")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--run", help="run id whose gold tables to publish")
    action.add_argument("--compare", nargs=2, metavar=("RELEASE_A", "RELEASE_B"),
                        help="compare two releases (id, name or date; A is the older)")
    parser.add_argument("--release", help="release name (default R<date>-<run suffix>)")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="minimum cases per published cell (default 10)")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="with --compare: relative weight change to report (default 0.05 = 5%%)")
    parser.add_argument("--out", help="with --compare: write the two lists as <out>_drgs.csv, <out>_hospitals.csv")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")
    parser.set_defaults(func=run)


COMPARE_LABELS = {  # column -> (Chinese header, formatter name in jobs.display or None for text)
    "drg": ("DRG", None), "drg_name": ("DRG 名称", None), "adrg": ("ADRG", None),
    "rw_a": ("原权重 A", "rw"), "rw_b": ("新权重 B", "rw"), "change": ("权重变化", "signed_percent"),
    "region_code": ("地区", None), "hospital_id": ("医院", None), "hospital_name": ("医院名称", None),
    "n_cases": ("病例数", "count"), "paid_a": ("按 A 支付（元）", "number"), "paid_b": ("按 B 支付（元）", "number"),
    "change_pct": ("支付变化", "pct"),
}


def _format(column: str, value) -> str:
    from jobs import display as D

    kind = COMPARE_LABELS.get(column, (column, None))[1]
    if kind is None:
        return "" if value is None else str(value)
    return {"rw": lambda v: D.number(v, 4), "pct": lambda v: D.percent(v, 2, ratio=False)}.get(
        kind, getattr(D, kind, None))(value)


def compare_rows(frame: DataFrame, money_change: bool, limit: int = 200):
    """(headers, rows of display strings) of a comparison list, for the terminal and the HTML page."""
    from jobs import display as D

    headers = [COMPARE_LABELS.get(c, (c, None))[0] for c in frame.columns]
    if money_change:
        headers = ["支付变化（元）" if c == "change" else h for c, h in zip(frame.columns, headers, strict=True)]
    rows = []
    for row in frame.limit(limit).collect():
        rows.append([D.number(v) if c == "change" and money_change else _format(c, v)
                     for c, v in zip(frame.columns, row, strict=True)])
    return headers, rows


def _print(title: str, headers: list[str], rows: list[list[str]], limit: int = 40) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for name in headers:
        table.add_column(name)
    for row in rows[:limit]:
        table.add_row(*row)
    console = Console()
    Console(width=max(console.width, 160) if not console.is_terminal else None).print(table)


def compare_page(a: dict, b: dict, threshold: float, moved, impact) -> str:
    """The comparison as a self-contained Chinese HTML page (jobs.display)."""
    import html

    from jobs import display as D

    def table(headers, rows) -> str:
        if not rows:
            return "<p class='muted'>无</p>"
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    title = f"发布版本对比 {a['release_id']} → {b['release_id']}"
    body = (f"<h1>{html.escape(title)}</h1>"
            f"<section class='wide'><h2>权重变化超过 {D.percent(threshold, 0)} 的 DRG（含新增、取消）</h2>"
            f"{table(*moved)}</section>"
            "<section class='wide'><h2>各医院支付影响（以 A 期病例按 B 权重支付；"
            "病例数不足 k 的医院合并为“其他”）</h2>"
            f"{table(*impact)}</section>")
    return D.page(title, body)


def run(args) -> int:
    spark = get_spark("drg-publish", parse_conf(args.conf))
    if args.compare:
        a, b, moved, impact = compare(spark, args.lake, *args.compare, threshold=args.threshold)
        moved_rows, impact_rows = compare_rows(moved, False), compare_rows(impact, True)
        _print(f"权重变化超过 {args.threshold:.0%} 的 DRG（DRGs moved）：{a['release_id']} → {b['release_id']}",
               *moved_rows)
        _print(f"各医院支付影响（Payment impact；A 期运行 {a['run_id']} 的病例；病例数不足 k 的医院合并）",
               *impact_rows)
        path = f"{str(args.lake).rstrip('/')}/published/reports/compare-{a['release_id']}-{b['release_id']}/index.html"
        page = compare_page(a, b, args.threshold, moved_rows, impact_rows)
        print(f"对比报告 (comparison page): {lake_files.write_text(path, page, spark)}")  # local or object storage
        if args.out:
            moved.toPandas().to_csv(f"{args.out}_drgs.csv", index=False)
            impact.toPandas().to_csv(f"{args.out}_hospitals.csv", index=False)
        return 0
    row = publish(spark, args.lake, args.run, args.release, args.k, with_report=not args.no_report)
    print(f"release {row['release_id']} ({row['release_date']}) of run {row['run_id']}: "
          f"tables at versions {dict(row['table_versions'])}, k={row['k']}")
    if row.get("report"):
        print(f"report: {row['report']}")
    return 0
