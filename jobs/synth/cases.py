"""The case generator: realistic discharge abstracts with known ground truth, generated in Spark.

Why this shape:
- Every random draw is `xxhash64(seed, tag, id)` turned into a uniform, so a case depends only on the
  seed and its id: same seed, same data, whatever the partitioning or cluster (F.rand depends on
  partitions). No Python runs per case; choices are indexes into small broadcast tables.
- Cases are drawn DRG-first (jobs/synth/pack.py makes the pack's code lists safe to draw from), so the
  intended DRG written to the truth is what a correct grouper must produce for a clean case.
- Errors are injected at a known rate, each recorded with its type, so the quality audit can be scored
  on precision and recall, not only on counts.
"""

from __future__ import annotations

import math
import random
from datetime import date
from functools import reduce
from importlib.resources.abc import Traversable

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.errors import PipelineError
from jobs.synth.config import SynthConfig, load_config
from jobs.synth.pack import PackTables, read_pack
from schemas.discharge import COST_CATEGORIES, FIELD_NAMES

DEFAULT_PACK = "demo"  # the pack shipped in jobs/packs/
# the national schemes shipped in jobs/packs/ (`--scheme`); the current one is the CLI default
SCHEMES = ("chs-2.0", "chs-1.1", "chs-1.0")
DEFAULT_BATCH_DATE = "2026-11-22"
# One row-level error per affected case; upcoding (per hospital) and malformed rows come on top.
ERROR_TYPES = (
    "invalid_code", "wrong_code_version", "symptom_principal_dx", "sex_conflict", "age_conflict",
    "discharge_before_admission", "los_mismatch", "nonpositive_cost", "cost_category_mismatch",
    "duplicate_case",
)
ADRG_SLOTS = 100_000  # ADRG frequency resolution (1e-5)
HOSPITAL_SLOTS = 2_000  # per region
# Cost-category shares (service, diagnosis, treatment, drug, material, other) by ADRG kind.
COST_SHARES = {
    "surgical": (0.12, 0.15, 0.20, 0.18, 0.30, 0.05),
    "non_or": (0.14, 0.20, 0.18, 0.25, 0.18, 0.05),
    "medical": (0.16, 0.22, 0.12, 0.40, 0.05, 0.05),
}
PROVINCES = (23, 22, 21, 11, 12, 13, 14, 15, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 50, 51, 52, 53, 61)


# ---------------------------------------------------------------- deterministic randomness
def _uniform(seed: int, tag: str, key: str = "id") -> Column:
    """Uniform in [0, 1) from the top 53 bits of a hash of (seed, tag, key)."""
    bits = F.shiftrightunsigned(F.xxhash64(F.lit(seed), F.lit(tag), F.col(key)), 11)
    return bits.cast("double") / float(1 << 53)


def _pick(array: Column, n: Column | int, u: Column) -> Column:
    """Element of a 1-based array at a uniform index (n = its size, known > 0)."""
    n = F.lit(n) if isinstance(n, int) else n
    return F.element_at(array, (F.floor(u * n) + 1).cast("int"))


def _between(lo, hi, u: Column) -> Column:
    """lo + (hi - lo) * u for numbers, Columns or column names."""
    lo, hi = (F.col(x) if isinstance(x, str) else F.lit(x) if not isinstance(x, Column) else x for x in (lo, hi))
    return lo + (hi - lo) * u


# ---------------------------------------------------------------- small driver-side tables
def region_codes(regions: int) -> list[str]:
    """Real-looking prefecture codes (230100 Harbin first), twelve per province."""
    if regions > 12 * len(PROVINCES):
        raise PipelineError(f"--regions {regions}: at most {12 * len(PROVINCES)} regions are supported")
    return [f"{PROVINCES[i // 12]:02d}{i % 12 + 1:02d}00" for i in range(regions)]


def _hospital_rows(regions: int, hospitals: int, cases: int, seed: int, config: SynthConfig):
    """Regions (case ranges, base rates) and hospitals (size, efficiency, upcoding), all seeded."""
    if regions < 1 or hospitals < 1 or cases < 1:
        raise PipelineError("--cases, --regions and --hospitals must be at least 1")
    if hospitals > HOSPITAL_SLOTS:
        raise PipelineError(f"--hospitals {hospitals}: at most {HOSPITAL_SLOTS} hospitals per region")
    rng = random.Random(seed)
    codes = region_codes(regions)
    sizes = [math.exp(0.4 * rng.gauss(0, 1)) for _ in codes]
    bounds = [round(cases * sum(sizes[: i + 1]) / sum(sizes)) for i in range(regions)]
    region_rows, hospital_rows = [], []
    for r, code in enumerate(codes):
        start = bounds[r - 1] if r else 0
        rate = round(config.base_rate * math.exp(config.base_rate_spread * rng.gauss(0, 1)), 2)
        region_rows.append((r, code, rate, start, max(bounds[r] - start, 1)))
        weights = [math.exp(config.hospital_size_sigma * rng.gauss(0, 1)) for _ in range(hospitals)]
        upcoders = set(rng.sample(range(hospitals), min(config.upcoding_hospitals_per_region, hospitals)))
        slots = _slots(weights, HOSPITAL_SLOTS)
        for h in range(hospitals):
            efficiency = round(math.exp(config.efficiency_spread * rng.gauss(0, 1)), 4)
            hospital_rows.append((r, h, f"H{code}{h + 1:05d}", efficiency, h in upcoders, slots[h]))
    return region_rows, hospital_rows


def _slots(weights: list[float], total: int) -> list[list[int]]:
    """Split `total` slots among items in proportion to weight (largest remainder), >= 1 each."""
    raw = [w / sum(weights) * (total - len(weights)) for w in weights]
    counts = [1 + int(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - int(raw[i]), reverse=True)[: total - sum(counts)]:
        counts[i] += 1
    out, start = [], 0
    for c in counts:
        out.append(list(range(start, start + c)))
        start += c
    return out


def _local(spark: SparkSession, rows: list[tuple], fields: list[tuple[str, pa.DataType]]) -> DataFrame:
    """A small driver-built table as a LocalRelation (via Arrow): broadcast without Python workers."""
    columns = {name: pa.array([r[i] for r in rows], type=t) for i, (name, t) in enumerate(fields)}
    return spark.createDataFrame(pa.table(columns))


def _lookups(spark: SparkSession, tables: PackTables, region_rows, hospital_rows):
    i32, i64, f64, text, flag, texts = pa.int32(), pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.list_(
        pa.string())
    regions = _local(spark, region_rows, [("region_idx", i32), ("region_code", text), ("base_rate", f64),
                                          ("r_start", i64), ("r_n", i64)])
    hosp = _local(
        spark, [(r, s, hid, eff, up) for r, _, hid, eff, up, slots in hospital_rows for s in slots],
        [("region_idx", i32), ("h_slot", i32), ("hospital_id", text), ("hospital_efficiency", f64),
         ("hospital_upcoding", flag)])
    profiles = tables.profiles
    adrg_slots = _slots([p["frequency"] for p in profiles], ADRG_SLOTS)
    slot_df = _local(spark, [(s, i) for i, slots in enumerate(adrg_slots) for s in slots],
                     [("a_slot", i32), ("p_idx", i32)])
    combo = pa.struct([("pdx", text), ("procs", texts), ("sdx", texts), ("bound", flag), ("sev", text)])
    fields = [("adrg", text), ("mdc", text), ("kind", text), ("combos", pa.list_(combo)),
              *[(f"drg{s}", text) for s in "1359"], *[(f"w{s}", f64) for s in "1359"],
              ("fixed_sex", i32), ("age_lo", i32), ("age_hi", i32), ("age_mean", f64), ("age_sd", f64),
              ("newborn", flag), ("infant", flag), ("days_lo", i32), ("days_hi", i32), ("bw_lo", i32),
              ("bw_hi", i32), ("vent_lo", f64), ("vent_hi", f64)]
    keys = ("pdx", "procs", "sdx", "bound", "sev")
    rows = [(i, *[[dict(zip(keys, k, strict=True)) for k in p[c]] if c == "combos" else p[c] for c, _ in fields])
            for i, p in enumerate(profiles)]
    prof_df = _local(spark, rows, [("p_idx", i32), *fields])
    by_pdx: dict[str, list[str]] = {}
    for table, pdx in tables.exclusions:
        by_pdx.setdefault(pdx, []).append(table)
    excl = _local(spark, list(by_pdx.items()) or [("", [])], [("pdx", text), ("excl_tables", texts)])
    pools = _local(
        spark,
        [([c for c, _ in tables.mcc], [t for _, t in tables.mcc], [c for c, _ in tables.cc],
          [t for _, t in tables.cc], tables.comorbid, tables.symptom, tables.obstetric, tables.perinatal)],
        [(n, texts) for n in ("mcc", "mcc_t", "cc", "cc_t", "comorbid", "symptom", "obstetric", "perinatal")],
    )
    return regions, hosp, slot_df, prof_df, excl, pools


# ---------------------------------------------------------------- the generator
def generate(
    spark: SparkSession,
    cases: int,
    regions: int,
    hospitals: int,
    seed: int,
    pack: str | Traversable | PackTables | None = None,  # a pack folder or shipped name (default demo)
    error_rate: float = 0.02,
    *,
    config: SynthConfig | None = None,
    batches: int = 1,
    batch_date: str = DEFAULT_BATCH_DATE,
    malformed_rate: float = 0.0,
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Lazily build (cases, truth, errors) for `cases` cases over `regions` x `hospitals`.

    cases: canonical columns (schemas.discharge; raw patient_id) + batch_id + malformed_row (rows the
    writer must corrupt). truth: one row per case row (duplicates included) with the intended group,
    weight and cost model. errors: one row per injected error (region_code, hospital_id, case_id,
    batch_id, error_type, field, detail).
    """
    config = config or load_config()
    if not 0 <= error_rate <= 1 or not 0 <= malformed_rate <= 1:
        raise PipelineError("--error-rate and --malformed-rate must be between 0 and 1")
    if batches < 1:
        raise PipelineError("--batches must be at least 1")
    try:
        last_day = date.fromisoformat(batch_date)
    except ValueError as exc:
        raise PipelineError(f"--batch-date {batch_date!r} is not a date (YYYY-MM-DD)") from exc
    tables = pack if isinstance(pack, PackTables) else read_pack(pack or DEFAULT_PACK, config, seed)
    region_rows, hospital_rows = _hospital_rows(regions, hospitals, cases, seed, config)
    regions_df, hosp_df, slot_df, prof_df, excl_df, pools_df = _lookups(spark, tables, region_rows, hospital_rows)

    u = lambda tag: _uniform(seed, tag)  # noqa: E731 - short local alias keeps the formulas readable
    parts = max(spark.sparkContext.defaultParallelism, math.ceil(cases / 500_000))
    bounds = [(r[0], r[3] + r[4]) for r in region_rows]
    region_idx = reduce(lambda acc, b: acc.when(F.col("id") < b[1], b[0]),
                        bounds[1:-1], F.when(F.col("id") < bounds[0][1], bounds[0][0]))
    region_idx = region_idx.otherwise(bounds[-1][0]) if len(bounds) > 1 else F.lit(0)
    # The error type depends on the id only, so filters on it (duplicates) run before any join.
    err = F.when(u("malformed") < malformed_rate, F.lit("malformed_row")).when(
        u("err") < error_rate, _pick(F.array(*map(F.lit, ERROR_TYPES)), len(ERROR_TYPES), u("err.type")))
    df = (
        spark.range(0, cases, numPartitions=parts)
        .select("id", region_idx.cast("int").alias("region_idx"), err.alias("err_type"),
                F.floor(u("hospital") * HOSPITAL_SLOTS).cast("int").alias("h_slot"),
                F.floor(u("adrg") * ADRG_SLOTS).cast("int").alias("a_slot"))
        .join(F.broadcast(regions_df), "region_idx")
        .join(F.broadcast(hosp_df), ["region_idx", "h_slot"])
        .join(F.broadcast(slot_df), "a_slot")
        .join(F.broadcast(prof_df), "p_idx")
    )
    df = _draw_codes(df, u, tables, excl_df, pools_df)
    df = _demographics(df, u)
    df = _severity(df, u, config)
    df = _codes(df, u, tables, config)
    df = _stay_and_cost(df, u, seed, config, batches, last_day, tables.vent_threshold, tables.vent_code)
    df = _inject(df, u, cases, config)

    dups = df.where(F.col("err_type") == "duplicate_case").withColumn(
        "case_id", F.concat(F.lit("ZY"), F.lpad((F.col("id") + cases).cast("string"), 12, "0")))
    clean_original = F.when(F.col("err_type") != "duplicate_case", F.col("err_type"))
    full = df.withColumn("err_type", clean_original).unionByName(dups)

    malformed = F.coalesce(F.col("err_type") == "malformed_row", F.lit(False))
    cases_df = full.select(*FIELD_NAMES, "batch_id", malformed.alias("malformed_row"))
    truth_df = full.select(
        "region_code", "hospital_id", "case_id", "batch_id", F.col("mdc").alias("true_mdc"),
        F.col("adrg").alias("true_adrg"), "true_drg", "true_weight", "true_severity",
        F.col("kind").alias("adrg_kind"), "base_rate", "hospital_efficiency", "hospital_upcoding",
        "expected_cost", "is_outlier", "outlier_kind",
        (F.col("err_type").isNotNull() | F.col("upcoded")).alias("has_error"),
    )
    errors_df = full.where(F.col("err_type").isNotNull() | F.col("upcoded")).select(
        "region_code", "hospital_id", "case_id", "batch_id",
        F.coalesce("err_type", F.lit("upcoding")).alias("error_type"),
        F.when(F.col("upcoded"), F.lit("secondary_dx")).otherwise(F.col("err_field")).alias("field"),
        F.when(F.col("upcoded"), F.concat(F.lit("spurious MCC "), F.col("mcc_pick"), F.lit(" added")))
        .otherwise(F.col("err_detail")).alias("detail"),
    )
    return cases_df, truth_df, errors_df


def _draw_codes(df: DataFrame, u, tables: PackTables, excl_df: DataFrame, pools_df: DataFrame) -> DataFrame:
    """Every code pick, in the one projection that sees the code lists; the lists are dropped at once.

    Why: a row carrying the pools (thousands of codes for a full pack) through later projections
    would copy them per case; reading them only where they are joined in keeps rows narrow.
    The group's (diagnosis, procedures) combination is the k-th of its list with P(rank <= k) =
    ln(k + 1) / ln(n + 1) (Zipf with exponent 1): a few combinations carry most cases, the rest a long tail.
    """
    n = F.size("combos")
    rank = F.least(F.floor(F.exp(u("combo") * F.log(n + 1))), n).cast("int")  # 1..n
    combo = F.element_at("combos", rank)
    df = df.select(
        *[c for c in df.columns if c != "combos"],
        combo["pdx"].alias("principal_dx"),
        F.get(combo["procs"], 0).alias("principal_proc"),
        F.slice(combo["procs"], 2, 100).alias("other_procs_list"),
        combo["sdx"].alias("combo_sdx"),
        combo["bound"].alias("sex_bound"),
        combo["sev"].alias("combo_sev"),
    ).join(F.broadcast(excl_df.withColumnRenamed("pdx", "principal_dx")), "principal_dx", "left")
    df = df.crossJoin(F.broadcast(pools_df))
    n_plain = len(tables.comorbid)
    empty = F.array().cast("array<string>")
    return df.select(
        *[c for c in df.columns if c not in (*pools_df.columns, "excl_tables")],
        _first_allowed("mcc", "mcc_t", len(tables.mcc), u, "mcc").alias("mcc_pick"),
        _first_allowed("cc", "cc_t", len(tables.cc), u, "cc").alias("cc_pick"),
        (F.array(*[_pick(F.col("comorbid"), n_plain, u(f"sec.{k}")) for k in range(14)]) if n_plain else empty)
        .alias("plain_all"),
        _pick(F.col("symptom"), len(tables.symptom), u("inj.symptom")).alias("symptom_pick"),
        _pick(F.col("obstetric"), len(tables.obstetric), u("inj.ob")).alias("obstetric_pick"),
        _pick(F.col("perinatal"), len(tables.perinatal), u("inj.peri")).alias("perinatal_pick"),
    )


def _demographics(df: DataFrame, u) -> DataFrame:
    """Age, sex and newborn fields consistent with the group (see config.yaml demographics)."""
    adult = F.greatest(F.lit(15), F.least(F.lit(98), F.round(F.lit(58.0) + 17.0 * _normal_u(u, "age"))))
    child = F.floor(_between(1, 15, u("age.child")))
    general = F.when(u("age.kind") < 0.1, child).otherwise(adult)
    ranged = F.when(
        F.col("age_mean").isNotNull(),
        F.greatest("age_lo", F.least("age_hi", F.round(F.col("age_mean") + F.col("age_sd") * _normal_u(u, "age")))),
    ).otherwise(F.floor(_between(F.col("age_lo"), F.col("age_hi") + 1, u("age.range"))))
    age = (F.when(F.col("newborn") | F.col("infant"), F.lit(0))
           .when(F.col("age_lo").isNotNull(), ranged).otherwise(general))
    days = F.when(F.col("newborn") | F.col("infant"),
                  F.floor(_between(F.col("days_lo"), F.col("days_hi") + 1, u("age.days"))))
    weight = F.when(F.col("newborn"), F.floor(_between("bw_lo", "bw_hi", u("bw")) / 10) * 10)  # stays in band
    sex = F.coalesce(F.col("fixed_sex"), F.when(u("sex") < 0.52, F.lit(1)).otherwise(F.lit(2)))
    return df.select(
        "*", age.cast("int").alias("age_years"), days.cast("int").alias("age_days"),
        weight.cast("int").alias("birth_weight_g"), sex.cast("int").alias("sex"),
        F.concat(F.lit("P"), F.col("region_code"),
                 F.lpad(F.pmod(F.xxhash64(F.lit("patient"), "id"), F.lit(10**10)).cast("string"), 10, "0"))
        .alias("patient_id"),
        F.concat(F.lit("ZY"), F.lpad(F.col("id").cast("string"), 12, "0")).alias("case_id"),
    )


def _normal_u(u, tag: str) -> Column:
    """Standard normal by Box-Muller from two hashed uniforms."""
    u1 = F.lit(1.0) - u(tag + ".a")  # (0, 1], so the log is finite
    return F.sqrt(F.lit(-2.0) * F.log(u1)) * F.cos(F.lit(2 * math.pi) * u(tag + ".b"))


def _first_allowed(df_codes: str, df_tables: str, n: int, u, tag: str, tries: int = 3) -> Column:
    """First of `tries` random CC/MCC candidates whose exclusion table does not list the principal dx."""
    if n == 0:
        return F.lit(None).cast("string")
    picks = []
    for k in range(tries):
        idx = (F.floor(u(f"{tag}.{k}") * n) + 1).cast("int")
        excluded = F.coalesce(F.array_contains("excl_tables", F.element_at(df_tables, idx)), F.lit(False))
        picks.append(F.when(~excluded, F.element_at(df_codes, idx)))
    return F.coalesce(*picks)


def _severity(df: DataFrame, u, config: SynthConfig) -> DataFrame:
    """Severity rises with age; the code that carries it is one the exclusions let count."""
    scaled = F.col("age_years") / 90.0
    p_mcc = F.lit(config.mcc_by_age[0]) + config.mcc_by_age[1] * F.pow(scaled, 1.5)
    p_cc = F.lit(config.cc_by_age[0]) + config.cc_by_age[1] * scaled
    target = F.when(u("sev") < p_mcc, "MCC").when(u("sev") < p_mcc + p_cc, "CC").otherwise("NONE")
    return df.withColumn("_target", target)


def _codes(df: DataFrame, u, tables: PackTables, config: SynthConfig) -> DataFrame:
    """Secondary diagnoses (0-15) and procedures, and the DRG the grouper should reach with them."""
    target = F.col("_target")
    own = F.col("combo_sev")  # what the combination's required secondaries already count as
    achieved = (F.when((own == "MCC") | ((target == "MCC") & F.col("mcc_pick").isNotNull()), "MCC")
                .when((own == "CC") | (target.isin("MCC", "CC") & F.col("cc_pick").isNotNull()), "CC")
                .otherwise("NONE"))
    df = df.withColumn("true_severity", achieved)
    sev_code = F.when(F.col("true_severity") == "MCC", F.col("mcc_pick")).when(
        F.col("true_severity") == "CC", F.col("cc_pick"))
    mean = F.lit(config.secondary_base) + F.col("age_years") / config.secondary_per_years
    n_plain = F.least(F.lit(14), F.floor(-F.log(F.lit(1.0) - u("n.sec")) * mean)).cast("int")
    plain = F.array_distinct(F.concat("combo_sdx", F.slice("plain_all", 1, F.greatest(n_plain, F.lit(0)))))
    position = (F.floor(u("sev.pos") * (F.size(plain) + 1)) + 1).cast("int")
    secondary = F.when(sev_code.isNotNull(), F.array_insert(plain, position, sev_code)).otherwise(plain)
    # Suffix as a grouper assigns it: MCC -> 1, else 3, else 5; CC -> 3, else 5; none -> 5; 9 unsplit.
    sev = F.col("true_severity")
    suffix = (F.when(F.col("drg9").isNotNull(), "9")
              .when((sev == "MCC") & F.col("drg1").isNotNull(), "1")
              .when(sev.isin("MCC", "CC") & F.col("drg3").isNotNull(), "3").otherwise("5"))
    return df.select(
        "*", secondary.alias("secondary_dx"), suffix.alias("_suffix"),
    ).select(
        "*",
        F.concat("adrg", "_suffix").alias("true_drg"),
        F.coalesce(*[F.when(F.col("_suffix") == s, F.col(f"w{s}")) for s in ("1", "3", "5", "9")]).alias(
            "true_weight"),
    )


def _stay_and_cost(df: DataFrame, u, seed: int, config: SynthConfig, batches: int, last_day: date,
                   vent_threshold: float, vent_code: str | None) -> DataFrame:
    """LOS and cost lognormal around weight x base rate x efficiency; outliers; dates; categories."""
    z_cost = _normal_u(u, "cost")
    rho = config.los_cost_correlation
    z_los = rho * z_cost + math.sqrt(1 - rho * rho) * _normal_u(u, "los")
    expected = F.col("true_weight") * F.col("base_rate") * F.col("hospital_efficiency")
    s = config.cost_sigma
    cost = expected * F.exp(s * z_cost - s * s / 2)
    los_mean = (F.lit(config.los_base) + config.los_per_weight * F.pow(F.col("true_weight"), 0.7)) * F.sqrt(
        F.col("hospital_efficiency"))
    sl = config.los_sigma
    los = los_mean * F.exp(sl * z_los - sl * sl / 2)
    hi, lo = config.high_outlier_share, config.low_outlier_share
    outlier = F.when(u("outlier") < hi, "high").when(u("outlier") < hi + lo, "low")
    df = df.select("*", outlier.alias("outlier_kind"), expected.alias("expected_cost"))
    factor = (F.when(F.col("outlier_kind") == "high", _between(*config.high_outlier_factor, u("outlier.f")))
              .when(F.col("outlier_kind") == "low", _between(*config.low_outlier_factor, u("outlier.f")))
              .otherwise(F.lit(1.0)))
    los = (F.when(F.col("outlier_kind") == "high", los * _between(1.5, 3.0, u("outlier.los")))
           .when(F.col("outlier_kind") == "low", F.lit(1.0) + F.floor(u("outlier.los") * 2)).otherwise(los))
    total = F.round(cost * factor, 2)
    shares = {k: [F.lit(v[i]) for i in range(6)] for k, v in COST_SHARES.items()}
    noisy = [
        F.when(F.col("kind") == "surgical", shares["surgical"][i]).when(F.col("kind") == "non_or", shares["non_or"][i])
        .otherwise(shares["medical"][i]) * _between(0.6, 1.4, u(f"share.{i}"))
        for i in range(6)
    ]
    share_sum = reduce(Column.__add__, noisy)
    batch_idx = F.least(F.lit(batches - 1), F.floor((F.col("id") - F.col("r_start")) * batches / F.col("r_n")))
    batch_day = F.date_sub(F.lit(last_day), (F.lit(batches - 1) - batch_idx).cast("int"))
    discharge = F.date_sub(batch_day, (F.lit(1) + F.floor(u("discharge") * 28)).cast("int"))
    if config.discharge_years > 1:  # whole years back, the latest year weighted as the others
        discharge = F.add_months(discharge, -12 * F.floor(u("discharge.year") * config.discharge_years).cast("int"))
    vent_cap = min(vent_threshold, 96.0) - 1
    # ventilation coded both ways: a case with the long-ventilation procedure has the hours too
    coded = (F.coalesce(F.array_contains(F.concat(F.array("principal_proc"), "other_procs_list"), vent_code),
                        F.lit(False)) if vent_code else F.lit(False))
    vent = (F.when(F.col("vent_lo").isNotNull(), F.round(_between(F.col("vent_lo"), F.col("vent_hi"), u("vent")), 1))
            .when(coded, F.round(_between(vent_threshold, vent_threshold * 4, u("vent")), 1))
            .when((F.col("true_severity") == "MCC") & (u("vent.any") < 0.08),
                  F.round(_between(2.0, vent_cap, u("vent")), 1)))
    disposition = (F.when(u("disp") < 0.90, 1).when(u("disp") < 0.93, 2).when(u("disp") < 0.94, 3)
                   .when(u("disp") < 0.97, 4).when(u("disp") < 0.985, 5).otherwise(9))
    df = df.select(
        "*",
        # a ventilated stay lasts at least as many days as its ventilation (greatest skips nulls)
        F.greatest(F.lit(1), F.round(los), F.ceil(vent / 24)).cast("int").alias("los_days"),
        total.alias("total_cost"),
        *[(n / share_sum).alias(f"_s{i}") for i, n in enumerate(noisy)],
        discharge.alias("discharge_date"),
        F.date_format(batch_day, "yyyy-MM-dd").alias("batch_id"),
        vent.alias("vent_hours"),
        disposition.alias("discharge_disposition"),
        F.when(u("payer") < 0.45, "employee").otherwise("resident").alias("payer"),
        F.col("outlier_kind").isNotNull().alias("is_outlier"),
    )
    cats = [F.round(F.col("total_cost") * F.col(f"_s{i}"), 2) for i in range(5)]
    last = F.round(F.col("total_cost") - reduce(Column.__add__, cats), 2)
    return df.select(
        "*", *[c.alias(name) for c, name in zip([*cats, last], COST_CATEGORIES, strict=True)],
        F.date_sub("discharge_date", F.col("los_days")).alias("admit_date"),
    ).drop(*[f"_s{i}" for i in range(6)])


def _inject(df: DataFrame, u, cases: int, config: SynthConfig) -> DataFrame:
    """Apply each case's injected error (one type per case) and the upcoding hospitals' extra MCC."""
    e = F.coalesce(F.col("err_type"), F.lit(""))  # null-safe: a clean case compares false, not null
    pdx = F.col("principal_dx")
    bare = F.regexp_replace(F.split_part(pdx, F.lit("+"), F.lit(1)), r"x\d+$", "")
    invalid = F.concat(bare, F.lit("x999"))
    old_format = F.substring(bare, 1, 5)
    symptom, obstetric, perinatal = F.col("symptom_pick"), F.col("obstetric_pick"), F.col("perinatal_pick")
    sex_specific = F.col("sex_bound")  # the case carries a code of its sex: flipping the sex shows
    newborn_group = F.col("newborn") | F.col("infant")
    # an adult gets a newborn-only code: as principal, or (half the time) copied in as a secondary diagnosis
    newborn_secondary = (e == "age_conflict") & ~newborn_group & (u("inj.pos") < 0.5)
    new_pdx = (F.when(e == "invalid_code", invalid).when(e == "wrong_code_version", old_format)
               .when(e == "symptom_principal_dx", symptom)
               .when((e == "sex_conflict") & ~sex_specific, obstetric)
               .when((e == "age_conflict") & ~newborn_group & ~newborn_secondary, perinatal).otherwise(pdx))
    new_sex = F.when(e == "sex_conflict", F.when(F.col("sex") == 1, 2).otherwise(1)).otherwise(F.col("sex"))
    # A non-specific group gets an obstetric code on a male; a sex-specific group gets the other sex.
    new_sex = F.when((e == "sex_conflict") & ~sex_specific, F.lit(1)).otherwise(new_sex)
    adult_age = F.floor(_between(25, 70, u("inj.age"))).cast("int")
    age_conflict = e == "age_conflict"
    shift = (F.lit(1) + F.floor(u("inj.shift") * 5)).cast("int")
    negative = u("inj.neg") < 0.5
    cost_factor = F.when(e == "nonpositive_cost", F.when(negative, F.lit(-1.0)).otherwise(F.lit(0.0))).otherwise(1.0)
    extra_drug = F.round(F.col("total_cost") * _between(0.1, 0.5, u("inj.drug")), 2)
    upcoded = (F.col("hospital_upcoding") & (e == "") & (F.col("true_severity") != "MCC")
               & F.col("mcc_pick").isNotNull() & (u("upcode") < config.upcoding_share))
    field = (F.when(e.isin("invalid_code", "wrong_code_version", "symptom_principal_dx"), "principal_dx")
             .when(e == "sex_conflict", F.when(sex_specific, "sex").otherwise("principal_dx"))
             .when(e == "age_conflict", F.when(newborn_group, "age_years").when(newborn_secondary, "secondary_dx")
                   .otherwise("principal_dx"))
             .when(e == "discharge_before_admission", "admit_date").when(e == "los_mismatch", "los_days")
             .when(e == "nonpositive_cost", "total_cost").when(e == "cost_category_mismatch", "cost_drug")
             .when(e == "duplicate_case", "case_id").when(e == "malformed_row", "record"))
    new_los = F.when(e == "los_mismatch", F.col("los_days") + 2 + F.floor(u("inj.los") * 9).cast("int"))
    detail = (
        F.when(newborn_secondary, F.concat(F.lit("secondary_dx + "), perinatal))
        .when(e.isin("invalid_code", "wrong_code_version", "symptom_principal_dx")
               | ((e == "sex_conflict") & ~sex_specific) | (age_conflict & ~newborn_group),
               F.concat(F.lit("principal_dx "), pdx, F.lit(" -> "), new_pdx))
        .when(e == "sex_conflict", F.concat(F.lit("sex "), F.col("sex").cast("string"), F.lit(" -> "),
                                            new_sex.cast("string"), F.lit(" in "), F.col("mdc")))
        .when(age_conflict, F.concat(F.lit("newborn group "), F.col("adrg"), F.lit(" with age_years "),
                                     adult_age.cast("string")))
        .when(e == "discharge_before_admission", F.concat(F.lit("admit_date moved "), shift.cast("string"),
                                                          F.lit(" days after discharge_date")))
        .when(e == "los_mismatch", F.concat(F.lit("los_days "), F.col("los_days").cast("string"), F.lit(" -> "),
                                            new_los.cast("string")))
        .when(e == "nonpositive_cost", F.concat(F.lit("total_cost "), F.col("total_cost").cast("string"),
                                                F.lit(" -> "), (F.col("total_cost") * cost_factor).cast("string")))
        .when(e == "cost_category_mismatch", F.concat(F.lit("cost_drug +"), extra_drug.cast("string")))
        .when(e == "duplicate_case", F.concat(F.lit("copy of case_id "), F.col("case_id")))
        .when(e == "malformed_row", F.lit("record broken by an extra delimiter"))
    )
    replaced = {
        "principal_dx": new_pdx,
        "sex": new_sex,
        "age_years": F.when(age_conflict & newborn_group, adult_age).when(
            age_conflict, F.greatest(F.col("age_years"), adult_age)).otherwise(F.col("age_years")),
        "age_days": F.when(~age_conflict, F.col("age_days")),
        "birth_weight_g": F.when(~age_conflict, F.col("birth_weight_g")),
        "admit_date": F.when(e == "discharge_before_admission", F.date_add("discharge_date", shift)).otherwise(
            F.col("admit_date")),
        "los_days": F.coalesce(new_los, F.col("los_days")),
        "total_cost": F.col("total_cost") * cost_factor,
        **{c: F.col(c) * cost_factor for c in COST_CATEGORIES if c != "cost_drug"},
        "cost_drug": F.col("cost_drug") * cost_factor + F.when(e == "cost_category_mismatch", extra_drug).otherwise(0),
        "secondary_dx": F.when(upcoded, F.array_append("secondary_dx", F.col("mcc_pick")))
        .when(newborn_secondary, F.array_append("secondary_dx", perinatal)).otherwise(F.col("secondary_dx")),
        "other_procs": F.col("other_procs_list"),
    }
    keep = [c for c in df.columns if c not in replaced and c != "other_procs"]
    return df.select(*keep, *[v.alias(k) for k, v in replaced.items()], upcoded.alias("upcoded"),
                     field.alias("err_field"), detail.alias("err_detail"))
