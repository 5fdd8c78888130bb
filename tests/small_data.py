"""Spark settings for test-sized data in a run the tests start through deploy/spark-submit.sh.

Why: the pytest session runs with these (tests/conftest.py), but a submitted run would get
Spark's 200 and Delta's 50 log-replay partitions, i.e. hundreds of near-empty tasks per stage for a few
thousand cases: most of a run's time on local[2], a 2-worker cluster or an S3 lake. A deployment sizes
these for its data (none of them changes a result), so they are test settings, not jobs.submit's.
"""

from __future__ import annotations

SMALL_DATA = {"spark.sql.shuffle.partitions": "2", "spark.databricks.delta.snapshotPartitions": "2"}


def submit_args(conf: dict[str, str] | None = None) -> str:
    """DRG_SUBMIT_ARGS (word-split by the script): SMALL_DATA plus the test's own settings."""
    return " ".join(f"--conf {k}={v}" for k, v in {**SMALL_DATA, **(conf or {})}.items())
