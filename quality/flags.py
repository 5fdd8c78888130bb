"""Row-level quality flags: every rule of the catalogue evaluated for every case in one Spark pass.

Why this shape: a rule engine that filters the batch once per rule rescans millions of cases dozens of
times. Here each rule compiles to ONE boolean Column and all of them are evaluated in a single select,
inside each case's own row: no explode, no join and no shuffle of the cases (duplicates aside).

Rules about codes ask the same questions of every code, and a batch codes the same few thousand pack
codes over and over, so the questions are answered once per pack code: each code-level rule compiles
to a per-code condition for each code field, the pack's code table (quality/pack.py) is evaluated
against all of them in one small job, and each code gets a bit mask per field (bit i: it fails the
i-th code rule when coded there), plus its CC/MCC severity and exclusion tables. That table is a hashed
constant (jobs/hashed.py), so a case looks each of its codes up in its own row and ORs the masks; only a
code the pack does not know is evaluated against the rules (regular expressions) in the row. The case's
severity for the upcoding signal rides in the same mask, in two high bits. Duplicates need a window over
their keys. Nothing is filtered out: cases are never deleted, they get a list of failed rule ids.
"""

from __future__ import annotations

from datetime import date
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.hashed import HashedTable, distinct_non_null, hashed_table, let
from jobs.joins import materialised_lookup
from quality.catalogue import (
    CODE_CHECKS,
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

SEVERITY_BIT = {2: 1 << 61, 1: 1 << 60}  # the case's severity in the code mask, above the rule bits
_ARRAY_FIELDS = {f.name for f in FIELDS if f.kind == "codes"}
_STRING_FIELDS = {f.name for f in FIELDS if f.kind == "string"}
# per pack code: its mask in each code field, then what the severity of a secondary diagnosis needs
CODE_FACTS = T.StructType(
    [T.StructField(f, T.LongType()) for f in CODE_FIELDS]
    + [
        T.StructField("severity_rank", T.IntegerType()),
        T.StructField("exclusion_table", T.StringType()),
        T.StructField("excluding_tables", T.ArrayType(T.StringType())),
    ]
)


def _long(value: int | None) -> Column:
    return F.lit(value).cast("long")


def _any(conds: list[Column]) -> Column:
    return reduce(Column.__or__, conds) if conds else F.lit(False)


def _dup(rule_id: str) -> str:
    return f"_dup_{rule_id}"


# ------------------------------------------------------------------ code level (one condition per code)
def _code_level(check, formats: dict[str, str], pack: QualityPack, field: str, code: Column, kind: Column,
                mdc_mask: Column) -> Column | None:
    """Whether `code`, coded in `field`, fails code check `check` (None: the check ignores that field).

    `kind` and `mdc_mask` are the code's entries in the pack's code table (null for a code the pack
    does not have). A case fails the rule when one of its codes does (and the rule's `fact_gate`, if any).
    """

    def matches(pattern: str | None, fields) -> list[Column]:
        return [code.rlike(pattern)] if pattern and field in fields else []

    def only_in(mdcs: list[str]) -> Column:  # the pack places the code only in these MDCs
        return (mdc_mask != 0) & (mdc_mask.bitwiseAND(F.lit(~pack.mdc_mask(mdcs))) == 0)

    if isinstance(check, CodePattern):
        return (code != "") & ~code.rlike(formats[check.format]) if field in check.fields else None
    if isinstance(check, CodeInCodeset):
        if field not in check.fields:
            return None
        cond = code.rlike(formats[check.format])
        if check.exempt_pattern:
            cond &= ~code.rlike(check.exempt_pattern)
        return cond & ~F.coalesce(kind == check.code_kind, F.lit(False))
    if isinstance(check, PrincipalNotPattern):
        return code.rlike(check.pattern) if field == "principal_dx" else None
    if isinstance(check, SexConflict):
        conds = matches(check.diagnosis_pattern, DX_FIELDS) + matches(check.procedure_pattern, PX_FIELDS)
        conds += [only_in(check.mdcs)] if check.mdcs else []
        return _any(conds) if conds else None
    coded = matches(check.principal_pattern, ["principal_dx"]) + matches(check.diagnosis_pattern, DX_FIELDS)
    if coded and check.except_grouped_elsewhere:  # the pack groups it for other patients too: accepted
        elsewhere = F.coalesce(mdc_mask, _long(0)).bitwiseAND(F.lit(~pack.mdc_mask(check.mdcs))) != 0
        coded = [_any(coded) & ~elsewhere]
    conds = coded + ([only_in(check.mdcs)] if check.mdcs and field == "principal_dx" else [])
    return _any(conds) if conds else None


def _field_mask(catalogue: Catalogue, pack: QualityPack, field: str, code: Column, kind: Column,
                mdc_mask: Column) -> Column:
    """The bits of the code rules that `code` fails when coded in `field` (bit i: i-th code rule)."""
    bits = [_long(0)]
    for i, rule in enumerate(catalogue.code_rules()):
        cond = _code_level(rule.check, catalogue.formats, pack, field, code, kind, mdc_mask)
        if cond is not None:
            bits.append(F.when(F.coalesce(cond, F.lit(False)), _long(1 << i)).otherwise(_long(0)))
    return reduce(Column.bitwiseOR, bits)


def code_table(pack: QualityPack, catalogue: Catalogue) -> HashedTable:
    """The pack's codes with their masks per field (CODE_FACTS), as a hashed constant: one small job."""
    info = pack.code_info
    masks = [
        _field_mask(catalogue, pack, f, F.col("code"), F.col("code_kind"), F.col("mdc_mask")).alias(f)
        for f in CODE_FIELDS
    ]
    rows = info.select("code", *masks, "severity_rank", "exclusion_table", "excluding_tables").collect()
    return hashed_table({r[0]: tuple(r[1:]) for r in rows}, CODE_FACTS)


def code_mask(pack: QualityPack, catalogue: Catalogue, table: HashedTable) -> Column:
    """Per case: the OR of its codes' masks over all code fields, with SEVERITY_BIT of its worst CC/MCC
    secondary diagnosis that the principal diagnosis does not exclude. Null and empty codes fail nothing."""

    def of(field: str, code: Column, facts: Column) -> Column:  # a code the pack lacks: the rules, in the row
        unknown = _field_mask(catalogue, pack, field, code, F.lit(None).cast("string"), _long(None))
        return F.coalesce(facts[field], unknown)

    def per_case(principal: Column) -> Column:
        def severity(h: Column) -> Column:
            excluded = F.coalesce(F.array_contains(principal["excluding_tables"], h["exclusion_table"]), F.lit(False))
            rank = F.when(excluded, 0).otherwise(h["severity_rank"])
            return F.when(rank == 2, F.lit(SEVERITY_BIT[2])).when(rank == 1, F.lit(SEVERITY_BIT[1])).otherwise(_long(0))

        def field_mask(field: str) -> Column:
            if field == "principal_dx":
                return of(field, F.col(field), principal)
            if field not in _ARRAY_FIELDS:
                return of(field, F.col(field), table.lookup(F.col(field)))

            def add(acc: Column, code: Column) -> Column:
                def facts(h: Column) -> Column:
                    mask = acc.bitwiseOR(of(field, code, h))
                    return mask.bitwiseOR(severity(h)) if field == "secondary_dx" else mask

                return let(table.lookup(code), facts)

            return F.aggregate(F.coalesce(F.col(field), F.array().cast("array<string>")), _long(0), add)

        return reduce(Column.bitwiseOR, [field_mask(f) for f in CODE_FIELDS])

    return let(table.lookup(F.col("principal_dx")), per_case)


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

    Only cases whose keys hash the same as another case's are windowed (the hash count is a shuffle of
    one long per case; the window then sorts a few rows instead of the batch); the repeats, normally a
    small share, join back by broadcast (`jobs.joins`), so the wide case rows are never shuffled.
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
        keyed = scope.where(complete).withColumn("_h", F.xxhash64(*keys))
        # only keys that occur twice need the window: count 64-bit hashes of the keys first
        repeated = keyed.groupBy("_h").count().where("count > 1").select("_h")
        found = (
            keyed.join(F.broadcast(repeated), "_h", "left_semi").withColumn("_n", F.row_number().over(window))
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
    table = code_table(pack, catalogue)
    masked = _mark_duplicates(cases, history, catalogue).select("*", code_mask(pack, catalogue, table).alias("_codes"))
    code_bit = {r.id: 1 << i for i, r in enumerate(catalogue.code_rules())}

    def has(bit: int) -> Column:
        return F.col("_codes").bitwiseAND(F.lit(bit)) != 0

    def failed(rule) -> Column:
        if not isinstance(rule.check, CODE_CHECKS):  # answered per pack code, then OR-ed per case
            return rule_column(rule, as_of)
        gate = fact_gate(rule.check)
        return has(code_bit[rule.id]) if gate is None else gate & has(code_bit[rule.id])

    severity = F.when(has(SEVERITY_BIT[2]), "MCC").when(has(SEVERITY_BIT[1]), "CC").otherwise("NONE")
    flags = F.array(*[F.when(failed(r), F.lit(r.id)) for r in rules])
    failed_rules = distinct_non_null(flags, "string")  # rule ids are distinct: only the nulls go
    flagged = masked.select(*CASE_KEY, "batch_id", failed_rules.alias("failed_rules"), severity.alias("severity"))
    error_ids = [r.id for r in rules if r.severity == "error"]
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
