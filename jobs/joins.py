"""Joining a computed, usually small, set of rows back onto every case of a stage.

Why one helper: ingest (repeated case keys) and the quality stage (duplicate cases) both compute a few
rows from key columns and join them onto all cases, once or twice. Materialising them once stops
each use from recomputing the aggregation, and a broadcast keeps the wide case rows from being
shuffled; only an unusually large result (say a re-sent file) falls back to a shuffle join.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

BROADCAST_MAX_ROWS = 500_000


def materialised_lookup(df: DataFrame) -> DataFrame:
    """`df` computed now and kept, hinted for a broadcast join when it has at most BROADCAST_MAX_ROWS rows."""
    kept = df.localCheckpoint()
    return F.broadcast(kept) if kept.count() <= BROADCAST_MAX_ROWS else kept
