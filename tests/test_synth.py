"""Synthetic generator: determinism, distributions, injected errors recorded, group mix, layouts."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.errors import PipelineError
from jobs.synth import ERROR_TYPES, generate
from jobs.synth.config import load_config
from jobs.synth.pack import read_pack
from jobs.synth.write import write_batches

# A tiny CHS-DRG-like pack: circulatory, respiratory, obstetric, newborn and one pre-MDC group.
PACK = {
    "adrg.csv": """adrg,name,mdc,kind,priority
        AH1,有创呼吸机支持≥96小时,MDCA,surgical,1
        FM1,经皮冠状动脉支架植入,MDCF,non_or,10
        FR1,急性心肌梗死,MDCF,medical,20
        EB1,胸部大手术,MDCE,surgical,10
        ES1,呼吸系统感染/炎症,MDCE,medical,20
        OB1,剖宫产术,MDCO,surgical,10
        OR1,阴道分娩,MDCO,medical,20
        PS1,极度发育不全（出生体重＜1500g）,MDCP,medical,10
        PU1,足月儿相关疾患,MDCP,medical,20
        NA1,女性生殖器官恶性肿瘤手术,MDCN,surgical,10
        """,
    "adrg_members.csv": """adrg,role,code
        AH1,principal_procedure,96.7201
        FM1,principal_procedure,36.0600
        FM1,principal_procedure,36.0700
        FR1,principal_diagnosis,I21.000
        FR1,principal_diagnosis,I21.100
        FR1,principal_diagnosis,I21.400
        FR1,principal_diagnosis,R07.400
        EB1,principal_procedure,32.4100x001
        ES1,principal_diagnosis,J18.900
        ES1,principal_diagnosis,J15.900
        OB1,principal_procedure,74.1x00
        OR1,principal_diagnosis,O80.000
        OR1,principal_diagnosis,O80.001
        PS1,principal_diagnosis,P07.000
        PU1,principal_diagnosis,P59.900
        PU1,principal_diagnosis,P22.900
        NA1,principal_diagnosis,C53.900
        NA1,principal_procedure,68.4900
        """,
    "drg.csv": """drg,adrg,suffix,name,reference_weight
        AH19,AH1,9,有创呼吸机支持,12.5
        FM11,FM1,1,,3.1
        FM13,FM1,3,,2.6
        FM15,FM1,5,,2.2
        FR11,FR1,1,,1.6
        FR13,FR1,3,,1.2
        FR15,FR1,5,,0.9
        EB11,EB1,1,,4.0
        EB15,EB1,5,,3.0
        ES11,ES1,1,,
        ES13,ES1,3,,
        ES15,ES1,5,,
        OB13,OB1,3,,1.1
        OB15,OB1,5,,0.9
        OR19,OR1,9,,0.5
        PS19,PS1,9,,5.0
        PU19,PU1,9,,0.4
        NA11,NA1,1,,3.5
        NA15,NA1,5,,2.5
        """,
    "codes.csv": """code,kind,name,severity,exclusion_table
        I21.000,diagnosis,急性前壁心肌梗死,MCC,F1
        I21.100,diagnosis,急性下壁心肌梗死,MCC,F1
        I21.400,diagnosis,急性心内膜下心肌梗死,,
        R07.400,diagnosis,胸痛,,
        R50.900,diagnosis,发热,,
        J18.900,diagnosis,肺炎,CC,E1
        J15.900,diagnosis,细菌性肺炎,CC,E1
        O80.000,diagnosis,单胎顺产,,
        O80.001,diagnosis,单胎头位顺产,,
        P07.000,diagnosis,极低出生体重儿,,
        P59.900,diagnosis,新生儿黄疸,,
        P22.900,diagnosis,新生儿呼吸窘迫,,
        C53.900,diagnosis,宫颈恶性肿瘤,,
        J96.000,diagnosis,急性呼吸衰竭,MCC,E2
        N17.900,diagnosis,急性肾衰竭,MCC,N1
        I46.900,diagnosis,心脏骤停,MCC,F2
        E87.600,diagnosis,低钾血症,CC,X1
        D64.900,diagnosis,贫血,CC,X2
        I48.000,diagnosis,阵发性心房颤动,CC,F2
        I10.x00x002,diagnosis,高血压,,
        E11.900,diagnosis,2型糖尿病,,
        E78.500,diagnosis,高脂血症,,
        K21.900,diagnosis,胃食管反流,,
        96.7201,procedure,有创呼吸机治疗,,
        36.0600,procedure,非药物洗脱冠状动脉支架置入,,
        36.0700,procedure,药物洗脱冠状动脉支架置入,,
        32.4100x001,procedure,胸腔镜肺叶切除术,,
        74.1x00,procedure,子宫下段剖宫产术,,
        68.4900,procedure,经腹子宫切除术,,
        88.7200,procedure,心脏超声,,
        87.4400x001,procedure,胸部X线检查,,
        """,
    "cc_exclusions.csv": """exclusion_table,principal_diagnosis
        F2,I21.000
        F2,I21.100
        E2,J18.900
        """,
    "mdc.csv": """mdc,name,kind
        MDCA,先期分组疾病及相关操作,pre_mdc
        MDCE,呼吸系统疾病及功能障碍,body_system
        MDCF,循环系统疾病及功能障碍,body_system
        MDCN,女性生殖系统疾病及功能障碍,body_system
        MDCO,妊娠、分娩及产褥期,special
        MDCP,新生儿及其他围产期新生儿疾病,special
        """,
    "manifest.yaml": """name: synth-test
        version: "1"
        code_system: {diagnosis: ICD-10 医保版 2.0, procedure: ICD-9-CM-3 医保版 2.0}
        rules:
          pre_mdc_order: [MDCA, MDCP]
          ventilation: {adrg: AH1, min_hours: 96}
          newborn: {mdc: MDCP, max_age_days: 28, infant_max_age_days: 364, weight_bands: {PS1: [null, 1499]}}
        """,
}


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pack")
    for name, text in PACK.items():
        (folder / name).write_text(textwrap.dedent("        " + text.strip()) + "\n", encoding="utf-8")
    return folder


CASES, SEED = 6000, 11


@pytest.fixture(scope="module")
def generated(spark, pack_dir, tmp_path_factory):
    """One generation, written once in the GBK layout; tests read the files and the truth back."""
    out = tmp_path_factory.mktemp("synth")
    cases, truth, errors = generate(spark, CASES, 2, 4, SEED, str(pack_dir), 0.25, malformed_rate=0.004)
    folders = write_batches(spark, cases, truth, errors, str(out), "hlj_gbk")
    return {
        "out": out, "folders": folders,
        "data": cases.cache(),
        "truth": spark.read.parquet(str(out / "_truth" / "cases")).cache(),
        "errors": spark.read.parquet(str(out / "_truth" / "errors")).cache(),
        "hospitals": spark.read.parquet(str(out / "_truth" / "hospitals")),
    }


def _fingerprint(df):
    return df.select(F.bit_xor(F.xxhash64(*df.columns)).alias("h"), F.count(F.lit(1)).alias("n")).first()


def test_same_seed_same_data_other_seed_other_data(spark, pack_dir, generated):
    again, _, _ = generate(spark, CASES, 2, 4, SEED, str(pack_dir), 0.25, malformed_rate=0.004)
    other, _, _ = generate(spark, CASES, 2, 4, SEED + 1, str(pack_dir), 0.25, malformed_rate=0.004)
    first = _fingerprint(generated["data"])
    assert _fingerprint(again) == first
    assert _fingerprint(other).h != first.h


def test_files_per_region_and_batch_in_gbk_with_truth_matching(generated):
    out, folders = generated["out"], generated["folders"]
    assert folders == ["230100/2026-11-22", "230200/2026-11-22"]
    files = sorted(out.glob("*/2026-11-22/part-*.csv"))
    assert files and not list(out.glob("_staging*"))
    lines = []
    for f in files:
        text = f.read_bytes().decode("gbk")  # raises if the file is not GBK
        header, *rows = text.splitlines()
        assert header.split(",")[:3] == ["结算清单号", "定点医疗机构编码", "医保区划"]
        lines += rows
    assert any(",男," in r for r in lines) and any(",女," in r for r in lines)
    assert any(r.split(",")[0].startswith("ZY") for r in lines)
    truth, errors = generated["truth"], generated["errors"]
    assert len(lines) == truth.count()  # one truth row per delivered row, duplicates included
    row = next(csv.reader([lines[0]]))
    assert row[0] in {r.case_id for r in truth.select("case_id").collect()}
    malformed = errors.where("error_type = 'malformed_row'").count()
    assert malformed > 0 and sum(len(next(csv.reader([r]))) != len(header.split(",")) for r in lines) == malformed
    hospitals = generated["hospitals"]
    assert hospitals.where("upcoding").groupBy("region_code").count().count() == 2


def test_every_error_type_is_injected_recorded_and_visible(generated):
    data, errors = generated["data"], generated["errors"]
    by_type = {r.error_type: r["count"] for r in errors.groupBy("error_type").count().collect()}
    assert set(by_type) == {*ERROR_TYPES, "upcoding", "malformed_row"}
    joined = data.join(errors, ["region_code", "hospital_id", "case_id", "batch_id"], "left")
    sums = F.abs(sum(F.col(c) for c in ("cost_service", "cost_diagnosis", "cost_treatment", "cost_drug",
                                        "cost_material", "cost_other")) - F.col("total_cost"))
    checks = {
        "discharge_before_admission": F.col("admit_date") > F.col("discharge_date"),
        "los_mismatch": F.datediff("discharge_date", "admit_date") != F.col("los_days"),
        "nonpositive_cost": F.col("total_cost") <= 0,
        "cost_category_mismatch": sums > 1,
        "sex_conflict": (F.col("sex") == 1) & F.col("principal_dx").rlike("^(O|C53)"),
        "age_conflict": (F.col("age_years") >= 18) & (F.col("principal_dx").startswith("P") | F.exists(
            "secondary_dx", lambda c: c.startswith("P"))),
        "invalid_code": F.col("principal_dx").endswith("x999"),
        "wrong_code_version": F.length("principal_dx") == 5,
        "symptom_principal_dx": F.col("principal_dx").rlike("^[RVWXY]"),
    }
    for error_type, anomaly in checks.items():
        scope = joined.where(F.col("error_type").isNull() | (F.col("error_type") == error_type))
        counts = scope.groupBy(F.col("error_type").isNotNull().alias("injected")).agg(
            F.count_if(anomaly).alias("hit"), F.count(F.lit(1)).alias("n")).collect()
        got = {r.injected: (r.hit, r.n) for r in counts}
        assert got[True][0] == got[True][1], f"{error_type}: injected but not visible"
        assert got.get(False, (0, 0))[0] == 0, f"{error_type}: anomaly found in a case without that error"
    dup = errors.where("error_type = 'duplicate_case'").select("case_id", "detail").first()
    copy = data.where(F.col("case_id") == dup.case_id).first()
    original = data.where(F.col("case_id") == dup.detail.rsplit(" ", 1)[1]).first()
    assert (copy.patient_id, copy.admit_date, copy.principal_dx) == (
        original.patient_id, original.admit_date, original.principal_dx)
    assert data.groupBy("region_code", "hospital_id", "case_id").count().where("count > 1").count() == 0
    upcoded = joined.where("error_type = 'upcoding'").join(generated["truth"], ["region_code", "hospital_id",
                                                                                 "case_id"])
    assert upcoded.where("hospital_upcoding AND true_severity != 'MCC'").count() == upcoded.count() > 0


def test_realistic_distributions(generated):
    truth, data = generated["truth"], generated["data"]
    t = truth.join(data, ["region_code", "hospital_id", "case_id", "batch_id"])
    clean = t.where("NOT has_error")
    s = clean.where("NOT is_outlier").agg(F.avg(F.col("total_cost") / F.col("expected_cost")).alias("r")).first()
    assert 0.95 < s.r < 1.05  # lognormal mean follows weight x base rate x efficiency
    shares = truth.agg(F.avg(F.col("is_outlier").cast("int")).alias("o"),
                       F.avg((F.col("adrg_kind") == "medical").cast("int")).alias("med"),
                       F.avg((F.col("adrg_kind") == "surgical").cast("int")).alias("surg")).first()
    assert 0.015 < shares.o < 0.05 and shares.med > shares.surg
    sev = clean.where("true_mdc NOT IN ('MDCP', 'MDCO')").groupBy((F.col("age_years") >= 65).alias("old")).agg(
        F.avg((F.col("true_severity") != "NONE").cast("int")).alias("p")).collect()
    p = {r.old: r.p for r in sev}
    assert p[True] > p[False] + 0.05  # CC/MCC prevalence rises with age
    ob = clean.where("true_mdc = 'MDCO'").agg(F.min("age_years"), F.max("age_years"), F.max("sex")).first()
    assert ob[0] >= 15 and ob[1] <= 50 and ob[2] == 2
    nb = clean.where("true_mdc = 'MDCP'").agg(F.max("age_days"), F.count_if(F.col("birth_weight_g").isNull()),
                                              F.max(F.when(F.col("true_adrg") == "PS1", F.col("birth_weight_g"))))
    row = nb.first()
    assert row[0] < 29 and row[1] == 0 and row[2] < 1500
    diff = F.abs(sum(F.col(c) for c in ("cost_service", "cost_diagnosis", "cost_treatment", "cost_drug",
                                        "cost_material", "cost_other")) - F.col("total_cost"))
    assert clean.where(diff > 0.05).count() == 0
    assert clean.where(F.col("vent_hours") >= 96).where("true_adrg != 'AH1'").count() == 0


def test_group_mix_follows_the_pack(spark, pack_dir, generated):
    tables = read_pack(str(pack_dir), load_config(), SEED)
    drgs = {r["drg" + s] for r in tables.profiles for s in "1359"} - {None}
    truth = generated["truth"]
    seen = {r.true_drg for r in truth.select("true_drg").distinct().collect()}
    assert seen <= drgs and len(seen) >= len(drgs) // 2
    total = sum(p["frequency"] for p in tables.profiles)
    expected: dict[str, float] = {}  # an ADRG has a profile per entry alternative and sex
    for p in tables.profiles:
        expected[p["adrg"]] = expected.get(p["adrg"], 0.0) + p["frequency"] / total
    n = truth.count()
    for r in truth.groupBy("true_adrg").count().collect():
        assert abs(r["count"] / n - expected[r.true_adrg]) < 0.03, r.true_adrg
    # The severity that set the suffix is coded and not excluded by the principal diagnosis.
    clean = generated["data"].join(truth.where("NOT has_error AND true_severity = 'MCC'"), "case_id")
    mcc = [c for c, _ in tables.mcc]
    assert clean.where(~F.arrays_overlap("secondary_dx", F.array(*map(F.lit, mcc)))).count() == 0


def test_bad_arguments_are_one_line_errors(spark, pack_dir, tmp_path):
    with pytest.raises(PipelineError, match="error-rate"):
        generate(spark, 10, 1, 1, 1, str(pack_dir), 1.5)
    with pytest.raises(PipelineError, match="batch-date"):
        generate(spark, 10, 1, 1, 1, str(pack_dir), batch_date="22/11/2026")
    with pytest.raises(PipelineError, match="definitions pack"):
        generate(spark, 10, 1, 1, 1, str(tmp_path / "nope"))


def test_newborn_codes_are_injected_in_both_diagnosis_positions(generated):
    """The age error puts a newborn-only code on an adult as principal or as a secondary diagnosis."""
    errors = generated["errors"].where("error_type = 'age_conflict'")
    fields = {r.field for r in errors.select("field").distinct().collect()}
    assert {"principal_dx", "secondary_dx"} <= fields
