"""Incremental nights equal full recomputes: three nights, the third with a new definitions pack version.

Two lakes receive the same batches night after night: lake `inc` runs the default (incremental) nightly,
lake `full` runs `full=True` every night. After each night their silver, gold and published tables must
be the same row for row (run ids and timestamps aside, doubles within 1e-12), and ops.runs must say
what each night decided.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.definitions import locate_pack
from jobs.demo import write_config
from jobs.lake_diff import differences
from jobs.night_plan import VERSIONS, plan
from jobs.nightly import load_config, nightly, preflight
from jobs.pricing.policy import with_schedule
from jobs.synth import DEFAULT_PACK, generate
from jobs.synth.write import write_batches


def _pack_v2(folder: Path) -> Path:
    """The demo pack as a new version (same tables, version bumped: its content hash changes too)."""
    shutil.copytree(Path(str(locate_pack(DEFAULT_PACK))), folder)
    manifest = folder / "manifest.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace('version: "2024.1"', 'version: "2024.2"'),
                        encoding="utf-8")
    return folder


def folder_batch(i: int, lake: str) -> str:
    """The batch id of the i-th night's folder (folders are named by date, oldest first)."""
    return sorted(p.name for p in (Path(lake).parent / "landing").glob("*/*"))[i]


def _steps(spark, lake: str, run_id: str) -> dict:
    return {r.step: r for r in lk.read(spark, lake, "ops", "runs").where(F.col("run_id") == run_id).collect()}


@pytest.fixture(scope="module")
def three_nights(spark, tmp_path_factory):
    """Night 1 is a full night on both sides (no versions recorded yet), so lake `full` starts as a copy of
    lake `inc` after it; nights 2 and 3 run incrementally on `inc` and with `full=True` on `full`."""
    root = tmp_path_factory.mktemp("incremental")
    frames = generate(spark, 900, 1, 6, 11, str(DEFAULT_PACK), batches=3)
    folders = sorted(write_batches(spark, *frames, str(root / "generated")))
    region = folders[0].split("/")[0]
    v2 = _pack_v2(root / "pack-v2")
    lakes = {}
    for mode in ("inc", "full"):
        (root / mode).mkdir()
        # weights re-estimated every night: the case where every gold and published table moves
        cfg = load_config(write_config(root / mode, region, DEFAULT_PACK, policy=with_schedule(root, "night")))
        # DIP's tables must agree too; the batch contract's thresholds are not what is tested here (a
        # 300-case batch fails a 0.5% rule with 2 cases)
        lakes[mode] = cfg.model_copy(update={"methods": ["drg", "dip"], "quality_gate": False})
    nights = []
    for i, folder in enumerate(folders, start=1):
        runs = {}
        for mode, cfg in lakes.items():
            target = root / mode / "landing" / folder
            shutil.copytree(root / "generated" / folder, target)
            if i == 1 and mode == "full":
                shutil.copytree(lakes["inc"].lake, cfg.lake)
                runs[mode] = runs["inc"]
                continue
            if i == 3:  # the third night brings a new pack version
                cfg = cfg.model_copy(update={"definitions": str(v2)})
            run_id = f"{mode}-night{i}"
            nightly(spark, cfg, run_id=run_id, full=mode == "full")
            runs[mode] = run_id
        nights.append(runs)
    return {mode: cfg.lake for mode, cfg in lakes.items()}, nights


@pytest.mark.parametrize("night", [1, 2])
def test_incremental_night_equals_full_recompute(spark, three_nights, night):
    lakes, nights = three_nights
    runs = nights[night]
    if night < 2:  # the per-case tables are compared as they stand: after the last night only
        diffs = [d for d in differences(spark, lakes["inc"], runs["inc"], lakes["full"], runs["full"])
                 if not d.startswith(("silver.", "gold.grouped_cases", "gold.hospital_quality", "gold.dip_"))]
    else:
        diffs = differences(spark, lakes["inc"], runs["inc"], lakes["full"], runs["full"])
    assert diffs == []


def test_the_comparison_sees_a_difference(spark, three_nights):
    """The checker the equality rests on is not vacuous: two different nights differ, and so does a
    weight moved by 1e-9 (but not one moved by 1e-14, within the tolerance)."""
    from jobs.lake_diff import _small

    lakes, nights = three_nights
    diffs = differences(spark, lakes["inc"], nights[1]["inc"], lakes["full"], nights[2]["full"])
    assert any(d.startswith("gold.drg_weights") for d in diffs)
    assert any(d.startswith("published.dip_catalogue") for d in diffs)  # DIP is compared, too
    weights = lk.read(spark, lakes["inc"], "gold", "drg_weights").where(F.col("run_id") == nights[2]["inc"])
    drg = weights.orderBy("drg").first().drg
    for shift, seen in ((1e-9, True), (1e-14, False)):
        moved = weights.withColumn("rw", F.when(F.col("drg") == drg, F.col("rw") * (1 + shift)).otherwise(F.col("rw")))
        assert bool(_small("gold.drg_weights", weights, moved)) is seen


def test_incremental_nights_validate_and_group_only_the_new_batch(spark, three_nights):
    lakes, nights = three_nights
    lake = lakes["inc"]
    second = _steps(spark, lake, nights[1]["inc"])
    assert second["validate"].note.startswith("incremental: 1 new of 2 batches")
    assert second["group"].note.startswith("incremental: 1 of 2 batches")
    new_batch = lk.read(spark, lake, "bronze", "batches").orderBy(F.desc("batch_id")).collect()[1]
    assert second["group"].rows_in == new_batch.rows_accepted < lk.read(spark, lake, "gold", "grouped_cases").count()
    # as the second night left it: the first batch's rows are the first night's, not rewritten
    path = lk.table_path(lake, "gold", "grouped_cases")
    as_of = lk.read(spark, lake, "gold", "grouped_cases", lk.version_of_run(spark, path, nights[1]["inc"]))
    by_run = {r.run_id: r.batches for r in as_of.groupBy("run_id").agg(F.collect_set("batch_id").alias("batches"))
              .collect()}
    assert by_run == {nights[0]["inc"]: [folder_batch(0, lake)], nights[1]["inc"]: [new_batch.batch_id]}
    full_night = _steps(spark, lakes["full"], nights[1]["full"])
    assert full_night["group"].note == "full: --full requested"


def test_new_pack_version_regroups_everything_and_is_explained(spark, three_nights):
    lakes, nights = three_nights
    lake = lakes["inc"]
    third = _steps(spark, lake, nights[2]["inc"])
    assert third["group"].note.startswith("full: definitions pack content changed")
    assert "demo 2024.1 -> demo 2024.2" in third["group"].note
    assert third["validate"].note.startswith("full:")
    grouped = lk.read(spark, lake, "gold", "grouped_cases")
    assert {r.pack_version for r in grouped.select("pack_version").distinct().collect()} == {"2024.2"}
    assert grouped.where(F.col("run_id") != nights[2]["inc"]).count() == 0
    recorded = lk.read(spark, lake, *VERSIONS).collect()
    assert len(recorded) == 3 and {r.pack for r in recorded} == {"demo 2024.2"}


def test_a_night_without_news_has_nothing_to_do_and_a_changed_policy_reprices(spark, three_nights, tmp_path):
    from jobs.config import locate
    from jobs.pricing.policy import BUILTIN_POLICIES, DEFAULT_POLICY

    lakes, _ = three_nights
    root = Path(lakes["inc"]).parent
    cfg = load_config(root / "nightly.yaml").model_copy(
        update={"definitions": str(root.parent / "pack-v2"), "methods": ["drg", "dip"]})
    assert plan(spark, cfg.lake, preflight(spark, cfg)[-1]).nothing_new  # what makes a night up to date
    changed = tmp_path / "policy.yaml"  # the shipped policy as a new version
    shipped = locate(DEFAULT_POLICY, BUILTIN_POLICIES, ".yaml").read_text(encoding="utf-8")
    changed.write_text(shipped.replace("chs-default-1", "chs-default-2"), encoding="utf-8")
    todo = plan(spark, cfg.lake, preflight(spark, cfg.model_copy(update={"policy": str(changed)}))[-1])
    assert not todo.nothing_new and todo.validate == [] and todo.group == []  # re-price and publish only
    assert todo.price_reason.startswith("pricing policy changed") and "chs-default-2" in todo.price_reason
    without_dip = plan(spark, cfg.lake, preflight(spark, cfg.model_copy(update={"methods": ["drg"]}))[-1])
    assert not without_dip.nothing_new  # DIP switched off (or on, or its policy changed) re-publishes


def test_maintenance_compacts_drops_old_runs_and_keeps_every_release_readable(spark, three_nights):
    """Runs last: it rewrites the `full` lake (the equality tests above have read it)."""
    from jobs.maintenance import MaintenanceSpec, maintain

    lakes, nights = three_nights
    lake = lakes["full"]
    payments_dir = Path(lake) / "gold" / "case_payments"
    files_before = len(list(payments_dir.glob("*.parquet")))
    spec = MaintenanceSpec(keep_runs=1, compact_min_files=2, small_file_mb=64, vacuum_retain_hours=0,
                           vacuum_interval_hours=0)
    note = maintain(spark, lake, spec)
    assert "dropped 2 old run(s)" in note and "compacted" in note and "vacuumed" in note
    runs = {r.run_id for r in lk.read(spark, lake, "gold", "case_payments").select("run_id").distinct().collect()}
    assert runs == {nights[2]["full"]}
    assert len(list(payments_dir.glob("*.parquet"))) < files_before  # old runs' files are gone from disk
    grouped = lk.read(spark, lake, "gold", "grouped_cases")
    assert grouped.inputFiles() and len(grouped.inputFiles()) == 1  # one region partition, compacted
    releases = lk.read(spark, lake, "published", "releases").where("status = 'complete'").collect()
    assert len(releases) == 3
    for rel in releases:  # every release, as of the table versions it recorded, is still readable
        for table, version in rel.table_versions.items():
            path = lk.table_path(lake, "published", table)
            as_of = spark.read.format("delta").option("versionAsOf", version).load(path)
            now = lk.read(spark, lake, "published", table)
            mine = F.col("release_id") == rel.release_id
            assert as_of.where(mine).count() == now.where(mine).count() > 0
    props = spark.sql(f"DESCRIBE DETAIL delta.`{lk.table_path(lake, 'published', 'drg_weights')}`").first()
    assert props.properties["delta.logRetentionDuration"] == "interval 3650 days"
