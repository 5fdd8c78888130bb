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
