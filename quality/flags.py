"""Row-level quality flags: every rule of the catalogue evaluated for every case in one Spark pass.

Why this shape: a rule engine that filters the batch once per rule rescans millions of cases dozens of
times. Here each rule compiles to ONE boolean Column and all of them are evaluated in a single select.
Rules about codes need the pack, so the case codes are exploded once and broadcast-joined to one code
lookup (quality/pack.py); one aggregation per case then yields every code-level fact (and the case's
CC/MCC severity for the upcoding signal). The case-level rules are evaluated before the explode and
ride through that aggregation as booleans, so the facts never have to be joined back to the cases:
the only shuffle is the aggregation's, of one narrow row per case (the map side has already combined
a case's codes, which an explode leaves side by side in one partition). Duplicates need a window over
their keys. Nothing is filtered out: cases are never deleted, they get a list of failed rule ids.
"""

from __future__ import annotations

from datetime import date
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.joins import materialised_lookup
from quality.catalogue import (
    CODE_FIELDS,
    DX_FIELDS,
    PX_FIELDS,
    AgeConflict,
    Catalogue,
    CategoriesSum,
    CodeInCodeset,
    CodePattern,
    DateOrder,
    Duplicate,
    LosMatchesDates,
    NotFuture,
    Positive,
    PrincipalNotPattern,
    Required,
    SexConflict,
    VentLeLos,
)
from quality.pack import QualityPack
from schemas.discharge import CASE_KEY, FIELDS

SEVERITY_RANK = {"MCC": 2, "CC": 1}
SEVERITY_NAME = {2: "MCC", 1: "CC", 0: "NONE"}
_ARRAY_FIELDS = {f.name for f in FIELDS if f.kind == "codes"}
_STRING_FIELDS = {f.name for f in FIELDS if f.kind == "string"}


def _any(conds: list[Column]) -> Column:
    return reduce(Column.__or__, conds) if conds else F.lit(False)


def _pattern_on(fields, pattern: str | None) -> Column:
    """On an exploded code row: the code comes from one of `fields` and matches `pattern`."""
    if not pattern:
        return F.lit(False)
    return F.col("field").isin(*fields) & F.col("code").rlike(pattern)


def _only_in(mdcs: list[str]) -> Column:
    """The code lookup says the pack places this code (as a principal code) only in these MDCs."""
    placed = F.coalesce(F.col("code_mdcs"), F.array().cast("array<string>"))
    return (F.size(placed) > 0) & (F.size(F.array_except(placed, F.array(*map(F.lit, mdcs)))) == 0)


def _case_when(pairs, value: Column) -> Column:
    """CASE WHEN value = k THEN v ... for a small literal mapping."""
    items = list(pairs)
    out = F.when(value == items[0][0], F.lit(items[0][1]))
    for k, v in items[1:]:
        out = out.when(value == k, F.lit(v))
    return out


def _is_code_check(check) -> bool:
    """Checks about codes: answered per exploded code (with the pack's lookup), then OR-ed per case."""
    return isinstance(check, CodePattern | CodeInCodeset | PrincipalNotPattern | SexConflict | AgeConflict)


def _fact(rule_id: str) -> str:
    return f"_fact_{rule_id}"


def _dup(rule_id: str) -> str:
    return f"_dup_{rule_id}"


def _failed(rule_id: str) -> str:
    return f"_failed_{rule_id}"


def _gate(rule_id: str) -> str:
    return f"_gate_{rule_id}"


# ------------------------------------------------------------------ code level (one row per case code)
def _code_level(check, formats: dict[str, str]) -> Column | None:
    """The per-code condition of a code check (None: not a code check).

    Evaluated on the exploded codes (columns field, code, code_kind, code_mdcs) in generated code, and
    OR-ed per case; a case fails the rule when that fact holds (and the rule's `fact_gate`, if any).
    """
    if not _is_code_check(check):
        return None
    field, code = F.col("field"), F.col("code")
    if isinstance(check, CodePattern):
        return field.isin(*check.fields) & (code != "") & ~code.rlike(formats[check.format])
    if isinstance(check, CodeInCodeset):
        cond = field.isin(*check.fields) & code.rlike(formats[check.format])
        if check.exempt_pattern:
            cond &= ~code.rlike(check.exempt_pattern)
        return cond & ~F.coalesce(F.col("code_kind") == check.code_kind, F.lit(False))
    if isinstance(check, PrincipalNotPattern):
        return _pattern_on(["principal_dx"], check.pattern)
    if isinstance(check, SexConflict):
        cond = _pattern_on(DX_FIELDS, check.diagnosis_pattern) | _pattern_on(PX_FIELDS, check.procedure_pattern)
        return cond | _only_in(check.mdcs) if check.mdcs else cond
    cond = _pattern_on(["principal_dx"], check.principal_pattern) | _pattern_on(DX_FIELDS, check.diagnosis_pattern)
    return cond | ((field == "principal_dx") & _only_in(check.mdcs)) if check.mdcs else cond


def _exploded_codes(cases: DataFrame, carried: list[str]) -> DataFrame:
    """One row per (case, field, code) with the `carried` case columns, and one row with a null code
    for a case without codes (so every case reaches the per-case aggregation). Built with arrays_zip
    rather than a lambda so the whole projection stays in generated code (a lambda is evaluated row by
    row, with its inputs)."""
    def tagged(name: str) -> Column:
        codes = F.coalesce(F.col(name), F.array().cast("array<string>")) if name in _ARRAY_FIELDS \
            else F.array(F.col(name))
        return F.arrays_zip(F.array_repeat(F.lit(name), F.size(codes)).alias("field"), codes.alias("code"))

    return cases.select(
        *carried, "principal_dx", F.explode_outer(F.concat(*[tagged(f) for f in CODE_FIELDS])).alias("c")
    ).select(*carried, "principal_dx", "c.field", "c.code")


def code_facts(cases: DataFrame, pack: QualityPack, catalogue: Catalogue, carried: list[str]) -> DataFrame:
    """One row per case: its `carried` columns (constant per case, combined with max), the code-level
    fact of every code check, and the case's severity rank (2 MCC, 1 CC, 0 none) from secondary
    diagnoses after the pack's CC exclusions. Null and empty codes match nothing in the lookups."""
    codes = (
        _exploded_codes(cases, [*CASE_KEY, "batch_id", *carried])
        .join(F.broadcast(pack.code_info), "code", "left")
        .join(
            F.broadcast(pack.exclusions.withColumn("excluded", F.lit(True))),
            ["exclusion_table", "principal_dx"],
            "left",
        )
    )
    rank = F.coalesce(_case_when(SEVERITY_RANK.items(), F.col("code_severity")), F.lit(0))
    counts = (F.col("field") == "secondary_dx") & F.col("excluded").isNull()
    aggs = [F.max(F.when(counts, rank).otherwise(0)).alias("severity_rank")]
    aggs += [F.max(c).alias(c) for c in carried]
    for rule in catalogue.rules:
        cond = _code_level(rule.check, catalogue.formats)
        if cond is not None:
            aggs.append(F.max(F.coalesce(cond, F.lit(False))).alias(_fact(rule.id)))
    return codes.groupBy(*CASE_KEY, "batch_id").agg(*aggs)


# ------------------------------------------------------------------ case level (one Column per rule)
def _age_in_days() -> Column:
    return F.when(F.col("age_years") >= 1, F.col("age_years") * 365).when(
        F.col("age_years") == 0, F.coalesce(F.col("age_days"), F.lit(0)))


def _sex_is(check: SexConflict) -> Column:
    return F.coalesce(F.col("sex") == check.sex, F.lit(False))


def _age_outside(check: AgeConflict) -> Column:
    ages = []
    if check.min_age_years is not None:
        ages.append(F.col("age_years") < check.min_age_years)
    if check.max_age_years is not None:
        ages.append(F.col("age_years") > check.max_age_years)
    if check.max_age_days is not None:
        ages.append(_age_in_days() > check.max_age_days)
    return F.coalesce(_any(ages), F.lit(False))


def fact_gate(check) -> Column | None:
    """For a code check that also depends on the case (sex, age), the case-level condition under which
    its code fact fails the case; None when the fact alone decides, or for other checks."""
    if isinstance(check, SexConflict):
        return _sex_is(check)
    if isinstance(check, AgeConflict):
        return _age_outside(check)
    return None


def rule_column(rule, as_of: date) -> Column:
    """True when the case fails a rule that is not about codes (those: `_code_level` and `fact_gate`).
    Missing inputs never fail a rule other than `required`."""
    check = rule.check
    if isinstance(check, Required):
        missing = [
            F.col(f).isNull() | (F.trim(F.col(f)) == "") if f in _STRING_FIELDS else F.col(f).isNull()
            for f in check.fields
        ]
        return _any(missing)
    if isinstance(check, DateOrder):
        return F.coalesce(F.col(check.end) < F.col(check.start), F.lit(False))
    if isinstance(check, LosMatchesDates):
        days = F.datediff(F.col(check.end), F.col(check.start))
        return F.coalesce((days >= 0) & (F.col(check.los) != F.greatest(days, F.lit(1))), F.lit(False))
    if isinstance(check, NotFuture):
        return _any([F.coalesce(F.col(f) > F.lit(as_of), F.lit(False)) for f in check.fields])
    if isinstance(check, Positive):
        return F.coalesce(F.col(check.field) <= 0, F.lit(False))
    if isinstance(check, CategoriesSum):
        present = _any([F.col(c).isNotNull() for c in check.categories])
        total = reduce(Column.__add__, [F.coalesce(F.col(c), F.lit(0.0)) for c in check.categories])
        allowed = F.greatest(F.lit(check.tolerance_abs), F.abs(F.col(check.total)) * check.tolerance_rel)
        return F.coalesce(present & (F.abs(total - F.col(check.total)) > allowed), F.lit(False))
    if isinstance(check, Duplicate):
        return F.coalesce(F.col(_dup(rule.id)), F.lit(False))
    if isinstance(check, VentLeLos):
        stay = F.greatest(F.coalesce(F.col(check.los), F.datediff(F.col(check.end), F.col(check.start))), F.lit(1))
        return F.coalesce(F.col(check.hours) > stay * 24, F.lit(False))
    raise AssertionError(f"rule {rule.id}: no case-level compiler for check kind {check.kind}")


def _mark_duplicates(cases: DataFrame, history: DataFrame | None, catalogue: Catalogue) -> DataFrame:
    """Add `_dup_<rule>`: the case repeats an earlier case on the rule's keys (the first one stays clean).

    Only the key and ordering columns are windowed (a narrow shuffle); the repeats, normally a small
    share, join back by broadcast (`jobs.joins`), so the wide case rows are never shuffled.
    `history` (earlier batches of silver) is consulted only for keys that occur in this batch, so a
    batch is compared with what came before without windowing the whole lake.
    """
    rules = [r for r in catalogue.rules if isinstance(r.check, Duplicate)]
    if not rules:
        return cases
    needed = sorted({*CASE_KEY, *[c for r in rules for c in (*r.check.keys, *r.check.order)]})
    scope = cases.select(*needed).withColumn("_current", F.lit(True))
    if history is not None:
        keys = sorted({k for r in rules for k in r.check.keys})
        earlier = history.join(cases.select(*keys).distinct(), keys, "left_semi").select(*needed)
        scope = scope.unionByName(earlier.withColumn("_current", F.lit(False)))
    repeats = None
    for rule in rules:
        keys = [F.col(k) for k in rule.check.keys]
        window = Window.partitionBy(*keys).orderBy(*[F.col(c).asc_nulls_last() for c in rule.check.order])
        complete = reduce(Column.__and__, [k.isNotNull() for k in keys])
        found = (
            scope.where(complete).withColumn("_n", F.row_number().over(window))
            .where("_current AND _n > 1").select(*CASE_KEY, F.lit(True).alias(_dup(rule.id)))
        )
        repeats = found if repeats is None else repeats.join(found, list(CASE_KEY), "full")
    return cases.join(materialised_lookup(repeats), list(CASE_KEY), "left")


def flag_cases(
    cases: DataFrame,
    pack: QualityPack,
    catalogue: Catalogue,
    as_of: date,
    history: DataFrame | None = None,
) -> DataFrame:
    """silver.case_quality rows (without run_id) for `cases` (silver.discharges rows).

    Columns: region_code, hospital_id, case_id, batch_id, failed_rules array<string> (catalogue
    order), worst_severity (error | warning | null), priceable, severity (MCC | CC | NONE).
    """
    rules = catalogue.rules
    gates = {r.id: gate for r in rules if (gate := fact_gate(r.check)) is not None}
    carried = {_gate(rule_id): gate for rule_id, gate in gates.items()}
    carried |= {_failed(r.id): rule_column(r, as_of) for r in rules if not _is_code_check(r.check)}
    case_level = _mark_duplicates(cases, history, catalogue).select(
        *CASE_KEY, "batch_id", "principal_dx", *CODE_FIELDS, *[c.alias(name) for name, c in carried.items()]
    )
    facts = code_facts(case_level, pack, catalogue, list(carried))

    def failed(rule) -> Column:
        if not _is_code_check(rule.check):
            return F.col(_failed(rule.id))
        if rule.id in gates:
            return F.col(_gate(rule.id)) & F.col(_fact(rule.id))
        return F.col(_fact(rule.id))

    flags = F.array(*[F.when(failed(r), F.lit(r.id)) for r in rules])
    error_ids = [r.id for r in rules if r.severity == "error"]
    rank = F.col("severity_rank")
    flagged = facts.select(
        *CASE_KEY, "batch_id",
        F.array_compact(flags).alias("failed_rules"),
        _case_when(SEVERITY_NAME.items(), rank).alias("severity"),
    )
    has_error = (
        F.arrays_overlap(F.col("failed_rules"), F.array(*map(F.lit, error_ids))) if error_ids else F.lit(False)
    )
    worst = F.when(has_error, F.lit("error")).when(F.size("failed_rules") > 0, F.lit("warning"))
    return flagged.select(
        *CASE_KEY, "batch_id", "failed_rules",
        worst.cast("string").alias("worst_severity"),
        (~has_error).alias("priceable"),
        "severity",
    )
