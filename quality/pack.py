"""The definitions-pack tables the quality rules need, as small Spark DataFrames for broadcast joins.

Why a lookup per code and not the pack as such: every code-level rule asks the same questions of a code
(is it in the code set and of which kind, how severe is it as a secondary diagnosis and under which
exclusion table, in which MDCs does the pack place it as a principal code), so one table answers them
all in one broadcast join. Files and columns follow schemas/CONTRACTS.md (definitions pack).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.errors import PipelineError

PACK_FILES = {
    "codes.csv": ("code", "kind", "severity", "exclusion_table"),
    "cc_exclusions.csv": ("exclusion_table", "principal_diagnosis"),
    "adrg.csv": ("adrg", "mdc"),
    "adrg_members.csv": ("adrg", "role", "code"),
}


@dataclass(frozen=True)
class QualityPack:
    code_info: DataFrame  # code, code_kind, code_severity, exclusion_table, code_mdcs array<string>
    exclusions: DataFrame  # exclusion_table, principal_dx


def _csv(spark: SparkSession, folder: Path, name: str) -> DataFrame:
    path = folder / name
    if not path.is_file():
        raise PipelineError(f"definitions pack {folder}: missing {name}")
    df = spark.read.option("header", True).option("encoding", "UTF-8").csv(str(path))
    missing = [c for c in PACK_FILES[name] if c not in df.columns]
    if missing:
        raise PipelineError(f"definitions pack {path}: missing column {', '.join(missing)}")
    return df.select(*[F.trim(c).alias(c) for c in PACK_FILES[name]])


def load_quality_pack(spark: SparkSession, pack: str) -> QualityPack:
    """Read a pack folder into the two lookups (tens of thousands of rows: broadcast-sized)."""
    folder = Path(pack)
    if not (folder / "manifest.yaml").is_file():
        raise PipelineError(f"definitions pack not found: {pack} (a folder with manifest.yaml and CSV tables)")
    codes = _csv(spark, folder, "codes.csv")
    mdcs = (
        _csv(spark, folder, "adrg_members.csv")
        .join(_csv(spark, folder, "adrg.csv"), "adrg")
        .groupBy("code")
        .agg(F.array_sort(F.collect_set("mdc")).alias("code_mdcs"))
    )
    # codes.csv may repeat a code (one row per ADRG in the public tables): one row per code here.
    info = (
        codes.groupBy("code")
        .agg(
            F.first("kind").alias("code_kind"),
            F.max(F.nullif(F.col("severity"), F.lit(""))).alias("code_severity"),
            F.max(F.nullif(F.col("exclusion_table"), F.lit(""))).alias("exclusion_table"),
        )
        .join(mdcs, "code", "full")
    )
    exclusions = (
        _csv(spark, folder, "cc_exclusions.csv")
        .select("exclusion_table", F.col("principal_diagnosis").alias("principal_dx"))
        .distinct()
    )
    return QualityPack(code_info=info.cache(), exclusions=exclusions.cache())
