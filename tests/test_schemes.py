"""Format-2 rule packs: the shipped national CHS-DRG 1.1 pack on known answers for every rule form, the
pack loader's checks, the OpenDRG importer's refusal of unknown code, and (with ../shared) exact
agreement with OpenDRG's own grouper on cases drawn rule by rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from pyspark.sql import types as T

from jobs.definitions import load_pack
from jobs.errors import PipelineError
from jobs.group import OUTPUT, group_cases
from jobs.schemes.evaluate import compile_pack
from jobs.schemes.opendrg import UntranslatableError, import_opendrg
from jobs.schemes.pack import parse_rule_pack
from jobs.synth.scheme import SchemeSampler
from schemas.discharge import canonical_schema

OPENDRG = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "opendrg"
CANON = [f for f in canonical_schema().fields if f.name not in ("source_file", "source_row", "ingested_at")]


def case(case_id, pdx, sdx=(), procs=(), **kw) -> dict:
    row = dict.fromkeys(f.name for f in CANON)
    row.update(
        case_id=case_id,
        hospital_id="H1",
        region_code="230100",
        batch_id="b1",
        principal_dx=pdx,
        secondary_dx=list(sdx),
        principal_proc=procs[0] if procs else None,
        other_procs=list(procs[1:]),
        sex=1,
        age_years=50,
        los_days=8,
        discharge_disposition=1,
        total_cost=10000.0,
        payer="employee",
    )
    row.update(kw)
    return row


def frame(spark, rows):
    return spark.createDataFrame(
        [tuple(r[f.name] for f in CANON) for r in rows], T.StructType(CANON), verifySchema=False
    )


# Expected DRGs are OpenDRG chs_drg_11's answers (checked by hand against the rule it applies), except
# `qy`: OpenDRG switches the QY test off; the shipped pack keeps the national rule (pack notes).
KNOWN = [
    (case("medical-none", "J18.900"), "ES35"),
    (case("medical-mcc", "J18.900", ["J96.000"]), "ES31"),
    (case("medical-cc", "J18.900", ["E87.100"]), "ES33"),
    # a surgical ADRG's diagnosis without its procedure stays medical (national NR15, not NA19)
    (case("no-procedure", "C57.000x002", sex=2), "NR15"),
    # "any OR procedure" ADRG (SB1 has no list of its own)
    (case("any-or-procedure", "A93.200", procs=["48.5200"]), "SB15"),
    # multiple trauma: two of MDCZ's nine body regions, no OR procedure -> ZZ1, MCC split
    (case("multiple-trauma", "T02.010", ["S27.200"]), "ZZ11"),
    # sex condition on MDC entry: D48.127 opens MDCM for boys only
    (case("sex-girl", "D48.127", sex=2, age_years=8), "NZ19"),
    (case("sex-boy", "D48.127", sex=1, age_years=8), "MZ19"),
    # the surgical ADRG is the principal procedure's, not the best of any procedure
    (case("principal-proc", "K35.800x001", procs=["47.0901", "45.7200x002"]), "GD25"),
    (case("principal-proc-swapped", "K35.800x001", procs=["45.7200x002", "47.0901"]), "GB29"),
    # newborn birth-weight ADRG; an unlisted weight/diagnosis pair falls to PV1
    (case("newborn-1400g", "P07.300", age_years=0, age_days=3, birth_weight_g=1400), "PS15"),
    (case("newborn-2600g", "P07.100", age_years=0, age_days=3, birth_weight_g=2600), "PV15"),
    (case("transplant", "N18.500", procs=["55.6901"]), "AE19"),
    # one code from each of two procedure lists (AC1), JA1's alternatives "1+2 or 1+3+4"
    (case("two-lists", "N18.500", procs=["52.8000", "55.6100"]), "AC19"),
    (case("ja1-alt1", "C50.900x005", procs=["85.5300x001", "85.4300x003"], sex=2), "JA19"),
    (case("ja1-alt2", "C50.900x005", procs=["85.5300x001", "85.2100x003", "40.2100"], sex=2), "JA19"),
    (case("ja1-partial", "C50.900x005", procs=["85.5300x001", "85.2100x003"], sex=2), "JB19"),
    # ventilation >= 96 h coded as a procedure (settings.ventilation.mode: codes)
    (case("vent-code", "J18.900", procs=["96.7201"]), "AH15"),
    (case("vent-hours-only", "J18.900", vent_hours=200.0), "ES35"),
    (case("proc-as-pdx", "47.0901"), "0000"),
    (case("qy", "J18.900", procs=["47.0901"]), "EQY"),
]


@pytest.fixture(scope="module")
def national(spark):
    pack = load_pack(spark, "chs-1.1")
    return pack, compile_pack(pack)


@pytest.fixture(scope="module")
def known(spark, national):
    pack, compiled = national
    out = group_cases(frame(spark, [k[0] for k in KNOWN]), pack, compiled)
    assert out.columns == list(OUTPUT)
    return {r.case_id: r for r in out.collect()}


@pytest.mark.parametrize("row,drg", KNOWN, ids=[k[0]["case_id"] for k in KNOWN])
def test_national_known_answers(known, row, drg):
    got = known[row["case_id"]]
    assert got.drg == drg, got.rule_path


def test_explanation_names_rules_and_severity(known):
    r = known["medical-mcc"]
    assert r.mdc == "MDCE" and r.adrg == "ES3" and r.severity == "MCC" and r.severity_code == "J96.000"
    assert "ES3" in r.rule_path and "ES31 [split by MCC/CC]" in r.rule_path and "MCC J96.000" in r.rule_path
    assert known["proc-as-pdx"].ungroupable_reason == "invalid principal diagnosis 47.0901"
    assert "unrelated" in known["qy"].ungroupable_reason and known["qy"].adrg == "EQY"


def test_ventilation_hours_setting(spark, tmp_path, national):
    """settings.ventilation.mode `hours`: 200 h of ventilation reaches AH1 without the code."""
    folder = tmp_path / "vent"
    shutil.copytree(national[0].path, folder)
    m = yaml.safe_load((folder / "manifest.yaml").read_text(encoding="utf-8"))
    m["settings"]["ventilation"] = {"mode": "hours", "min_hours": 96, "code": "96.7201"}
    (folder / "manifest.yaml").write_text(yaml.safe_dump(m, allow_unicode=True), encoding="utf-8")
    pack = load_pack(spark, folder)
    rows = [case("h", "J18.900", vent_hours=200.0), case("short", "J18.900", vent_hours=50.0)]
    got = {r.case_id: r.drg for r in group_cases(frame(spark, rows), pack).collect()}
    assert got == {"h": "AH15", "short": "ES35"}


def test_loader_names_file_and_row(tmp_path, national):
    folder = tmp_path / "bad"
    shutil.copytree(national[0].path, folder)
    with (folder / "conditions.csv").open("a", encoding="utf-8") as fh:
        fh.write("adrg,ES3,9,pdx,NO.SUCH.LIST,in,\n")
    with pytest.raises(PipelineError, match=r"conditions.csv row \d+: list 'NO.SUCH.LIST' is not in lists.csv"):
        parse_rule_pack(folder)


def _mini_scheme(root: Path, adrg_test: str) -> Path:
    """A two-MDC OpenDRG-style package (the generated code's patterns) with one ADRG test given."""
    pkg = root / "mini"
    for sub in ("MDC", "ADRG", "DRG", "DATA"):
        (pkg / sub).mkdir(parents=True)
    (pkg / "Grouper.py").write_text(
        "def group(record):\n  result=MDCE.group(record)\n  if result:\n    return result\n  return '0000'\n"
    )
    (pkg / "MDC" / "MDCE.py").write_text(
        "def group(record):\n  mdc_zd=['J18.900']\n  dept_list=[]\n"
        "  if not (True and record.zdList[0] in mdc_zd):\n    return ''\n"
        "  result=ES1.group(record)\n  if result:\n    return result\n"
    )
    (pkg / "ADRG" / "ES1.py").write_text(
        "def group(record):\n  adrg_zd=['J18.900']\n  adrg_ss=[]\n"
        f"  if {adrg_test}:\n    message('x')\n    if MDCE_DRG.ES11_group(record):\n      return 'ES11'\n"
        "    if MDCE_DRG.ES15_group(record):\n      return 'ES15'\n    return 'ES1'\n  else:\n    return ''\n"
    )
    (pkg / "DRG" / "MDCE_DRG.py").write_text(
        "def ES11_group(record):\n  return len(record.zdList)>1 and has_mcc(record.zdList[0],record.zdList[1:])\n"
        "def ES15_group(record):\n  return True\n"
    )
    for name, text in {"SS_VALID": "47.0901 x\n", "MCC": "J96.000 1\n", "CC": "", "CCE": "", "DRG": "ES11 a\n"}.items():
        (pkg / "DATA" / f"{name}.dat").write_text(text, encoding="utf-8")
    return pkg


def test_importer_translates_the_generated_patterns(tmp_path, spark):
    pkg = _mini_scheme(tmp_path, "True and record.zdList[0] in adrg_zd and 1 <= record.inHospitalTime < 30")
    import_opendrg(pkg, tmp_path / "pack")
    pack = parse_rule_pack(tmp_path / "pack")
    assert [[(a.kind, a.op, a.value) for a in alt] for alt in pack.alternatives("adrg", "ES1")] == [
        [("pdx", "in", None), ("los", ">=", 1.0), ("los", "<", 30.0)]
    ]
    assert pack.alternatives("drg", "ES11")[0][0].kind == "mcc"


def test_importer_refuses_unknown_code(tmp_path):
    pkg = _mini_scheme(tmp_path, "True and record.dept in dept_list")
    with pytest.raises(UntranslatableError, match=r"ADRG/ES1.py:\d+: .*record.dept in dept_list"):
        import_opendrg(pkg, tmp_path / "pack")
    pkg2 = _mini_scheme(tmp_path / "b", "True and len(record.ssList) > 2")
    with pytest.raises(UntranslatableError, match="ES1.py"):
        import_opendrg(pkg2, tmp_path / "pack2")


@pytest.mark.parametrize("scheme", ["chs_drg_11", "haerbin_2022"])
def test_agrees_with_opendrg(spark, tmp_path, scheme):
    """Differential check: the imported pack groups like OpenDRG's own grouper (>= 99.5% exact DRG;
    the benchmark bench/bench_agreement.py runs all six schemes at 20,000 cases)."""
    if not (OPENDRG / "drg_group" / scheme).is_dir():
        pytest.skip(f"OpenDRG not found at {OPENDRG} (provided beside the repo as ../shared)")
    from jobs.schemes.oracle import OpenDrg

    import_opendrg(OPENDRG / "drg_group" / scheme, tmp_path / scheme)
    pack = load_pack(spark, tmp_path / scheme)
    cases = SchemeSampler(pack).draw(400, seed=11)
    oracle = OpenDrg(OPENDRG, scheme)
    theirs = {c["case_id"]: oracle.group(c)[2] for c in cases}
    rows = [
        case(
            c["case_id"],
            c["principal_dx"],
            c["secondary_dx"],
            [p for p in [c["principal_proc"], *c["other_procs"]] if p],
            **{
                k: c[k]
                for k in (
                    "sex",
                    "age_years",
                    "age_days",
                    "birth_weight_g",
                    "los_days",
                    "discharge_disposition",
                    "vent_hours",
                )
            },
        )
        for c in cases
    ]
    ours = {r.case_id: r.drg for r in group_cases(frame(spark, rows), pack).collect()}
    same = sum(ours[k] == theirs[k] for k in theirs)
    assert same / len(theirs) >= 0.995, [(k, ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]][:5]


def test_harbin_scheme_takes_harbin_weights(tmp_path):
    """Harbin's published weights price Harbin's own scheme: every 2022 DRG of the list is a DRG of the
    imported haerbin_2022 pack (the national 1.1 pack has only 343 of them)."""
    weights_csv = OPENDRG.parent / "chs-drg-1.1" / "published_weights_harbin.csv"
    if not (OPENDRG / "drg_group" / "haerbin_2022").is_dir() or not weights_csv.is_file():
        pytest.skip(f"OpenDRG or Harbin weights not found under {OPENDRG.parent}")
    from jobs.schemes.opendrg import published_weights

    weights = published_weights(weights_csv, "2022")
    result = import_opendrg(OPENDRG / "drg_group" / "haerbin_2022", tmp_path / "hrb", weights=weights)
    assert f"reference weights: {len(weights)} of {len(weights)} published DRGs matched" in result["notes"]
    pack = parse_rule_pack(tmp_path / "hrb")
    got = {d["drg"]: d["reference_weight"] for ds in pack.drgs.values() for d in ds}
    assert all(got[drg] == w for drg, w in weights.items())
