"""Ingestion: mapping, encodings, quarantine reasons, balance, idempotency, lineage, pseudonymisation."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.cli import main
from jobs.errors import PipelineError
from jobs.ingest import ingest
from jobs.layouts import load_layout
from schemas.discharge import canonical_schema

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "test-secret"


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    monkeypatch.setenv("DRG_PSEUDONYM_KEY", KEY)


@pytest.fixture(scope="module")
def sample_lake(spark, tmp_path_factory):
    """The canonical and the GBK fixture ingested once into one lake, shared by the read-only tests."""
    import os

    os.environ["DRG_PSEUDONYM_KEY"] = KEY
    lake = str(tmp_path_factory.mktemp("ingest") / "lake")
    first = ingest(spark, lake, "230100", str(FIXTURES / "canonical_sample.csv"), batch_id="b1")
    gbk = ingest(spark, lake, "230100", str(FIXTURES / "hlj_gbk_sample.csv"), "hlj_gbk", batch_id="g1")
    return lake, first, gbk


def _silver(spark, lake):
    return lk.read(spark, lake, "silver", "discharges")


def _quarantine(spark, lake):
    return lk.read(spark, lake, "silver", "quarantine")


def test_counts_balance_and_are_logged(spark, sample_lake):
    lake, first, gbk = sample_lake
    assert (first.rows_read, first.rows_accepted, first.rows_quarantined) == (11, 4, 7)
    assert (gbk.rows_read, gbk.rows_accepted, gbk.rows_quarantined) == (4, 3, 1)
    log = {r.batch_id: r for r in lk.read(spark, lake, "bronze", "batches").collect()}
    assert log["b1"].rows_read == log["b1"].rows_accepted + log["b1"].rows_quarantined == 11
    assert _silver(spark, lake).where("batch_id = 'b1'").count() == 4
    assert _quarantine(spark, lake).where("batch_id = 'b1'").count() == 7
    assert lk.read(spark, lake, "bronze", "discharges_raw").where("batch_id = 'b1'").count() == 11


def test_silver_matches_the_canonical_contract(spark, sample_lake):
    lake, *_ = sample_lake
    silver = _silver(spark, lake)
    assert [f.name for f in silver.schema.fields] == canonical_schema().fieldNames()
    row = silver.where("case_id = 'C001'").first()
    assert row.secondary_dx == ["I10.x00x002", "E11.900"]
    assert row.other_procs == ["88.5500"]
    assert str(row.admit_date) == "2024-03-01" and row.los_days == 8 and row.total_cost == 48210.5
    assert row.region_code == "230100"
    # a missing region cell is filled from the submitting region; empty lists are empty arrays
    c3 = silver.where("case_id = 'C003'").first()
    assert c3.region_code == "230100" and c3.secondary_dx == ["P22.000"] and c3.other_procs == []
    assert c3.age_days == 3 and c3.birth_weight_g == 2100


def test_wrong_but_parseable_content_reaches_silver(spark, sample_lake):
    """Reversed dates, negative cost and a symptom principal diagnosis are the quality stage's to flag."""
    lake, *_ = sample_lake
    c4 = _silver(spark, lake).where("case_id = 'C004'").first()
    assert c4.total_cost == -10.0 and c4.discharge_date < c4.admit_date and c4.principal_dx == "R50.900"


def test_quarantine_reasons_name_row_and_field(spark, sample_lake):
    lake, *_ = sample_lake
    got = {r.source_row: (r.field, r.reason) for r in _quarantine(spark, lake).where("batch_id = 'b1'").collect()}
    assert got[5] == ("admit_date", "admit_date: cannot parse '2024-02-30' as date (yyyy-MM-dd)")
    assert got[6] == ("age_years", "age_years: cannot parse 'fifty' as int")
    assert got[7] == ("sex", "sex: unknown value '3' (expected 1, 2, 9)")
    assert got[8] == ("case_id", "case_id: required")
    assert got[9] == ("case_id", "case_id: duplicate of row 1 in this batch")
    assert got[10][0] == "region_code"
    assert got[11][0] == "record" and "malformed" in got[11][1]
    files = {r.source_file for r in _quarantine(spark, lake).collect()}
    assert any(f.endswith("canonical_sample.csv") for f in files)


def test_gbk_layout_with_chinese_headers_and_value_maps(spark, sample_lake):
    lake, *_ = sample_lake
    rows = {r.case_id: r for r in _silver(spark, lake).where("batch_id = 'g1'").collect()}
    js1, js2, js3 = rows["JS0001"], rows["JS0002"], rows["JS0003"]
    assert (js1.sex, js1.payer, js1.discharge_disposition) == (1, "employee", 1)
    assert js1.total_cost == 23456.7  # thousands separator removed
    assert js1.secondary_dx == ["I10.x00x002", "E11.900", "J96.000"]
    assert str(js2.admit_date) == "2024-03-05"  # second date format (yyyyMMdd)
    assert (js3.payer, js3.discharge_disposition, js3.vent_hours) == ("resident", 5, 120.0)
    q = _quarantine(spark, lake).where("batch_id = 'g1'").first()
    assert q.source_row == 4 and q.reason == "sex: cannot parse '不详' as int"


def test_amounts_that_are_not_finite_numbers_are_quarantined(spark, tmp_path):
    """'NaN' and 'Infinity' are valid doubles to Spark but no cost: they must fail typing, with the
    field named, instead of reaching every sum downstream."""
    header, good = (FIXTURES / "canonical_sample.csv").read_text(encoding="utf-8").splitlines()[:2]
    cells = ["NaN", "Infinity", "-inf", "12,345.60"]
    lines = [good.replace("C001", f"N{i}").replace(",48210.50,", f",{c},") for i, c in enumerate(cells)]
    src = tmp_path / "nan.csv"
    src.write_text("\n".join([header, *[ln.replace(",12,345.60,", ',"12,345.60",') for ln in lines]]) + "\n")
    lake = str(tmp_path / "lake")
    got = ingest(spark, lake, "230100", str(src), batch_id="nan")
    assert (got.rows_accepted, got.rows_quarantined) == (1, 3)
    reasons = {r.source_row: r.reason for r in _quarantine(spark, lake).collect()}
    assert reasons == {i + 1: f"total_cost: cannot parse '{c}' as double" for i, c in enumerate(cells[:3])}
    assert _silver(spark, lake).first().total_cost == 12345.6


def test_patient_ids_are_keyed_hashes_everywhere(spark, sample_lake):
    lake, *_ = sample_lake
    raw_id = "230102199001011234"
    expected = hmac.new(KEY.encode(), raw_id.encode(), hashlib.sha256).hexdigest()
    assert _silver(spark, lake).where("case_id = 'C001'").first().patient_id == expected
    for layer, table in (("bronze", "discharges_raw"), ("silver", "discharges"), ("silver", "quarantine")):
        df = lk.read(spark, lake, layer, table)
        text = df.select(F.concat_ws("|", *[F.col(c).cast("string") for c in df.columns]).alias("t"))
        assert text.where(F.col("t").contains(raw_id) | F.col("t").contains("230103195001010048")).count() == 0


def test_lineage_columns(spark, sample_lake):
    lake, *_ = sample_lake
    rows = _silver(spark, lake).where("batch_id = 'b1'").orderBy("source_row").collect()
    assert [r.source_row for r in rows] == [1, 2, 3, 4]
    assert all(r.source_file.endswith("canonical_sample.csv") and r.ingested_at is not None for r in rows)


def test_reingest_changes_nothing_and_forced_reingest_replaces(spark, sample_lake):
    lake, first, _ = sample_lake
    path = lk.table_path(lake, "silver", "discharges")
    before = lk.version(spark, path)
    again = ingest(spark, lake, "230100", str(FIXTURES / "canonical_sample.csv"), batch_id="b1")
    assert again.skipped and lk.version(spark, path) == before
    forced = ingest(spark, lake, "230100", str(FIXTURES / "canonical_sample.csv"), batch_id="b1", force=True)
    assert (forced.rows_accepted, forced.rows_quarantined) == (first.rows_accepted, first.rows_quarantined)
    assert _silver(spark, lake).where("batch_id = 'b1'").count() == 4


def test_case_delivered_by_an_earlier_batch_is_quarantined(spark, sample_lake, tmp_path):
    lake, *_ = sample_lake
    text = (FIXTURES / "canonical_sample.csv").read_text().splitlines()
    (tmp_path / "b2.csv").write_text("\n".join([text[0], text[2]]) + "\n")  # C002 again
    result = ingest(spark, lake, "230100", str(tmp_path / "b2.csv"))
    assert (result.batch_id, result.rows_accepted, result.rows_quarantined) == ("b2", 0, 1)
    assert _quarantine(spark, lake).where("batch_id = 'b2'").first().reason == "case_id: already ingested in batch b1"


def test_same_case_on_the_same_row_of_two_files_enters_silver_once(spark, lake, tmp_path):
    """Row numbers restart in every file, so a repeat is found by (file, row), not by row alone."""
    text = (FIXTURES / "canonical_sample.csv").read_text().splitlines()
    batch = tmp_path / "b3"
    batch.mkdir()
    for name in ("a.csv", "b.csv"):
        (batch / name).write_text("\n".join([text[0], text[1]]) + "\n")  # C001 as row 1 of both files
    result = ingest(spark, lake, "230100", str(batch))
    assert (result.rows_accepted, result.rows_quarantined) == (1, 1)
    bad = _quarantine(spark, lake).where("batch_id = 'b3'").first()
    assert bad.source_file.endswith("b.csv")
    assert bad.reason == f"case_id: duplicate of row 1 of {batch / 'a.csv'} in this batch"


def test_parquet_input_uses_arrays(spark, lake, tmp_path):
    src = (
        spark.read.option("header", True).csv(str(FIXTURES / "canonical_sample.csv"))
        .where("case_id IN ('C001', 'C002') AND patient_id != 'P0009'")
        .withColumn("secondary_dx", F.split("secondary_dx", r"\|"))
        .withColumn("total_cost", F.col("total_cost").cast("double"))
    )
    src.write.parquet(str(tmp_path / "in" / "p1"))
    result = ingest(spark, lake, "230100", str(tmp_path / "in" / "p1"))
    assert (result.rows_read, result.rows_accepted) == (2, 2)
    row = _silver(spark, lake).where("case_id = 'C001'").first()
    assert row.secondary_dx == ["I10.x00x002", "E11.900"] and row.total_cost == 48210.5


def test_missing_column_is_a_one_line_error(spark, lake, tmp_path, capsys):
    lines = (FIXTURES / "canonical_sample.csv").read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index("principal_dx")
    cut = [",".join(v for i, v in enumerate(line.split(",")) if i != drop) for line in lines[:3]]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(cut) + "\n")
    with pytest.raises(PipelineError, match=r"bad\.csv: missing column 'principal_dx' \(principal_dx\)"):
        ingest(spark, lake, "230100", str(bad))
    code = main(["ingest", "--lake", lake, "--region", "230100", "--input", str(bad)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "missing column 'principal_dx'" in err


def test_broken_quoting_is_quarantined_not_fatal(spark, lake, tmp_path):
    lines = (FIXTURES / "canonical_sample.csv").read_text().splitlines()
    broken = lines[2].replace("O80.000", '"O80.000', 1)  # unclosed quote
    (tmp_path / "q.csv").write_text("\n".join([lines[0], lines[1], broken, lines[3]]) + "\n")
    result = ingest(spark, lake, "230100", str(tmp_path / "q.csv"))
    assert result.rows_read == result.rows_accepted + result.rows_quarantined
    assert result.rows_accepted >= 1 and result.rows_quarantined >= 1
    reasons = [r.reason for r in _quarantine(spark, lake).collect()]
    assert any("malformed" in r for r in reasons)


def test_unknown_layout_and_bad_names_are_clear_errors(spark, lake):
    with pytest.raises(PipelineError, match="unknown layout 'nope'"):
        load_layout("nope")
    with pytest.raises(PipelineError, match="region"):
        ingest(spark, lake, "23 01'00", str(FIXTURES / "canonical_sample.csv"))


def test_tables_are_readable_without_spark(sample_lake):
    from deltalake import DeltaTable

    lake, *_ = sample_lake
    table = DeltaTable(f"{lake}/silver/discharges").to_pyarrow_table()
    assert table.num_rows == 7 and "patient_id" in table.column_names
