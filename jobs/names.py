"""Names beside codes: MDC/ADRG/DRG names from the definitions pack, hospital and region names from
optional reference tables, so that what people read says `FR13 急性心肌梗死，伴一般并发症或合并症`.

Why a lake table written by the grouper: publish and `drg stats` run from gold and published tables
only, long after grouping and without the pack (publish takes no --definitions). The grouper, which
holds the pack, writes its names once per pack version into gold.definition_names; publish joins them
by the run's pack_version into every published table that carries a code. Names are never empty: a
name the pack lacks falls back to one built from its parent (a DRG: its ADRG's name and split label),
else to the code itself.

Hospitals and regions have no names in the discharge data. A small optional reference table gives them
(silver.hospitals, silver.regions, loaded from CSV by `drg reference`); without one, the name is the code.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import lake as lk
from jobs.definitions import MDC_NAMES, drg_display_name
from jobs.errors import PipelineError

LEVELS = ("mdc", "adrg", "drg")
NAMES_TABLE = "definition_names"
OTHER = "OTHER"  # the code of merged small cells (regions, hospitals) in published tables
ALL = "全部"  # the name of a key a statistics row aggregates over (drg_name of an MDC row, region_name of all)
OTHER_REGIONS = "其他（合并的小地区）"
UNGROUPABLE = "无法入组（主要诊断无效或无适合的 ADRG）"
NAMES_SCHEMA = T.StructType([T.StructField(c, T.StringType()) for c in
                             ("pack_name", "pack_version", "level", "code", "name")])
REFERENCE = {  # table -> (key, required name column, optional columns)
    "hospitals": ("hospital_id", "hospital_name", ("short_name", "region_code")),
    "regions": ("region_code", "region_name", ()),
}


# ------------------------------------------------------------------------------------------ pack names
def _pack_rows(pack):
    """(mdc rows, adrg rows, drg rows, QY suffix, ungroupable DRG) of a format-1 or a format-2 pack, as
    (mdc, name), (adrg, name, mdc) and (drg, adrg, suffix, name)."""
    if getattr(pack, "format", 1) == 2:  # jobs.schemes.pack.RulePack
        adrgs = [(a["adrg"], a["name"], a["mdc"]) for a in pack.adrgs]
        drgs = [(d["drg"], a, d["drg"][-1:], d["name"]) for a, rows in pack.drgs.items() for d in rows]
        return pack.mdcs, adrgs, drgs, pack.settings.qy_suffix, pack.settings.ungroupable_drg
    rules = pack.manifest.rules
    return ([(m, name) for m, name, _kind in pack.rows["mdc"]],
            [(a, name, m) for a, name, m, _k, _p in pack.rows["adrg"]],
            [(d, a, suffix, name) for d, a, suffix, name, _w in pack.rows["drg"]],
            rules.unrelated_procedure_suffix, rules.invalid_principal_drg)


def pack_names(pack) -> list[tuple[str, str, str]]:
    """(level, code, name) for every MDC, ADRG and DRG of the pack and the grouper's special DRGs
    (unrelated-procedure `<letter>QY` per MDC, ungroupable `0000`); no name is empty."""
    mdc_rows, adrg_rows, drg_rows, qy_suffix, ungroupable = _pack_rows(pack)
    mdc = {m: (name or "").strip() or MDC_NAMES.get(m, (m,))[0] for m, name in mdc_rows}
    adrg = {a: (name or "").strip() or f"{mdc.get(m, m)} {a}" for a, name, m in adrg_rows}
    drg = {d: (name or "").strip() or drg_display_name(adrg.get(a, a), suffix) for d, a, suffix, name in drg_rows}
    for m, name in mdc.items():  # cases with an OR procedure unrelated to the principal diagnosis
        qy = m[-1] + qy_suffix
        adrg.setdefault(qy, f"{name}：与主要诊断无关的手术操作")
        drg.setdefault(qy, adrg[qy])
    drg.setdefault(ungroupable, UNGROUPABLE)
    return [(level, code, name) for level, table in (("mdc", mdc), ("adrg", adrg), ("drg", drg))
            for code, name in sorted(table.items())]


def write_pack_names(spark: SparkSession, lake: str, pack, run_id: str | None = None) -> None:
    """Replace this pack version's rows of gold.definition_names (idempotent: same pack, same rows)."""
    rows = [(pack.name, pack.version, *r) for r in pack_names(pack)]
    predicate = f"pack_name = {_sql(pack.name)} AND pack_version = {_sql(pack.version)}"
    lk.replace_where(spark.createDataFrame(rows, NAMES_SCHEMA), lk.table_path(lake, "gold", NAMES_TABLE),
                     predicate, run_id)


def _sql(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def names_of(spark: SparkSession, lake: str, pack_version: str | None) -> DataFrame:
    """(level, code, name) of the pack version a run was grouped with; empty when the lake has none
    (a lake grouped before names were kept: publish then falls back to the codes)."""
    path = lk.table_path(lake, "gold", NAMES_TABLE)
    if pack_version is None or not lk.exists(spark, path):
        return spark.createDataFrame([], "level string, code string, name string")
    names = lk.read(spark, lake, "gold", NAMES_TABLE).where(F.col("pack_version") == pack_version)
    return names.groupBy("level", "code").agg(F.min("name").alias("name"))


def _named(code: Column, name: Column, special: dict[str, str] | None = None) -> Column:
    """The name for a code column: ALL where the code is null (an aggregate over it), else the looked-up
    name, else a special name (OTHER), else the code itself."""
    fallback = code
    for value, label in (special or {}).items():
        fallback = F.when(code == value, F.lit(label)).otherwise(fallback)
    return F.when(code.isNull(), F.lit(ALL)).otherwise(F.coalesce(name, fallback))


def with_code_names(df: DataFrame, names: DataFrame) -> DataFrame:
    """Add mdc_name, adrg_name, drg_name for the codes of `df` (broadcast joins of the small name table)."""
    for level in LEVELS:
        lookup = names.where(F.col("level") == level).select(F.col("code").alias(level), F.col("name").alias("_n"))
        df = df.join(F.broadcast(lookup), level, "left").withColumn(f"{level}_name", _named(F.col(level),
                                                                                             F.col("_n"))).drop("_n")
    return df


# ------------------------------------------------------------------------------ hospitals and regions
def reference(spark: SparkSession, lake: str, table: str) -> DataFrame | None:
    """silver.hospitals or silver.regions, or None when the lake has no such reference table."""
    path = lk.table_path(lake, "silver", table)
    return lk.read(spark, lake, "silver", table) if lk.exists(spark, path) else None


def with_place_names(spark: SparkSession, lake: str, df: DataFrame) -> DataFrame:
    """Add region_name (and hospital_name, hospital_short_name when df has hospital_id); codes when unnamed."""
    regions = reference(spark, lake, "regions")
    region = regions.select("region_code", F.col("region_name").alias("_r")) if regions is not None else None
    df = df.join(F.broadcast(region), "region_code", "left") if region is not None else df.withColumn("_r", F.lit(None))
    df = df.withColumn("region_name", _named(F.col("region_code"), F.col("_r"), {OTHER: OTHER_REGIONS})).drop("_r")
    if "hospital_id" not in df.columns:
        return df
    hospitals = reference(spark, lake, "hospitals")
    if hospitals is None:
        df = df.withColumn("_h", F.lit(None).cast("string")).withColumn("_s", F.lit(None).cast("string"))
    else:
        df = df.join(F.broadcast(hospitals.select("hospital_id", F.col("hospital_name").alias("_h"),
                                                  F.col("short_name").alias("_s"))), "hospital_id", "left")
    hospital = F.col("hospital_id")
    return (df.withColumn("hospital_name", _named(hospital, F.col("_h"), {OTHER: "其他（合并的小医院）"}))
            .withColumn("hospital_short_name", F.when(hospital.isNotNull(), F.coalesce(F.col("_s"), F.col("_h"))))
            .drop("_h", "_s"))


def load_reference(spark: SparkSession, lake: str, table: str, csv_path: str) -> int:
    """Replace silver.<table> with a UTF-8 CSV (header row); a missing column or a repeated or empty key
    is one clear error naming the file. Returns the number of rows."""
    key, name, optional = REFERENCE[table]
    raw = spark.read.option("header", True).option("encoding", "UTF-8").csv(csv_path)
    missing = [c for c in (key, name) if c not in raw.columns]
    if missing:
        raise PipelineError(f"{csv_path}: {table} reference needs column(s) {', '.join(missing)} "
                            f"(has {', '.join(raw.columns)})")
    cols = [F.trim(F.col(c)).alias(c) if c in raw.columns else F.lit(None).cast("string").alias(c)
            for c in (key, name, *optional)]
    df = raw.select(*cols)
    bad = df.groupBy(key).count().where(F.col(key).isNull() | (F.col(key) == "") | (F.col("count") > 1)).first()
    if bad is not None:
        what = "an empty" if not bad[key] else f"repeated ({bad['count']}x)"
        raise PipelineError(f"{csv_path}: {what} {key} {bad[key] or ''}".rstrip())
    lk.overwrite(df, lk.table_path(lake, "silver", table))
    return lk.read(spark, lake, "silver", table).count()


def register(sub) -> None:
    p = sub.add_parser("reference", help="load optional hospital / region names (CSV) into the lake")
    p.add_argument("--lake", required=True, help="lake root folder or URI")
    p.add_argument("--hospitals", metavar="CSV", help="hospital_id,hospital_name[,short_name][,region_code]")
    p.add_argument("--regions", metavar="CSV", help="region_code,region_name")
    p.set_defaults(func=run)


def run(args) -> int:
    from jobs.spark import get_spark, parse_conf

    if not (args.hospitals or args.regions):
        raise PipelineError("drg reference: give --hospitals CSV and/or --regions CSV")
    spark = get_spark("drg-reference", parse_conf(getattr(args, "conf", None)))
    for table in ("hospitals", "regions"):
        path = getattr(args, table)
        if path:
            print(f"silver.{table}: {load_reference(spark, args.lake, table, path)} rows from {path}")
    return 0
