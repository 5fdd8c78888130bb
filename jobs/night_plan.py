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
    """Content hash of a definitions pack: its manifest and every table's rows (format 1), or its manifest
    and the bytes of every file of the folder (format 2, rule packs: what they parse is the files)."""
    rows = getattr(pack, "rows", None)
    if rows is not None:
        return content_hash([pack.manifest.model_dump(mode="json"), rows])
    return content_hash([pack.manifest.model_dump(mode="json"), _files_digest(pack.path)])


def _files_digest(folder) -> list[tuple[str, str]]:
    """(relative name, SHA-256) of every file under a folder or package-data Traversable, sorted."""
    out, todo = [], [("", folder)]
    while todo:
        prefix, node = todo.pop()
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                todo.append((name + "/", child))
            elif not child.name.startswith("."):
                out.append((name, hashlib.sha256(child.read_bytes()).hexdigest()))
    return sorted(out)


@dataclass(frozen=True)
class Versions:
    """What tonight's run would process batches with."""

    pack: str
    pack_hash: str
    rules_hash: str
    policy: str
    policy_hash: str
    layouts: dict[str, str]  # layout name -> content hash


def current_versions(pack, catalogue, policy, layouts: dict[str, object], dip_policy=None) -> Versions:
    """Tonight's versions. The pricing policy's entry covers DIP too when the night runs it (`dip_policy`):
    a changed DIP policy, or DIP switched on, re-prices and re-publishes like a changed DRG policy."""
    label, digest = policy.version, model_hash(policy)
    if dip_policy is not None:
        label, digest = f"{label} + dip {dip_policy.version}", content_hash([digest, model_hash(dip_policy)])
    return Versions(
        pack=f"{pack.name} {pack.version}", pack_hash=pack_hash(pack), rules_hash=model_hash(catalogue),
        policy=label, policy_hash=digest,
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


def _decide(full_reason: str | None, todo: list[BatchKey], total: int, counted: str, idle: str):
    """(batches to redo or None for all, the reason): everything for a reason, else the new ones, else none."""
    if full_reason:
        return None, f"full: {full_reason}"
    if todo:
        return todo, f"incremental: {len(todo)} {counted} {total} batches ({_describe(todo)})"
    return [], f"up to date: {idle}"


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


def lake_batches(spark: SparkSession, lake: str) -> list:
    """The rows of bronze.batches (one per batch: small) with what the plan and the record need."""
    path = lk.table_path(lake, "bronze", "batches")
    if not lk.exists(spark, path):
        return []
    return spark.read.format("delta").load(path).select(
        "region", "batch_id", "fingerprint", "ingested_at", "layout").collect()


def plan(spark: SparkSession, lake: str, versions: Versions, full: bool = False, batches: list | None = None) -> Plan:
    """Compare bronze.batches (what is in the lake; `batches`: its rows, read once by the caller) with
    ops.batch_versions (what was processed, how)."""
    if batches is None:
        batches = lake_batches(spark, lake)
    if full:
        why = "full: --full requested"
        return Plan(None, None, why, why, f"policy {versions.policy}", versions_changed=True)
    recorded = read_recorded(spark, lake)
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
    if policy_change:
        policy_change += f" [{', '.join(sorted({r.policy for r in known.values()}))} -> {versions.policy}]"

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

    group, group_reason = _decide(pack_change, todo, len(batches), "of",
                                  "no new or re-sent batch, pack unchanged")
    full_validate = pack_change or rules_change
    if not full_validate and resent:
        full_validate = (f"re-sent batch(es) {_describe(resent)}: the duplicate rule orders cases by arrival, "
                         f"so earlier verdicts may change")
    if not full_validate and late:
        full_validate = f"batch(es) {_describe(late)} arrived before the last recorded batch"
    validate, validate_reason = _decide(full_validate, todo, len(batches), "new of",
                                        "no new batch, catalogue and pack unchanged")
    price_reason = policy_change or f"policy {versions.policy} unchanged"
    return Plan(validate, group, validate_reason, group_reason, price_reason,
                versions_changed=bool(pack_change or rules_change or policy_change))


def record(spark: SparkSession, lake: str, versions: Versions, run_id: str, batches: list | None = None) -> None:
    """After a successful night: every batch in the lake (`batches`: bronze.batches' rows, as the night's
    plan read them after ingest) is processed with tonight's versions."""
    if batches is None:
        batches = lake_batches(spark, lake)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [(r.region, r.batch_id, r.fingerprint, r.ingested_at, r.layout, versions.layouts.get(r.layout),
             versions.pack, versions.pack_hash, versions.rules_hash, versions.policy, versions.policy_hash,
             run_id, now) for r in batches]
    lk.overwrite(spark.createDataFrame(rows, SCHEMA), lk.table_path(lake, *VERSIONS), run_id)
