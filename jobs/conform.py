"""How a computed frame becomes rows of one of its tables: constant columns stamped on (a run's id and
policy version for gold, a release's columns for published), then exactly the contract's columns, in
order and types. One helper for pricing, DIP and publishing, so every table is conformed the same way."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def stamped(df: DataFrame, values: dict[str, object], fields) -> DataFrame:
    """`df` with the constant columns `values`, conformed to `fields` ((name, type) pairs; a type is a DDL
    string or a DataType)."""
    return df.withColumns({name: F.lit(value) for name, value in values.items()}).select(
        *[F.col(name).cast(kind).alias(name) for name, kind in fields])
