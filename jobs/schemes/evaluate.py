"""The grouper for format-2 rule packs: any scheme's ordered MDC -> ADRG -> DRG rules, evaluated per case
in Spark with built-in functions only (no Python per case, no explode, no shuffle).

How (driver side, once per pack): every code list a condition uses gets a number; a code's *tokens*
are list * 4 + position (0 principal diagnosis, 1 secondary diagnosis, 2 principal procedure, 3 other
procedure). Every path MDC alternative x ADRG alternative becomes a *rule* with a rank (its place in the
scheme's order); a rule is a set of token atoms ("token t1 or t2 present", possibly negated) and number
atoms (a comparison on one of the case's numeric facts: age, weight, LOS, sex, MCC/CC flags, trauma
regions...). Each rule is *anchored* on its most selective positive token atom.

Per case (one projection): one hashed lookup per code (jobs/hashed.py) gives its tokens, its trauma
regions and its CC/MCC facts; the tokens select the candidate rules through the anchor index; the
candidates are checked and the smallest passing rank is the ADRG (the scheme's first match). The DRG
is then the first of that ADRG's DRGs whose split holds. An ADRG whose DRG list can end without a
match (no unconditional last DRG) is expanded into one rule per DRG alternative at pack load, so that
"no split holds, try the next ADRG" (OpenDRG's fall-through) is exact too.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.errors import PipelineError
from jobs.hashed import constant_array, distinct_non_null, hashed_table, let
from jobs.schemes.pack import LIST_KINDS, NUMBER_KINDS, Atom, RulePack
from schemas.discharge import CASE_KEY

POS = {"pdx": (0,), "sdx": (1,), "dx": (0, 1), "ppx": (2,), "px": (2, 3)}
OP_CODE = {"=": 0, "!=": 1, "<": 2, "<=": 3, ">": 4, ">=": 5}
FLAGS = ("mcc", "cc", "cc_or_mcc")
# numeric facts of a case, by index: the canonical columns of NUMBER_KINDS, the severity flags, then
# one count of trauma regions per region set
FACTS = (*NUMBER_KINDS, *FLAGS)

TOK_ATOM = T.StructType(
    [
        T.StructField("t1", T.IntegerType()),
        T.StructField("t2", T.IntegerType()),
        T.StructField("neg", T.BooleanType()),
    ]
)
NUM_ATOM = T.StructType(
    [
        T.StructField("f", T.IntegerType()),
        T.StructField("op", T.IntegerType()),
        T.StructField("v", T.DoubleType()),
    ]
)
RULE = T.StructType(
    [
        T.StructField("tok", T.ArrayType(TOK_ATOM)),
        T.StructField("num", T.ArrayType(NUM_ATOM)),
        T.StructField("entry", T.IntegerType()),  # index into Compiled.entries
        T.StructField("drg", T.StringType()),  # fixed DRG (expanded rules), else null
    ]
)
SPLIT = T.StructType(
    [
        T.StructField("drg", T.StringType()),
        T.StructField("tok", T.ArrayType(TOK_ATOM)),
        T.StructField("num", T.ArrayType(NUM_ATOM)),
        T.StructField("text", T.StringType()),
    ]
)
ENTRY = T.StructType(
    [
        T.StructField("mdc", T.StringType()),
        T.StructField("adrg", T.StringType()),
        T.StructField("kind", T.StringType()),
        T.StructField("splits", T.ArrayType(SPLIT)),
    ]
)
CODE_INFO = T.StructType(
    [
        T.StructField("p0", T.ArrayType(T.IntegerType())),
        T.StructField("p1", T.ArrayType(T.IntegerType())),
        T.StructField("p2", T.ArrayType(T.IntegerType())),
        T.StructField("p3", T.ArrayType(T.IntegerType())),
        T.StructField("reg", T.ArrayType(T.IntegerType())),  # region_set * 1000 + region
        T.StructField("mcc_t", T.IntegerType()),  # exclusion table of the code as MCC (-1: none), null: not MCC
        T.StructField("cc_t", T.IntegerType()),
        T.StructField("excl", T.ArrayType(T.IntegerType())),  # exclusion tables listing it as principal
        T.StructField("dx", T.BooleanType()),  # a diagnosis code of the pack
    ]
)


def _text(a: Atom) -> str:
    if a.list is not None and a.kind != "regions":
        return f"{a.kind} {a.op.replace('_', ' ')} {a.list}"
    v = a.value if not isinstance(a.value, float) or not a.value.is_integer() else int(a.value)
    return f"{a.kind}{'' if a.kind == 'regions' else ' '}{a.op} {str(v).lower()}" + (
        f" ({a.list})" if a.kind == "regions" else ""
    )


@dataclass
class Compiled:
    """A rule pack compiled to constants (see module docstring)."""

    pack: RulePack
    codes: object  # HashedTable code -> CODE_INFO
    rules: Column  # constant array<RULE> by rule rank
    rule_text: Column  # constant array<string> by rule rank
    anchors: Column  # constant array<array<int>> by token
    always: list[int]  # ranks of rules without a token anchor
    entries: Column  # constant array<ENTRY>
    by_flags: Column  # constant array<string>: DRG at entry * 4 + mcc * 2 + cc, for flag-only splits
    n_region_sets: int


def compile_pack(pack: RulePack) -> Compiled:
    s = pack.settings
    list_ids: dict[str, int] = {}
    dx_lists: set[str] = set()
    px_lists: set[str] = set()

    def kind_of(a: Atom) -> str:
        return ("ppx" if s.procedure_entry == "principal" else "px") if a.kind == "proc" else a.kind

    for alts in pack.conditions.values():
        for atoms in alts:
            for a in atoms:
                if a.kind in LIST_KINDS:
                    list_ids.setdefault(a.list, len(list_ids))
                    (px_lists if kind_of(a) in ("ppx", "px") else dx_lists).add(a.list)
    region_sets = sorted(pack.regions)
    facts = [*FACTS, *(f"regions:{r}" for r in region_sets)]

    def atoms_of(atoms: list[Atom]) -> tuple[list, list, list[str]]:
        tok, num = [], []
        for a in atoms:
            if a.kind in LIST_KINDS:
                toks = [list_ids[a.list] * 4 + p for p in POS[kind_of(a)]]
                tok.append((toks[0], toks[1] if len(toks) > 1 else -1, a.op == "not_in"))
            elif a.kind == "regions":
                num.append((facts.index(f"regions:{a.list}"), OP_CODE[a.op], a.value))
            elif a.kind in FLAGS:
                num.append((facts.index(a.kind), OP_CODE["="], 1.0 if a.value else 0.0))
            else:
                num.append((facts.index(a.kind), OP_CODE[a.op], a.value))
        return tok, num, [_text(a) for a in atoms]

    list_size = {i: len(pack.lists[n]) for n, i in list_ids.items()}
    entries, rules, texts, by_flags = [], [], [], []
    for e in pack.adrgs:
        if not e["active"]:
            continue
        mdc, adrg = e["mdc"], e["adrg"]
        drgs = pack.drgs.get(adrg, []) if e["kind"] != "qy" else [{"drg": adrg}]
        split_rows = []
        for d in drgs:
            for alt in pack.alternatives("drg", d["drg"]) if e["kind"] != "qy" else [[]]:
                tok, num, text = atoms_of(alt)
                split_rows.append((d["drg"], tok, num, " & ".join(text) or "always"))
        if not split_rows:
            raise PipelineError(f"definitions pack {pack.name}: ADRG {adrg} has no DRG")
        exhaustive = not split_rows[-1][1] and not split_rows[-1][2]
        entries.append((mdc, adrg, e["kind"], split_rows))
        by_flags += _flag_table(pack, drgs if e["kind"] != "qy" else [], adrg)
        for malt in pack.alternatives("mdc", mdc):
            for aalt in pack.alternatives("adrg", adrg):
                path = [*malt, *aalt]
                for drg, stok, snum, stext in split_rows if not exhaustive else [(None, [], [], None)]:
                    tok, num, text = atoms_of(path)
                    rules.append((tok + stok, num + snum, len(entries) - 1, drg))
                    texts.append(
                        f"{mdc} [{' & '.join(text[: len(malt)]) or 'always'}] -> {adrg} "
                        f"[{' & '.join(text[len(malt) :]) or 'always'}]" + (f" -> {drg} [{stext}]" if drg else "")
                    )
    if not s.fallthrough:  # a case that enters an MDC and fits none of its ADRGs stops there
        raise PipelineError(f"definitions pack {pack.name}: settings.fallthrough false is not supported yet")

    anchors: dict[int, list[int]] = {}
    always = []
    for rank, (tok, _num, _e, _d) in enumerate(rules):
        positive = [t for t in tok if not t[2]]
        if not positive:
            always.append(rank)
            continue
        best = min(positive, key=lambda t: list_size[t[0] // 4])
        for t in (best[0], best[1]):
            if t >= 0:
                anchors.setdefault(t, []).append(rank)

    # per code: tokens by position, trauma regions, severity
    info: dict[str, list] = {}

    def slot(code: str) -> list:
        return info.setdefault(code, [[], [], [], [], [], None, None, [], False])

    for name, i in list_ids.items():
        for code in pack.lists[name]:
            row = slot(code)
            if name in dx_lists:
                row[0].append(i * 4)
                row[1].append(i * 4 + 1)
            if name in px_lists:
                row[2].append(i * 4 + 2)
                row[3].append(i * 4 + 3)
    region_ids = {}
    for si, rs in enumerate(region_sets):
        for code, region in pack.regions[rs].items():
            rid = region_ids.setdefault((rs, region), len([k for k in region_ids if k[0] == rs]))
            slot(code)[4].append(si * 1000 + rid)
    tables = sorted({t for lv in pack.severity.values() for t in lv.values() if t} | {t for ts in pack.cc_exclusions.values() for t in ts})
    table_id = {t: i for i, t in enumerate(tables)}
    for code, levels in pack.severity.items():
        row = slot(code)
        if "MCC" in levels:
            row[5] = table_id.get(levels["MCC"], -1)
        if "CC" in levels:
            row[6] = table_id.get(levels["CC"], -1)
    for code, ts in pack.cc_exclusions.items():
        slot(code)[7] = sorted(table_id[t] for t in ts)
    for code, (kind, _name) in pack.code_names.items():
        if kind == "diagnosis":
            slot(code)[8] = True
    n_tokens = len(list_ids) * 4
    return Compiled(
        pack=pack,
        codes=hashed_table({c: tuple(v) for c, v in info.items()}, CODE_INFO),
        rules=constant_array([(r[0], r[1], r[2], r[3]) for r in rules], RULE),
        rule_text=constant_array(texts, T.StringType()),
        anchors=constant_array([anchors.get(t, []) for t in range(n_tokens)], T.ArrayType(T.IntegerType())),
        always=always,
        entries=constant_array(entries, ENTRY),
        by_flags=constant_array(by_flags, T.StringType()),
        n_region_sets=len(region_sets),
    )


def _flag_table(pack: RulePack, drgs: list[dict], qy: str) -> list[str | None]:
    """The DRG of an ADRG for each (MCC, CC) pair when its splits test only the severity flags (the
    national schemes), so that no lambda has to test them per case; [None] * 4 otherwise."""
    if not drgs:
        return [qy] * 4
    out = []
    for mcc in (False, True):
        for cc in (False, True):
            facts = {"mcc": mcc, "cc": cc, "cc_or_mcc": mcc or cc}
            pick = None
            for d in drgs:
                alts = pack.alternatives("drg", d["drg"])
                if any(a.kind not in facts for alt in alts for a in alt):
                    return [None] * 4
                if any(all(facts[a.kind] == a.value for a in alt) for alt in alts):
                    pick = d["drg"]
                    break
            if pick is None:
                return [None] * 4
            out.append(pick)
    return out


def _holds(tok: Column, num: Column, tokens: Column, facts: Column) -> Column:
    """All atoms of a rule or split hold for the case (tokens: array<int>, facts: array<double>)."""

    def tok_ok(a: Column) -> Column:
        present = F.array_contains(tokens, a["t1"]) | ((a["t2"] >= 0) & F.array_contains(tokens, a["t2"]))
        return present != a["neg"]

    def num_ok(a: Column) -> Column:
        x, v, op = F.get(facts, a["f"]), a["v"], a["op"]
        cmp = (
            F.when(op == 0, x == v)
            .when(op == 1, x != v)
            .when(op == 2, x < v)
            .when(op == 3, x <= v)
            .when(op == 4, x > v)
            .otherwise(x >= v)
        )
        return F.coalesce(cmp, F.lit(False))

    return F.forall(tok, tok_ok) & F.forall(num, num_ok)


def group_rule_pack(cases: DataFrame, pack: RulePack, compiled: Compiled | None = None) -> DataFrame:
    """Group cases (canonical columns) with a format-2 pack; same output columns as jobs.group.OUTPUT."""
    from jobs.group import COPIED  # one list of copied columns for both grouper paths

    c = compiled or compile_pack(pack)
    s = pack.settings
    if "batch_id" not in cases.columns:
        cases = cases.withColumn("batch_id", F.lit(None).cast("string"))
    empty = F.array().cast(T.ArrayType(T.IntegerType()))
    procs = distinct_non_null(
        F.concat(F.array(F.trim(F.col("principal_proc"))), F.coalesce(F.col("other_procs"), F.array())),
        "string",
        drop=("",),
    )
    v = s.ventilation
    if v.mode != "codes":
        on = F.coalesce(F.col("vent_hours") >= v.min_hours, F.lit(False))
        coded = procs if v.mode == "both" else F.array_remove(procs, v.code)
        procs = F.when(on, F.array_distinct(F.concat(F.array(F.lit(v.code)), coded))).otherwise(coded)
    base = cases.select(
        *CASE_KEY,
        *COPIED,
        "age_days",
        "birth_weight_g",
        "vent_hours",
        "discharge_disposition",
        F.nullif(F.trim(F.col("principal_dx")), F.lit("")).alias("pdx"),
        F.coalesce(F.col("secondary_dx"), F.array()).alias("sdx"),
        procs.alias("procs"),
    )
    codes = c.codes
    base = base.withColumn("_pi", codes.lookup(F.col("pdx")))  # looked up once, before the lambdas use it
    excl = F.coalesce(F.col("_pi.excl"), empty)

    def sdx_facts(d: Column, i: Column) -> Column:
        """Per secondary diagnosis: its tokens, trauma regions, and as numbers whether it counts as an
        MCC / a CC (65535 - position, else -1: the max over the case is the first such code)."""

        def body(h: Column) -> Column:
            mcc_ok = h["mcc_t"].isNotNull() & ~F.array_contains(excl, h["mcc_t"])
            cc_ok = h["cc_t"].isNotNull() & ~F.array_contains(excl, h["cc_t"])
            return F.struct(
                F.coalesce(h["p1"], empty).alias("tok"),
                F.coalesce(h["reg"], empty).alias("reg"),
                F.when(mcc_ok, 65535 - i).otherwise(-1).alias("mk"),
                F.when(cc_ok, 65535 - i).otherwise(-1).alias("ck"),
            )

        return let(codes.lookup(d), body)

    def px_tokens(p: Column, i: Column) -> Column:
        return let(codes.lookup(p), lambda h: F.coalesce(F.when(i == 0, h["p2"]).otherwise(h["p3"]), empty))

    g = base.select(
        "*",
        F.transform("sdx", sdx_facts).alias("_sx"),
        F.transform("procs", px_tokens).alias("_px"),
    )
    tokens = F.concat(F.coalesce(F.col("_pi.p0"), empty), F.flatten(F.col("_sx.tok")), F.flatten(F.col("_px")))
    first_mcc = F.coalesce(F.array_max(F.col("_sx.mk")), F.lit(-1))
    first_cc = F.coalesce(F.array_max(F.col("_sx.ck")), F.lit(-1))
    mcc, cc = first_mcc >= 0, first_cc >= 0
    regions = F.flatten(F.concat(F.array(F.coalesce(F.col("_pi.reg"), empty)), F.col("_sx.reg")))

    def in_set(si: int):  # a one-argument lambda: Spark reads a second argument as the element's index
        return lambda r: F.floor(r / 1000) == si

    region_counts = [
        F.size(F.array_distinct(F.filter(regions, in_set(si)) if c.n_region_sets > 1 else regions)).cast("double")
        for si in range(c.n_region_sets)
    ]
    facts = F.array(
        *[F.col(NUMBER_KINDS[k]).cast("double") for k in NUMBER_KINDS],
        mcc.cast("double"),
        cc.cast("double"),
        (mcc | cc).cast("double"),
        *region_counts,
    )
    g = g.select(
        *[x for x in g.columns if x not in ("_sx", "_px", "_pi")],
        tokens.alias("_tokens"),
        facts.alias("_facts"),
        first_mcc.alias("_first_mcc"),
        first_cc.alias("_first_cc"),
        F.coalesce(F.col("_pi.dx"), F.lit(False)).alias("_pdx_known"),
    )
    cands = F.concat(
        F.flatten(F.transform("_tokens", lambda t: F.coalesce(F.get(c.anchors, t), empty))),
        F.array(*[F.lit(r) for r in c.always]).cast(T.ArrayType(T.IntegerType())),
    )
    pick = F.array_min(
        F.filter(cands, lambda r: let(F.get(c.rules, r), lambda x: _holds(x["tok"], x["num"], F.col("_tokens"), F.col("_facts"))))
    )
    g = g.withColumn("_rule", pick)
    g = g.withColumn("_r", F.get(c.rules, F.col("_rule"))).withColumn("_e", F.get(c.entries, F.col("_r.entry")))
    split = F.get(
        F.filter("_e.splits", lambda sp: _holds(sp["tok"], sp["num"], F.col("_tokens"), F.col("_facts"))), 0
    )
    flags = (F.col("_first_mcc") >= 0).cast("int") * 2 + (F.col("_first_cc") >= 0).cast("int")
    fast = F.get(c.by_flags, F.col("_r.entry") * 4 + flags)
    g = g.withColumn("_fast", F.when(F.col("_r.drg").isNull(), fast))
    g = g.withColumn("_split", F.when(F.col("_r.drg").isNull() & F.col("_fast").isNull(), split))
    return _output(g, c)


def _output(g: DataFrame, c: Compiled) -> DataFrame:
    from jobs.group import COPIED

    s = c.pack.settings
    e = F.col("_e")
    drg_code = F.coalesce(F.col("_r.drg"), F.col("_fast"), F.col("_split.drg"))
    is_qy = e["kind"] == "qy"
    has_mcc, has_cc = F.col("_first_mcc") >= 0, F.col("_first_cc") >= 0
    severity = F.when(has_mcc, "MCC").when(has_cc, "CC").otherwise("NONE")
    sev_code = F.when(has_mcc, F.get("sdx", 65535 - F.col("_first_mcc"))).when(
        has_cc, F.get("sdx", 65535 - F.col("_first_cc"))
    )
    invalid = F.col("pdx").isNull() | (F.col("_rule").isNull() & F.lit(bool(c.pack.code_names)) & ~F.col("_pdx_known"))
    reason = (
        F.when(invalid, F.concat(F.lit("invalid principal diagnosis "), F.coalesce(F.col("pdx"), F.lit("(missing)"))))
        .when(
            F.col("_rule").isNull(),
            F.concat(
                F.lit("no MDC/ADRG rule of the scheme fits principal diagnosis "),
                F.col("pdx"),
                F.lit(" with procedures ["),
                F.array_join("procs", ","),
                F.lit("]"),
            ),
        )
        .when(is_qy, F.concat(F.lit("operating-room procedure unrelated to principal diagnosis "), F.col("pdx")))
        .when(drg_code.isNull(), F.concat(F.lit("no DRG of "), e["adrg"], F.lit(" fits")))
    )
    ok = reason.isNull()
    grouped = ~invalid & F.col("_rule").isNotNull()
    step_rule = F.when(grouped, F.get(c.rule_text, F.col("_rule")))
    step_split = F.when(
        F.col("_split").isNotNull(), F.concat(F.col("_split.drg"), F.lit(" ["), F.col("_split.text"), F.lit("]"))
    ).when(F.col("_fast").isNotNull() & ~is_qy, F.concat(F.col("_fast"), F.lit(" [split by MCC/CC]")))
    step_sev = F.when(
        grouped & ~is_qy,
        F.when(sev_code.isNotNull(), F.concat(severity, F.lit(" "), sev_code)).otherwise(F.lit("no CC/MCC")),
    )
    step_fail = F.when(~ok, F.concat(F.coalesce(F.when(grouped, drg_code), F.lit(s.ungroupable_drg)), F.lit(": "), reason))
    rule_path = F.concat_ws(
        "; ",
        F.concat(F.lit("pdx "), F.coalesce(F.col("pdx"), F.lit("(missing)"))),
        step_rule,
        step_split,
        step_sev,
        step_fail,
    )
    return g.select(
        *CASE_KEY,
        "batch_id",
        F.when(grouped, e["mdc"]).alias("mdc"),
        F.when(grouped, e["adrg"]).alias("adrg"),
        F.when(grouped & drg_code.isNotNull(), drg_code).otherwise(F.lit(s.ungroupable_drg)).alias("drg"),
        F.when(ok, severity).alias("severity"),
        F.when(ok, sev_code).alias("severity_code"),
        rule_path.alias("rule_path"),
        reason.alias("ungroupable_reason"),
        F.lit(c.pack.name).alias("pack_name"),
        F.lit(c.pack.version).alias("pack_version"),
        *COPIED[1:],
    )
