"""The hashed constant table: every key is found through Spark's own xxhash64, others give null."""

from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.hashed import distinct_non_null, hashed_table

VALUE = T.StructType([T.StructField("rank", T.IntegerType()), T.StructField("tags", T.ArrayType(T.StringType()))])


def test_every_key_is_found_and_others_are_null(spark):
    # keys of the shapes the packs hold, Chinese text and a long key (XXH64's 32-byte stripes)
    keys = [f"{c}{i:02d}.{j:03d}" for c in "AJZ" for i in range(10) for j in range(0, 900, 90)]
    keys += ["E11.400x021+G63.2*", "36.0700", "男性", "x" * 40, ""]
    entries = {k: (i, [k, "t"] if i % 2 else None) for i, k in enumerate(keys)}
    table = hashed_table(entries, VALUE)
    assert table.buckets == len(keys) // 2
    probes = spark.createDataFrame([(k,) for k in [*keys, "missing", None]], "k string")
    got = {r.k: (r.v.rank, r.v.tags) if r.v else None
           for r in probes.select("k", table.lookup(F.col("k")).alias("v")).collect()}
    assert {k: got[k] for k in keys} == {k: (v[0], v[1]) for k, v in entries.items()}
    assert got["missing"] is None and got[None] is None


def test_an_empty_table_finds_nothing(spark):
    table = hashed_table({}, VALUE)
    row = spark.range(1).select(table.lookup(F.lit("A00.000")).alias("v")).first()
    assert row.v is None


def test_distinct_non_null_keeps_first_occurrences_in_order(spark):
    df = spark.createDataFrame([(["b", None, "", "a", "b", None, "c"],), ([],), (None,)], "x array<string>")
    got = [r.y for r in df.select(distinct_non_null(F.col("x"), "string", drop=("",)).alias("y")).collect()]
    assert got == [["b", "a", "c"], [], None]
    ints = spark.createDataFrame([([4, None, 1, 4],)], "x array<int>")
    assert ints.select(distinct_non_null(F.col("x"), "int").alias("y")).first().y == [4, 1]


def test_a_plan_shows_the_table_as_a_reference_not_its_contents(spark):
    # Spark renders plans as text several times per query; a table printed in full cost seconds
    table = hashed_table({f"K{i:05d}.000": (i, ["tag"]) for i in range(2000)}, VALUE)
    df = spark.createDataFrame([("K00042.000",)], "k string").select(table.lookup(F.col("k")).alias("v"))
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert "K00042.000" not in plan and len(plan) < 2000
    assert df.first().v.rank == 42
