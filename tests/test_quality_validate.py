"""Catalogue validation, the GX batch contract and its gate, hospital score arithmetic, `drg validate`."""

from __future__ import annotations

import statistics
from datetime import date
from pathlib import Path

import pytest
import yaml
from quality_fixtures import cases_df, write_tiny_pack

from jobs import lake as lk
from jobs.cli import main
from jobs.errors import PipelineError
from jobs.validate import quality_dir, validate
from quality.catalogue import DEFAULT_RULES, load_catalogue, load_suite
from quality.contract import Outcome, gate, rule_column
from quality.scores import hospital_quality


# ------------------------------------------------------------------ catalogue and suites (no Spark)
def _broken_catalogue(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["rules"][5]["check"].update(pattern="^R("), "rules.5.check.principal_not_pattern.pattern"),
        (lambda d: d["rules"][0]["check"].update(kind="spelling"), "rules.0.check"),
        (lambda d: d["rules"].append(d["rules"][0]), "duplicate rule id Q-REQ"),
        (lambda d: d["rules"][1]["check"].update(format="icd11"), "format 'icd11' is not defined"),
        (lambda d: d["rules"][0].update(severity="fatal"), "rules.0.severity"),
        (lambda d: d["rules"].extend({**d["rules"][1], "id": f"Q-X{i}"} for i in range(60)), "at most 60 can"),
    ],
)
def test_catalogue_mistakes_fail_at_load_naming_the_rule(tmp_path, edit, message):
    with pytest.raises(PipelineError, match="rule catalogue") as err:
        load_catalogue(_broken_catalogue(tmp_path, edit))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_every_rule_has_bilingual_text_and_a_mostly_threshold():
    catalogue = load_catalogue()
    suite = load_suite("silver_case_quality")
    mostly = {
        e["kwargs"]["column"]: e["kwargs"].get("mostly") for e in suite["expectations"] if "column" in e["kwargs"]
    }
    for rule in catalogue.rules:
        assert rule.description_zh and rule.description_en
        assert 0 < (mostly.get(rule_column(rule.id)) or 0) <= 1, f"{rule.id} has no mostly threshold in the suite"
    for name in ("silver_discharges", "gold_hospital_quality"):
        assert load_suite(name)["expectations"]


# ------------------------------------------------------------------ gate (no Spark)
def _outcome(success: bool, rule_id: str = "Q-DUP", pct: float = 3.5) -> Outcome:
    return Outcome("silver_case_quality", "expect_column_values_to_be_in_set", rule_column(rule_id), rule_id,
                   0.98, success, 200, int(pct * 2), pct, None)


def test_gate_passes_a_met_contract_and_stops_a_failed_one():
    gate([_outcome(True), _outcome(True, "Q-VENT", 0.5)])
    with pytest.raises(PipelineError) as err:
        gate([_outcome(True, "Q-VENT", 0.5), _outcome(False)], "/lake/quality/data_docs/index.html")
    msg = str(err.value)
    assert "1 of 2 expectations" in msg and "Q-DUP: 3.50% of cases fail, allowed 2.00%" in msg
    assert "not pricing" in msg and "/lake/quality/data_docs/index.html" in msg and "\n" not in msg


# ------------------------------------------------------------------ scores
CQ_SCHEMA = ("region_code string, hospital_id string, case_id string, batch_id string, "
             "failed_rules array<string>, worst_severity string, priceable boolean, severity string")


def _hospital_cases(region, hospital, n, n_cc, errors=0, warnings=0):
    rows = []
    for i in range(n):
        failed, worst = [], None
        if i < errors:
            failed, worst = ["Q-DUP"], "error"
        elif i < errors + warnings:
            failed, worst = ["Q-DATE-LOS"], "warning"
        rows.append((region, hospital, f"{hospital}-{i}", "b1", failed, worst, worst != "error",
                     "CC" if n - i <= n_cc else "NONE"))
    return rows


def test_quality_score_and_leave_one_out_upcoding_z(spark):
    scoring = load_catalogue().scoring
    shares = {"H1": 4, "H2": 5, "H3": 3, "H4": 4, "H5": 20}
    rows = _hospital_cases("R", "H1", 40, 4, errors=4, warnings=2)
    rows += [r for h in ("H2", "H3", "H4", "H5") for r in _hospital_cases("R", h, 40, shares[h])]
    rows += _hospital_cases("R", "H6", 10, 9)  # too small to be scored against peers
    out = {r.hospital_id: r for r in hospital_quality(spark.createDataFrame(rows, CQ_SCHEMA), scoring).collect()}

    h1 = out["H1"]
    assert (h1.n_cases, h1.n_clean) == (40, 34)
    assert h1.clean_share == pytest.approx(34 / 40)
    assert h1.quality_score == pytest.approx(1 - (4 * 1.0 + 2 * 0.3) / 40)
    peers = [shares[h] / 40 for h in ("H1", "H2", "H3", "H4")]
    z5 = (20 / 40 - statistics.mean(peers)) / statistics.stdev(peers)
    assert out["H5"].cc_mcc_z == pytest.approx(z5)
    assert out["H5"].upcoding_z == pytest.approx(z5) and out["H5"].upcoding_flag
    assert out["H5"].mean_severity == pytest.approx(0.5)
    assert not any(out[h].upcoding_flag for h in ("H1", "H2", "H3", "H4", "H6"))
    assert out["H6"].upcoding_z is None  # below min_cases: no z, no flag


# ------------------------------------------------------------------ drg validate end to end
@pytest.fixture(scope="module")
def validated(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    pack = write_tiny_pack(root / "pack")
    lake = str(root / "lake")
    silver = cases_df(spark, [
        {"case_id": "A1", "batch_id": "b1", "patient_id": "same"},
        {"case_id": "A2", "batch_id": "b1"},
        {"case_id": "B1", "batch_id": "b2", "patient_id": "same"},  # repeats A1 of the earlier batch
        {"case_id": "B2", "batch_id": "b2"},
        {"case_id": "B3", "batch_id": "b2", "principal_dx": "R40.100"},
    ])
    lk.overwrite(silver, lk.table_path(lake, "silver", "discharges"))
    first = validate(spark, lake, pack, "b2", run_id="r1", as_of=date(2026, 2, 1))
    again = validate(spark, lake, pack, "b2", run_id="r2", as_of=date(2026, 2, 1))
    return lake, pack, first, again


def test_validate_writes_flags_scores_and_gx_outputs(spark, validated):
    lake, _, first, _ = validated
    cq = {r.case_id: r for r in lk.read(spark, lake, "silver", "case_quality").collect()}
    assert set(cq) == {"B1", "B2", "B3"}
    assert cq["B1"].failed_rules == ["Q-DUP"] and cq["B3"].failed_rules == ["Q-PDX-SYM"]
    assert cq["B2"].priceable and cq["B3"].priceable and not cq["B1"].priceable  # Q-PDX-SYM: a warning
    assert (first.n_cases, first.n_flagged, first.n_unpriceable) == (3, 2, 1)
    (h,) = lk.read(spark, lake, "gold", "hospital_quality").collect()
    assert (h.hospital_id, h.n_cases, h.n_clean) == ("H1", 3, 1)
    results = lk.read(spark, lake, "ops", "quality_results").where("scope = 'b2'")
    assert results.count() == len(first.outcomes)
    dup = results.where("rule_id = 'Q-DUP'").first()
    assert not dup.success and dup.unexpected_count == 1 and dup.element_count == 3
    index = Path(first.docs_index)
    assert index.is_file() and "silver_case_quality" in index.read_text(encoding="utf-8")
    assert (Path(lake) / "quality" / "gx" / "b2" / "silver_case_quality.json").is_file()
    with pytest.raises(PipelineError, match="batch contract failed.*Q-DUP"):
        gate(first.outcomes, first.docs_index)


def test_validate_writes_a_chinese_quality_page(validated, tmp_path):
    from browser import assert_not_blank, browser, screenshot

    _, _, first, _ = validated
    page = Path(first.quality_page)
    assert page == Path(first.docs_index).parent.parent / "index.html"
    text = page.read_text(encoding="utf-8")
    assert "编码质量报告" in text and "以症状体征编码（R00-R99）作为主要诊断" in text and "@font-face" in text
    assert "警告：仍支付并参与测算" in text and "未通过" in text and "data_docs/index.html" in text
    if browser() is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium): the rendering check needs a browser")
    assert_not_blank(screenshot(page, tmp_path / "quality.png", "1200,1400"))


def test_validate_rerun_replaces_its_rows(spark, validated):
    lake, _, first, again = validated
    assert lk.read(spark, lake, "silver", "case_quality").count() == 3
    assert {r.run_id for r in lk.read(spark, lake, "silver", "case_quality").collect()} == {"r2"}
    assert lk.read(spark, lake, "ops", "quality_results").count() == len(first.outcomes)
    assert [o.success for o in again.outcomes] == [o.success for o in first.outcomes]


def test_cli_names_a_missing_batch(validated, capsys):
    lake, pack, *_ = validated
    assert main(["validate", "--lake", lake, "--definitions", pack, "--batch", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no cases for batch 'nope'" in err and "Traceback" not in err



def test_quality_folder_of_a_relative_lake_is_absolute(tmp_path, monkeypatch):
    """GX's file store refuses relative folders, and `--lake lake` is a fair thing to type."""
    monkeypatch.chdir(tmp_path)
    assert quality_dir("lake") == str(tmp_path.resolve() / "lake" / "quality")
    assert quality_dir("s3://bucket/lake/") == "s3://bucket/lake/quality"
    assert quality_dir("file:///data/lake") == "/data/lake/quality"
