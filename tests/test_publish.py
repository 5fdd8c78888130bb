"""Publish: releases readable by id and date without Spark, suppression, atomicity, idempotency, diff."""

from __future__ import annotations

from pathlib import Path

import pytest
from publish_fixtures import RUN_1, RUN_2, RW_1, RW_2, write_reference, write_run
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs import publish as pub
from jobs.errors import PipelineError
from jobs.releases import PUBLISHED_TABLES, read_release
from jobs.runs import new_run_id


@pytest.fixture(scope="module")
def released(spark, tmp_path_factory):
    """A lake with two priced runs, both published (the second with its report)."""
    lake = str(tmp_path_factory.mktemp("published") / "lake")
    write_run(spark, lake, RUN_1, RW_1)
    write_run(spark, lake, RUN_2, RW_2)
    first = pub.publish(spark, lake, RUN_1, with_report=False)
    write_reference(spark, lake, tmp_path_factory.mktemp("reference"))  # hospital and region names from now on
    second = pub.publish(spark, lake, RUN_2)
    return lake, first, second


def test_release_ids_follow_the_run():
    assert pub.release_id_for(RUN_1) == "R2026-11-22-aaaaaa"
    assert pub.release_id_for(RUN_1, "2026-Q4") == "2026-Q4"
    with pytest.raises(PipelineError, match="release name"):
        pub.release_id_for(RUN_1, "bad name; drop")


def test_both_releases_readable_by_date_id_and_latest_without_spark(released):
    lake, first, second = released
    by_date_1 = read_release(lake, "drg_weights", "2026-11-22")
    by_date_2 = read_release(lake, "drg_weights", "2026-12-31")
    assert set(by_date_1["release_id"]) == {first["release_id"]}
    assert set(by_date_2["release_id"]) == {second["release_id"]}
    assert dict(zip(by_date_1["drg"], by_date_1["rw"], strict=True)) == RW_1
    latest = read_release(lake, "drg_weights")
    assert dict(zip(latest["drg"], latest["rw"], strict=True)) == RW_2
    # previous weight and change come from the previous release
    es21 = latest.set_index("drg").loc["ES21"]
    assert es21["previous_rw"] == 1.0 and es21["rw_change"] == pytest.approx(0.2)
    assert read_release(lake, "base_rates", first["release_id"])["run_id"].unique().tolist() == [RUN_1]
    with pytest.raises(PipelineError, match="no release was in force"):
        read_release(lake, "drg_weights", "2026-01-01")
    assert second["previous_release_id"] == first["release_id"]


def test_no_published_cell_below_k_and_no_identifiers(released):
    lake, _, second = released
    k = second["k"]
    for table in PUBLISHED_TABLES:
        frame = read_release(lake, table)
        assert "case_id" not in frame.columns and "patient_id" not in frame.columns
        assert not (frame["n_cases"] < k).any(), table
    weights = read_release(lake, "drg_weights").set_index("drg")
    assert weights.loc["FM19", "suppressed"] and weights.loc["FM19", "rw"] == 2.5  # weight kept, count hidden
    assert weights.loc["FM19", "n_cases"] != weights.loc["FM19", "n_cases"]  # NaN
    hospitals = read_release(lake, "hospital_indices").set_index("hospital_id")
    assert hospitals.loc["H9", "suppressed"] and hospitals.loc["H9", "cmi"] != hospitals.loc["H9", "cmi"]
    stats = read_release(lake, "group_stats")
    es21 = stats[(stats["level"] == "drg_region") & (stats["drg"] == "ES21")]
    assert dict(zip(es21["region_code"], es21["n_cases"], strict=True)) == {"230100": 30, "OTHER": 15}
    drg = stats[stats["level"] == "drg"].set_index("drg")
    assert drg.loc["ES21", "n_cases"] == 45 and drg.loc["ES23", "cost_mean"] == pytest.approx(8000.0)
    assert drg.loc["ES23", "cost_median"] == pytest.approx(8000.0)
    assert drg.loc["FM19", "suppressed"] and drg.loc["FM19", "cost_mean"] != drg.loc["FM19", "cost_mean"]
    levels = stats.groupby("level")["n_cases"].sum()
    assert levels["all"] == 70 and levels["mdc"] == 65  # MDCF (5 cases) suppressed
    assert "k=10" in second["suppression_rule"]


def test_every_published_code_carries_its_name(released):
    """Names from the pack beside every MDC/ADRG/DRG code, never empty on a shown row; places named by
    the optional reference tables, codes otherwise (and in a release published before they existed)."""
    lake, first, _ = released
    weights = read_release(lake, "drg_weights").set_index("drg")
    assert list(weights.loc["ES21", ["mdc_name", "adrg_name", "drg_name"]]) == [
        "呼吸系统疾病及功能障碍", "呼吸系统结核", "呼吸系统结核，伴严重并发症或合并症"]
    assert weights.loc["ES23", "drg_name"] == "ES23"  # the pack has no name for it: its code
    for table in ("drg_weights", "group_stats"):
        shown = read_release(lake, table).query("not suppressed")
        for column in ("mdc_name", "adrg_name", "drg_name"):
            assert shown[column].notna().all() and (shown[column].str.strip() != "").all(), (table, column)
    stats = read_release(lake, "group_stats")
    mdc = stats[stats["level"] == "mdc"].set_index("mdc")
    assert (mdc.loc["MDCE", "mdc_name"], mdc.loc["MDCE", "drg_name"]) == ("呼吸系统疾病及功能障碍", "全部")
    cells = stats[(stats["level"] == "drg_region") & (stats["drg"] == "ES21")].set_index("region_code")
    assert cells.loc["230100", "region_name"] == "哈尔滨市" and cells.loc["OTHER", "region_name"].startswith("其他")
    hospitals = read_release(lake, "hospital_indices").set_index("hospital_id")
    assert list(hospitals.loc["H1", ["hospital_name", "hospital_short_name", "region_name"]]) == [
        "哈尔滨医科大学附属第一医院", "哈医大一院", "哈尔滨市"]
    assert hospitals.loc["H2", "hospital_name"] == "H2" and hospitals.loc["H3", "region_name"] == "230300"
    assert hospitals.loc["H9", "hospital_short_name"] == "齐齐哈尔市第一医院"  # no short name: the name
    assert read_release(lake, "base_rates").set_index("region_code").loc["230100", "region_name"] == "哈尔滨市"
    before = read_release(lake, "hospital_indices", first["release_id"]).set_index("hospital_id")
    assert before.loc["H1", "hospital_name"] == "H1"  # published before the reference table was loaded


def test_a_bad_reference_table_is_one_clear_error(spark, tmp_path):
    from jobs.names import load_reference

    path = tmp_path / "hospitals.csv"
    path.write_text("hospital_id,hospital_name\nH1,甲医院\nH1,乙医院\n", encoding="utf-8")
    with pytest.raises(PipelineError, match=r"hospitals.csv: repeated \(2x\) hospital_id H1"):
        load_reference(spark, str(tmp_path / "lake"), "hospitals", str(path))
    path.write_text("id,name\nH1,甲医院\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="needs column.*hospital_id, hospital_name"):
        load_reference(spark, str(tmp_path / "lake"), "hospitals", str(path))


def test_k_is_configurable(spark, released):
    lake = released[0]
    weights = pub.release_frame(spark, lake, "drg_weights")
    cases = pub.cases_frame(
        lk.read(spark, lake, "gold", "case_payments").where(F.col("run_id") == RUN_2),
        lk.read(spark, lake, "gold", "grouped_cases"),
        weights,
    )
    cells = {(r["drg"], r["region_code"]): r["cell"] for r in pub.region_cells(cases, 3).collect()}
    assert cells[("ES21", "230200")] == "230200"  # 3 cases: enough when k=3
    cells = {(r["drg"], r["region_code"]): r["cell"] for r in pub.region_cells(cases, 13).collect()}
    assert cells[("ES21", "230300")] == "OTHER" and cells[("ES21", "230100")] == "230100"


def test_publishing_a_run_again_changes_nothing(spark, released):
    lake, first, _ = released
    before = {t: lk.version(spark, lk.table_path(lake, "published", t)) for t in PUBLISHED_TABLES}
    again = pub.publish(spark, lake, RUN_1, with_report=False)
    assert again["release_id"] == first["release_id"]
    assert before == {t: lk.version(spark, lk.table_path(lake, "published", t)) for t in PUBLISHED_TABLES}


def test_compare_names_moved_drgs_and_hospital_impact(spark, released):
    lake, first, second = released
    _, _, moved, impact = pub.compare(spark, lake, first["release_id"], second["release_id"], 0.05)
    assert [r["drg"] for r in moved.collect()] == ["ES21"]
    rows = {r["hospital_id"]: r for r in impact.collect()}
    # H1: 30 ES21 cases x 10000 x (1.2 - 1.0); H9 (3 cases) merged into OTHER
    assert rows["H1"]["change"] == pytest.approx(30 * 10000 * 0.2)
    assert rows["H2"]["change"] == pytest.approx(0.0)
    assert "H9" not in rows and rows["OTHER"]["n_cases"] == 3
    assert rows["H1"]["hospital_name"] == "哈尔滨医科大学附属第一医院"
    assert moved.first()["drg_name"].startswith("呼吸系统结核")


def test_compare_cli_prints_chinese_and_writes_a_page(released, capsys):
    from jobs.cli import main

    lake, first, second = released
    assert main(["publish", "--lake", lake, "--compare", first["release_id"], second["release_id"]]) == 0
    out = capsys.readouterr().out
    assert "权重变化超过 5% 的 DRG" in out and "各医院支付影响" in out
    page = (Path(lake) / "published" / "reports" / f"compare-{first['release_id']}-{second['release_id']}"
            / "index.html").read_text(encoding="utf-8")
    assert "发布版本对比" in page and "呼吸系统结核" in page and "@font-face" in page
    assert "+20.0%" in page and "60,000.00" in page  # ES21's change; H1: 30 x 10,000 x 0.2 元


def _crash_on_group_stats(monkeypatch):
    """Writes of published.group_stats fail from now on (a crash mid-publish); returns the real writer."""
    real = lk.replace_where

    def crash(df, path, *args, **kwargs):
        if path.endswith("group_stats"):
            raise RuntimeError("disk full")
        return real(df, path, *args, **kwargs)

    monkeypatch.setattr(lk, "replace_where", crash)
    return real


def test_a_failure_mid_publish_leaves_the_previous_release_intact(spark, tmp_path, monkeypatch):
    lake = str(tmp_path / "lake")
    write_run(spark, lake, RUN_1, RW_1)
    write_run(spark, lake, RUN_2, RW_2)
    first = pub.publish(spark, lake, RUN_1, with_report=False)
    real = _crash_on_group_stats(monkeypatch)
    with pytest.raises(RuntimeError):
        pub.publish(spark, lake, RUN_2, with_report=False)
    monkeypatch.setattr(lk, "replace_where", real)
    # drg_weights already holds the unfinished release's rows, but readers never see them
    partial = pub.release_id_for(RUN_2)
    assert lk.read(spark, lake, "published", "drg_weights").where(F.col("release_id") == partial).count() == 3
    latest = read_release(lake, "drg_weights")
    assert set(latest["release_id"]) == {first["release_id"]}
    assert dict(zip(latest["drg"], latest["rw"], strict=True)) == RW_1
    # the re-run replaces the partial rows instead of duplicating them
    second = pub.publish(spark, lake, RUN_2, with_report=False)
    assert second["release_id"] == partial
    assert len(read_release(lake, "drg_weights")) == 3


def test_a_minted_runs_publish_retried_after_a_failure_is_not_doubled(spark, tmp_path, monkeypatch):
    """A run id this process minted is published with appends; a retry in the same process (the first
    attempt committed some tables) replaces them like any re-run."""
    lake = str(tmp_path / "lake")
    run = new_run_id()
    write_run(spark, lake, run, RW_2)
    real = _crash_on_group_stats(monkeypatch)
    with pytest.raises(RuntimeError):
        pub.publish(spark, lake, run, with_report=False)
    monkeypatch.setattr(lk, "replace_where", real)
    release = pub.publish(spark, lake, run, with_report=False)
    for table in ("drg_weights", "base_rates", "hospital_indices"):
        rows = lk.read(spark, lake, "published", table).where(F.col("release_id") == release["release_id"])
        assert rows.count() == len(read_release(lake, table)), table
    assert len(read_release(lake, "drg_weights")) == 3


def test_unknown_run_is_a_clear_error(spark, released):
    with pytest.raises(PipelineError, match="no rows in gold.drg_weights"):
        pub.publish(spark, released[0], "20990101T000000Z-ffffff", with_report=False)


def test_drg_stats_cli_exports_csv_json_and_excel(released, tmp_path):
    import json

    import pandas as pd

    from jobs.cli import main

    lake = released[0]
    out = tmp_path / "adrg.csv"
    assert main(["stats", "--lake", lake, "--by", "adrg", "--format", "csv", "--out", str(out),
                 "--release", "2026-11-22", "--excel", str(tmp_path / "r.xlsx")]) == 0
    adrg = pd.read_csv(out).set_index("adrg")
    assert adrg.loc["ES2", "n_cases"] == 65 and bool(adrg.loc["FM1", "suppressed"])
    assert (adrg.loc["ES2", "adrg_name"], adrg.loc["ES2", "mdc_name"]) == ("呼吸系统结核", "呼吸系统疾病及功能障碍")
    assert set(adrg["release_id"]) == {released[1]["release_id"]}
    sheets = pd.read_excel(tmp_path / "r.xlsx", sheet_name=None)
    assert {"about", "drg", "hospital", "drg_weights"} <= set(sheets)
    assert "k=10" in " ".join(sheets["about"]["value"].astype(str))
    hospitals = tmp_path / "h.json"
    assert main(["stats", "--lake", lake, "--by", "hospital", "--format", "json", "--out", str(hospitals)]) == 0
    rows = {r["hospital_id"]: r for r in json.loads(hospitals.read_text())}
    assert rows["H9"]["n_cases"] is None and rows["H1"]["n_cases"] == 30
    assert rows["H1"]["hospital_name"] == "哈尔滨医科大学附属第一医院"
    assert sheets["drg"].set_index("drg").loc["ES21", "drg_name"] == "呼吸系统结核，伴严重并发症或合并症"
    drgs = tmp_path / "drg.json"
    assert main(["stats", "--lake", lake, "--by", "drg", "--format", "json", "--out", str(drgs)]) == 0
    named = {r["drg"]: r["drg_name"] for r in json.loads(drgs.read_text(encoding="utf-8"))}
    assert named["FM19"] == "经皮心导管检查操作"


def test_drg_stats_table_prints_names(released, capsys):
    from jobs.cli import main

    assert main(["stats", "--lake", released[0], "--by", "drg"]) == 0
    out = capsys.readouterr().out
    assert "呼吸系统结核" in out and "drg_name" in out and "DRG 名称" in out  # a long name may wrap
