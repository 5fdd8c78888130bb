"""The grouper: every case of silver.discharges -> MDC -> ADRG -> DRG, driven by a definitions pack.

Rule order (CHS-DRG 1.1 technical specification, as tables in the pack):
1. pre-MDC in `rules.pre_mdc_order`: MDCA (transplants and other listed procedures; invasive
   ventilation >= `ventilation.min_hours`), the newborn MDC (age_days within `newborn.max_age_days`,
   birth-weight bands; infant ADRGs for 29 days .. 1 year), MDCY (principal diagnosis in its lists),
   MDCZ (trauma principal diagnosis plus significant trauma at >= `min_sites` body sites);
2. otherwise the MDC of the principal diagnosis (the MDCs of the ADRGs that list it as principal);
3. within the MDC: surgical ADRGs (any coded procedure in the ADRG's list), then non-OR procedure
   ADRGs, then medical ADRGs by principal diagnosis, each family in ADRG priority order. An ADRG that
   lists both diagnoses and procedures needs one of each (combined ADRGs such as BB1, FK1);
4. severity: the worst CC/MCC among secondary diagnoses, except those whose exclusion table lists the
   principal diagnosis; the DRG is the ADRG's suffix for it (1 MCC, 3 CC, 5 none, 9 unsplit; a missing
   suffix falls back per `rules.split_fallback`, e.g. MCC in an ADRG split only 3/5 gives x3).
Ungroupable: an unknown principal diagnosis gives `0000`; a case whose ADRG is medical although an
operating-room procedure (a code of any surgical ADRG) was coded gives `<MDC letter>QY`; a case whose
MDC has no ADRG it fits gives `0000` with the reason.

Deterministic tie-breaks, documented because the reference tables need them: ~95 diagnoses are listed
in two MDCs (burns T20.* in MDCC and MDCW, some tumours in MDCR and a body system). All their MDCs are
candidates and the single best ADRG wins by (pre-MDC tier, surgical < non-OR < medical, MDC order in
mdc.csv, ADRG priority): a coded procedure decides the MDC when it fits one of them, otherwise the first
MDC in pack order. Dagger-asterisk pairs (`E11.400x021+G63.2*`): a pair the pack lists is used as
is; any other pair is grouped by its dagger (etiology) part, the part before `+`.

Why this shape: each case is grouped inside its own row, so grouping needs no shuffle. The principal
diagnosis is one broadcast join (its MDCs, its best diagnosis ADRG per condition, the exclusion tables
that list it, its trauma body site, all worked out on the driver); every procedure and secondary
diagnosis is looked up in a hashed constant table (jobs/hashed.py) from within the row's arrays, and
the precedence of candidates reduces to integers: the best ADRG rank * 256 + procedure position picks
the procedure ADRG, max over severity * 65536 + (65535 - position) picks the severity. Exploding codes
into rows and aggregating them back per case, the obvious alternative, costs a shuffle of every case
with all its columns. No Python runs per case. The lambdas over the code lists are the one part Spark
4.1 evaluates interpreted, and a projection holding one is not compiled whole-stage, so they all sit in
one projection: the scan and the join before it, and the decision after it, each compile as a whole.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs import lake
from jobs.definitions import Pack, load_pack
from jobs.errors import PipelineError
from jobs.hashed import HashedTable, constant_array, distinct_non_null, hashed_table, let
from jobs.names import NAMES_TABLE, names_of, write_pack_names
from jobs.night_plan import BatchKey, batch_predicate
from jobs.runs import new_run_id
from jobs.spark import get_spark, parse_conf
from schemas.discharge import CASE_KEY, GROUPED_COPIED

OUTPUT = (
    *CASE_KEY,
    "batch_id",
    "mdc",
    "adrg",
    "drg",
    "severity",
    "severity_code",
    "rule_path",
    "ungroupable_reason",
    "pack_name",
    "pack_version",
    "payer",
    "age_years",
    "sex",
    "los_days",
    "total_cost",
    "discharge_date",
)
KIND_RANK = {"surgical": 0, "non_or": 1, "medical": 2}
SEV_RANK = {"NONE": 0, "CC": 1, "MCC": 2}
SEV_NAME = {r: n for n, r in SEV_RANK.items() if r}
PROC_TOP = 1 << 42  # above every rank * 256 + position (see group_cases.candidate_key)

# A candidate ADRG; structs compare field by field, so the field order *is* the precedence.
CAND = T.StructType(
    [
        T.StructField("ord", T.IntegerType()),  # rank of the ADRG in the order below (compared as a number)
        T.StructField("tier", T.IntegerType()),  # position in pre_mdc_order; body systems after
        T.StructField("kind_rank", T.IntegerType()),
        T.StructField("mdc_order", T.IntegerType()),
        T.StructField("priority", T.IntegerType()),
        T.StructField("adrg", T.StringType()),  # unique: fields below never change the order of ADRGs
        T.StructField("via", T.StringType()),  # the code that matched (procedure, or the pdx)
        T.StructField("mdc", T.StringType()),
        T.StructField("kind", T.StringType()),
        T.StructField("cond", T.StringType()),  # none | pdx | newborn | infant | trauma
        T.StructField("bw_lo", T.IntegerType()),
        T.StructField("bw_hi", T.IntegerType()),
    ]
)

# A candidate ADRG as its eligibility check needs it, in numbers only (string comparisons inside the
# interpreted lambdas that test candidates cost more than the whole lookup): the ADRG's rank, whether a
# combined ADRG also needs the principal diagnosis in its list, its MDC as one bit of a mask, the
# condition (COND) and the newborn weight band.
COND = {"none": 0, "pdx": 1, "newborn": 2, "infant": 3, "trauma": 4}
CAND_KEY = T.StructType(
    [
        T.StructField("ord", T.IntegerType()),
        T.StructField("needs_dx", T.BooleanType()),
        T.StructField("mdc_bit", T.LongType()),
        T.StructField("cond", T.IntegerType()),
        T.StructField("bw_lo", T.IntegerType()),
        T.StructField("bw_hi", T.IntegerType()),
    ]
)

PROC_INFO = T.StructType(
    [
        T.StructField("is_or", T.BooleanType()),  # an operating-room procedure: a code of a surgical ADRG
        T.StructField("cands", T.ArrayType(CAND_KEY)),
    ]
)
SEVERITY_INFO = T.StructType(
    [
        T.StructField("sev_rank", T.IntegerType()),
        T.StructField("exclusion_id", T.IntegerType()),
        T.StructField("sites", T.IntegerType()),  # trauma body site bits (`Lookups.site_bits`)
    ]
)


class Lookups:
    """Broadcast tables and constants derived from a pack (driver side, once per run)."""

    def __init__(self, pack: Pack):
        rules = pack.manifest.rules
        self.pack = pack
        self.rules = rules
        mdc_order = {r[0]: i for i, r in enumerate(pack.rows["mdc"])}
        mdc_kind = {r[0]: r[2] for r in pack.rows["mdc"]}
        tiers = {m: i for i, m in enumerate(rules.pre_mdc_order)}
        body_tier = len(tiers)
        newborn_mdc = rules.newborn.mdc if rules.newborn else None
        trauma_mdc = rules.multiple_trauma.mdc if rules.multiple_trauma else None
        infant = set(rules.newborn.infant_adrgs) if rules.newborn else set()
        bands = rules.newborn.weight_bands if rules.newborn else {}

        roles: dict[str, set] = {}
        for adrg, role, _ in pack.rows["adrg_members"]:
            roles.setdefault(adrg, set()).add(role)
        self.adrg: dict[str, tuple] = {}
        for adrg, _name, mdc, kind, priority in pack.rows["adrg"]:
            if mdc == newborn_mdc:
                cond = "infant" if adrg in infant else "newborn"
            elif mdc == trauma_mdc:
                cond = "trauma"
            elif mdc_kind.get(mdc) == "pre_mdc":
                cond = "none"
            else:
                cond = "pdx"
            lo, hi = bands.get(adrg, (None, None))
            self.adrg[adrg] = (
                tiers.get(mdc, body_tier),
                KIND_RANK[kind],
                mdc_order[mdc],
                priority,
                adrg,
                None,
                mdc,
                kind,
                cond,
                lo,
                hi,
            )
        # The precedence order as one integer per ADRG (its rank): candidates compare as numbers, and the
        # rank indexes the constant arrays of candidates and DRGs.
        for i, adrg in enumerate(sorted(self.adrg, key=lambda a: self.adrg[a][:5])):
            self.adrg[adrg] = (i, *self.adrg[adrg])
        self.roles = roles

        spark = pack.spark
        dx_adrgs: dict[str, list] = {}
        for adrg, role, code in pack.rows["adrg_members"]:
            if role == "principal_diagnosis":
                dx_adrgs.setdefault(code, []).append(adrg)
        diagnoses = {r[0] for r in pack.rows["codes"] if r[1] == "diagnosis"} | set(dx_adrgs)
        if len(mdc_order) > 63:
            raise PipelineError(f"pack {pack.name}: {len(mdc_order)} MDCs, the grouper handles at most 63")
        self.mdc_bit = {m: 1 << i for m, i in mdc_order.items()}
        self.exclusion_id = {t: i for i, t in enumerate(sorted({t for t, _ in pack.rows["cc_exclusions"]}))}
        excl_ids: dict[str, list] = {}
        for table, pdx in pack.rows["cc_exclusions"]:
            excl_ids.setdefault(pdx, []).append(self.exclusion_id[table])
        dx_rows = []
        for code in sorted(diagnoses):
            adrgs = sorted(dx_adrgs.get(code, []))
            cands = [self.cand_key(a) for a in adrgs if "principal_procedure" not in roles[a]]
            mdcs = sorted({self.adrg[a][7] for a in adrgs}, key=lambda m: mdc_order[m])
            mask = sum(self.mdc_bit[m] for m in mdcs) if mdcs else None
            first = {  # the best candidate of each condition that does not depend on the newborn's weight
                cond: min((c[0] for c in cands if c[3] in conds), default=None)
                for cond, conds in (
                    ("plain", (COND["none"], COND["pdx"])),
                    ("infant", (COND["infant"],)),
                    ("trauma", (COND["trauma"],)),
                )
            }
            newborn = [c for c in cands if c[3] == COND["newborn"]] or None
            sites = self.site_bits(code)
            dx_rows.append(
                (
                    code,
                    mdcs,
                    mask,
                    sorted(self.adrg[a][0] for a in adrgs),
                    first["plain"],
                    first["infant"],
                    first["trauma"],
                    newborn,
                    sorted(excl_ids.get(code, [])),
                    sites,
                )
            )
        self.dx_info = spark.createDataFrame(  # rows built here: no per-row schema verification
            dx_rows,
            T.StructType(
                [
                    T.StructField("pdx", T.StringType()),
                    T.StructField("dx_mdcs", T.ArrayType(T.StringType())),  # for the explanation
                    T.StructField("dx_mdc_mask", T.LongType()),
                    T.StructField("dx_adrg_ords", T.ArrayType(T.IntegerType())),
                    T.StructField("dx_plain", T.IntegerType()),  # rank of the best unconditional candidate
                    T.StructField("dx_infant", T.IntegerType()),  # ... of an infant ADRG
                    T.StructField("dx_trauma", T.IntegerType()),  # ... of a multiple-trauma ADRG
                    T.StructField("dx_newborn", T.ArrayType(CAND_KEY)),  # newborn ADRGs, by weight band
                    T.StructField("excl_ids", T.ArrayType(T.IntegerType())),  # exclusion tables listing it
                    T.StructField("dx_sites", T.IntegerType()),  # trauma body site bits
                ]
            ),
            verifySchema=False,
        )
        # per procedure: whether it is an operating-room procedure (a code of a surgical ADRG) and the
        # ADRGs it can lead to; per diagnosis: its severity as a secondary diagnosis and exclusion table
        procs: dict[str, tuple[bool, list]] = {}
        for adrg, role, code in pack.rows["adrg_members"]:
            if role == "principal_procedure":
                is_or, cands = procs.setdefault(code, (False, []))
                cands.append(self.cand_key(adrg))
                procs[code] = (is_or or self.adrg[adrg][8] == "surgical", cands)
        self.procs = hashed_table({code: (is_or, sorted(cands)) for code, (is_or, cands) in procs.items()}, PROC_INFO)
        self.severities = hashed_table(
            {
                code: (SEV_RANK[sev], self.exclusion_id.get(table), self.site_bits(code))
                for code, kind, _n, sev, table in pack.rows["codes"]
                if kind == "diagnosis" and sev in ("CC", "MCC")
            },
            SEVERITY_INFO,
        )
        # by ADRG rank: the candidate (CAND), and the DRG at index rank * 3 + severity rank (SEV_RANK)
        by_ord = sorted(self.adrg.values())
        self.by_ord = constant_array(by_ord, CAND)
        drgs = self._drg_map()
        self.drg_by_ord = constant_array(
            [drgs.get((v[5], sev)) for v in by_ord for sev in sorted(SEV_RANK, key=SEV_RANK.get)], T.StringType()
        )
        # dagger-asterisk pairs the pack lists as codes of their own (a hashed set: a literal list of a
        # thousand codes costs a py4j call per code to build, and a scan per lookup inside a lambda)
        self.plus_codes = hashed_table({c: True for c in diagnoses if "+" in c}, T.BooleanType())

    def site_bits(self, code: str) -> int:
        """The trauma body site of a diagnosis code as one bit: bit i when it starts with a prefix of
        the i-th site of `rules.multiple_trauma` (the last such site if several); 0 for none."""
        bits = 0
        for i, prefixes in enumerate(self.rules.multiple_trauma.sites.values() if self.rules.multiple_trauma else []):
            if code.startswith(tuple(prefixes)):
                bits = 1 << i
        return bits

    def cand_key(self, adrg: str) -> tuple:
        """CAND_KEY of an ADRG."""
        a = self.adrg[adrg]
        needs_dx = "principal_diagnosis" in self.roles[adrg] and "principal_procedure" in self.roles[adrg]
        return (a[0], needs_dx, self.mdc_bit[a[7]], COND[a[9]], a[10], a[11])

    def _drg_map(self) -> dict[tuple[str, str], str]:
        """(adrg, severity) -> DRG, applying the unsplit rule and the pack's suffix fallbacks."""
        suffixes: dict[str, dict[str, str]] = {}
        for drg, adrg, suffix, _n, _w in self.pack.rows["drg"]:
            suffixes.setdefault(adrg, {})[suffix] = drg
        out = {}
        for adrg, have in suffixes.items():
            for sev, order in self.rules.split_fallback.items():
                pick = have.get("9") or next((have[s] for s in order if s in have), None)
                if pick:
                    out[(adrg, sev)] = pick
        return out


def _dagger(c: Column, plus_codes: HashedTable) -> Column:
    """An unlisted dagger-asterisk pair becomes its dagger part (see module docstring)."""
    return F.when(c.contains("+") & plus_codes.lookup(c).isNull(), F.split(c, r"\+").getItem(0)).otherwise(c)


def _normalize(code: Column, plus_codes: HashedTable) -> Column:
    """A principal diagnosis as coded: trimmed, empty as null, then `_dagger`. Secondary diagnoses
    arrive trimmed and non-empty from ingest and only need `_dagger`."""
    return _dagger(F.nullif(F.trim(code), F.lit("")), plus_codes)


def _in_band(c: Column) -> Column:
    """Whether the birth weight is in the weight band of candidate `c` (a CAND_KEY); true without a band."""
    bw = F.col("birth_weight_g")
    return (c["bw_lo"].isNull() & c["bw_hi"].isNull()) | (
        bw.isNotNull() & (c["bw_lo"].isNull() | (bw >= c["bw_lo"])) & (c["bw_hi"].isNull() | (bw <= c["bw_hi"]))
    )


def _eligible(c: Column) -> Column:
    """Whether the case may enter candidate ADRG `c` (a CAND_KEY) led to by a procedure: its MDC is one
    of the principal diagnosis's, or the case meets the pre-MDC condition (multiple trauma is decided
    per case, after the lookups: see `_decide`)."""
    return (
        F.when(c["cond"] == COND["pdx"], F.col("dx_mdc_mask").bitwiseAND(c["mdc_bit"]) != 0)
        .when(c["cond"] == COND["newborn"], F.col("_newborn") & _in_band(c))
        .when(c["cond"] == COND["infant"], F.col("_infant"))
        .otherwise(F.lit(True))
    )


def group_cases(cases: DataFrame, pack: Pack, lookups: Lookups | None = None) -> DataFrame:
    """Group any DataFrame with the canonical columns; one output row per input case (columns OUTPUT).
    A format-2 rule pack is evaluated by jobs.schemes.evaluate (`lookups` is then its compiled form)."""
    if getattr(pack, "format", 1) == 2:
        from jobs.schemes.evaluate import group_rule_pack

        return group_rule_pack(cases, pack, lookups)
    lk = lookups or Lookups(pack)
    rules = lk.rules
    if "batch_id" not in cases.columns:
        cases = cases.withColumn("batch_id", F.lit(None).cast("string"))
    nb = rules.newborn
    age_years0 = F.coalesce(F.col("age_years"), F.lit(0)) == 0
    days = F.col("age_days")
    trauma = rules.multiple_trauma

    base = (
        cases.select(
            *CASE_KEY,
            *GROUPED_COPIED,
            "age_days",
            "birth_weight_g",
            "vent_hours",
            F.trim(F.col("principal_dx")).alias("pdx_raw"),
            _normalize(F.col("principal_dx"), lk.plus_codes).alias("pdx"),
            F.coalesce(F.col("secondary_dx"), F.array()).alias("sdx"),  # dagger-normalised where used
            # list elements arrive trimmed and non-empty from ingest; only the principal may be empty
            distinct_non_null(
                F.concat(F.array(F.trim(F.col("principal_proc"))), F.coalesce(F.col("other_procs"), F.array())),
                "string",
                drop=("",),
            ).alias("procs"),
        )
        .withColumn("_newborn", (days.isNotNull() & (days <= nb.max_age_days) & age_years0) if nb else F.lit(False))
        .withColumn(
            "_infant",
            (days.isNotNull() & (days > nb.max_age_days) & (days <= nb.infant_max_age_days) & age_years0)
            if nb
            else F.lit(False),
        )
        .join(F.broadcast(lk.dx_info), "pdx", "left")
        .withColumn("_pdx_known", F.col("dx_mdcs").isNotNull())
        .withColumn("_pdx_trauma", F.coalesce(F.col("dx_sites") > 0, F.lit(False)))
    )

    # every code looked up once, in the case's own row (jobs/hashed.py); one lambda per code list
    # computes each code's contribution as numbers, reduced per case without lambdas
    def dx_ok(c: Column) -> Column:  # a combined ADRG also needs the principal diagnosis in its list
        return ~c["needs_dx"] | F.coalesce(F.array_contains(F.col("dx_adrg_ords"), c["ord"]), F.lit(False))

    def candidate_key(c: Column, pos: Column) -> Column:
        """One number for candidate `c` of the procedure at `pos`, null where the case may not enter it.
        With key = rank * 256 + position, a body-system or pre-MDC candidate gives PROC_TOP - key (> 0)
        and a multiple-trauma one key - PROC_TOP / 2 (< 0), so that the max and the min over all the
        case's candidates, outside the lambdas, are the best of each."""
        key = c["ord"].cast("long") * 256 + pos
        return F.when(
            dx_ok(c), F.when(c["cond"] == COND["trauma"], key - PROC_TOP // 2).when(_eligible(c), PROC_TOP - key)
        )

    def per_procedure(p: Column, i: Column) -> Column:
        def facts(h: Column) -> Column:  # an unknown code has no candidates (flatten needs an array)
            cands = F.coalesce(h["cands"], F.array().cast(T.ArrayType(CAND_KEY)))
            keys = F.transform(cands, lambda c: candidate_key(c, i))
            return F.struct(keys.alias("keys"), F.when(h["is_or"], i).alias("orp"))

        return let(lk.procs.lookup(p), facts)

    def diagnosis_key(d: Column, h: Column, i: Column) -> Column:
        """One number per secondary diagnosis `d` (dagger-normalised), so that array_max and array_min
        outside the lambda find both the severity and the cancelled code. A counted CC/MCC gives
        severity * 65536 + (65535 - position): the max is the worst severity, then the first coded. One
        cancelled because its exclusion table lists the principal diagnosis gives -1 - that. Anything
        else gives null, including the principal diagnosis coded again."""
        key = h["sev_rank"].cast("long") * 65536 + (65535 - i)
        excluded = F.coalesce(F.array_contains(F.col("excl_ids"), h["exclusion_id"]), F.lit(False))
        return F.when(h.isNotNull() & (d != F.col("pdx")), F.when(excluded, -1 - key).otherwise(key))

    def sdx(d: Column) -> Column:
        """A secondary diagnosis as coded in the list (ingest trims it), dagger-normalised. The severity
        lambda calls this twice per code rather than wrapping it in another `let`: its `contains("+")`
        test fails at once for nearly every code (a trade-off reasoned, not measured)."""
        return _dagger(d, lk.plus_codes)

    # All lambdas in one projection, the only one Spark cannot compile as a whole (the rest of the
    # query is one generated stage before it and one after); each is only evaluated where it can matter.
    newborn_pick = F.array_min(
        F.transform(F.filter("dx_newborn", _in_band), lambda c: c["ord"])  # _newborn: age checked by the caller
    )
    hits = [
        F.transform("procs", per_procedure).alias("_ph"),
        F.transform("sdx", lambda d, i: let(lk.severities.lookup(sdx(d)), lambda h: diagnosis_key(sdx(d), h, i))).alias(
            "_sk"
        ),
        F.when(F.col("_newborn"), newborn_pick).alias("dx_newborn_pick"),
    ]
    if trauma:  # body sites of the CC/MCC secondary diagnoses, needed for a trauma principal only
        bits = F.aggregate(
            "sdx",
            F.lit(0),
            lambda acc, d: acc.bitwiseOR(F.coalesce(lk.severities.lookup(sdx(d))["sites"], F.lit(0))),
        )
        hits.append(F.when(F.col("_pdx_trauma"), bits).alias("trauma_bits"))
    g = base.select(*[c for c in base.columns if c not in ("dx_adrg_ords", "excl_ids", "dx_newborn")], *hits)
    best, least_ = F.array_max("_sk"), F.array_min("_sk")
    candidates = F.flatten(F.col("_ph")["keys"])
    top, bottom = F.array_max(candidates), F.array_min(candidates)
    facts = [
        F.when(top > 0, PROC_TOP - top).alias("proc_key"),
        F.when(bottom < 0, bottom + PROC_TOP // 2).alias("z_key"),
        F.when(best >= 0, best).alias("sev_key"),
        F.when(least_ < 0, -1 - least_).alias("cancel_key"),
        F.array_min(F.col("_ph")["orp"]).alias("or_pos"),
    ]
    g = g.select(*[c for c in g.columns if c not in ("_ph", "_sk")], *facts)
    return _decide(g, lk)


def _unpack(key: Column, bits: int) -> tuple[Column, Column]:
    """A key of `group_cases` (high * 2**bits + low, both >= 0) as its two ints, in integer arithmetic."""
    return F.shiftright(key, bits).cast("int"), key.bitwiseAND((1 << bits) - 1).cast("int")


def _decide(g: DataFrame, lk: Lookups) -> DataFrame:
    """Per grouped case (no shuffle): pick the ADRG, the severity and the DRG, and explain them."""
    rules = lk.rules
    trauma = rules.multiple_trauma
    ord_of = lambda adrg: F.lit(lk.adrg[adrg][0] if adrg else None).cast("int")  # noqa: E731
    proc_ord, proc_pos = _unpack(F.col("proc_key"), 8)
    z_ord, z_pos = _unpack(F.col("z_key"), 8)
    if trauma:
        bits = F.coalesce(F.col("trauma_bits"), F.lit(0)).bitwiseOR(F.col("dx_sites"))
        trauma_ok = F.col("_pdx_trauma") & (F.bit_count(bits) >= trauma.min_sites)
        z_pick = F.when(trauma_ok, F.coalesce(z_ord, ord_of(trauma.fallback_adrg)))
    else:
        trauma_ok, z_pick = F.lit(False), F.lit(None).cast("int")
    vent = rules.ventilation
    vent_pick = F.when(F.col("vent_hours") >= vent.min_hours, ord_of(vent.adrg)) if vent else F.lit(None).cast("int")
    dx_pick = F.least(
        F.col("dx_plain"),
        F.when(F.col("_infant"), F.col("dx_infant")),
        F.when(trauma_ok, F.col("dx_trauma")),
        F.col("dx_newborn_pick"),
    )
    g = g.withColumn("pick_ord", F.least(vent_pick, proc_ord, dx_pick, z_pick))
    via = (
        F.when(F.col("pick_ord") == proc_ord, F.get("procs", proc_pos))
        .when(F.col("pick_ord") == z_ord, F.get("procs", z_pos))
        .when(F.col("pick_ord") == dx_pick, F.col("pdx"))
    )

    def severity_of(key: str) -> Column:
        rank, low = _unpack(F.col(key), 16)
        return F.when(
            F.col(key).isNotNull(),
            F.struct(
                rank.alias("sev_rank"),
                _dagger(F.get("sdx", 65535 - low), lk.plus_codes).alias("code"),
            ),
        )

    g = (
        g.withColumn("via", via)
        .withColumn("pick", F.get(lk.by_ord, F.col("pick_ord")))
        .withColumn("pick", F.when(F.col("pick").isNotNull(), F.col("pick").withField("via", F.col("via"))))
        .withColumn("sev", severity_of("sev_key"))
        .withColumn("cancelled", severity_of("cancel_key"))
        .withColumn("or_code", F.get("procs", F.col("or_pos")))
    )

    pick = F.col("pick")
    letter = F.substring(pick["mdc"], 4, 1)
    is_qy = (pick["kind"] == "medical") & F.col("or_code").isNotNull()
    severity = F.coalesce(
        F.element_at(F.create_map(*[F.lit(x) for kv in SEV_NAME.items() for x in kv]), F.col("sev.sev_rank")),
        F.lit("NONE"),
    )
    drg_at = pick["ord"] * 3 + F.coalesce(F.col("sev.sev_rank"), F.lit(SEV_RANK["NONE"]))
    g = g.withColumn("severity", severity).withColumn("_drg", F.get(lk.drg_by_ord, drg_at))

    invalid = F.col("pdx").isNull() | ~F.col("_pdx_known")
    reason = (
        F.when(
            invalid, F.concat(F.lit("invalid principal diagnosis "), F.coalesce(F.col("pdx_raw"), F.lit("(missing)")))
        )
        .when(
            pick.isNull(),
            F.concat(
                F.lit("no ADRG of "),
                F.coalesce(F.array_join("dx_mdcs", "/"), F.lit("any MDC")),
                F.lit(" fits principal diagnosis "),
                F.col("pdx"),
                F.lit(" with procedures ["),
                F.array_join("procs", ","),
                F.lit("]"),
            ),
        )
        .when(
            is_qy,
            F.concat(
                F.lit("operating-room procedure "),
                F.col("or_code"),
                F.lit(" unrelated to principal diagnosis "),
                F.col("pdx"),
            ),
        )
        .when(F.col("_drg").isNull(), F.concat(F.lit("ADRG "), pick["adrg"], F.lit(" has no DRG in the pack")))
    )
    qy = F.concat(letter, F.lit(rules.unrelated_procedure_suffix))
    grouped_ok = reason.isNull()
    mdc = F.when(invalid, F.lit(None)).otherwise(F.coalesce(pick["mdc"], F.get(F.col("dx_mdcs"), 0)))
    adrg = F.when(invalid | pick.isNull(), F.lit(None)).when(is_qy, qy).otherwise(pick["adrg"])
    drg = (
        F.when(invalid | pick.isNull(), F.lit(rules.invalid_principal_drg))
        .when(is_qy, qy)
        .otherwise(F.coalesce(F.col("_drg"), F.lit(rules.invalid_principal_drg)))
    )
    sev_code = F.when(grouped_ok, F.col("sev.code"))
    step_pre = (
        F.when(
            pick["adrg"] == F.lit(vent.adrg if vent else None),
            F.concat(F.lit("vent "), F.col("vent_hours").cast("string"), F.lit("h -> "), pick["adrg"]),
        )
        .when(
            pick["cond"].isin("newborn", "infant"),
            F.concat(
                F.lit("age "),
                F.col("age_days").cast("string"),
                F.lit("d, "),
                F.coalesce(F.concat(F.col("birth_weight_g").cast("string"), F.lit("g")), F.lit("weight ?")),
                F.lit(" -> "),
                pick["mdc"],
            ),
        )
        .when(pick["cond"] == "trauma", F.concat(F.lit("multiple trauma -> "), pick["mdc"]))
    )
    step_pdx = F.concat(
        F.lit("pdx "),
        F.coalesce(F.col("pdx_raw"), F.lit("(missing)")),
        F.lit(" -> "),
        F.coalesce(F.when(pick["cond"] == "pdx", pick["mdc"]), F.array_join("dx_mdcs", "/"), F.lit("no MDC")),
    )
    step_adrg = F.when(
        pick["via"].isNotNull() & (pick["via"] != F.col("pdx")),
        F.concat(F.lit("proc "), pick["via"], F.lit(" -> "), pick["adrg"]),
    ).when(
        pick.isNotNull() & (pick["adrg"] != F.lit(vent.adrg if vent else None)), F.concat(F.lit("dx -> "), pick["adrg"])
    )
    step_cancel = F.when(
        F.col("cancelled").isNotNull() & grouped_ok,
        F.concat(
            F.element_at(F.create_map(*[F.lit(x) for kv in SEV_NAME.items() for x in kv]), F.col("cancelled.sev_rank")),
            F.lit(" "),
            F.col("cancelled.code"),
            F.lit(" excluded (principal diagnosis in its CC-exclusion table)"),
        ),
    )
    step_sev = F.when(
        grouped_ok,
        F.concat(
            F.when(sev_code.isNotNull(), F.concat(F.col("severity"), F.lit(" "), sev_code)).otherwise(
                F.lit("no CC/MCC")
            ),
            F.lit(" -> "),
            F.col("_drg"),
        ),
    )
    step_fail = F.when(~grouped_ok, F.concat(drg, F.lit(": "), reason))
    rule_path = F.concat_ws("; ", step_pdx, step_pre, step_adrg, step_cancel, step_sev, step_fail)

    return g.select(
        *CASE_KEY,
        "batch_id",
        mdc.alias("mdc"),
        adrg.alias("adrg"),
        drg.alias("drg"),
        F.when(grouped_ok, F.col("severity")).alias("severity"),
        sev_code.alias("severity_code"),
        rule_path.alias("rule_path"),
        reason.alias("ungroupable_reason"),
        F.lit(lk.pack.name).alias("pack_name"),
        F.lit(lk.pack.version).alias("pack_version"),
        *GROUPED_COPIED[1:],
    )


# --------------------------------------------------------------------------------------------------
# stage entry points
def register(sub) -> None:
    p = sub.add_parser("group", help="group silver.discharges into gold.grouped_cases (MDC -> ADRG -> DRG)")
    p.add_argument("--lake", required=True, help="lake root folder")
    p.add_argument("--definitions", help="definitions pack folder or shipped pack name (e.g. demo); not for --explain")
    p.add_argument("--run-id", help="run id to stamp (default: a new one)")
    p.add_argument("--explain", metavar="CASE_ID", help="print how an already grouped case got its DRG")
    p.set_defaults(func=run)


def run(args) -> int:
    spark = get_spark("drg-group", parse_conf(getattr(args, "conf", None)))
    if args.explain:
        print(explain(spark, args.lake, args.explain))
        return 0
    if not args.definitions:
        raise PipelineError("--definitions is required to group (only --explain reads the lake alone)")
    pack = load_pack(spark, args.definitions)
    run_id = args.run_id or new_run_id()
    n = group_silver(spark, args.lake, pack, run_id)
    print(f"grouped {n} cases with {pack.name} {pack.version} into gold.grouped_cases (run {run_id})")
    return 0


def group_silver(spark, lake_root: str, pack: Pack, run_id: str, batches: list[BatchKey] | None = None) -> int:
    """Group silver.discharges into gold.grouped_cases in one commit (re-runs are exact); returns the rows written.

    `batches` (the nightly's new or re-sent batches) groups only their cases and replaces only their
    rows: a case's DRG depends on its own row and the pack, so the other batches' rows are what a full
    run would write again. Partitioned by region; the statistics columns let a batch's replaceWhere
    and pricing's discharge-date window skip the files of other batches and years.
    """
    cases = lake.read(spark, lake_root, "silver", "discharges")
    # what publish and `drg stats` print beside the codes: once per pack version (an incremental night
    # groups with the pack the lake was last fully grouped with, so its names are there already)
    if batches is None or not _has_names(spark, lake_root, pack):
        write_pack_names(spark, lake_root, pack, run_id)
    path = lake.table_path(lake_root, "gold", "grouped_cases")
    layout = {"partition_by": ["region_code"], "stats_columns": ["batch_id", "discharge_date", "hospital_id", "drg"]}
    if batches is None:
        lake.overwrite(group_cases(cases, pack).withColumn("run_id", F.lit(run_id)), path, run_id=run_id, **layout)
        return lake.read(spark, lake_root, "gold", "grouped_cases").count()
    where = batch_predicate(batches)
    out = group_cases(cases.where(where), pack).withColumn("run_id", F.lit(run_id))
    lake.replace_where(out, path, where, run_id=run_id, **layout)
    return lake.read(spark, lake_root, "gold", "grouped_cases").where(where).count()


def _has_names(spark, lake_root: str, pack: Pack) -> bool:
    path = lake.table_path(lake_root, "gold", NAMES_TABLE)
    if not lake.exists(spark, path):
        return False
    mine = (F.col("pack_name") == pack.name) & (F.col("pack_version") == pack.version)
    return spark.read.format("delta").load(path).where(mine).limit(1).count() > 0


def explain(spark, lake_root: str, case_id: str) -> str:
    """Human-readable grouping result of every grouped case with this case_id (one per hospital)."""
    rows = lake.read(spark, lake_root, "gold", "grouped_cases").where(F.col("case_id") == case_id).collect()
    if not rows:
        raise PipelineError(f"case {case_id!r} not found in gold.grouped_cases: run `drg group` first")
    named = {}
    for version in {r.pack_version for r in rows}:
        named[version] = {(n.level, n.code): n.name for n in names_of(spark, lake_root, version).collect()}

    def show(level: str, code: str | None, version: str) -> str:
        name = named[version].get((level, code)) if code else None
        return f"{code or '-'}" + (f" {name}" if name else "")

    blocks = []
    for r in rows:
        blocks.append(
            "\n".join(
                [
                    f"case {r.case_id} (region {r.region_code}, hospital {r.hospital_id}, "
                    f"pack {r.pack_name} {r.pack_version})",
                    f"  MDC {show('mdc', r.mdc, r.pack_version)}",
                    f"  ADRG {show('adrg', r.adrg, r.pack_version)}",
                    f"  DRG {show('drg', r.drg, r.pack_version)}",
                    f"  severity {r.severity or '-'} set by {r.severity_code or '-'}",
                    f"  path: {r.rule_path}",
                    *([f"  ungroupable: {r.ungroupable_reason}"] if r.ungroupable_reason else []),
                ]
            )
        )
    return "\n".join(blocks)
