"""DIP: a hand-built corpus whose packets, scores and point value are recomputed here in plain Python.

The corpus is written straight into silver (discharges + case_quality, the contract tables DIP reads),
so the test pins DIP's own arithmetic: base period = the three latest years (2021 is dropped), weights
1:2:7 renormalised over the years a packet has cases, the dagger part of a dagger-asterisk pair,
duplicate procedures, 15 vs 14 cases, unpriceable cases left out.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.dip.attributes import ATTRIBUTES, read_rows
from jobs.dip.policy import DipPolicy, load_dip_policy
from jobs.dip.stage import dip
from jobs.errors import PipelineError
from schemas.discharge import canonical_schema

# (principal_dx, principal_proc, other_procs, n cases per year {year: n}, base cost)
GROUPS = [
    # core, exactly 15 cases; the duplicate procedure counts once -> K35.8:47.0100
    ("K35.800x001", "47.0100", ["47.0100"], {2022: 3, 2023: 5, 2024: 7}, 8000.0),
    # core, cases only in 2023-2024 (weights 2:7 renormalised); dagger-asterisk pair -> E11.4
    ("E11.400x021+G63.2*", None, [], {2023: 6, 2024: 9}, 5000.0),
    # 14 cases, procedures in either order -> comprehensive I21:ZLXCZ (thrombolysis beats echo)
    ("I21.000", "99.1000", ["88.7201"], {2022: 4, 2023: 3}, 30000.0),
    ("I21.000", "88.7201", ["99.1000", "88.7201"], {2024: 7}, 31000.0),
    # 14 priceable cases + 1 unpriceable (below) + 1 in 2021 (outside the base period) -> J18:BSZL
    ("J18.900", None, [], {2021: 1, 2022: 4, 2023: 4, 2024: 6}, 4000.0),
    # rare surgical, and a rare one whose 亚目 has a lower-case x -> K35:SS, I10:BSZL
    ("K35.900x002", "47.0901", [], {2022: 1, 2024: 2}, 9000.0),
    ("I10.x00x002", None, [], {2023: 2}, 3000.0),
    # diagnostic only -> I21:ZDXCZ? no: I21 rare + echo alone merges with ZDXCZ
    ("I21.100", "88.7201", [], {2024: 1}, 6000.0),
]
EXPECTED_CORE = {"K35.8:47.0100", "E11.4"}
EXPECTED_COMPREHENSIVE = {"I21:ZLXCZ", "J18:BSZL", "K35:SS", "I10:BSZL", "I21:ZDXCZ"}


def corpus():
    """Rows (dict) with a cost that varies per case, plus one unpriceable J18 case."""
    rows = []
    for g, (dx, proc, others, per_year, base) in enumerate(GROUPS):
        for year, n in per_year.items():
            for i in range(n):
                cost = base * (1 + 0.07 * i) * (1 + 0.05 * (year - 2022)) + 13.0 * g
                if g == 0 and year == 2024 and i == 6:
                    cost = base * 3.5  # a high outlier
                if g == 1 and year == 2024 and i == 8:
                    cost = 1000.0  # a low outlier
                rows.append(dict(
                    case_id=f"C{g}-{year}-{i}", hospital_id=f"H{i % 2}", region_code="230100",
                    principal_dx=dx, principal_proc=proc, other_procs=others, total_cost=round(cost, 2),
                    discharge_date=date(year, 3 + i % 9, 10), los_days=3 + i % 5,
                    payer="employee" if i % 3 else "resident", priceable=True))
    rows.append(dict(case_id="BAD-1", hospital_id="H0", region_code="230100", principal_dx="J18.900",
                     principal_proc=None, other_procs=[], total_cost=4000.0, discharge_date=date(2024, 5, 1),
                     los_days=4, payer="employee", priceable=False))
    return rows


def write_silver(spark, lake, rows):
    schema = canonical_schema()
    now = datetime(2025, 1, 1)
    lineage = {"batch_id": "b1", "source_file": "f.csv", "source_row": 1, "ingested_at": now}
    data = [tuple({**{f: None for f in schema.fieldNames()}, **{k: v for k, v in r.items() if k != "priceable"},
                   **lineage}[f] for f in schema.fieldNames()) for r in rows]
    lk.overwrite(spark.createDataFrame(data, schema), lk.table_path(lake, "silver", "discharges"))
    quality = spark.createDataFrame(
        [(r["region_code"], r["hospital_id"], r["case_id"], "b1", [] if r["priceable"] else ["X"],
          None if r["priceable"] else "error", r["priceable"], "NONE", "v") for r in rows],
        "region_code string, hospital_id string, case_id string, batch_id string, failed_rules array<string>, "
        "worst_severity string, priceable boolean, severity string, run_id string",
    )
    lk.overwrite(quality, lk.table_path(lake, "silver", "case_quality"))


# ------------------------------------------------------------------ the independent computation
ATTR = {"47.0100": "SS", "47.0901": "SS", "99.1000": "ZLXCZ", "88.7201": "ZDXCZ"}  # chs-2.0 + ICD-9-CM-3 ranges


def expected(rows):
    """Packets, scores, point value, case scores, computed from the formula in plain Python."""
    ok = [r for r in rows if r["priceable"]]
    years = sorted({r["discharge_date"].year for r in ok})[-3:]
    w = dict(zip(years, [1, 2, 7], strict=True))
    base = [r for r in ok if r["discharge_date"].year in years]
    for r in base:
        dx = r["principal_dx"].split("+")[0][:5]
        procs = sorted({p for p in [r["principal_proc"], *r["other_procs"]] if p})
        r["_key"] = dx + (":" + "+".join(procs) if procs else "")
        r["_dx3"] = dx[:3]
        r["_attr"] = max((ATTR[p] for p in procs), key=ATTRIBUTES.index, default="BSZL")
    counts = {}
    for r in base:
        counts[r["_key"]] = counts.get(r["_key"], 0) + 1
    for r in base:
        r["_packet"] = r["_key"] if counts[r["_key"]] >= 15 else f"{r['_dx3']}:{r['_attr']}"

    def wmean(cases):
        by_year = {}
        for r in cases:
            by_year.setdefault(r["discharge_date"].year, []).append(r["total_cost"])
        return sum(w[y] * sum(c) / len(c) for y, c in by_year.items()) / sum(w[y] for y in by_year)

    big_m = wmean(base)
    packets = {r["_packet"] for r in base}
    scores = {p: wmean([r for r in base if r["_packet"] == p]) / big_m * 1000 for p in packets}
    cost_y = {y: sum(r["total_cost"] for r in base if r["discharge_date"].year == y) for y in years}
    score_y = {y: sum(scores[r["_packet"]] for r in base if r["discharge_date"].year == y) for y in years}
    pv = sum(w[y] * cost_y[y] for y in years) / sum(w[y] * score_y[y] for y in years)
    case_scores = {}
    for r in base:
        s = scores[r["_packet"]]
        ratio = r["total_cost"] / (s * pv)
        case_scores[r["case_id"]] = r["total_cost"] / pv if ratio < 0.5 else s * (ratio - 1) if ratio > 2 else s
    return {"years": years, "M": big_m, "scores": scores, "pv": pv, "case_scores": case_scores,
            "core": {p for p in packets if ":" not in p or p.split(":")[1][0].isdigit()}}


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    lake = str(tmp_path_factory.mktemp("dip") / "lake")
    rows = corpus()
    write_silver(spark, lake, rows)
    result = dip(spark, lake, load_dip_policy(), run_id="20250101T000000Z-d1b000")
    return spark, lake, result, expected(corpus())


def test_core_and_comprehensive_packets_are_exactly_the_hand_computed_ones(built):
    spark, lake, _, exp = built
    cat = {r["packet_code"]: r for r in lk.read(spark, lake, "gold", "dip_catalogue").collect()}
    core = {c for c, r in cat.items() if r["kind"] == "core"}
    assert core == EXPECTED_CORE == exp["core"]
    assert {c for c, r in cat.items() if r["kind"] == "comprehensive"} == EXPECTED_COMPREHENSIVE
    assert cat["K35.8:47.0100"]["n_cases"] == 15 and cat["K35.8:47.0100"]["procedure_key"] == "47.0100"
    assert cat["E11.4"]["n_cases_by_year"] == {2023: 6, 2024: 9} and cat["E11.4"]["procedure_key"] is None
    assert cat["J18:BSZL"]["n_cases"] == 14  # the unpriceable and the 2021 case are not counted
    assert cat["I21:ZLXCZ"]["n_cases"] == 14 and cat["I21:ZLXCZ"]["diagnosis_key"] == "I21"
    assert cat["I21:ZLXCZ"]["attribute"] == "ZLXCZ" and cat["K35.8:47.0100"]["attribute"] == "SS"


def test_scores_and_point_value_match_the_formula(built):
    spark, lake, result, exp = built
    assert result.base_years == [2022, 2023, 2024] == exp["years"]
    assert result.overall_mean_cost == pytest.approx(exp["M"], rel=1e-9)
    cat = {r["packet_code"]: r for r in lk.read(spark, lake, "gold", "dip_catalogue").collect()}
    assert set(cat) == set(exp["scores"])
    for code, score in exp["scores"].items():
        assert cat[code]["score"] == pytest.approx(score, rel=1e-9), code
    pvs = lk.read(spark, lake, "gold", "dip_point_values").collect()
    assert {r["fund"] for r in pvs} == {"employee", "resident", "all"}
    assert all(r["year_start_point_value"] == pytest.approx(exp["pv"], rel=1e-9) for r in pvs)


def test_case_scores_outliers_and_budget_neutral_settlement(built):
    spark, lake, _, exp = built
    scores = lk.read(spark, lake, "gold", "dip_case_scores").collect()
    assert len(scores) == len(exp["case_scores"])
    for r in scores:
        assert r["case_score"] == pytest.approx(exp["case_scores"][r["case_id"]], rel=1e-9), r["case_id"]
    by_id = {r["case_id"]: r for r in scores}
    assert by_id["C0-2024-6"]["outlier"] == "high" and by_id["C1-2024-8"]["outlier"] == "low"
    for fund in ("employee", "resident"):
        latest = [r for r in scores if r["fund"] == fund and r["discharge_year"] == 2024]
        paid = sum(r["payment"] for r in latest)
        assert paid == pytest.approx(sum(r["total_cost"] for r in latest), rel=1e-9)  # budget neutral
        assert all(r["payment"] is None for r in scores if r["discharge_year"] < 2024)


def test_rerun_replaces_and_monitoring_is_filled(built):
    spark, lake, result, _ = built
    dip(spark, lake, load_dip_policy(), run_id=result.run_id)
    assert lk.read(spark, lake, "gold", "dip_catalogue").count() == len(EXPECTED_CORE | EXPECTED_COMPREHENSIVE)
    summary = lk.read(spark, lake, "gold", "dip_monitoring").first()
    in_core = sum(1 for r in lk.read(spark, lake, "gold", "dip_case_scores").where(
        (F.col("discharge_year") == 2024) & (F.col("kind") == "core")).collect())
    assert summary["core_share"] == pytest.approx(in_core / summary["n_cases"])
    assert summary["n_core_packets"] == 2
    hospitals = lk.read(spark, lake, "gold", "dip_hospital_indices").collect()
    assert sum(h["n_cases"] for h in hospitals) == summary["n_cases"]


def test_policy_rejects_bad_settings_and_attribute_table_is_package_data():
    with pytest.raises(ValueError):
        DipPolicy.model_validate({"name": "x", "version": "1", "year_weights": [1, 2]})
    rows = read_rows()
    assert {a for _, a, _ in rows} == set(ATTRIBUTES) - {"BSZL"}
    assert dict((p, a) for p, a, _ in rows)["47.0100"] == "SS"


def test_attribute_table_is_derived_from_the_chs_2_0_pack_and_works_for_format_1():
    from jobs.dip.attributes import derive, pack_procedures

    label, adrgs, members, procedures = pack_procedures("chs-2.0")
    derived = derive(adrgs, members, procedures, label)
    assert derived == read_rows()  # the shipped table is exactly what the chs-2.0 pack derives
    table = {p: a for p, a, _ in derived}
    assert table["47.0100"] == "SS"  # laparoscopic appendectomy: surgical ADRG GE1
    assert table["99.1000"] == "ZLXCZ"  # thrombolysis: non-OR ADRG BL1
    assert table["00.5700"] == "ZDXCZ"  # non-OR FM5 经皮心导管检查操作: diagnostic by its name
    assert table["00.5501"] == "SS"  # non-OR BE2 神经介入治疗: interventional
    assert table["88"] == "ZDXCZ" and table["99"] == "ZLXCZ" and table["45.1"] == "ZDXCZ"  # ranges
    label, adrgs, members, procedures = pack_procedures("demo")  # format 1
    demo = {p: a for p, a, _ in derive(adrgs, members, procedures, label)}

    def lookup(code):  # the longest matching prefix, as jobs.dip.attributes.key_attributes
        return demo[max((p for p in demo if code.startswith(p)), key=len)]

    assert lookup("36.0700") == "SS"  # non-OR FM3 经皮冠状动脉支架植入: interventional
    assert "96.7201" not in demo and lookup("96.7201") == "ZLXCZ"  # only the pre-MDC lists it: range 96
    assert "55.6901" not in demo and lookup("55.6901") == "SS"  # kidney transplant (pre-MDC): range 55


def test_missing_silver_is_a_clear_error(spark, tmp_path):
    with pytest.raises(PipelineError, match="silver"):
        dip(spark, str(tmp_path / "empty"), load_dip_policy())


# ------------------------------------------------------------------ subtypes and related procedures
CASE_DDL = ("region_code string, hospital_id string, case_id string, fund string, year int, cost double, "
            "los double, principal_dx string, principal_proc string, other_procs array<string>, severity string")


def _build(spark, rows, **policy):
    from jobs.dip.attributes import attribute_table
    from jobs.dip.stage import build

    p = DipPolicy.model_validate({**load_dip_policy().model_dump(), **policy})
    cases = spark.createDataFrame(rows, CASE_DDL).withColumn("batch_id", F.lit("2024-12-31"))
    return build(cases, attribute_table(spark, read_rows()), p, "t")


def test_severity_subtype_adopted_only_when_the_three_triggers_hold(spark):
    # one core packet, 2024 only: 14 plain cases around 1000, 6 MCC cases around 3000 (> 5 subtype cases,
    # 20 > 15 packet cases, CV falls by far more than 20%); 3 CC cases: too few for a CC subtype.
    plain = [1000.0 + 10 * i for i in range(14)]
    mcc = [3000.0 + 20 * i for i in range(6)]
    cc = [1500.0, 1600.0, 1700.0]
    rows = [("R", "H", f"c{i}", "employee", 2024, c, 5.0, "J18.900", None, [], s)
            for i, (c, s) in enumerate([(c, "NONE") for c in plain] + [(c, "MCC") for c in mcc]
                                       + [(c, "CC") for c in cc])]
    result = _build(spark, rows)
    packet = result.frames["dip_catalogue"].where("packet_code = 'J18.9'").first()
    assert [s["subtype"] for s in packet["subtypes"]] == ["severe"]
    assert packet["subtypes"][0]["coefficient"] == pytest.approx((sum(mcc) / 6) / (sum(plain + mcc + cc) / 23))
    scores = {r["case_id"]: r for r in result.frames["dip_case_scores"].collect()}
    severe = scores["c14"]
    assert severe["subtype"] == "severe" and severe["subtype_coef"] == pytest.approx(
        packet["subtypes"][0]["coefficient"])
    assert scores["c20"]["subtype"] is None  # CC: not adopted


def test_main_plus_related_keeps_only_costly_related_procedures(spark):
    # 47.0100 alone ~ 8000; with 99.0400 (+25%: kept); with 88.7201 (+2%: dropped).
    rows = []
    for i in range(20):
        rows.append(("R", "H", f"a{i}", "employee", 2024, 8000.0 + i, 5.0, "K35.800x001", "47.0100", [], "NONE"))
    for i in range(16):
        rows.append(("R", "H", f"b{i}", "employee", 2024, 10000.0 + i, 5.0, "K35.800x001", "47.0100",
                     ["99.0400"], "NONE"))
    for i in range(16):
        rows.append(("R", "H", f"c{i}", "employee", 2024, 8200.0 + i, 5.0, "K35.800x001", "47.0100",
                     ["88.7201"], "NONE"))
    codes = {r["packet_code"]: r["n_cases"] for r in
             _build(spark, rows, procedure_key="main_plus_related").frames["dip_catalogue"].collect()}
    assert codes == {"K35.8:47.0100": 36, "K35.8:47.0100+99.0400": 16}


def test_a_packet_of_zero_cost_cases_scores_zero_without_failing(spark):
    # ANSI mode: a packet whose cases all cost 0 has score 0; its cases' cost ratio is null, not a
    # division-by-zero error (found by bench_dip at 1M generated cases).
    rows = [("R", "H", f"z{i}", "employee", 2024, 0.0, 1.0, "Z00.000", None, [], "NONE") for i in range(16)]
    rows += [("R", "H", f"p{i}", "employee", 2024, 1000.0 + i, 3.0, "J18.900", None, [], "NONE") for i in range(16)]
    result = _build(spark, rows)
    scores = {r["case_id"]: r for r in result.frames["dip_case_scores"].collect()}
    assert scores["z0"]["packet_score"] == 0 and scores["z0"]["cost_ratio"] is None and scores["z0"]["case_score"] == 0
    assert scores["p0"]["cost_ratio"] is not None
    assert result.frames["dip_monitoring"].first()["n_cases"] == 32
