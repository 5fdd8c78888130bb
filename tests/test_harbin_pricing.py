"""The Harbin pricing check: Harbin's published weights are recovered from cases grouped by Harbin's own
scheme (the shipped haerbin-2022 pack, imported from OpenDRG's haerbin_2022 with Harbin's 2022 weights)."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs.definitions import locate_pack
from jobs.pricing.policy import load_policy
from jobs.pricing.sim import recovery_errors, scheme_cases
from jobs.pricing.weights import relative_weights
from jobs.schemes.pack import parse_rule_pack


def test_harbin_weights_recovered_from_cases_grouped_by_harbins_scheme(spark):
    cases, truth = scheme_cases(spark, "haerbin-2022", 12000, seed=7)
    cases = cases.localCheckpoint()
    assert truth.count() == 538  # Harbin's 2022 list: every published DRG is a DRG of the pack
    weights = relative_weights(cases, load_policy())[0]
    err = recovery_errors(weights, truth, 150).localCheckpoint()
    row = err.agg(F.count(F.lit(1)).alias("n"), F.median("abs_err").alias("med"), F.max("abs_err").alias("max")).first()
    assert row.n >= 10 and row.med <= 0.04 and row.max <= 0.10, row
    # Harbin's own DRGs, not the national scheme's: some recovered DRGs do not exist in CHS-DRG 1.1
    national = {d["drg"] for ds in parse_rule_pack(locate_pack("chs-1.1")).drgs.values() for d in ds}
    grouped = {r.drg for r in cases.select("drg").distinct().collect()}
    assert grouped - national, "cases were not grouped by Harbin's scheme"
