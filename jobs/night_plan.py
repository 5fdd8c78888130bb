"""Which batches a night must validate and group, and why: the versions each batch was processed with.

Why per-batch versions: a province keeps years of discharges and adds a thin slice a night, so a night
that re-validates and re-groups the whole lake costs what the history costs, not what arrived. Whether
a batch's silver/gold rows are still right depends on its content (the ingest fingerprint and time)
and on the versions that produced them: the definitions pack (content hash, not only its version
string: a pack patched in place must regroup), the rule catalogue, the batch's layout and the pricing
policy. `ops.batch_versions` records them for every batch at the end of each successful night; the
next night compares and decides, and says so in `ops.runs.note`.

The decision (see `plan`):
- grouping is per case (a case's DRG depends on its own row and the pack), so it is redone for new or
  re-sent batches only, and for all batches when the pack's content changed;
- validation is per case too except the duplicate rule, which compares a case with the cases received
  before it (`order: ingested_at, ...`). A batch received after every recorded batch cannot change the
  verdict on an earlier case, so new batches are validated against the lake as history; a re-sent batch
  (received again, so reordered), a changed catalogue or pack re-validates everything;
- what is aggregated over the lake (gold.hospital_quality, pricing, publishing) is recomputed every
  night over its window from narrow columns, which is exactly what a full recompute computes;
- a layout whose content changed re-ingests the batches read with it (their rows may parse differently).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from jobs import lake as lk

VERSIONS = ("ops", "batch_versions")
SCHEMA = T.StructType([
    T.StructField("region", T.StringType(), False),
    T.StructField("batch_id", T.StringType(), False),
    T.StructField("fingerprint", T.StringType()),
    T.StructField("ingested_at", T.TimestampType()),
    T.StructField("layout", T.StringType()),
    T.StructField("layout_hash", T.StringType()),
    T.StructField("pack", T.StringType()),  # "name version"
    T.StructField("pack_hash", T.StringType()),
    T.StructField("rules_hash", T.StringType()),
    T.StructField("policy", T.StringType()),  # policy version
    T.StructField("policy_hash", T.StringType()),
    T.StructField("run_id", T.StringType(), False),  # the last successful night that processed the batch
    T.StructField("recorded_at", T.TimestampType(), False),
])


def content_hash(value) -> str:
    """A short SHA-256 of a JSON rendering: equal for equal content, whatever the file's formatting."""
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def model_hash(model) -> str:
    """Content hash of a validated pydantic model (catalogue, layout, policy): comments don't count."""
    return content_hash(model.model_dump(mode="json"))


def pack_hash(pack) -> str:
    """Content hash of a definitions pack: its manifest and every table's rows."""
    return content_hash([pack.manifest.model_dump(mode="json"), pack.rows])


@dataclass(frozen=True)
class Versions:
    """What tonight's run would process batches with."""

    pack: str
    pack_hash: str
    rules_hash: str
    policy: str
    policy_hash: str
    layouts: dict[str, str]  # layout name -> content hash


def current_versions(pack, catalogue, policy, layouts: dict[str, object]) -> Versions:
    return Versions(
        pack=f"{pack.name} {pack.version}", pack_hash=pack_hash(pack), rules_hash=model_hash(catalogue),
        policy=policy.version, policy_hash=model_hash(policy),
        layouts={name: model_hash(layout) for name, layout in layouts.items()},
    )


@dataclass(frozen=True)
class BatchKey:
    region: str
    batch_id: str

    def __str__(self) -> str:
        return f"{self.region}/{self.batch_id}"


@dataclass
class Plan:
    """A night's decision. `validate` / `group`: the batches to redo, or None for all of them."""

    validate: list[BatchKey] | None
    group: list[BatchKey] | None
    validate_reason: str
    group_reason: str
    price_reason: str = ""
    versions_changed: bool = False  # pack, catalogue or policy differ from the last recorded night

    @property
    def nothing_new(self) -> bool:
        return self.validate == [] and self.group == [] and not self.versions_changed


def batch_predicate(batches: list[BatchKey], region_col: str = "region_code") -> str:
    """A SQL predicate selecting exactly these batches (for replaceWhere, reads and data skipping)."""
    if not batches:
        return "false"
    by_region: dict[str, list[str]] = {}
    for b in batches:
        by_region.setdefault(b.region, []).append(b.batch_id)
    parts = [f"({region_col} = '{r}' AND batch_id IN ({', '.join(repr(x) for x in sorted(ids))}))"
             for r, ids in sorted(by_region.items())]
    return " OR ".join(parts)


def _describe(batches: list[BatchKey], limit: int = 3) -> str:
    names = ", ".join(str(b) for b in batches[:limit])
    return names + (f" and {len(batches) - limit} more" if len(batches) > limit else "")


def read_recorded(spark: SparkSession, lake: str) -> DataFrame | None:
    path = lk.table_path(lake, *VERSIONS)
    return spark.read.format("delta").load(path) if lk.exists(spark, path) else None


def layouts_to_reingest(spark: SparkSession, lake: str, versions: Versions) -> set[BatchKey]:
    """Batches last processed with a layout whose content has changed since (re-read from landing)."""
    recorded = read_recorded(spark, lake)
    if recorded is None:
        return set()
    rows = recorded.select("region", "batch_id", "layout", "layout_hash").collect()
    return {BatchKey(r.region, r.batch_id) for r in rows
            if r.layout in versions.layouts and r.layout_hash != versions.layouts[r.layout]}


def plan(spark: SparkSession, lake: str, versions: Versions, full: bool = False) -> Plan:
    """Compare bronze.batches (what is in the lake) with ops.batch_versions (what was processed, how)."""
    batches = [r for r in spark.read.format("delta").load(lk.table_path(lake, "bronze", "batches"))
               .select("region", "batch_id", "fingerprint", "ingested_at").collect()]
    recorded = read_recorded(spark, lake)
    if full:
        why = "full: --full requested"
        return Plan(None, None, why, why, f"policy {versions.policy}", versions_changed=True)
    if recorded is None:
        why = "full: no batch versions recorded yet (first incremental-aware night)"
        return Plan(None, None, why, why, f"policy {versions.policy}", versions_changed=True)
    known = {BatchKey(r.region, r.batch_id): r for r in recorded.collect()}

    def changed(field_: str, current: str, label: str) -> str | None:
        old = sorted({getattr(r, field_) for r in known.values()} - {current})
        return f"{label} changed ({', '.join(map(str, old))} -> {current})" if old else None

    pack_change = changed("pack_hash", versions.pack_hash, "definitions pack content")
    if pack_change:
        packs = sorted({r.pack for r in known.values()})
        pack_change += f" [{', '.join(packs)} -> {versions.pack}]"
    rules_change = changed("rules_hash", versions.rules_hash, "rule catalogue")
    policy_change = changed("policy_hash", versions.policy_hash, "pricing policy")

    new, resent = [], []
    for r in batches:
        key = BatchKey(r.region, r.batch_id)
        before = known.get(key)
        if before is None:
            new.append(key)
        elif before.fingerprint != r.fingerprint or before.ingested_at != r.ingested_at:
            resent.append(key)
    latest = max((r.ingested_at for r in known.values() if r.ingested_at), default=None)
    arrived = {BatchKey(r.region, r.batch_id): r.ingested_at for r in batches}
    late = [b for b in new if latest is not None and arrived[b] is not None and arrived[b] <= latest]
    todo = sorted(new + resent, key=str)

    if pack_change:
        group, group_reason = None, f"full: {pack_change}"
    elif todo:
        group, group_reason = todo, f"incremental: {len(todo)} of {len(batches)} batches ({_describe(todo)})"
    else:
        group, group_reason = [], "up to date: no new or re-sent batch, pack unchanged"

    full_validate = pack_change or rules_change
    if not full_validate and resent:
        full_validate = (f"re-sent batch(es) {_describe(resent)}: the duplicate rule orders cases by arrival, "
                         f"so earlier verdicts may change")
    if not full_validate and late:
        full_validate = f"batch(es) {_describe(late)} arrived before the last recorded batch"
    if full_validate:
        validate, validate_reason = None, f"full: {full_validate}"
    elif todo:
        validate, validate_reason = todo, f"incremental: {len(todo)} new of {len(batches)} batches ({_describe(todo)})"
    else:
        validate, validate_reason = [], "up to date: no new batch, catalogue and pack unchanged"
    price_reason = policy_change or f"policy {versions.policy} unchanged"
    return Plan(validate, group, validate_reason, group_reason, price_reason,
                versions_changed=bool(pack_change or rules_change or policy_change))


def record(spark: SparkSession, lake: str, versions: Versions, run_id: str) -> None:
    """After a successful night: every batch in the lake is processed with tonight's versions."""
    batches = spark.read.format("delta").load(lk.table_path(lake, "bronze", "batches")).select(
        "region", "batch_id", "fingerprint", "ingested_at", "layout").collect()
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [(r.region, r.batch_id, r.fingerprint, r.ingested_at, r.layout, versions.layouts.get(r.layout),
             versions.pack, versions.pack_hash, versions.rules_hash, versions.policy, versions.policy_hash,
             run_id, now) for r in batches]
    lk.overwrite(spark.createDataFrame(rows, SCHEMA), lk.table_path(lake, *VERSIONS), run_id)
