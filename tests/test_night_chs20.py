"""Nights on the national CHS-DRG 2.0 pack (jobs/packs/chs-2.0, shipped: no ../shared needed): generated
2.0 cases are ingested, validated, grouped, priced and published as with any other pack. The lake is the
session's `two_nights` (tests/conftest.py), `drg demo`'s nights on that pack."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.definitions import load_pack
from jobs.nightly import STEPS


def test_chs20_nights_group_price_and_publish(spark, two_nights):
    out, results = two_nights
    lake = str(out / "lake")
    pack = load_pack(spark, "chs-2.0")
    drgs = {d["drg"] for ds in pack.drgs.values() for d in ds}
    for result in results:
        runs = lk.read(spark, lake, "ops", "runs").where(F.col("run_id") == result.run_id).collect()
        assert {r.step for r in runs} == {*STEPS, "dip"} and {r.status for r in runs} == {"ok"}

    grouped = lk.read(spark, lake, "gold", "grouped_cases")
    assert {
        (r.pack_name, r.pack_version) for r in grouped.select("pack_name", "pack_version").distinct().collect()
    } == {("chs-drg", "2.0")}
    counts = {r.drg: r["count"] for r in grouped.groupBy("drg").count().collect()}
    assert set(counts) - {"0000"} <= drgs  # every DRG is one of the 634 (or a QY row) of the pack
    n = sum(counts.values())
    assert sum(v for d, v in counts.items() if d != "0000" and not d.endswith("QY")) > 0.9 * n
    assert len(counts) > 150  # the generator draws across the scheme

    weights = lk.read(spark, lake, "gold", "drg_weights").collect()
    assert weights and {w.drg for w in weights} <= drgs and all(w.pack_version == "2.0" for w in weights)
    published = lk.read(spark, lake, "published", "drg_weights").collect()
    assert published and {p.drg for p in published} <= drgs
    releases = lk.read(spark, lake, "published", "releases").collect()
    assert sorted(r.release_id for r in releases) == sorted(r.release["release_id"] for r in results)
    assert all(r.status == "complete" and r.pack_version == "2.0" for r in releases)
