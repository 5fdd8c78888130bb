"""A tiny priced lake for the publish and report tests: two runs of gold tables, numbers chosen by hand.

Cases (region / hospital / DRG):
- ES21 (ADRG ES2, MDC E): 30 cases in 230100/H1, 12 in 230300/H3, 3 in 230200/H9
- ES23 (ES2, E): 20 cases in 230100/H2;  FM19 (FM1, F): 5 cases in 230100/H2
So with k=10: FM19 and hospital H9 are suppressed; ES21's region 230200 (3) is merged into OTHER
together with the next smallest region 230300 (12), giving OTHER n=15 and 230100 shown with n=30.
Run 2 raises ES21's weight by 20% and leaves the others unchanged.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs import lake as lk
from jobs.names import NAMES_SCHEMA
from schemas import pricing as P

RUN_1 = "20261122T010000Z-aaaaaa"
RUN_2 = "20261123T010000Z-bbbbbb"
RW_1 = {"ES21": 1.0, "ES23": 0.8, "FM19": 2.5}
RW_2 = {"ES21": 1.2, "ES23": 0.8, "FM19": 2.5}
TREE = {"ES21": ("ES2", "MDCE"), "ES23": ("ES2", "MDCE"), "FM19": ("FM1", "MDCF")}
CELLS = (  # region, hospital, drg, n
    ("230100", "H1", "ES21", 30),
    ("230300", "H3", "ES21", 12),
    ("230200", "H9", "ES21", 3),
    ("230100", "H2", "ES23", 20),
    ("230100", "H2", "FM19", 5),
)
BASE_RATE = 10000.0
# The pack's names as the grouper keeps them (ES23 has none: it falls back to its code) and the optional
# reference tables (region 230300 and hospitals H2, H3 unnamed: their codes are shown).
NAMES = [("mdc", "MDCE", "呼吸系统疾病及功能障碍"), ("mdc", "MDCF", "循环系统疾病及功能障碍"),
         ("adrg", "ES2", "呼吸系统结核"), ("adrg", "FM1", "经皮心导管检查操作"),
         ("drg", "ES21", "呼吸系统结核，伴严重并发症或合并症"), ("drg", "FM19", "经皮心导管检查操作")]
REGIONS = "region_code,region_name\n230100,哈尔滨市\n230200,齐齐哈尔市\n"
HOSPITALS = "hospital_id,hospital_name,short_name\nH1,哈尔滨医科大学附属第一医院,哈医大一院\nH9,齐齐哈尔市第一医院,\n"


def case_rows():
    rows = []
    for region, hospital, drg, n in CELLS:
        for i in range(n):
            cost = 10000.0 * RW_1[drg] * (0.8 + 0.1 * (i % 5))  # mean = 10000 x RW
            rows.append((region, hospital, f"{hospital}-{drg}-{i}", drg, cost, 3 + i % 7))
    return rows


def write_run(spark, lake: str, run_id: str, rws: dict) -> None:
    """Write the gold tables of one priced run (grouped_cases once: it is one row per case)."""
    cases = spark.createDataFrame(
        case_rows(), "region_code string, hospital_id string, case_id string, drg string, total_cost double, los int"
    )
    rw = spark.createDataFrame(
        [(d, r, *TREE[d]) for d, r in rws.items()], "drg string, rw double, adrg string, mdc string"
    )
    where = f"run_id = '{run_id}'"
    gold = lambda t: lk.table_path(lake, "gold", t)  # noqa: E731
    if not lk.exists(spark, gold("definition_names")):
        names = spark.createDataFrame([("test", "CHS-DRG 1.1", *n) for n in NAMES], NAMES_SCHEMA)
        lk.overwrite(names, gold("definition_names"))
    if not lk.exists(spark, gold("grouped_cases")):
        grouped = cases.join(rw.select("drg", "adrg", "mdc"), "drg").select(
            "region_code", "hospital_id", "case_id", "mdc", "adrg", "drg", F.col("los").alias("los_days"),
            "total_cost", F.lit(run_id).alias("run_id"),
        )
        lk.overwrite(grouped, gold("grouped_cases"))
    priced = cases.join(rw, "drg").withColumn("run_id", F.lit(run_id)).withColumn("policy_version", F.lit("p1"))
    lk.replace_where(_conform(priced, P.CASE_PAYMENTS), gold("case_payments"), where)
    weights = (
        priced.groupBy("drg", "adrg", "mdc", "rw", "run_id", "policy_version")
        .agg(F.count("*").alias("n_cases"), F.mean("total_cost").alias("mean_cost"))
        .withColumn("pack_version", F.lit("CHS-DRG 1.1"))
    )
    lk.replace_where(_conform(weights, P.DRG_WEIGHTS), gold("drg_weights"), where)
    hospitals = priced.groupBy("region_code", "hospital_id", "run_id", "policy_version").agg(
        F.count("*").alias("n_cases"), F.sum("rw").alias("total_weight"), F.mean("rw").alias("cmi")
    )
    lk.replace_where(_conform(hospitals, P.HOSPITAL_INDICES), gold("hospital_indices"), where)
    rates = priced.groupBy("region_code", "run_id", "policy_version").agg(
        F.count("*").alias("n_cases"), F.sum("rw").alias("sum_rw_coef")
    ).withColumn("fund", F.lit("employee")).withColumn("base_rate", F.lit(BASE_RATE))
    lk.replace_where(_conform(rates, P.BASE_RATES), gold("base_rates"), where)
    quality = spark.createDataFrame(
        [(run_id, 70, 3, 0.62, 0.71, 0.40, 1, ["FM19"], "p1")], P.GROUPING_QUALITY
    )
    lk.replace_where(quality, gold("grouping_quality"), where)


def _default(field):
    defaults = {"hospital_coef": 1.0, "base_rate": BASE_RATE, "outlier_type": "normal", "low_volume": False,
                "capped": False, "method": "own", "n_trimmed": 0, "fund": "employee"}
    return F.lit(defaults.get(field.name))


def _conform(df, schema):
    """Shape a frame to a pricing schema: missing columns get a default or a typed null."""
    return df.select(
        *[
            (F.col(f.name) if f.name in df.columns else _default(f)).cast(f.dataType).alias(f.name)
            for f in schema.fields
        ]
    )


def write_reference(spark, lake: str, folder) -> None:
    """Load the optional region and hospital names as `drg reference` does (from CSV files)."""
    from jobs.names import load_reference

    for table, text in (("regions", REGIONS), ("hospitals", HOSPITALS)):
        path = folder / f"{table}.csv"
        path.write_text(text, encoding="utf-8")
        load_reference(spark, lake, table, str(path))
