"""The nightly job end to end on two generated nights (the session's `two_nights`, tests/conftest.py):
releases, run log, idempotency, fail-fast, lock."""

from __future__ import annotations

import csv
import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.errors import PipelineError
from jobs.nightly import STEPS, load_config, nightly
from jobs.runlog import LOCK_FILE, lake_lock
from jobs.synth import DEFAULT_PACK
from quality.contract import Outcome

pytestmark = pytest.mark.usefixtures("nightly_key")  # re-runs on the shared lake (tests/conftest.py)


def test_two_nights_make_two_complete_releases(spark, two_nights):
    out, results = two_nights
    lake = str(out / "lake")
    assert [len(r.ingested) for r in results] == [1, 1]
    releases = lk.read(spark, lake, "published", "releases").where("status = 'complete'").collect()
    assert sorted(r.release_id for r in releases) == sorted(r.release["release_id"] for r in results)
    assert releases[0].release_id != releases[1].release_id
    second = next(r for r in releases if r.run_id == results[1].run_id)
    assert second.previous_release_id == results[0].release["release_id"]


def test_every_step_is_logged_ok(spark, two_nights):
    out, results = two_nights
    runs = lk.read(spark, str(out / "lake"), "ops", "runs")
    for r in results:
        steps = {row.step: row for row in runs.where(F.col("run_id") == r.run_id).collect()}
        assert set(steps) == {*STEPS, "dip"}  # the demo config runs DRG and DIP
        assert all(row.status == "ok" and row.ended_at >= row.started_at for row in steps.values())
        ingest = steps["ingest"]
        assert ingest.rows_in == ingest.rows_out + ingest.rows_quarantined
        # grouping runs alongside validation, not after it
        assert steps["group"].started_at < steps["validate"].ended_at


def test_a_nights_run_keyed_rows_are_appended(spark, two_nights):
    """The night minted its run id, so its rows in run- and release-keyed tables cannot exist yet: they
    are blind appends, never a replaceWhere that reconstructs the table's file list first."""
    from delta.tables import DeltaTable

    out, results = two_nights
    lake = str(out / "lake")
    run_id = results[1].run_id
    for layer, table in (("gold", "drg_weights"), ("gold", "case_payments"), ("published", "group_stats"),
                         ("published", "releases"), ("ops", "runs")):
        history = DeltaTable.forPath(spark, lk.table_path(lake, layer, table)).history()
        modes = {r.operationParameters["mode"] for r in history.where(F.col("userMetadata") == run_id).collect()}
        assert modes == {"Append"}, f"{layer}.{table}: {modes}"
    # batch-keyed tables are still replaced: a batch may hold rows of an attempt that crashed
    history = DeltaTable.forPath(spark, lk.table_path(lake, "silver", "discharges")).history()
    assert {r.operationParameters["mode"] for r in history.where(F.col("userMetadata") == run_id).collect()} == {
        "Overwrite"}


def test_rerun_without_new_batches_changes_nothing(spark, two_nights):
    out, _ = two_nights
    cfg = load_config(out / "nightly.yaml")
    tables = [("silver", "discharges"), ("gold", "grouped_cases"), ("gold", "drg_weights"), ("published", "releases")]
    before = {t: lk.version(spark, lk.table_path(cfg.lake, *t)) for t in tables}
    again = nightly(spark, cfg)
    assert again.up_to_date and again.release is None and again.ingested == []
    assert {t: lk.version(spark, lk.table_path(cfg.lake, *t)) for t in tables} == before
    statuses = lk.read(spark, cfg.lake, "ops", "runs").where(F.col("run_id") == again.run_id)
    assert {r.status for r in statuses.collect()} == {"skipped"}


def test_lake_never_holds_a_raw_patient_id(spark, two_nights):
    out, _ = two_nights
    landing = next((out / "landing").rglob("*.csv"))
    with landing.open(encoding="utf-8") as f:
        raw_ids = [row["patient_id"] for _, row in zip(range(50), csv.DictReader(f), strict=False)]
    assert raw_ids and all(raw_ids)
    lake = out / "lake"
    for layer, table in (("bronze", "discharges_raw"), ("silver", "discharges"), ("silver", "quarantine"),
                         ("gold", "grouped_cases"), ("gold", "case_payments")):
        df = lk.read(spark, str(lake), layer, table)
        text = F.concat_ws("|", *[F.col(c).cast("string") for c in df.columns])
        assert df.where(text.rlike("|".join(raw_ids))).count() == 0, f"{layer}.{table} holds a raw id"


def _config(tmp_path: Path, **overrides) -> Path:
    body = {"lake": "lake", "definitions": str(DEFAULT_PACK),
            "inputs": [{"region": "230100", "path": "landing/230100"}], **overrides}
    (tmp_path / "landing" / "230100" / "b1").mkdir(parents=True)
    path = tmp_path / "nightly.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_missing_pack_fails_before_any_write(spark, tmp_path):
    cfg = load_config(_config(tmp_path, definitions="no/such/pack"))
    with pytest.raises(PipelineError, match="pack"):
        nightly(spark, cfg)
    assert not (tmp_path / "lake").exists()


def test_malformed_policy_fails_before_any_write(spark, tmp_path):
    (tmp_path / "policy.yaml").write_text("version: x\ntrimming: {method: nonsense}\n")
    cfg = load_config(_config(tmp_path, policy="policy.yaml"))
    with pytest.raises(PipelineError, match="policy"):
        nightly(spark, cfg)
    assert not (tmp_path / "lake").exists()


def test_malformed_config_is_one_clear_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("lake: x\ninputs: []\nsurprise: 1\n")
    with pytest.raises(PipelineError, match=r"nightly config .*bad\.yaml: invalid"):
        load_config(tmp_path / "bad.yaml")


def test_second_concurrent_run_refuses(spark, two_nights):
    out, _ = two_nights
    cfg = load_config(out / "nightly.yaml")
    with lake_lock(cfg.lake, "someone-else"):
        with pytest.raises(PipelineError, match="locked"):
            nightly(spark, cfg)


def test_failed_contract_stops_before_pricing_after_grouping_finishes(spark, two_nights, tmp_path, monkeypatch):
    import jobs.validate

    out, _ = two_nights
    lake = tmp_path / "lake"
    shutil.copytree(out / "lake", lake, ignore=shutil.ignore_patterns(LOCK_FILE))
    cfg = load_config(out / "nightly.yaml").model_copy(update={"lake": str(lake)})
    real = jobs.validate.validate
    broken = Outcome("silver_case_quality", "expect_column_values_to_be_in_set", "q_vent", "Q-VENT", 0.99,
                     False, 100, 50, 50.0, None)

    def failing(*args, **kwargs):
        return dataclasses.replace(real(*args, **kwargs), outcomes=[broken])

    monkeypatch.setattr(jobs.validate, "validate", failing)
    with pytest.raises(PipelineError, match="Q-VENT"):
        nightly(spark, cfg, run_id="gate-fails", full=True)
    steps = {r.step: r for r in lk.read(spark, str(lake), "ops", "runs").where("run_id = 'gate-fails'").collect()}
    assert steps["validate"].status == "failed" and "Q-VENT" in steps["validate"].error
    assert steps["group"].status == "ok"
    assert not {"price", "dip", "publish"} & set(steps)
    grouped = lk.read(spark, str(lake), "gold", "grouped_cases")
    assert grouped.where("run_id = 'gate-fails'").count() == grouped.count() > 0
