"""The published layer read in Spark: the releases log and one table of one release.

Why apart from jobs.publish: pricing (the previous release's weights), the report and publishing itself
all read releases, and the report is written by publishing; with the readers here every import runs one
way. Readers without Spark use jobs.releases.read_release (delta-rs) instead.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.releases import RELEASES_TABLE, resolve


def read_log(spark: SparkSession, lake: str) -> list[dict]:
    """The rows of published.releases (one per release: tiny), or [] before the first release."""
    path = lk.table_path(lake, "published", RELEASES_TABLE)
    if not lk.exists(spark, path):
        return []
    return [row.asDict() for row in spark.read.format("delta").load(path).collect()]


def release_frame(spark: SparkSession, lake: str, table: str, release: str | dict | None = None) -> DataFrame:
    """One published table of one release (None = latest, id, name or date), by release_id filter."""
    row = release if isinstance(release, dict) else resolve(read_log(spark, lake), release)
    return lk.read(spark, lake, "published", table).where(F.col("release_id") == row["release_id"])
