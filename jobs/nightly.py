"""`drg nightly --config FILE`: ingest new batches -> validate (grouping alongside) -> price -> publish.

Why it is safe to run every night and to re-run after any failure:
- Everything that can be wrong with the configuration (pack, policy, layouts, input folders) is checked
  before the first write, so a bad config fails fast and leaves the lake untouched.
- One run at a time per lake: an exclusive lock file (O_EXCL locally, a conditional put on object storage).
- Every step is idempotent: unchanged batches are skipped, group/price/publish replace exactly the rows
  they own. A run killed at any point leaves each table at its last commit, and the next run ends in
  the same state as an uninterrupted one.
- Incremental by default (jobs/night_plan.py): validation and grouping redo only the batches that are
  new or re-sent since the last successful night, and everything when a version they depend on changed;
  the versions are recorded per batch (ops.batch_versions) only once a night has published, so a failed
  night is redone in full by the next. `--full` recomputes everything.
- Each step is recorded in ops.runs (rows in/out, status, one-line error, and a note on what it decided).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.config import builtin, parse_yaml_model
from jobs.definitions import BUILTIN_PACKS, load_pack
from jobs.dip.policy import load_dip_policy
from jobs.errors import PipelineError
from jobs.ingest import check_lake_key, check_name, default_batch_id, fingerprint, ingest, list_input_files
from jobs.layouts import load_layout
from jobs.maintenance import MaintenanceSpec, maintain
from jobs.night_plan import BatchKey, current_versions, lake_batches, layouts_to_reingest, plan, record
from jobs.pricing.calibration import calibration, settlement
from jobs.pricing.policy import BUILTIN_POLICIES, load_policy
from jobs.progress import open_display
from jobs.runlog import background_log, lake_lock, step
from jobs.runs import new_run_id
from jobs.spark import get_spark, parse_conf

STEPS = ("ingest", "validate", "group", "price", "publish", "maintain")


class InputSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region: str
    path: str  # a folder of batch folders (one per night), or a folder of files (one batch)
    layout: str | None = None

    @field_validator("region")
    @classmethod
    def _plain(cls, v: str) -> str:
        check_name("region", v)
        return v


class ReleaseSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None  # a fixed release name; default: derived from the run id (one per night)
    k: int = 10  # small-cell suppression threshold of published aggregates


class NightlyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lake: str
    definitions: str  # a pack folder, or a shipped pack's name (`demo`)
    policy: str | None = None  # a policy file or a shipped policy's name; default: the CHS-style `chs-default`
    inputs: list[InputSpec]
    release: ReleaseSpec = ReleaseSpec()
    quality_gate: bool = True  # stop before pricing when the batch contract fails
    maintenance: MaintenanceSpec = MaintenanceSpec()  # retention, compaction, VACUUM (jobs/maintenance.py)
    methods: list[Literal["drg", "dip"]] = ["drg"]  # [drg, dip]: DIP (jobs/dip) runs after pricing
    dip_policy: str | None = None  # default: the shipped dip-default.yaml
    stale_lock_hours: float = 12.0

    @field_validator("inputs")
    @classmethod
    def _some(cls, v: list[InputSpec]) -> list[InputSpec]:
        if not v:
            raise ValueError("at least one input is needed")
        return v


def load_config(path: str | Path) -> NightlyConfig:
    """Read and validate the YAML; relative paths are taken relative to the config file's folder."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"nightly config not found: {path}")
    cfg = parse_yaml_model(path.read_text(encoding="utf-8"), NightlyConfig, f"nightly config {path}")
    base = path.resolve().parent

    def resolve(p: str | None, package: str | None = None, suffix: str = "") -> str | None:
        """A path relative to the config's folder; a URI, an absolute path or a shipped pack/policy name
        (`demo`, `chs-default`) stays as written."""
        if p is None or "://" in p or Path(p).is_absolute() or (package and builtin(package, p, suffix)):
            return p
        return str((base / p).resolve())

    return cfg.model_copy(update={
        "lake": resolve(cfg.lake),
        "definitions": resolve(cfg.definitions, BUILTIN_PACKS),
        "policy": resolve(cfg.policy, BUILTIN_POLICIES, ".yaml"),
        "dip_policy": resolve(cfg.dip_policy, BUILTIN_POLICIES, ".yaml"),
        "inputs": [i.model_copy(update={"path": resolve(i.path)}) for i in cfg.inputs],
    })


@dataclass(frozen=True)
class Batch:
    region: str
    path: str
    layout: str | None


def find_batches(spec: InputSpec) -> list[Batch]:
    """Batch folders under an input, oldest name first; a folder holding files directly is one batch."""
    root = Path(spec.path)
    if not root.is_dir():
        raise PipelineError(f"input folder for region {spec.region} not found: {root}")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    folders = subdirs or [root]
    return [Batch(spec.region, str(p), spec.layout) for p in folders]


@dataclass
class NightlyResult:
    run_id: str
    release: dict | None
    ingested: list = field(default_factory=list)
    up_to_date: bool = False


def preflight(spark: SparkSession, cfg: NightlyConfig):
    """Everything a run needs, loaded and checked before anything is written, and the versions of it."""
    from quality.catalogue import load_catalogue

    pack = load_pack(spark, cfg.definitions)
    policy = load_policy(cfg.policy)
    layouts = {}
    for spec in cfg.inputs:
        layout = load_layout(spec.layout)
        layouts[layout.name] = layout
    batches = [b for spec in cfg.inputs for b in find_batches(spec)]
    check_lake_key(spark, cfg.lake)  # a changed key stops the night before its first write
    dip_policy = load_dip_policy(cfg.dip_policy) if "dip" in cfg.methods else None
    versions = current_versions(pack, load_catalogue(), policy, layouts, dip_policy)
    return pack, policy, dip_policy, batches, versions


def _last_published(spark: SparkSession, lake: str) -> datetime | None:
    path = lk.table_path(lake, "ops", "runs")
    if not lk.exists(spark, path):
        return None
    row = (spark.read.format("delta").load(path)
           .where("step = 'publish' AND status = 'ok'").agg(F.max("ended_at")).first())
    return row[0]


def _ingested_fingerprints(spark: SparkSession, lake: str) -> dict[BatchKey, str]:
    """(region, batch) -> fingerprint of what bronze.batches holds: old batches are skipped without a job each."""
    return {BatchKey(r.region, r.batch_id): r.fingerprint for r in lake_batches(spark, lake)}


def nightly(
    spark: SparkSession, cfg: NightlyConfig, run_id: str | None = None, force: bool = False, full: bool = False
) -> NightlyResult:
    """One night. `force`: price and publish even when nothing changed; `full`: also re-validate and
    re-group every batch (a full recompute, which the incremental night's result must equal)."""
    from jobs.dip.stage import dip
    from jobs.dip.stage import settle as settle_dip
    from jobs.group import group_silver
    from jobs.price import price_run, write
    from jobs.publish import publish
    from jobs.validate import validate
    from quality.contract import gate, preload

    run_id = run_id or new_run_id()
    pack, policy, dip_policy, batches, versions = preflight(spark, cfg)
    at = STEPS.index("publish")  # DIP runs after pricing, before publishing (its tables join the release)
    steps = (*STEPS[:at], "dip", *STEPS[at:]) if dip_policy is not None else STEPS
    preload()  # Great Expectations imports while ingest runs
    result = NightlyResult(run_id, None)
    lake = cfg.lake
    with lake_lock(lake, run_id, timedelta(hours=cfg.stale_lock_hours), spark), \
            open_display(f"drg nightly {run_id}", steps) as display, background_log(spark, lake) as log:
        with step(spark, lake, run_id, "ingest", display, log) as rec:
            reread = layouts_to_reingest(spark, lake, versions)
            if reread:
                rec.note = f"re-reading {len(reread)} batch(es) whose layout changed"
            known = _ingested_fingerprints(spark, lake)
            for b in batches:
                key = BatchKey(b.region, default_batch_id(b.path))
                again = key in reread
                if not again and key in known and known[key] == fingerprint(list_input_files(spark, b.path)):
                    continue  # unchanged since it was ingested (what ingest() would find, one job per batch)
                got = ingest(spark, lake, b.region, b.path, b.layout, run_id=run_id, force=again)
                if not got.skipped:
                    result.ingested.append(got)
                    rec.rows(got.rows_read, got.rows_accepted, got.rows_quarantined)
            if not result.ingested:
                rec.skip("no new batches")

        in_lake = lake_batches(spark, lake)  # bronze.batches once: for the plan, the check and the record
        published = _last_published(spark, lake)
        ingested = max((r.ingested_at for r in in_lake if r.ingested_at), default=None)
        if ingested is None:
            raise PipelineError(f"lake {lake} holds no ingested batch: check the inputs of the config")
        todo = plan(spark, lake, versions, full, in_lake)
        if not (force or full) and todo.nothing_new and published is not None and published >= ingested:
            result.up_to_date = True
            for name in steps[1:]:
                with step(spark, lake, run_id, name, display, log) as rec:
                    rec.skip("up to date: no batch or version change since the last release")
            return result

        def group() -> None:
            with step(spark, lake, run_id, "group", display, log) as rec:
                rec.note = todo.group_reason
                if todo.group == []:
                    rec.skip(todo.group_reason)
                    return
                n = group_silver(spark, lake, pack, run_id, todo.group)
                rec.rows(n, n)

        # Grouping needs silver only, not the quality verdict (pricing needs both), and validation spends
        # much of its time outside Spark tasks (Great Expectations in Python, Delta commits, small
        # jobs), so grouping runs alongside it on the same session and uses the cores it leaves idle.
        # A failed validation or gate still stops the run before pricing, once grouping has finished.
        # Leaving the pool waits for grouping; a validation failure then propagates (grouping's own
        # failure is in ops.runs), otherwise grouping's result, or failure, is taken.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drg-group") as pool:
            grouping = pool.submit(group)
            with step(spark, lake, run_id, "validate", display, log) as rec:
                rec.note = todo.validate_reason
                if todo.validate == []:
                    rec.skip(todo.validate_reason)
                else:
                    checked = validate(spark, lake, cfg.definitions, run_id=run_id, batches=todo.validate)
                    rec.rows(checked.n_cases, checked.n_cases - checked.n_unpriceable)
                    if cfg.quality_gate:
                        gate(checked.outcomes, checked.docs_index)
        grouping.result()

        # Only new batches, nothing else changed: the night may settle them at the release in force, if its
        # calibration is still tonight's (recalibration on a schedule): DRG prices them at its weights, DIP
        # scores them against its catalogue, and nothing new is published.
        only_new = todo.validate is not None and not (force or full or todo.versions_changed)
        cal = calibration(in_lake, policy)
        settling = settlement(spark, lake, cal, todo.group) if only_new else None

        def dip_step() -> None:
            with step(spark, lake, run_id, "dip", display, log) as rec:
                settled = settle_dip(spark, lake, dip_policy, run_id, settling) if settling is not None else None
                if settled is not None:
                    n, scored = settled
                    rec.rows(n, scored)
                    missing = f", {n - scored} without a packet in that catalogue (not scored)" if n > scored else ""
                    rec.note = (f"{scored} case score(s) of {len(settling.batches)} new batch(es) added at run "
                                f"{settling.run_id}'s catalogue and point values{missing}")
                    return
                dip(spark, lake, dip_policy, run_id, cal)
                # counted from the written table's file statistics: the frame would recompute its cases
                n = lk.read(spark, lake, "gold", "dip_case_scores").count()
                rec.rows(n, n)

        # DIP reads silver only, never pricing's tables, so it runs beside pricing as grouping runs
        # beside validation: each spends much of its time in small jobs, commits and planning on the
        # driver, which leaves the other's tasks the cores. Publishing waits for both.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drg-dip") as pool:
            scoring = pool.submit(dip_step) if dip_policy is not None else None
            with step(spark, lake, run_id, "price", display, log) as rec:
                priced = price_run(spark, lake, policy, run_id, cal, settling)
                write(priced, lake, run_id)
                if settling is not None:
                    # paid: counted from what was committed (the frame would price the batches again)
                    paid = lk.read(spark, lake, "gold", "case_payments").where(settling.where).count()
                    n = priced.settled_cases.count()
                    rec.rows(n, paid)
                    unpaid = f", {n - paid} not paid (DRG or region without a calibrated weight)" if n > paid else ""
                    rec.note = (f"{todo.price_reason}; calibration unchanged ({policy.recalibration.every}): {paid} "
                                f"case(s) of {len(settling.batches)} new batch(es) settled at run {settling.run_id}"
                                f"{unpaid}")
                else:
                    quality = lk.read(spark, lake, "gold", "grouping_quality").where(F.col("run_id") == run_id).first()
                    rec.rows(quality["n_cases"], quality["n_cases"])
                    rec.note = f"{todo.price_reason}; {priced.calibration.describe()}"
        if scoring is not None:
            scoring.result()

        with step(spark, lake, run_id, "publish", display, log) as rec:
            if settling is not None:  # the release in force stays: its calibration is still tonight's
                result.release = settling.release
                rec.note = f"release {result.release['release_id']} stays in force (calibration unchanged)"
            else:
                result.release = publish(spark, lake, run_id, cfg.release.name, cfg.release.k, cases=priced.cases)
                rec.note = f"release {result.release['release_id']}"
        record(spark, lake, versions, run_id, in_lake)  # only now: a night that failed before is redone by the next

        log.flush()  # maintenance compacts ops.runs too: this night's rows are in first
        with step(spark, lake, run_id, "maintain", display, log) as rec:
            if cfg.maintenance.enabled:
                rec.note = maintain(spark, lake, cfg.maintenance)
            else:
                rec.skip("maintenance disabled in the config")
    return result


def register(sub) -> None:
    parser = sub.add_parser("nightly", help="run ingest -> validate -> group -> price -> publish from a config")
    parser.add_argument("--config", required=True, help="nightly YAML (lake, inputs, definitions, policy, release)")
    parser.add_argument("--lake", help="override the config's lake (e.g. a scratch lake for a rehearsal)")
    parser.add_argument("--run-id", help="run id (default: a new one)")
    parser.add_argument("--force", action="store_true", help="recalibrate and publish even without new batches")
    parser.add_argument("--full", action="store_true",
                        help="re-validate and re-group every batch, not only new ones (a full recompute)")
    parser.set_defaults(func=run)


def run(args) -> int:
    cfg = load_config(args.config)
    if args.lake:
        cfg = cfg.model_copy(update={"lake": args.lake})
    spark = get_spark("drg-nightly", parse_conf(args.conf))
    result = nightly(spark, cfg, args.run_id, args.force, args.full)
    if result.up_to_date:
        print(f"nightly {result.run_id}: up to date, nothing new to publish")
    else:
        rel = result.release or {}
        print(f"nightly {result.run_id}: {len(result.ingested)} new batch(es); release {rel.get('release_id')}")
    return 0
