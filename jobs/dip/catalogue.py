"""The packet catalogue: core packets from the region's own cases, comprehensive packets for the rest.

Why it is built from an aggregate: a case's packet is a function of its (diagnosis_key, procedure_key)
alone (core if that key has >= threshold base-period cases, else `<dx3>:<attribute>` where the
attribute is a function of the procedure key). So the cases are read once into `key_stats` (counts and
exact cost sums per key, year and severity: a table the size of the distinct keys), and everything
else here runs on that small table; the cases are read a second time only to be scored.

Why two aggregations and no more: the base years are known on the driver before the catalogue is built,
so every per-year and per-severity statistic is a conditional sum (`n_<year>`, `cost_<year>`, the
latest year's `n_MCC`, ...). `key_sums` turns the key statistics into one row per key (one shuffle);
`catalogue` sums those rows per packet (one more) and derives the weighted mean, CV, score and the
adopted subtypes as column expressions on that row. Each extra groupBy or join of the small tables is a
Spark job whose fixed cost, not its data, dominates at this size (bench/bench_dip.py).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.dip.attributes import attribute_name, key_attributes
from jobs.dip.policy import DipPolicy
from jobs.exact import exact_sum
from schemas.dip import SUBTYPE

KEYS = ("diagnosis_key", "procedure_key")  # procedure_key "" = no procedure (kept non-null for equi-joins)


def related_keys(cases: DataFrame, policy: DipPolicy, measured_on: DataFrame | None = None) -> DataFrame:
    """`main_plus_related` (3.0): key = principal procedure + each other procedure whose presence raises
    the mean cost of the (diagnosis, principal procedure) cases by at least `related_cost_increase`
    (mean with it / mean without it - 1, both measured on the base-period cases `measured_on`, default
    `cases`: the calibration's cases when only they set the catalogue)."""
    def with_main(df: DataFrame) -> DataFrame:
        return df.withColumn("main", F.trim("principal_proc"))

    main, measured = with_main(cases), with_main(cases if measured_on is None else measured_on)
    listed = F.transform(F.coalesce("other_procs", F.array()), lambda c: F.trim(c))
    related = F.filter(listed, lambda c: c.isNotNull() & (c != "") & (c != F.col("main")))
    others = measured.select("diagnosis_key", "main", "cost", F.explode(F.array_distinct(related)).alias("rel"))
    base = measured.groupBy("diagnosis_key", "main").agg(F.count("*").alias("n_all"),
                                                         exact_sum("cost").alias("s_all"))
    kept = (
        others.groupBy("diagnosis_key", "main", "rel")
        .agg(F.count("*").alias("n_with"), exact_sum("cost").alias("s_with"))
        .join(base, ["diagnosis_key", "main"])
        .where(F.col("n_all") > F.col("n_with"))
        .where(F.col("s_with") / F.col("n_with") >= (1 + policy.related_cost_increase)
               * (F.col("s_all") - F.col("s_with")) / (F.col("n_all") - F.col("n_with")))
        .groupBy("diagnosis_key", "main").agg(F.collect_set("rel").alias("kept"))
    )
    rel = F.array_sort(F.array_intersect(listed, F.coalesce("kept", F.array())))
    key = F.when(F.col("main").isNotNull() & (F.col("main") != ""),
                 F.array_join(F.concat(F.array("main"), rel), "+")).otherwise("")
    return main.join(F.broadcast(kept), ["diagnosis_key", "main"], "left").withColumn("procedure_key", key).drop(
        "main", "kept")


def key_stats(cases: DataFrame) -> DataFrame:
    """Per (diagnosis_key, procedure_key, year, severity): n and exact sums of cost, cost^2 and LOS."""
    return cases.groupBy("diagnosis_key", "procedure_key", "year", "severity").agg(
        F.count("*").alias("n"),
        exact_sum("cost").alias("cost_sum"),
        exact_sum(F.col("cost") * F.col("cost")).alias("cost_sq"),
        exact_sum(F.coalesce("los", F.lit(0.0))).alias("los_sum"),
    )


SEVERITIES = (("CC", "moderate"), ("MCC", "severe"))  # sort order of the subtypes array (by name)


def _n(year) -> str:
    return f"n_{year}"


def _cost(year) -> str:
    return f"cost_{year}"


def key_sums(stats: DataFrame, years: list[int]) -> DataFrame:
    """One row per (diagnosis_key, procedure_key) over the base years: n and exact cost sums per year,
    totals of n, cost^2 and LOS, and the latest year's n / cost / cost^2 per severity (for subtypes)."""
    latest = max(years)
    in_latest = F.col("year") == latest

    def count_if(cond):
        return F.sum(F.when(cond, F.col("n")).otherwise(0)).cast("long")

    def sum_if(col, cond):
        return exact_sum(F.when(cond, F.col(col)).otherwise(0.0))

    aggs = [F.sum("n").cast("long").alias("n"), exact_sum("cost_sq").alias("cost_sq"),
            exact_sum("los_sum").alias("los_sum"), sum_if("cost_sq", in_latest).alias("sq_latest")]
    for y in years:
        aggs += [count_if(F.col("year") == y).alias(_n(y)), sum_if("cost_sum", F.col("year") == y).alias(_cost(y))]
    for sev, _ in SEVERITIES:
        here = in_latest & (F.col("severity") == sev)
        aggs += [count_if(here).alias(f"n_{sev}"), sum_if("cost_sum", here).alias(f"cost_{sev}"),
                 sum_if("cost_sq", here).alias(f"sq_{sev}")]
    return stats.where(F.col("year").isin(*years)).groupBy(*KEYS).agg(*aggs)


def packet_map(stats: DataFrame, attributes: DataFrame, policy: DipPolicy, years: list[int]) -> DataFrame:
    """One row per (diagnosis_key, procedure_key) of the base years: its sums (key_sums), packet_code,
    kind and attribute."""
    keys = key_sums(stats, years)
    ranks = key_attributes(keys.where(F.col("procedure_key") != "").select("procedure_key"), attributes)
    rank = F.coalesce("attribute_rank", F.lit(0))
    core = F.col("n") >= policy.threshold
    core_code = F.when(F.col("procedure_key") == "", F.col("diagnosis_key")).otherwise(
        F.concat_ws(":", "diagnosis_key", "procedure_key"))
    return keys.join(F.broadcast(ranks), "procedure_key", "left").select(
        *keys.columns,
        F.when(core, core_code).otherwise(
            F.concat(F.substring("diagnosis_key", 1, 3), F.lit(":"), attribute_name(rank))).alias("packet_code"),
        F.when(core, "core").otherwise("comprehensive").alias("kind"),
        attribute_name(rank).alias("attribute"),
    )


def assign_packets(cases: DataFrame, catalogue: DataFrame, attributes: DataFrame) -> DataFrame:
    """(diagnosis_key, procedure_key, packet_code) for the distinct keys of `cases`, read off a built
    catalogue: the core packet of that key, else the comprehensive packet `<dx3>:<attribute>`.

    For the keys the catalogue was built from this is `packet_map`'s own answer (a key is core exactly
    when the catalogue holds it as a core packet); a key it never saw (a case delivered after the
    calibration) goes to its comprehensive packet, and is not scored when the catalogue has none. The
    nightly's full build and a night settling new batches both score through here, so they agree."""
    keys = cases.select(*KEYS).distinct()
    ranks = key_attributes(keys.where(F.col("procedure_key") != "").select("procedure_key").distinct(), attributes)
    core = catalogue.where(F.col("kind") == "core").select(
        "diagnosis_key", F.coalesce("procedure_key", F.lit("")).alias("procedure_key"),
        F.col("packet_code").alias("_core"))
    comprehensive = F.concat(F.substring("diagnosis_key", 1, 3), F.lit(":"),
                             attribute_name(F.coalesce("attribute_rank", F.lit(0))))
    return keys.join(F.broadcast(ranks), "procedure_key", "left").join(F.broadcast(core), list(KEYS), "left").select(
        *KEYS, F.coalesce("_core", comprehensive).alias("packet_code"))


def cv(n: Column, s1: Column, s2: Column) -> Column:
    """Coefficient of variation (sample SD / mean) from n and the sums; null below 2 cases."""
    n_ = n.cast("double")
    var = (s2 - s1 * s1 / n_) / (n_ - 1)
    return F.when(n > 1, F.try_divide(F.sqrt(F.greatest(var, F.lit(0.0))), s1 / n_))


def weighted_mean(weights: dict[int, float]) -> Column:
    """m = sum_y w_y mean_y / sum_y w_y over the years with cases (columns n_<y>, cost_<y>)."""
    num = sum((F.when(F.col(_n(y)) > 0, w * F.col(_cost(y)) / F.col(_n(y))).otherwise(0.0)
               for y, w in weights.items()), F.lit(0.0))
    den = sum((F.when(F.col(_n(y)) > 0, F.lit(w)).otherwise(0.0) for y, w in weights.items()), F.lit(0.0))
    return F.try_divide(num, den)


def _subtype_stats(policy: DipPolicy) -> dict[str, Column]:
    """Per severity (MCC, CC) of a packet's latest year: the subtype's CV, the split CV drop and whether
    it is adopted, as columns `cv_<sev>`, `drop_<sev>`, `adopted_<sev>` (a step of their own, so the
    subtype structs refer to them instead of repeating the expressions).

    Adopted when the packet has > packet_cases_above latest-year cases, the subtype >
    subtype_cases_above, and splitting it off lowers the CV by at least cv_drop_at_least, where the
    split CV is the case-weighted mean of the subtype's CV and the rest's (drop = 1 - split / packet CV)."""
    cfg = policy.subtypes
    p_n, p_sum, p_sq = F.col("n_latest"), F.col("cost_latest"), F.col("sq_latest")
    out = {}
    for sev, _ in SEVERITIES:
        n, s, q = F.col(f"n_{sev}"), F.col(f"cost_{sev}"), F.col(f"sq_{sev}")
        r_n = p_n - n
        cv_j, cv_r = cv(n, s, q), cv(r_n, p_sum - s, p_sq - q)
        drop = 1 - F.try_divide((n * cv_j + r_n * cv_r) / p_n, cv(p_n, p_sum, p_sq))
        out[f"cv_{sev}"], out[f"drop_{sev}"] = cv_j, drop
        out[f"adopted_{sev}"] = ((F.col("kind") == "core") & (p_n > cfg.packet_cases_above)
                                 & (n > cfg.subtype_cases_above)
                                 & F.coalesce(drop >= cfg.cv_drop_at_least, F.lit(False)))
    return out


def _subtypes() -> Column:
    """The adopted subtypes (columns of _subtype_stats) as the catalogue's array, null when none;
    coefficient = m_j / M_packet (S1 p.64: latest-year means)."""
    subs = [F.when(F.col(f"adopted_{sev}"), F.struct(
        F.lit(name).alias("subtype"), F.lit(sev).alias("severity"), F.col(f"n_{sev}").cast("long").alias("n_cases"),
        (F.col(f"cost_{sev}") / F.col(f"n_{sev}")).alias("mean_cost"), F.col(f"cv_{sev}").alias("cv"),
        F.col(f"drop_{sev}").alias("cv_drop"),
        F.try_divide(F.col(f"cost_{sev}") / F.col(f"n_{sev}"), F.col("cost_latest") / F.col("n_latest"))
        .alias("coefficient"),
    )) for sev, name in SEVERITIES]
    listed = F.array_compact(F.array(*subs))
    return F.when(F.size(listed) > 0, listed)


def catalogue(packets: DataFrame, weights: dict[int, float], big_m: float, policy: DipPolicy,
              mean_packets: DataFrame | None = None) -> DataFrame:
    """One row per packet: kind, keys, attribute, n_cases (per year), weighted mean cost, CV, mean LOS,
    score = m_i / M x scale, adopted subtypes; and n_<year> per base year (for the point value, dropped
    before writing). `mean_packets` (packet_code, mean_cost from trimmed cases) replaces the means when
    trimming is on; counts always come from every case."""
    years, latest = sorted(weights), max(weights)
    first = {c: F.first(c) for c in ("kind", "diagnosis_key", "procedure_key", "attribute", "packet_code")}
    is_core = first["kind"] == "core"
    sums = [F.sum(c).cast("long").alias(c) for c in ("n", *map(_n, years), "n_MCC", "n_CC")]
    sums += [exact_sum(c).alias(c) for c in ("cost_sq", "los_sum", "sq_latest", *map(_cost, years),
                                             "cost_MCC", "sq_MCC", "cost_CC", "sq_CC")]
    agg = packets.groupBy("packet_code").agg(
        first["kind"].alias("kind"),
        F.when(is_core, first["diagnosis_key"]).otherwise(F.substring(first["diagnosis_key"], 1, 3))
        .alias("diagnosis_key"),
        F.when(is_core & (first["procedure_key"] != ""), first["procedure_key"]).alias("procedure_key"),
        F.when(is_core, first["attribute"]).otherwise(
            F.try_element_at(F.split(first["packet_code"], ":"), F.lit(-1))).alias("attribute"),
        F.count("*").alias("n_keys"), *sums,
    ).withColumns({"n_latest": F.col(_n(latest)), "cost_latest": F.col(_cost(latest)),
                   "mean_cost": weighted_mean(weights)})
    if mean_packets is not None:
        agg = agg.drop("mean_cost").join(mean_packets, "packet_code", "left")
    if policy.subtypes.enabled:
        agg = agg.withColumns(_subtype_stats(policy))
    by_year = F.filter(F.array(*[F.struct(F.lit(y).cast("int").alias("k"), F.col(_n(y)).alias("v"))
                                 for y in years]), lambda e: e["v"] > 0)
    total_cost = sum((F.col(_cost(y)) for y in years), F.lit(0.0))
    return agg.select(
        "packet_code", "kind", "diagnosis_key", "procedure_key", "attribute", "n_keys",
        F.col("n").alias("n_cases"), F.map_from_entries(by_year).alias("n_cases_by_year"), "mean_cost",
        cv(F.col("n"), total_cost, F.col("cost_sq")).alias("cv"), (F.col("los_sum") / F.col("n")).alias("mean_los"),
        (F.col("mean_cost") / F.lit(big_m) * policy.score_scale).alias("score"),
        F.col("packet_code").isin(*policy.primary_care_packets).alias("primary_care")
        if policy.primary_care_packets else F.lit(False).alias("primary_care"),
        (_subtypes() if policy.subtypes.enabled else F.lit(None).cast(SUBTYPE)).alias("subtypes"),
        *map(_n, years),
    )


def trimmed_means(stats: DataFrame, packets: DataFrame, weights: dict[int, float]) -> DataFrame:
    """(packet_code, mean_cost) from key statistics of trimmed cases, weighted as `weighted_mean`."""
    years = sorted(weights)
    keys = key_sums(stats, years).join(F.broadcast(packets.select(*KEYS, "packet_code")), list(KEYS))
    return keys.groupBy("packet_code").agg(
        *[F.sum(_n(y)).alias(_n(y)) for y in years], *[exact_sum(_cost(y)).alias(_cost(y)) for y in years],
    ).select("packet_code", weighted_mean(weights).alias("mean_cost"))


def year_totals(stats: DataFrame) -> dict[int, tuple[int, float]]:
    """Per discharge year: (cases, total cost), from the key statistics (small, on the driver)."""
    rows = stats.groupBy("year").agg(F.sum("n").alias("n"), exact_sum("cost_sum").alias("cost")).collect()
    return {r["year"]: (r["n"], r["cost"]) for r in rows if r["n"]}


def overall_mean(per_year: dict[int, tuple[int, float]], weights: dict[int, float]) -> float:
    """M: the weighted mean cost over all base-period cases, with the same 1:2:7 weighting over the
    years present: M = sum_y w_y mean_y / sum_y w_y."""
    present = [y for y in weights if y in per_year]
    return sum(weights[y] * per_year[y][1] / per_year[y][0] for y in present) / sum(weights[y] for y in present)


def year_start_point_value(cat: DataFrame, weights: dict[int, float], per_year: dict[int, tuple[int, float]],
                           extra: list[Column] = ()) -> tuple[float, dict]:
    """年初点值 = weighted total cost / weighted total score (S1 p.68-69, P1), years weighted 1:2:7: the
    total score of a year is the sum of its cases' packet scores (no coefficients). `extra` aggregates
    of the catalogue are computed in the same pass and returned as a dict."""
    present = [y for y in weights if y in per_year]
    totals = cat.agg(*[exact_sum(F.col(_n(y)) * F.col("score")).alias(f"_score_{y}") for y in present],
                     *extra).first().asDict()
    num = sum(weights[y] * per_year[y][1] for y in present)
    den = sum(weights[y] * totals.pop(f"_score_{y}") for y in present)
    return num / den, totals
