"""The `drg group` stage: gold.grouped_cases from silver, exact re-runs, --explain."""

from __future__ import annotations

import argparse

from pyspark.sql import functions as F

from jobs import lake as lake_io
from jobs.definitions import load_pack
from jobs.group import explain, group_silver, run
from tests.test_group import DEMO, case, frame


def test_stage_writes_one_row_per_case_and_reruns_replace(spark, lake):
    rows = [
        case("a", "J18.900", ["J96.000"]),
        case("b", "I21.000", [], proc="36.0700"),
        case("a", "Z99.999", [], hospital_id="H2"),
    ]
    lake_cases = frame(spark, rows)
    for col, default in (("source_file", "f.csv"), ("source_row", 1), ("ingested_at", None)):
        lake_cases = lake_cases.withColumn(col, F.lit(default) if default is not None else F.current_timestamp())
    lake_io.overwrite(lake_cases, lake_io.table_path(lake, "silver", "discharges"), partition_by=["region_code"])
    pack = load_pack(spark, DEMO)
    assert group_silver(spark, lake, pack, "20260101T000000Z-aaaaaa") == 3
    run(argparse.Namespace(lake=lake, definitions=str(DEMO), run_id="20260101T000000Z-bbbbbb", explain=None, conf=[]))
    out = lake_io.read(spark, lake, "gold", "grouped_cases")
    assert out.count() == 3 and {r.run_id for r in out.collect()} == {"20260101T000000Z-bbbbbb"}
    assert {(r.hospital_id, r.drg) for r in out.collect()} == {("H1", "ES11"), ("H1", "FM35"), ("H2", "0000")}
    text = explain(spark, lake, "a")
    assert (
        "DRG ES11" in text and "severity MCC set by J96.000" in text and "invalid principal diagnosis Z99.999" in text
    )
    # names from the pack beside the codes, also for the grouper's own ungroupable DRG
    assert "MDC MDCE 呼吸系统疾病及功能障碍" in text and "ADRG ES1 呼吸系统感染/炎症" in text
    assert "DRG ES11 呼吸系统感染/炎症，伴严重并发症或合并症" in text and "DRG 0000 无法入组" in text
    names = lake_io.read(spark, lake, "gold", "definition_names")
    assert names.count() == len({(r.level, r.code) for r in names.collect()})  # a re-run replaced its rows


def test_every_pack_code_has_a_name_with_fallbacks():
    """Names never empty: an unnamed DRG takes its ADRG's name and split label, an unnamed ADRG its MDC's
    name, an unnamed MDC the CHS-DRG name of that MDC (else its code)."""
    from types import SimpleNamespace

    from jobs.definitions import parse_pack
    from jobs.names import pack_names

    manifest, rows = parse_pack(DEMO)
    names = {(level, code): name for level, code, name in pack_names(SimpleNamespace(manifest=manifest, rows=rows))}
    assert all(names.values())
    assert {c for lv, c in names if lv == "drg"} >= {r[0] for r in rows["drg"]} | {"0000", "EQY"}
    assert names[("drg", "FR13")] == "急性心肌梗死，伴一般并发症或合并症"
    rows = {**rows, "mdc": [("MDCF", "", "body_system"), ("MDCX9", "", "body_system"), *rows["mdc"][1:]],
            "adrg": [("FR1", "", "MDCF", "medical", 22)],
            "drg": [("FR13", "FR1", "3", "", None), ("FR19", "FR1", "9", " ", None)]}
    names = {(level, code): name for level, code, name in pack_names(SimpleNamespace(manifest=manifest, rows=rows))}
    assert names[("mdc", "MDCF")] == "循环系统疾病及功能障碍" and names[("mdc", "MDCX9")] == "MDCX9"
    assert names[("adrg", "FR1")] == "循环系统疾病及功能障碍 FR1"
    assert names[("drg", "FR13")] == "循环系统疾病及功能障碍 FR1，伴一般并发症或合并症"
    assert names[("drg", "FR19")] == "循环系统疾病及功能障碍 FR1"
