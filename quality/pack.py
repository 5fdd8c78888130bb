"""The definitions-pack lookups the quality rules need, as small Spark DataFrames for broadcast joins.

Why a lookup per code and not the pack as such: every code-level rule asks the same questions of a code
(is it in the code set and of which kind, how severe is it as a secondary diagnosis and under which
exclusion table, in which MDCs does the pack place it as a principal code), so one table answers them
all in one broadcast join. The pack itself is loaded and validated by jobs.definitions.load_pack.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.definitions import load_pack


@dataclass(frozen=True)
class QualityPack:
    code_info: DataFrame  # code, code_kind, code_severity, exclusion_table, code_mdcs array<string>
    exclusions: DataFrame  # exclusion_table, principal_dx


def load_quality_pack(spark: SparkSession, path: str) -> QualityPack:
    """Build the two lookups from a pack folder (tens of thousands of rows: broadcast-sized)."""
    pack = load_pack(spark, path)
    mdcs = (
        pack.table("adrg_members")
        .join(pack.table("adrg").select("adrg", "mdc"), "adrg")
        .groupBy("code")
        .agg(F.array_sort(F.collect_set("mdc")).alias("code_mdcs"))
    )
    info = pack.table("codes").select(
        "code",
        F.col("kind").alias("code_kind"),
        F.col("severity").alias("code_severity"),
        "exclusion_table",
    ).join(mdcs, "code", "full")
    exclusions = pack.table("cc_exclusions").select(
        "exclusion_table", F.col("principal_diagnosis").alias("principal_dx")
    )
    return QualityPack(code_info=info.cache(), exclusions=exclusions.cache())
