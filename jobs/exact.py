"""Order-independent aggregates: sums, means and standard deviations accumulated in decimal.

Why: Spark adds the partial sums of an aggregation in whatever order the partitions arrive, and that
order follows the physical layout of the input files, which a re-run after a crash does not
reproduce. Double addition is not associative, so a resumed night and an uninterrupted one would
differ in the last bits of every sum, and a base rate divided out of such a sum moves every payment.
Decimal addition is exact: each value is rounded once, per row, to `SCALE` decimals (the same bits
every time), and the sum of those is the same in any order. The decimal work costs little next to
the shuffle around it.

Values must be finite and below 1e19 in magnitude (ingest rejects NaN and infinities); costs,
weights, day counts and their logarithms all are.
"""

from __future__ import annotations

from pyspark.sql import Column, WindowSpec
from pyspark.sql import functions as F
from pyspark.sql import types as T

SCALE = 9
_VALUE = T.DecimalType(28, SCALE)


def _decimal(col: Column | str) -> Column:
    return (F.col(col) if isinstance(col, str) else col).cast(_VALUE)


def exact_sum(col: Column | str, over: WindowSpec | None = None) -> Column:
    """Sum as a double (over a window when given), exact to `SCALE` decimals per value and
    independent of row order."""
    total = F.sum(_decimal(col))
    return (total.over(over) if over is not None else total).cast("double")


def exact_mean(col: Column | str) -> Column:
    """Mean of the non-null values (null when there are none), independent of row order."""
    value = _decimal(col)
    return F.try_divide(F.sum(value).cast("double"), F.count(value).cast("double"))


def exact_stddev(col: Column | str) -> Column:
    """Sample standard deviation, from exact sums: sqrt((n S2 - S1^2) / (n (n - 1)))."""
    value = _decimal(col)
    n = F.count(value)
    spread = (n * F.sum(value * value) - F.sum(value) * F.sum(value)).cast("double")
    variance = F.try_divide(spread, (n * (n - 1)).cast("double"))
    return F.when(n > 1, F.sqrt(F.greatest(variance, F.lit(0.0))))
