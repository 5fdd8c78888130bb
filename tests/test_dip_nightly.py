"""DIP inside the nightly job: `methods: [drg, dip]` adds the dip step, and the release carries DIP's
aggregate tables (k-suppressed), readable with jobs.releases.read_release and shown in the report.
The lake is the session's `two_nights` (tests/conftest.py), whose config runs both methods."""

from __future__ import annotations

from pathlib import Path

import yaml
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.releases import read_release


def test_nightly_with_dip_publishes_dip_tables(spark, two_nights):
    out, results = two_nights
    assert yaml.safe_load((out / "nightly.yaml").read_text())["methods"] == ["drg", "dip"]
    result = results[-1]
    lake = str(out / "lake")

    steps = {r.step: r.status for r in lk.read(spark, lake, "ops", "runs").where(
        F.col("run_id") == result.run_id).collect()}
    assert steps == {s: "ok" for s in ("ingest", "validate", "group", "price", "dip", "publish", "maintain")}
    gold = lk.read(spark, lake, "gold", "dip_catalogue")
    assert gold.where(F.col("run_id") != result.run_id).isEmpty()  # the second night replaced the first's
    assert sorted(gold.first()["base_years"]) == [r[0] for r in lk.read(spark, lake, "gold", "dip_case_scores")
                                                  .select("discharge_year").distinct().orderBy("discharge_year")
                                                  .collect()]

    catalogue = read_release(lake, "dip_catalogue")
    assert len(catalogue) == gold.count() and set(catalogue["dip_run_id"]) == {result.run_id}
    small, shown = catalogue[catalogue["suppressed"]], catalogue[~catalogue["suppressed"]]
    assert len(small) and len(shown)  # both kinds of cell, so the two checks below can fail
    assert small["n_cases"].isna().all() and small["score"].notna().all()  # small cells keep their score
    assert (shown["n_cases"] >= 10).all()
    assert "case_id" not in catalogue.columns and "patient_id" not in catalogue.columns
    points = read_release(lake, "dip_point_values").set_index("fund")
    assert set(points.index) == {"employee", "resident", "all"}
    assert points["year_start_point_value"].nunique() == 1
    assert "病种目录：核心病种" in Path(result.release["report"]).read_text(encoding="utf-8")
