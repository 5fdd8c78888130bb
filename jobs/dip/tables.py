"""How a DIP frame becomes rows of one of its tables: constant columns stamped on (the run's id and
policy version for gold, a release's columns for published), then exactly the contract's columns
(schemas.dip), in order and types. One helper for jobs.dip.stage and jobs.dip.publish."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def stamped(df: DataFrame, values: dict[str, object], fields) -> DataFrame:
    """`df` with the constant columns `values`, conformed to `fields` ((name, type) pairs)."""
    return df.withColumns({name: F.lit(value) for name, value in values.items()}).select(
        *[F.col(name).cast(kind).alias(name) for name, kind in fields])
