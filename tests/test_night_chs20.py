"""A whole night on the national CHS-DRG 2.0 pack (jobs/packs/chs-2.0, shipped: no ../shared needed):
generated 2.0 cases are ingested, validated, grouped, priced and published as with any other pack."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.definitions import load_pack
from jobs.demo import demo
from jobs.nightly import STEPS


@pytest.fixture(scope="module")
def night20(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("night20")
    (result,) = demo(spark, out, cases=1500, hospitals=6, nights=1, seed=20, definitions="chs-2.0",
                       methods=("drg",))
    return str(out / "lake"), result


def test_a_chs20_night_groups_prices_and_publishes(spark, night20):
    lake, result = night20
    pack = load_pack(spark, "chs-2.0")
    drgs = {d["drg"] for ds in pack.drgs.values() for d in ds}
    runs = lk.read(spark, lake, "ops", "runs").where(F.col("run_id") == result.run_id).collect()
    assert {r.step for r in runs} == set(STEPS) and {r.status for r in runs} == {"ok"}

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
    assert [r.release_id for r in releases] == [result.release["release_id"]]
    assert releases[0].status == "complete" and releases[0].pack_version == "2.0"
