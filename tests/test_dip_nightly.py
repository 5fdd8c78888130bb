"""DIP inside the nightly job: `methods: [drg, dip]` adds the dip step, and the release carries DIP's
aggregate tables (k-suppressed), readable with jobs.releases.read_release and shown in the report."""

from __future__ import annotations

from pathlib import Path

import yaml
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.nightly import load_config, nightly
from jobs.releases import read_release
from jobs.synth import generate
from jobs.synth.config import SynthConfig
from jobs.synth.config import load_config as load_synth
from jobs.synth.write import write_batches


def test_nightly_with_dip_publishes_dip_tables(spark, tmp_path):
    config = SynthConfig.model_validate({**load_synth().model_dump(), "discharge_years": 3})
    cases, truth, errors = generate(spark, 3000, 1, 6, 11, "demo", 0.01, config=config)
    folder = sorted(write_batches(spark, cases, truth, errors, str(tmp_path / "landing")))[0]
    region = folder.split("/")[0]
    path = tmp_path / "nightly.yaml"
    path.write_text(yaml.safe_dump({
        "lake": "lake", "definitions": "demo", "methods": ["drg", "dip"], "release": {"k": 10},
        "inputs": [{"region": region, "path": f"landing/{region}", "layout": "canonical"}],
    }), encoding="utf-8")
    result = nightly(spark, load_config(path))
    lake = str(tmp_path / "lake")

    steps = {r.step: r.status for r in lk.read(spark, lake, "ops", "runs").where(
        F.col("run_id") == result.run_id).collect()}
    assert steps == {s: "ok" for s in ("ingest", "validate", "group", "price", "dip", "publish")}
    gold = lk.read(spark, lake, "gold", "dip_catalogue")
    assert gold.where(F.col("run_id") != result.run_id).isEmpty()
    assert sorted(gold.first()["base_years"]) == [r[0] for r in lk.read(spark, lake, "gold", "dip_case_scores")
                                                  .select("discharge_year").distinct().orderBy("discharge_year")
                                                  .collect()]

    catalogue = read_release(lake, "dip_catalogue")
    assert len(catalogue) == gold.count() and set(catalogue["dip_run_id"]) == {result.run_id}
    small = catalogue[catalogue["suppressed"]]
    assert small["n_cases"].isna().all() and small["score"].notna().all()  # small cells keep their score
    assert (catalogue.loc[~catalogue["suppressed"], "n_cases"] >= 10).all()
    assert "case_id" not in catalogue.columns and "patient_id" not in catalogue.columns
    points = read_release(lake, "dip_point_values").set_index("fund")
    assert set(points.index) == {"employee", "resident", "all"}
    assert points["year_start_point_value"].nunique() == 1
    assert "病种目录：核心病种" in Path(result.release["report"]).read_text(encoding="utf-8")
