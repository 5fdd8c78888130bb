"""The grouper for format-2 rule packs: any scheme's ordered MDC -> ADRG -> DRG rules, evaluated per case
in Spark with built-in functions only (no Python per case, no explode, no shuffle), nearly all of it in
generated code.

What is evaluated: every path MDC alternative x ADRG alternative is a *rule* with a rank (its place in
the scheme's order); a rule is a conjunction of atoms (a code list at a position: principal diagnosis,
secondary diagnosis, principal procedure, other procedure; or a comparison on a numeric fact of the
case: age, weight, LOS, sex, MCC/CC flags, trauma regions). The ADRG is the passing rule of smallest
rank (the scheme's first match); the DRG is the first of that ADRG's DRGs whose split holds. An ADRG
whose DRG list can end without a match (no unconditional last DRG) is expanded into one rule per DRG
alternative at pack load, so that "no split holds, try the next ADRG" (OpenDRG's fall-through) is exact.

How, and why this shape. Spark evaluates higher-order functions (transform, filter, forall with
lambdas) interpreted, row by row, allocating per element; the first version of this module checked
candidate rules with nested lambdas over arrays of rule structs and spent most of its time there
(about 3x slower than the format-1 grouper at 1M cases). Here the rules are evaluated as *bitsets of
rules*, one bit per rule rank in LONG words (63 rules a word, so that a word stays positive):
- on the driver, every principal-diagnosis code gets the set of rules whose principal-diagnosis atoms
  it satisfies (`pdx in`/`not in` lists), every procedure code the set whose principal-procedure atoms
  it satisfies, each deduplicated into a constant table of bitsets; a code in no list gets the set of
  rules such a code satisfies (rules without those atoms, or with only negated ones);
- per case, the principal diagnosis and the principal procedure are looked up once each (jobs/hashed.py,
  generated code: no lambda), and word k of the candidate set is `pdx_bits[k] & ppx_bits[k]`;
- the few remaining atoms (secondary-diagnosis and any-position lists, numbers, flags, regions) are
  plain boolean columns, each evaluated only for a rule still in the candidate set, and clear its bit;
- the rank is the lowest set bit of the first non-zero word (`bit_count((w & -w) - 1)`).
So the per-case work is two lookups, a handful of word ANDs and no loop over rules, all in generated
code. The lambdas left are the ones per secondary diagnosis (its CC/MCC fact, which depends on the
principal diagnosis's exclusion tables, its trauma regions, its list tokens) and per other procedure
(its list tokens, only when the pack has any-position procedure lists): one lookup per element, numbers
out. They sit in their own projection, so the scan before it and the decision after it compile whole.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from jobs.errors import PipelineError
from jobs.hashed import HashedTable, constant_array, distinct_non_null, hashed_table
from jobs.schemes.pack import LIST_KINDS, NUMBER_KINDS, Atom, RulePack
from schemas.discharge import CASE_KEY, GROUPED_COPIED

POS = {"pdx": (0,), "sdx": (1,), "dx": (0, 1), "ppx": (2,), "px": (2, 3)}
COMPARE = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
FLAGS = ("mcc", "cc", "cc_or_mcc")
BITS = 63  # rules per LONG word: the sign bit stays clear, so `w & -w` is the lowest set bit
BITSET_KINDS = ("pdx", "ppx")  # atoms folded into the per-code rule bitsets; all others are columns

INTS = T.ArrayType(T.IntegerType())
PDX_INFO = T.StructType(
    [
        T.StructField("rs", T.IntegerType()),  # index of its rule bitset as principal diagnosis
        T.StructField("tok", INTS),  # tokens of the column-evaluated lists, position 0
        T.StructField("reg", INTS),  # trauma regions: region_set * 1000 + region
        T.StructField("excl", INTS),  # exclusion tables listing it as principal
        T.StructField("dx", T.BooleanType()),  # a diagnosis code of the pack
    ]
)
SDX_INFO = T.StructType(
    [
        T.StructField("mcc_t", T.IntegerType()),  # exclusion table of the code as MCC (-1: none), null: not MCC
        T.StructField("cc_t", T.IntegerType()),
        T.StructField("tok", INTS),  # position 1
        T.StructField("reg", INTS),
    ]
)
PROC_INFO = T.StructType(
    [
        T.StructField("rs", T.IntegerType()),  # index of its rule bitset as principal procedure
        T.StructField("tok2", INTS),  # tokens as principal procedure (position 2)
        T.StructField("tok3", INTS),  # as other procedure (position 3)
    ]
)
ENTRY = T.StructType(
    [
        T.StructField("mdc", T.StringType()),
        T.StructField("adrg", T.StringType()),
        T.StructField("kind", T.StringType()),
    ]
)
SPLIT = T.StructType([T.StructField("drg", T.StringType()), T.StructField("text", T.StringType())])


def _text(a: Atom) -> str:
    if a.list is not None and a.kind != "regions":
        return f"{a.kind} {a.op.replace('_', ' ')} {a.list}"
    v = a.value if not isinstance(a.value, float) or not a.value.is_integer() else int(a.value)
    return f"{a.kind}{'' if a.kind == 'regions' else ' '}{a.op} {str(v).lower()}" + (
        f" ({a.list})" if a.kind == "regions" else ""
    )


@dataclass
class Rule:
    atoms: list[Atom]  # kinds normalised (`proc` resolved by settings.procedure_entry)
    entry: int  # index into Compiled.entries
    drg: str | None  # fixed DRG (expanded rules), else None


@dataclass
class Compiled:
    """A rule pack compiled to constants (see module docstring)."""

    pack: RulePack
    rules: list[Rule]  # by rank
    pdx: HashedTable  # code -> PDX_INFO
    sdx: HashedTable  # code -> SDX_INFO
    proc: HashedTable  # code -> PROC_INFO
    pdx_bits: Column  # constant array<array<long>>: rule bitsets by PDX_INFO.rs (0: a code in no list)
    ppx_bits: Column  # the same for the principal procedure
    token: dict[tuple[str, int], int]  # (list, position) -> token, for the column-evaluated lists
    region_sets: dict[str, list[int]]  # region set -> its region ids (region_set * 1000 + region)
    rule_text: Column  # constant array<string> by rank
    rule_entry: Column  # constant array<int> by rank
    rule_drg: Column  # constant array<string> by rank
    entries: Column  # constant array<ENTRY>
    by_flags: Column  # constant array<string>: DRG at entry * 4 + mcc * 2 + cc, for flag-only splits
    splits: dict[int, list[tuple[int, list[Atom]]]]  # entry -> (index into split_rows, atoms), other splits
    split_rows: Column  # constant array<SPLIT>

    @property
    def words(self) -> int:
        return -(-len(self.rules) // BITS)

    def ranks(self, k: int) -> range:
        return range(BITS * k, min(BITS * (k + 1), len(self.rules)))


def _words(bits: int, n: int) -> list[int]:
    return [(bits >> (BITS * k)) & ((1 << BITS) - 1) for k in range(-(-n // BITS))]


def _bitsets(pack: RulePack, rules: list[Rule], kind: str) -> tuple[dict[str, int], list[list[int]]]:
    """Per code: the index of the set of rules whose `kind` atoms (list in / not in) it satisfies as that
    position's code; index 0 is the set a code in no such list satisfies. Worked out per distinct set of
    lists a code is in (codes of the same lists share a bitset)."""
    pos: dict[str, int] = {}
    neg: dict[str, int] = {}
    needs: list[set[str]] = []
    free = 0  # rules without a positive atom of this kind
    for r, rule in enumerate(rules):
        lists = {a.list for a in rule.atoms if a.kind == kind and a.op == "in"}
        needs.append(lists)
        for a in rule.atoms:
            if a.kind == kind:
                d = neg if a.op == "not_in" else pos
                d[a.list] = d.get(a.list, 0) | (1 << r)
        if not lists:
            free |= 1 << r

    def bits_of(sig: frozenset) -> int:
        bits = free
        touched = 0
        for name in sig:
            touched |= pos.get(name, 0)
        while touched:
            low = touched & -touched
            r = low.bit_length() - 1
            if needs[r] <= sig:
                bits |= low
            touched ^= low
        for name in sig:
            bits &= ~neg.get(name, 0)
        return bits

    sig_of: dict[str, set[str]] = {}
    for name in pos.keys() | neg.keys():
        for code in pack.lists[name]:
            sig_of.setdefault(code, set()).add(name)
    index: dict[frozenset, int] = {frozenset(): 0}
    table = [_words(bits_of(frozenset()), len(rules))]
    code_rs = {}
    for code, sig in sig_of.items():
        key = frozenset(sig)
        if key not in index:
            index[key] = len(table)
            table.append(_words(bits_of(key), len(rules)))
        code_rs[code] = index[key]
    return code_rs, table


def compile_pack(pack: RulePack) -> Compiled:
    s = pack.settings
    if not s.fallthrough:  # a case that enters an MDC and fits none of its ADRGs stops there
        raise PipelineError(f"definitions pack {pack.name}: settings.fallthrough false is not supported yet")

    def norm(atoms: list[Atom]) -> list[Atom]:
        proc = "ppx" if s.procedure_entry == "principal" else "px"
        return [replace(a, kind=proc) if a.kind == "proc" else a for a in atoms]

    entries, rules, texts, by_flags = [], [], [], []
    split_rows: list[tuple[str, str]] = []
    splits: dict[int, list[tuple[int, list[Atom]]]] = {}
    for e in pack.adrgs:
        if not e["active"]:
            continue
        mdc, adrg = e["mdc"], e["adrg"]
        drgs = pack.drgs.get(adrg, []) if e["kind"] != "qy" else [{"drg": adrg}]
        alts = [
            (d["drg"], alt)  # as written: rule_path quotes the pack's own atoms
            for d in drgs
            for alt in (pack.alternatives("drg", d["drg"]) if e["kind"] != "qy" else [[]])
        ]
        if not alts:
            raise PipelineError(f"definitions pack {pack.name}: ADRG {adrg} has no DRG")
        exhaustive = not alts[-1][1]
        entry = len(entries)
        entries.append((mdc, adrg, e["kind"]))
        flags = _flag_table(pack, drgs if e["kind"] != "qy" else [], adrg)
        by_flags += flags
        if exhaustive and flags[0] is None:
            splits[entry] = []
            for drg, atoms in alts:
                splits[entry].append((len(split_rows), norm(atoms)))
                split_rows.append((drg, " & ".join(_text(a) for a in atoms) or "always"))
        for malt in pack.alternatives("mdc", mdc):
            for aalt in pack.alternatives("adrg", adrg):
                path = [*malt, *aalt]
                text = [_text(a) for a in path]
                for drg, satoms in alts if not exhaustive else [(None, [])]:
                    rules.append(Rule(norm([*path, *satoms]), entry, drg))
                    texts.append(
                        f"{mdc} [{' & '.join(text[: len(malt)]) or 'always'}] -> {adrg} "
                        f"[{' & '.join(text[len(malt) :]) or 'always'}]"
                        + (f" -> {drg} [{' & '.join(_text(a) for a in satoms) or 'always'}]" if drg else "")
                    )

    # lists evaluated as columns (every list atom that is not folded into a bitset) get tokens
    column_atoms = [a for r in rules for a in r.atoms if a.kind not in BITSET_KINDS]
    column_atoms += [a for alts in splits.values() for _, atoms in alts for a in atoms]
    token: dict[tuple[str, int], int] = {}
    for a in column_atoms:
        if a.kind in LIST_KINDS:
            for p in POS[a.kind]:
                token.setdefault((a.list, p), len(token))

    pdx_rs, pdx_table = _bitsets(pack, rules, "pdx")
    ppx_rs, ppx_table = _bitsets(pack, rules, "ppx")
    pdx: dict[str, list] = {}
    sdx: dict[str, list] = {}
    proc: dict[str, list] = {}
    for code, rs in pdx_rs.items():
        pdx[code] = [rs, [], [], [], False]
    for code, rs in ppx_rs.items():
        proc[code] = [rs, [], []]
    for (name, p), t in token.items():
        for code in pack.lists[name]:
            if p == 0:
                pdx.setdefault(code, [0, [], [], [], False])[1].append(t)
            elif p == 1:
                sdx.setdefault(code, [None, None, [], []])[2].append(t)
            else:
                proc.setdefault(code, [0, [], []])[p - 1].append(t)
    region_sets: dict[str, list[int]] = {}
    for si, rs in enumerate(sorted(pack.regions)):
        ids: dict[str, int] = {}
        for code, region in pack.regions[rs].items():
            rid = si * 1000 + ids.setdefault(region, len(ids))
            pdx.setdefault(code, [0, [], [], [], False])[2].append(rid)
            sdx.setdefault(code, [None, None, [], []])[3].append(rid)
        region_sets[rs] = sorted({si * 1000 + i for i in ids.values()})
    tables = sorted(
        {t for lv in pack.severity.values() for t in lv.values() if t}
        | {t for ts in pack.cc_exclusions.values() for t in ts}
    )
    table_id = {t: i for i, t in enumerate(tables)}
    for code, levels in pack.severity.items():
        row = sdx.setdefault(code, [None, None, [], []])
        if "MCC" in levels:
            row[0] = table_id.get(levels["MCC"], -1)
        if "CC" in levels:
            row[1] = table_id.get(levels["CC"], -1)
    for code, ts in pack.cc_exclusions.items():
        pdx.setdefault(code, [0, [], [], [], False])[3] = sorted(table_id[t] for t in ts)
    for code, (kind, _name) in pack.code_names.items():
        if kind == "diagnosis":
            pdx.setdefault(code, [0, [], [], [], False])[4] = True
    return Compiled(
        pack=pack,
        rules=rules,
        pdx=hashed_table({c: tuple(v) for c, v in pdx.items()}, PDX_INFO),
        sdx=hashed_table({c: tuple(v) for c, v in sdx.items()}, SDX_INFO),
        proc=hashed_table({c: tuple(v) for c, v in proc.items()}, PROC_INFO),
        pdx_bits=constant_array(pdx_table, T.ArrayType(T.LongType())),
        ppx_bits=constant_array(ppx_table, T.ArrayType(T.LongType())),
        token=token,
        region_sets=region_sets,
        rule_text=constant_array(texts, T.StringType()),
        rule_entry=constant_array([r.entry for r in rules], T.IntegerType()),
        rule_drg=constant_array([r.drg for r in rules], T.StringType()),
        entries=constant_array(entries, ENTRY),
        by_flags=constant_array(by_flags, T.StringType()),
        splits=splits,
        split_rows=constant_array(split_rows, SPLIT),
    )


def _flag_table(pack: RulePack, drgs: list[dict], qy: str) -> list[str | None]:
    """The DRG of an ADRG for each (MCC, CC) pair when its splits test only the severity flags (the
    national schemes): one array lookup per case instead of a test per split; [None] * 4 otherwise."""
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


def _atom(a: Atom, c: Compiled) -> Column:
    """Whether atom `a` holds for the case, as a plain (generated-code) boolean column over the facts that
    group_rule_pack computes: `_tok` (tokens of the case's codes), `_reg`, `_first_mcc`/`_first_cc`."""
    if a.kind in LIST_KINDS:
        present = F.lit(False)
        for p in POS[a.kind]:
            present = present | F.array_contains("_tok", c.token[(a.list, p)])
        return ~present if a.op == "not_in" else present
    if a.kind in FLAGS:
        mcc, cc = F.col("_first_mcc") >= 0, F.col("_first_cc") >= 0
        return {"mcc": mcc, "cc": cc, "cc_or_mcc": mcc | cc}[a.kind] == F.lit(bool(a.value))
    if a.kind == "regions":
        ids = c.region_sets[a.list]
        regs = F.col("_reg") if len(c.region_sets) == 1 else F.array_intersect("_reg", F.array(*map(F.lit, ids)))
        x = F.size(F.array_distinct(regs)).cast("double")
    else:
        x = F.col(NUMBER_KINDS[a.kind]).cast("double")
    return F.coalesce(COMPARE[a.op](x, F.lit(float(a.value))), F.lit(False))


def _all(atoms: list[Atom], c: Compiled) -> Column:
    out = F.lit(True)
    for a in atoms:
        out = out & _atom(a, c)
    return out


def group_rule_pack(cases: DataFrame, pack: RulePack, compiled: Compiled | None = None) -> DataFrame:
    """Group cases (canonical columns) with a format-2 pack; same output columns as jobs.group.OUTPUT."""
    c = compiled or compile_pack(pack)
    s = pack.settings
    if "batch_id" not in cases.columns:
        cases = cases.withColumn("batch_id", F.lit(None).cast("string"))
    empty = F.array().cast(INTS)
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
        *GROUPED_COPIED,
        "age_days",
        "birth_weight_g",
        "vent_hours",
        "discharge_disposition",
        F.nullif(F.trim(F.col("principal_dx")), F.lit("")).alias("pdx"),
        F.coalesce(F.col("secondary_dx"), F.array()).alias("sdx"),
        procs.alias("procs"),
    )
    # the principal diagnosis and procedure: one lookup each, generated code, before the lambdas use them
    base = base.select("*", c.pdx.lookup(F.col("pdx")).alias("_pi"), c.proc.lookup(F.get("procs", 0)).alias("_qi"))
    excl = F.coalesce(F.col("_pi.excl"), empty)
    need_tok = bool(c.token)
    need_other = any(p == 3 for _, p in c.token)

    def sdx_facts(h: Column, i: Column) -> Column:
        """Per secondary diagnosis (its looked-up SDX_INFO): whether it counts as an MCC / a CC, as
        65535 - position, else -1 (the max over the case is the first such code), its tokens, regions."""
        mcc_ok = h["mcc_t"].isNotNull() & ~F.array_contains(excl, h["mcc_t"])
        cc_ok = h["cc_t"].isNotNull() & ~F.array_contains(excl, h["cc_t"])
        return F.struct(
            F.when(mcc_ok, 65535 - i).otherwise(-1).alias("mk"),
            F.when(cc_ok, 65535 - i).otherwise(-1).alias("ck"),
            *([F.coalesce(h["tok"], empty).alias("tok")] if need_tok else []),
            *([F.coalesce(h["reg"], empty).alias("reg")] if c.region_sets else []),
        )

    lambdas = [F.transform(F.transform("sdx", c.sdx.lookup), sdx_facts).alias("_sx")]
    if need_other:
        lambdas.append(
            F.transform(
                "procs", lambda p, i: F.when(i > 0, F.coalesce(c.proc.lookup(p)["tok3"], empty)).otherwise(empty)
            ).alias("_px")
        )
    g = base.select("*", *lambdas)
    tok = [F.coalesce(F.col("_pi.tok"), empty), F.flatten(F.col("_sx.tok")), F.coalesce(F.col("_qi.tok2"), empty)]
    if need_other:
        tok.append(F.flatten("_px"))
    pdx_rs, ppx_rs = F.coalesce(F.col("_pi.rs"), F.lit(0)), F.coalesce(F.col("_qi.rs"), F.lit(0))
    g = g.select(
        *[x for x in g.columns if x not in ("_sx", "_px", "_pi", "_qi")],
        *([F.concat(*tok).alias("_tok")] if need_tok else []),
        *(
            [F.flatten(F.concat(F.array(F.coalesce(F.col("_pi.reg"), empty)), F.col("_sx.reg"))).alias("_reg")]
            if c.region_sets
            else []
        ),
        F.coalesce(F.array_max(F.col("_sx.mk")), F.lit(-1)).alias("_first_mcc"),
        F.coalesce(F.array_max(F.col("_sx.ck")), F.lit(-1)).alias("_first_cc"),
        F.coalesce(F.col("_pi.dx"), F.lit(False)).alias("_pdx_known"),
        *[
            F.get(F.get(c.pdx_bits, pdx_rs), k).bitwiseAND(F.get(F.get(c.ppx_bits, ppx_rs), k)).alias(f"_c{k}")
            for k in range(c.words)
        ],
    )
    # bit_count((w & -w) - 1): the index of the lowest set bit of w (64 for w = 0). Written out in full
    # rather than through a column (`when(w != 0, ...)` would test w only conditionally), so that the
    # word appears twice, unconditionally: Spark then evaluates it once, as a common subexpression in a
    # generated method of its own, one per word, which keeps the stage's main method small.
    low = [F.bit_count(_survivors(c, k).bitwiseAND(-_survivors(c, k)) - 1) for k in range(c.words)]
    g = g.select(*[x for x in g.columns if not x.startswith("_c")], *[b.alias(f"_b{k}") for k, b in enumerate(low)])
    rank = F.coalesce(
        *[F.when(F.col(f"_b{k}") < BITS, F.col(f"_b{k}") + BITS * k) for k in range(c.words)], F.lit(None).cast("int")
    )
    g = g.select(*[x for x in g.columns if not x.startswith("_b")], rank.alias("_rule"))
    entry = F.get(c.rule_entry, F.col("_rule"))
    g = g.select(
        "*",
        entry.alias("_entry"),
        F.get(c.rule_drg, F.col("_rule")).alias("_rdrg"),
        F.get(c.entries, entry).alias("_e"),
    )
    flags = (F.col("_first_mcc") >= 0).cast("int") * 2 + (F.col("_first_cc") >= 0).cast("int")
    fast = F.get(c.by_flags, F.col("_entry") * 4 + flags)
    split = F.lit(None).cast("int")
    for e, alts in c.splits.items():
        first = F.lit(None).cast("int")
        for i, atoms in reversed(alts):
            first = F.when(_all(atoms, c), i).otherwise(first)
        split = F.when(F.col("_entry") == e, first).otherwise(split)
    g = g.withColumn("_fast", F.when(F.col("_rdrg").isNull(), fast))
    g = g.withColumn("_split", F.when(F.col("_rdrg").isNull() & F.col("_fast").isNull(), F.get(c.split_rows, split)))
    return _output(g, c)


def _survivors(c: Compiled, k: int) -> Column:
    """Word k of the rules that pass: the candidates `_c{k}` (their principal diagnosis and procedure
    atoms hold) less those whose other atoms fail. Each rule's other atoms are tested only while its bit
    is still set, so a case pays for the few rules its principal codes leave, not for all of them."""
    cand = F.col(f"_c{k}")
    keep = 0
    tested = []
    for r in c.ranks(k):
        rest = [a for a in c.rules[r].atoms if a.kind not in BITSET_KINDS]
        bit = 1 << (r - BITS * k)
        if not rest:
            keep |= bit
        else:
            tested.append(F.when((cand.bitwiseAND(bit) != 0) & _all(rest, c), F.lit(bit)).otherwise(F.lit(0)))
    out = F.lit(keep)
    for t in tested:
        out = out.bitwiseOR(t)
    return cand.bitwiseAND(out)


def _output(g: DataFrame, c: Compiled) -> DataFrame:
    s = c.pack.settings
    e = F.col("_e")
    drg_code = F.coalesce(F.col("_rdrg"), F.col("_fast"), F.col("_split.drg"))
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
    step_fail = F.when(
        ~ok, F.concat(F.coalesce(F.when(grouped, drg_code), F.lit(s.ungroupable_drg)), F.lit(": "), reason)
    )
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
        *GROUPED_COPIED[1:],
    )
