"""DIP's share of a release: the catalogue, point values and hospital indices, aggregates only.

Why beside jobs.publish and called from it: a release is one unit (one log row written last), so DIP's
tables are written by jobs.publish with the release's columns before that row, and are then read like every other
published table (jobs.releases.read_release). The DIP tables published are those of the latest
`drg dip` run in gold (its run id and policy version kept as `dip_run_id`, `dip_policy_version`); a
lake without DIP publishes none.
Small cells are suppressed as for DRG: a packet or hospital with fewer than k cases keeps its score
(payment needs it) but its case count and cost statistics are null and `suppressed` is true.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from jobs import lake as lk
from jobs.conform import stamped
from jobs.suppression import suppress
from schemas import publish as S
from schemas.dip import PUBLISHED

SUPPRESSED_STATS = {
    "dip_catalogue": ("n_cases", "n_keys", "mean_cost", "cv", "mean_los"),
    "dip_hospital_indices": ("n_cases", "total_packet_score", "cmi", "cost_consumption_index",
                             "time_consumption_index", "core_share", "low_outlier_share", "high_outlier_share",
                             "special_review_cases", "total_case_score", "total_payment", "total_cost"),
}


def fields(table: str) -> list[tuple[str, str]]:
    """Published columns in order: the release columns, the DIP run's id and policy, the table's own."""
    return [*S.RELEASE_COLUMNS, ("dip_run_id", "string"), ("dip_policy_version", "string"), *PUBLISHED[table]]


def frames(spark: SparkSession, lake: str, k: int) -> dict[str, DataFrame]:
    """The publishable DIP frames (without release columns), or {} when `drg dip` has not run."""
    if not lk.exists(spark, lk.table_path(lake, "gold", "dip_catalogue")):
        return {}
    out = {}
    for table in PUBLISHED:
        gold = lk.read(spark, lake, "gold", table).withColumnsRenamed(
            {"run_id": "dip_run_id", "policy_version": "dip_policy_version"})
        if table in SUPPRESSED_STATS:
            gold = suppress(gold, k, SUPPRESSED_STATS[table])
        out[table] = gold
    return out


def release_frames(spark: SparkSession, lake: str, meta: dict, k: int) -> dict[str, DataFrame]:
    """DIP's published tables for the release in `meta`, with its columns, ready to write ({} without DIP)."""
    release = {name: meta[name] for name, _ in S.RELEASE_COLUMNS}
    return {table: stamped(frame, release, fields(table)) for table, frame in frames(spark, lake, k).items()}
