"""The packet catalogue: core packets from the region's own cases, comprehensive packets for the rest.

Why it is built from an aggregate: a case's packet is a function of its (diagnosis_key, procedure_key)
alone (core if that key has >= threshold base-period cases, else `<dx3>:<attribute>` where the
attribute is a function of the procedure key). So the cases are read once into `key_stats` (counts and
exact cost sums per key, year and severity: a table the size of the distinct keys), and everything
else here runs on that small table; the cases are read a second time only to be scored.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.dip.attributes import attribute_name, key_attributes
from jobs.dip.policy import DipPolicy
from jobs.exact import exact_sum

STATS = ("n", "cost_sum", "cost_sq", "los_sum")
KEYS = ("diagnosis_key", "procedure_key")  # procedure_key "" = no procedure (kept non-null for equi-joins)


def related_keys(cases: DataFrame, policy: DipPolicy) -> DataFrame:
    """`main_plus_related` (3.0): key = principal procedure + each other procedure whose presence raises
    the mean cost of the (diagnosis, principal procedure) cases by at least `related_cost_increase`
    (mean with it / mean without it - 1, both measured on the base-period cases)."""
    main = cases.withColumn("main", F.trim("principal_proc"))
    listed = F.transform(F.coalesce("other_procs", F.array()), lambda c: F.trim(c))
    related = F.filter(listed, lambda c: c.isNotNull() & (c != "") & (c != F.col("main")))
    others = main.select("diagnosis_key", "main", "cost", F.explode(F.array_distinct(related)).alias("rel"))
    base = main.groupBy("diagnosis_key", "main").agg(F.count("*").alias("n_all"), exact_sum("cost").alias("s_all"))
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


def packet_map(stats: DataFrame, attributes: DataFrame, policy: DipPolicy) -> DataFrame:
    """One row per (diagnosis_key, procedure_key): packet_code, kind, attribute (nulls match as keys)."""
    keys = stats.groupBy("diagnosis_key", "procedure_key").agg(F.sum("n").alias("key_cases"))
    ranks = key_attributes(keys.where(F.col("procedure_key") != "").select("procedure_key"), attributes)
    rank = F.coalesce("attribute_rank", F.lit(0))
    core = F.col("key_cases") >= policy.threshold
    core_code = F.when(F.col("procedure_key") == "", F.col("diagnosis_key")).otherwise(
        F.concat_ws(":", "diagnosis_key", "procedure_key"))
    return keys.join(F.broadcast(ranks), "procedure_key", "left").select(
        "diagnosis_key", "procedure_key",
        F.when(core, core_code).otherwise(
            F.concat(F.substring("diagnosis_key", 1, 3), F.lit(":"), attribute_name(rank))).alias("packet_code"),
        F.when(core, "core").otherwise("comprehensive").alias("kind"),
        attribute_name(rank).alias("attribute"),
    )


def packet_year_stats(stats: DataFrame, packets: DataFrame) -> DataFrame:
    """Per (packet_code, year): n and exact sums, from the key stats."""
    joined = stats.join(F.broadcast(packets.select(*KEYS, "packet_code")), list(KEYS))
    return joined.groupBy("packet_code", "year").agg(
        F.sum("n").alias("n"), *[exact_sum(c).alias(c) for c in STATS[1:]])


def weighted_mean(year_stats: DataFrame, weights: dict[int, float], by: list[str]) -> DataFrame:
    """Mean cost per `by` weighted across years, renormalised over the years with cases:
    m = sum_y w_y mean_y / sum_y w_y (y with n_y > 0)."""
    w = F.try_element_at(F.create_map(*[F.lit(x) for kv in weights.items() for x in kv]), F.col("year"))
    present = year_stats.where(F.col("n") > 0)
    return present.groupBy(*by).agg(
        (F.sum(w * F.col("cost_sum") / F.col("n")) / F.sum(w)).alias("mean_cost"),
        F.sum("n").alias("n_cases"),
        F.map_from_entries(F.sort_array(F.collect_list(F.struct(F.col("year").cast("int"), F.col("n").cast("long")))))
        .alias("n_cases_by_year"),
        F.sum("cost_sum").alias("cost_sum"), F.sum("cost_sq").alias("cost_sq"), F.sum("los_sum").alias("los_sum"),
    )


def cv(n: str = "n", s1: str = "cost_sum", s2: str = "cost_sq"):
    """Coefficient of variation (sample SD / mean) from n and the sums; null below 2 cases."""
    n_, s1_, s2_ = F.col(n).cast("double"), F.col(s1), F.col(s2)
    var = (s2_ - s1_ * s1_ / n_) / (n_ - 1)
    return F.when(F.col(n) > 1, F.sqrt(F.greatest(var, F.lit(0.0))) / (s1_ / n_))


def year_totals(stats: DataFrame) -> dict[int, tuple[int, float]]:
    """Per discharge year: (cases, total cost), from the key statistics (small, on the driver)."""
    rows = stats.groupBy("year").agg(F.sum("n").alias("n"), exact_sum("cost_sum").alias("cost")).collect()
    return {r["year"]: (r["n"], r["cost"]) for r in rows if r["n"]}


def overall_mean(per_year: dict[int, tuple[int, float]], weights: dict[int, float]) -> float:
    """M: the weighted mean cost over all base-period cases, with the same 1:2:7 weighting over the
    years present: M = sum_y w_y mean_y / sum_y w_y."""
    present = [y for y in weights if y in per_year]
    return sum(weights[y] * per_year[y][1] / per_year[y][0] for y in present) / sum(weights[y] for y in present)


def subtypes(stats: DataFrame, packets: DataFrame, latest: int, policy: DipPolicy) -> DataFrame:
    """Adopted severity subtypes of core packets: (packet_code, subtypes array<struct>).

    For each core packet and severity in (MCC -> severe/重度, CC -> moderate/中度), in the latest base year:
    adopted when the packet has > packet_cases_above cases, the subtype > subtype_cases_above, and
    splitting it off lowers the CV by at least cv_drop_at_least, where the split CV is the case-weighted
    mean of the subtype's CV and the rest's (1 - split / packet CV). Coefficient = m_j / M_packet (S1
    p.64: latest-year means)."""
    cfg = policy.subtypes
    core = packets.where(F.col("kind") == "core")
    last = stats.where(F.col("year") == latest).join(
        F.broadcast(core), ["diagnosis_key", "procedure_key"]).groupBy("packet_code", "severity").agg(
        F.sum("n").alias("n"), exact_sum("cost_sum").alias("cost_sum"), exact_sum("cost_sq").alias("cost_sq"))
    whole = Window.partitionBy("packet_code")
    tot = {c: F.sum(c).over(whole) for c in ("n", "cost_sum", "cost_sq")}
    cand = last.select(
        "packet_code", "severity", "n", "cost_sum", "cost_sq",
        tot["n"].alias("p_n"), tot["cost_sum"].alias("p_sum"), tot["cost_sq"].alias("p_sq"),
    ).where(F.col("severity").isin("MCC", "CC")).select(
        "*", (F.col("p_n") - F.col("n")).alias("r_n"), (F.col("p_sum") - F.col("cost_sum")).alias("r_sum"),
        (F.col("p_sq") - F.col("cost_sq")).alias("r_sq"),
    ).select(
        "*", cv().alias("cv_j"), cv("r_n", "r_sum", "r_sq").alias("cv_r"), cv("p_n", "p_sum", "p_sq").alias("cv_p"),
    )
    split = (F.col("n") * F.col("cv_j") + F.col("r_n") * F.col("cv_r")) / F.col("p_n")
    drop = 1 - split / F.col("cv_p")
    adopted = cand.select("*", drop.alias("cv_drop")).where(
        (F.col("p_n") > cfg.packet_cases_above) & (F.col("n") > cfg.subtype_cases_above)
        & (F.col("cv_drop") >= cfg.cv_drop_at_least) & F.col("cv_drop").isNotNull()
    )
    sub = F.struct(
        F.when(F.col("severity") == "MCC", "severe").otherwise("moderate").alias("subtype"),
        F.col("severity"), F.col("n").cast("long").alias("n_cases"),
        (F.col("cost_sum") / F.col("n")).alias("mean_cost"), F.col("cv_j").alias("cv"), "cv_drop",
        ((F.col("cost_sum") / F.col("n")) / (F.col("p_sum") / F.col("p_n"))).alias("coefficient"),
    )
    return adopted.groupBy("packet_code").agg(F.sort_array(F.collect_list(sub)).alias("subtypes"))


def catalogue(stats: DataFrame, packets: DataFrame, weights: dict[int, float], big_m: float,
              policy: DipPolicy, mean_stats: DataFrame | None = None) -> DataFrame:
    """One row per packet: kind, keys, attribute, n_cases (per year), weighted mean cost, CV, mean LOS,
    score = m_i / M x scale, adopted subtypes. `mean_stats` (trimmed key stats) replaces `stats` for the
    means when trimming is on; counts always come from every case."""
    year_stats = packet_year_stats(stats, packets)
    agg = weighted_mean(year_stats, weights, ["packet_code"])
    if mean_stats is not None:
        trimmed = weighted_mean(packet_year_stats(mean_stats, packets), weights, ["packet_code"])
        agg = agg.drop("mean_cost").join(trimmed.select("packet_code", "mean_cost"), "packet_code", "left")
    meta = packets.groupBy("packet_code").agg(
        F.first("kind").alias("kind"),
        F.when(F.first("kind") == "core", F.first("diagnosis_key")).otherwise(
            F.substring(F.first("diagnosis_key"), 1, 3)).alias("diagnosis_key"),
        F.when((F.first("kind") == "core") & (F.first("procedure_key") != ""), F.first("procedure_key"))
        .alias("procedure_key"),
        F.when(F.first("kind") == "core", F.first("attribute")).otherwise(
            F.try_element_at(F.split(F.first("packet_code"), ":"), F.lit(-1))).alias("attribute"),
        F.count("*").alias("n_keys"),
    )
    latest = max(weights)
    subs = subtypes(stats, packets, latest, policy) if policy.subtypes.enabled else None
    out = agg.join(meta, "packet_code").select(
        "packet_code", "kind", "diagnosis_key", "procedure_key", "attribute", "n_keys",
        F.col("n_cases").cast("long").alias("n_cases"), "n_cases_by_year", "mean_cost",
        cv("n_cases").alias("cv"), (F.col("los_sum") / F.col("n_cases")).alias("mean_los"),
        (F.col("mean_cost") / F.lit(big_m) * policy.score_scale).alias("score"),
        F.col("packet_code").isin(*policy.primary_care_packets).alias("primary_care")
        if policy.primary_care_packets else F.lit(False).alias("primary_care"),
    )
    if subs is not None:
        out = out.join(subs, "packet_code", "left")
    else:
        out = out.withColumn("subtypes", F.lit(None))
    return out


def year_start_point_value(stats: DataFrame, packets: DataFrame, cat: DataFrame, weights: dict[int, float],
                           per_year: dict[int, tuple[int, float]]) -> float:
    """年初点值 = weighted total cost / weighted total score (S1 p.68-69, P1), years weighted 1:2:7: the
    total score of a year is the sum of its cases' packet scores (no coefficients)."""
    scored = packet_year_stats(stats, packets).join(F.broadcast(cat.select("packet_code", "score")), "packet_code")
    totals = scored.groupBy("year").agg(F.sum(F.col("n") * F.col("score")).alias("score")).collect()
    score = {r["year"]: r["score"] for r in totals}
    present = [y for y in weights if y in per_year]
    num = sum(weights[y] * per_year[y][1] for y in present)
    den = sum(weights[y] * score[y] for y in present)
    return num / den
