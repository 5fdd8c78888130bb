"""Order-independent aggregates: sums, means and standard deviations accumulated in integers.

Why: Spark adds the partial sums of an aggregation in whatever order the partitions arrive, and that
order follows the physical layout of the input files, which a re-run after a crash does not
reproduce. Double addition is not associative, so a resumed night and an uninterrupted one would
differ in the last bits of every sum, and a base rate divided out of such a sum moves every payment.
Integer addition is associative: a sum adds each value's whole part and its fraction (rounded once,
per row, to 1e-9: the same bits every time) as two longs; an SD adds values rounded to millionths and
their squares as 38-digit integers. Either way the result is the same in any order. Long sums are as
fast as double sums; the decimal squares of an SD cost about one extra pass.

Limits (an overflow fails the query, it never wraps): a sum of up to 9.2e9 values, and for an SD,
values below 9.2e12 in magnitude and n x sum of squares below 1e26.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, WindowSpec
from pyspark.sql import functions as F
from pyspark.sql import types as T

FRACTION = 1e9  # a sum keeps each value's fraction to 1e-9
UNIT = 1e6  # an SD rounds values to millionths
_INTEGER = T.DecimalType(19, 0)


def _column(col: Column | str) -> Column:
    return F.col(col) if isinstance(col, str) else col


def _units(col: Column | str) -> Column:
    return F.rint(_column(col) * UNIT).cast("long")


def exact_sum(col: Column | str, over: WindowSpec | None = None) -> Column:
    """Sum as a double (over a window when given), exact to 1e-9 per value, in any row order.

    A double minus its floor is exact, so the whole parts and the rounded fractions are two exact
    long sums."""
    value = _column(col)
    whole = F.floor(value)
    fraction = F.rint((value - whole) * FRACTION).cast("long")
    wholes, fractions = F.sum(whole), F.sum(fraction)
    if over is not None:
        wholes, fractions = wholes.over(over), fractions.over(over)
    return wholes.cast("double") + fractions / FRACTION


def exact_mean(col: Column | str) -> Column:
    """Mean of the non-null values (null when there are none), independent of row order."""
    return F.try_divide(exact_sum(col), F.count(_column(col)).cast("double"))


def exact_stddev(col: Column | str) -> Column:
    """Sample standard deviation from exact integer sums: sqrt((n S2 - S1^2) / (n (n - 1)))."""
    units = _units(col)
    whole = units.cast(_INTEGER)
    n = F.count(units)
    spread = (n.cast(_INTEGER) * F.sum(whole * whole) - F.sum(whole) * F.sum(whole)).cast("double")
    variance = F.try_divide(spread, (n * (n - 1)).cast("double")) / (UNIT * UNIT)
    return F.when(n > 1, F.sqrt(F.greatest(variance, F.lit(0.0))))


def in_fixed_order(df: DataFrame, key: str, *order: str) -> DataFrame:
    """`df` hash-partitioned on `key` into spark.sql.shuffle.partitions parts, each sorted by `key, *order`.

    percentile_approx is not order-independent: once a group outgrows its accuracy (about 1 / relative
    error rows: 100,000 at accuracy 100,000, 10,000 at 10,000) its summary merges neighbouring samples,
    and which ones depends on the order rows are inserted and partial summaries merged. Rows that
    reach it in this order make the result a function of the rows alone, not of the file layout they were
    read from, so a night reading an incrementally written table equals a full recompute. An aggregation
    by `key` that follows needs no further exchange; one by other keys aggregates these partitions first.
    """
    partitions = int(df.sparkSession.conf.get("spark.sql.shuffle.partitions"))
    return df.repartition(partitions, key).sortWithinPartitions(key, *order)
