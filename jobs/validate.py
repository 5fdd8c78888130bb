"""`drg validate`: the coding-quality stage between ingestion and grouping/pricing.

Flags every case of a batch against the rule catalogue (quality/rules.yaml) in one Spark pass, writes
silver.case_quality (cases are never deleted; `priceable` says whether pricing may use them), scores
hospitals into gold.hospital_quality (quality score, upcoding z-scores), runs the Great Expectations
batch contract (quality/suites/*.json) with Data Docs under `<lake>/quality/data_docs/`, records each
expectation in ops.quality_results, and finally gates: a failed contract is a PipelineError, so the
nightly run stops before pricing. All outputs are written before the gate so the report can be read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs import lake_files
from jobs.errors import PipelineError
from jobs.ingest import check_name
from jobs.night_plan import BatchKey, batch_predicate
from jobs.runs import new_run_id
from jobs.spark import get_spark, parse_conf
from quality.catalogue import Catalogue, load_catalogue
from quality.contract import Contract, Outcome, contract_frame, gate, outcome_rows, preload
from quality.flags import flag_cases
from quality.pack import load_quality_pack
from quality.page import write as write_quality_page
from quality.scores import hospital_quality

ALL_BATCHES = "all"


@dataclass(frozen=True)
class ValidateResult:
    scope: str  # the batch id, or "all"
    run_id: str
    n_cases: int
    n_flagged: int
    n_unpriceable: int
    upcoding_hospitals: list[str]  # "region/hospital"
    outcomes: list[Outcome]
    docs_index: str
    quality_page: str | None = None  # <lake>/quality/index.html, the Chinese summary (local lakes)


def quality_dir(lake: str) -> str:
    """Where GX's files live: beside the Delta layers, not a Delta table. Absolute, because GX's
    file store refuses a relative folder (and `--lake lake` is a fair thing to type)."""
    local = lk.local_folder(lake)
    if local is None:
        return f"{str(lake).rstrip('/')}/quality"
    return str(local.resolve() / "quality")


def _write_case_quality(flagged: DataFrame, lake: str, where: str | None, run_id: str) -> None:
    path = lk.table_path(lake, "silver", "case_quality")
    rows = flagged.withColumn("run_id", F.lit(run_id))
    stats = ["region_code", "batch_id"]  # files are written per batch: min = max, so batch reads skip the rest
    if where is None:
        lk.overwrite(rows, path, run_id, stats_columns=stats)
    else:
        lk.replace_where(rows, path, where, run_id, stats_columns=stats)


def _write_results(spark: SparkSession, outcomes: list[Outcome], lake: str, scope: str, run_id: str) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [{"scope": scope, "run_id": run_id, "validated_at": now, **o} for o in outcome_rows(outcomes)]
    schema = (
        "scope string, run_id string, validated_at timestamp, suite string, expectation string, column string, "
        "rule_id string, mostly double, success boolean, element_count long, unexpected_count long, "
        "unexpected_percent double, observed string"
    )
    df = spark.createDataFrame(rows, schema)
    lk.replace_where(df, lk.table_path(lake, "ops", "quality_results"), f"scope = '{scope}'", run_id)


def validate(
    spark: SparkSession,
    lake: str,
    definitions: str,
    batch: str | None = None,
    run_id: str | None = None,
    catalogue: Catalogue | None = None,
    as_of: date | None = None,
    batches: list[BatchKey] | None = None,
) -> ValidateResult:
    """Flag, score and validate; returns the outcomes for `gate()` (which this function does not call).

    `batch` (one batch id, every region) or `batches` (the nightly's new batches) limits the per-case
    work to those cases, judged against the rest of the lake as history (the duplicate rule); the
    hospital scores are recomputed over all of silver.case_quality, so they equal a full run's.
    """
    if batch is not None:
        check_name("batch", batch)
    preload()
    run_id = run_id or new_run_id()
    catalogue = catalogue or load_catalogue()
    as_of = as_of or datetime.now(UTC).date()
    if batches is not None:
        where = batch_predicate(batches)
        scope = batches[0].batch_id if len(batches) == 1 else f"batches-{run_id}"
    else:
        where = None if batch is None else f"batch_id = '{batch}'"
        scope = batch or ALL_BATCHES
    silver = lk.read(spark, lake, "silver", "discharges")
    cases = silver if where is None else silver.where(where)
    if cases.limit(1).count() == 0:
        what = f"batch {batch!r}" if batch else (f"batches {where}" if where else "any batch")
        raise PipelineError(f"silver.discharges has no cases for {what} at {lake}: run drg ingest first")
    history = None if where is None else silver.where(f"NOT ({where})")

    qdir = quality_dir(lake)
    # GX writes local files only: on object storage they are staged locally and uploaded afterwards
    with lake_files.staged_folder(f"{qdir}/data_docs", spark) as docs_dir, \
            lake_files.staged_folder(f"{qdir}/gx/{scope}", spark) as results_dir, \
            Contract(docs_dir=str(docs_dir), results_dir=str(results_dir)) as contract:
        contract.submit("silver_discharges", cases)  # each suite as soon as its frame exists
        pack = load_quality_pack(spark, definitions)
        _write_case_quality(flag_cases(cases, pack, catalogue, as_of, history), lake, where, run_id)

        all_quality = lk.read(spark, lake, "silver", "case_quality")
        batch_quality = all_quality if where is None else all_quality.where(where)
        contract.submit("silver_case_quality", contract_frame(batch_quality, catalogue))
        counts = batch_quality.agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.when(F.size("failed_rules") > 0, 1).otherwise(0)).alias("flagged"),
            F.sum(F.when(~F.col("priceable"), 1).otherwise(0)).alias("unpriceable"),
        )
        _, counts = lk.concurrently([  # the hospital scores' commit and the batch's counts overlap
            partial(lk.overwrite, hospital_quality(all_quality, catalogue.scoring).withColumn("run_id", F.lit(run_id)),
                    lk.table_path(lake, "gold", "hospital_quality"), run_id),
            counts.first,
        ])
        hospitals = lk.read(spark, lake, "gold", "hospital_quality")
        contract.submit("gold_hospital_quality", hospitals)
        upcoding = [f"{r.region_code}/{r.hospital_id}" for r in hospitals.where("upcoding_flag").collect()]
        outcomes = contract.outcomes()
    _write_results(spark, outcomes, lake, scope, run_id)
    result = ValidateResult(
        scope=scope,
        run_id=run_id,
        n_cases=counts.n,
        n_flagged=counts.flagged or 0,
        n_unpriceable=counts.unpriceable or 0,
        upcoding_hospitals=sorted(upcoding),
        outcomes=outcomes,
        docs_index=f"{qdir}/data_docs/index.html",
    )
    # the Chinese page in front of the Data Docs (it shows the result, so it is written from it)
    return dataclasses.replace(result, quality_page=write_quality_page(result, catalogue, qdir))


def register(sub) -> None:
    parser = sub.add_parser("validate", help="flag coding-quality problems, score hospitals, gate the batch")
    parser.add_argument("--lake", required=True, help="lake root folder")
    parser.add_argument("--definitions", required=True, help="definitions pack folder (supplies the code set)")
    parser.add_argument("--batch", help="validate only this batch id (default: every case in silver)")
    parser.add_argument("--run-id", help="run id to stamp (default: a new one)")
    parser.add_argument("--rules", help="rule catalogue YAML (default: quality/rules.yaml)")
    parser.add_argument("--as-of", type=date.fromisoformat, help="date for the future-date rule (default: today)")
    parser.set_defaults(func=run)


def run(args) -> int:
    spark = get_spark("drg-validate", parse_conf(args.conf))
    catalogue = load_catalogue(args.rules) if args.rules else None
    result = validate(spark, args.lake, args.definitions, args.batch, args.run_id, catalogue, args.as_of)
    failed = sum(not o.success for o in result.outcomes)
    print(
        f"validated {result.scope}: {result.n_cases} cases, {result.n_flagged} flagged, "
        f"{result.n_unpriceable} not priceable; upcoding outliers: {', '.join(result.upcoding_hospitals) or 'none'}; "
        f"contract: {len(result.outcomes) - failed}/{len(result.outcomes)} expectations met; "
        f"Data Docs: {result.docs_index}"
    )
    if result.quality_page:
        print(f"编码质量报告 (coding-quality page): {result.quality_page}")
    gate(result.outcomes, result.quality_page or result.docs_index)
    return 0
