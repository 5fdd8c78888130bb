from datetime import UTC, datetime

import pytest

from jobs import lake as lk
from jobs.cli import main
from jobs.errors import PipelineError
from jobs.runs import minted, new_run_id
from jobs.spark import parse_conf
from schemas.discharge import FIELD_NAMES, canonical_schema


def test_canonical_schema_has_contract_fields():
    names = canonical_schema().fieldNames()
    for required in ("case_id", "hospital_id", "region_code", "patient_id", "sex", "age_years", "age_days",
                     "birth_weight_g", "admit_date", "discharge_date", "los_days", "discharge_disposition",
                     "principal_dx", "secondary_dx", "principal_proc", "other_procs", "vent_hours",
                     "total_cost", "payer"):
        assert required in names
    assert names[: len(FIELD_NAMES)] == list(FIELD_NAMES)
    assert canonical_schema()["secondary_dx"].dataType.simpleString() == "array<string>"


def test_parse_conf_rejects_malformed():
    assert parse_conf(["spark.sql.shuffle.partitions=4"]) == {"spark.sql.shuffle.partitions": "4"}
    with pytest.raises(PipelineError, match="key=value"):
        parse_conf(["nonsense"])


def test_run_id_is_sortable_and_unique():
    a = new_run_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert a.startswith("20260102T030405Z-")
    assert new_run_id() != new_run_id()


def test_table_path_rejects_unknown_layer():
    assert lk.table_path("/x/", "silver", "discharges") == "/x/silver/discharges"
    with pytest.raises(PipelineError, match="unknown lake layer"):
        lk.table_path("/x", "platinum", "t")


def test_replace_where_is_idempotent_and_versions_track_runs(spark, lake):
    path = lk.table_path(lake, "silver", "t")
    df = spark.createDataFrame([("a", 1), ("a", 2), ("b", 3)], "k string, v int")
    lk.replace_where(df.where("k = 'a'"), path, "k = 'a'", run_id="r1")
    lk.replace_where(df.where("k = 'b'"), path, "k = 'b'", run_id="r2")
    lk.replace_where(df.where("k = 'a'"), path, "k = 'a'", run_id="r3")
    got = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    assert got == [("a", 1), ("a", 2), ("b", 3)]
    assert lk.version_of_run(spark, path, "r2") == 1
    assert lk.version(spark, path) == 2
    assert lk.read(spark, lake, "silver", "t", version=0).count() == 2


def test_fresh_replace_appends_and_only_minted_ids_are_fresh(spark, lake):
    from delta.tables import DeltaTable

    run_id = new_run_id()
    assert minted(run_id) and not minted("20260102T030405Z-abcdef") and not minted("R1")
    path = lk.table_path(lake, "gold", "per_run")
    df = spark.createDataFrame([("old", 1)], "run_id string, v int")
    lk.replace_where(df, path, "run_id = 'old'", "old")
    lk.replace_where(df.selectExpr(f"'{run_id}' AS run_id", "v + 1 AS v"), path, f"run_id = '{run_id}'", run_id,
                     fresh=True)
    got = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    assert got == sorted([("old", 1), (run_id, 2)])
    last = DeltaTable.forPath(spark, path).history(1).first()
    assert last.operationParameters["mode"] == "Append" and "predicate" not in last.operationParameters
    # the same rows again in this process (a retry whose first attempt committed): replaced, not doubled
    lk.replace_where(df.selectExpr(f"'{run_id}' AS run_id", "v + 2 AS v"), path, f"run_id = '{run_id}'", run_id,
                     fresh=True)
    got = sorted(tuple(r) for r in spark.read.format("delta").load(path).collect())
    assert got == sorted([("old", 1), (run_id, 3)])


def test_missing_table_is_a_clear_error(spark, lake):
    with pytest.raises(PipelineError, match="silver.nothing not found"):
        lk.read(spark, lake, "silver", "nothing")


def test_cli_schema_prints_contract(capsys):
    assert main(["schema"]) == 0
    assert "| `principal_dx` |" in capsys.readouterr().out
