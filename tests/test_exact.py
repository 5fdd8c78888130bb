"""jobs.exact: sums, means and SDs that do not depend on the order rows arrive in."""

from __future__ import annotations

import random
import statistics
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from jobs.exact import exact_mean, exact_stddev, exact_sum


def _values(n: int = 2000) -> list[float]:
    rng = random.Random(7)
    return [round(rng.lognormvariate(9, 1.2), 2) for _ in range(n)] + [0.1, 0.2, 0.3, 1e9, -1e9]


def _aggregate(spark, values, order: str, partitions: int):
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i long, v double")
    df = df.orderBy(F.col("i").desc() if order == "desc" else F.col("i")).repartition(partitions)
    return df.agg(exact_sum("v").alias("s"), exact_mean("v").alias("m"), exact_stddev("v").alias("sd")).first()


def test_results_are_bit_identical_whatever_the_order_and_partitioning(spark):
    values = _values()
    runs = {(o, p): _aggregate(spark, values, o, p) for o in ("asc", "desc") for p in (1, 3, 8)}
    assert len(set(runs.values())) == 1, runs


def test_sum_is_the_exact_decimal_sum_and_moments_match_statistics(spark):
    values = _values()
    got = _aggregate(spark, values, "asc", 4)
    assert got.s == float(sum(Decimal(repr(v)) for v in values))
    assert got.m == float(sum(Decimal(repr(v)) for v in values)) / len(values)
    assert abs(got.sd - statistics.stdev(values)) <= 1e-9 * statistics.stdev(values)


def test_stddev_needs_two_values_and_nulls_are_skipped(spark):
    df = spark.createDataFrame([("a", 5.0), ("a", None), ("b", 1.0), ("b", 3.0)], "k string, v double")
    got = {r.k: r for r in df.groupBy("k").agg(exact_mean("v").alias("m"), exact_stddev("v").alias("sd")).collect()}
    assert (got["a"].m, got["a"].sd) == (5.0, None)
    assert (got["b"].m, got["b"].sd) == (2.0, 2**0.5)


def test_an_sd_beyond_the_integer_range_fails_instead_of_wrapping(spark):
    df = spark.createDataFrame([(9e12,), (-9e12,)], "v double")
    assert df.agg(exact_sum("v")).first()[0] == 0.0
    with pytest.raises(Exception, match="NUMERIC_VALUE_OUT_OF_RANGE|ARITHMETIC_OVERFLOW"):
        df.agg(exact_stddev("v")).collect()
