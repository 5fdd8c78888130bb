"""Turn a definitions pack into the generator's lookup tables (driver-side: definitions are small).

Why here and not per case: a case is drawn DRG-first, so the intended DRG is only trustworthy if the
codes drawn for it cannot lead the grouper elsewhere. That is a property of the pack, decided once:
- every entry alternative of an ADRG is a profile of its own (JA1's "list 1 + list 2, or 1 + 3 + 4"):
  a principal diagnosis from the ADRG's and its MDC's lists, one procedure from each procedure list
  (the principal from the first), the secondary diagnoses its `dx`/`sdx` lists and MDCZ's body regions
  ask for, and the sex, age, newborn age in days and birth weight its conditions ask for;
- a principal diagnosis or procedure offered for ADRG X is not also a member of an ADRG that the
  grouper tries before X in the same MDC, nor of a pre-MDC ADRG;
- symptom (R) and external-cause (V-Y) codes are never drawn as principal (they are an injected error);
- sex and age follow the quality catalogue's own sex and age rules (quality/rules.yaml): a group whose
  codes include codes one sex may not carry is drawn once per sex, each with only the codes that sex may
  carry; an age-restricted code (obstetric) only where the group's ages allow it. Secondary-diagnosis
  and extra-procedure pools hold no sex- or age-specific code, no code another rule reads as a
  secondary (MDCZ body regions, `dx`/`sdx` lists) and no procedure of any list, so a clean case never
  looks like a conflict and never moves group;
- repeated combinations: real regions code the same few (diagnosis, procedures) combinations for most
  cases of a group, with a long tail (what DIP builds its packets from). Each profile gets a fixed list
  of combinations drawn here, with several procedures per surgical case; jobs/synth/cases.py picks one
  by a Zipf rank, so the first is the commonest and the last are rare.
Everything is returned as plain Python lists; jobs/synth/cases.py turns them into small broadcast tables.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path

from jobs.definitions import TABLES, parse_pack
from jobs.errors import PipelineError
from jobs.synth.config import Demographics, SynthConfig
from quality.catalogue import AgeConflict, SexConflict, load_catalogue

PRE_MDC = "MDCA"
NEWBORN_MDC = "MDCP"
NOT_PRINCIPAL = ("R", "V", "W", "X", "Y")
DEFAULT_VENT_HOURS = 96.0
NEWBORN_WEIGHT = (2500, 4300)  # grams, a term newborn unless the pack's weight bands say otherwise
NEWBORN_WEIGHT_MIN = 700
PX_KINDS = ("ppx", "px", "proc")
EXTRA_PROCS = (0, 1, 1, 2, 2, 3)  # further procedures of a surgical case, beyond its lists


@dataclass
class PackTables:
    """What the generator needs from a pack, as plain lists (see module docstring)."""

    name: str
    version: str
    vent_threshold: float
    vent_code: str | None  # a case with this procedure is ventilated that long: hours are coded too
    profiles: list[dict]  # one per ADRG entry alternative (and sex) that can be generated
    mcc: list[tuple[str, str]]  # (code, exclusion_table)
    cc: list[tuple[str, str]]
    comorbid: list[str]  # plain secondary diagnoses, common ones repeated
    symptom: list[str]
    obstetric: list[str]
    perinatal: list[str]
    exclusions: list[tuple[str, str]]  # (exclusion_table, principal_diagnosis)
    skipped: list[str] = field(default_factory=list)  # ADRGs with nothing safe to draw


@dataclass
class Entry:
    """One way into an ADRG, in the generator's terms (a format-1 ADRG has one, a format-2 ADRG one per
    entry alternative)."""

    adrg: str
    pdx: list[str]  # principal diagnoses; empty: any diagnosis of the MDC that no earlier group claims
    proc_lists: list[list[str]]  # one procedure from each; the principal from the first
    sdx_lists: list[list[str]] = field(default_factory=list)  # one secondary diagnosis from each
    regions: tuple[str, int] | None = None  # (region set, body regions at least) for multiple trauma
    demographics: Demographics | None = None  # the entry's own conditions, over the config's
    vent: tuple[float, float] | None = None  # ventilation hours the entry's cases carry


def read_pack(path: str | Path | Traversable, config: SynthConfig, seed: int) -> PackTables:
    """Read a pack with the grouper's validating reader and apply its newborn/ventilation rules."""
    from jobs.definitions import locate_pack
    from jobs.schemes.pack import is_rule_pack, parse_rule_pack

    if is_rule_pack(locate_pack(path)):
        return rule_pack_tables(parse_rule_pack(path), config, seed)
    manifest, rows = parse_pack(path)
    names = {t: schema.fieldNames() for t, schema in TABLES.items()}
    table = {t: [dict(zip(names[t], r, strict=True)) for r in rows[t]] for t in names}
    rules = manifest.rules
    overrides: dict[str, Demographics] = {}
    vent: dict[str, tuple[float, float]] = {}
    threshold = DEFAULT_VENT_HOURS
    if rules.ventilation:
        threshold = rules.ventilation.min_hours
        vent[rules.ventilation.adrg] = (threshold, threshold * 4)
    if rules.newborn:
        nb = rules.newborn
        newborn = Demographics(newborn=True, age_days=(0, nb.max_age_days), birth_weight=NEWBORN_WEIGHT)
        overrides[nb.mdc] = newborn
        for adrg, (low, high) in nb.weight_bands.items():
            band = (low or NEWBORN_WEIGHT_MIN, high or NEWBORN_WEIGHT[1])
            overrides[adrg] = newborn.model_copy(update={"birth_weight": band})
        for adrg in nb.infant_adrgs:
            overrides[adrg] = Demographics(infant=True, age_days=(nb.max_age_days + 1, nb.infant_max_age_days))
    config = config.model_copy(update={
        "demographics": {**config.demographics, **overrides},
        "ventilation_groups": {**config.ventilation_groups, **vent},
    })
    # Groups the grouper separates by birth weight or age, not by code: they share codes legitimately.
    by_rule = set(rules.newborn.weight_bands) | set(rules.newborn.infant_adrgs) if rules.newborn else set()
    dx, px, mdc_of = defaultdict(list), defaultdict(list), {a["adrg"]: a["mdc"] for a in table["adrg"]}
    for m in table["adrg_members"]:
        (dx if m["role"] == "principal_diagnosis" else px)[m["adrg"]].append(m["code"])
    entries = [Entry(a["adrg"], dx[a["adrg"]], [px[a["adrg"]]] if px[a["adrg"]] else []) for a in table["adrg"]]
    # Diagnoses that open an MDC, for surgical groups that list only procedures: its medical groups'.
    mdc_pool = defaultdict(list)
    for a in table["adrg"]:
        if a["kind"] == "medical":
            mdc_pool[a["mdc"]].extend(dx[a["adrg"]])
    code_mdcs = defaultdict(set)
    for e in entries:
        for c in [*e.pdx, *(c for lst in e.proc_lists for c in lst)]:
            code_mdcs[c].add(mdc_of[e.adrg])
    return build_tables(manifest.name, manifest.version, threshold, table["adrg"], entries, table["drg"],
                        table["codes"], table["cc_exclusions"], config, seed, by_rule,
                        mdc_pool=mdc_pool, code_mdcs=code_mdcs, listed_procs={c for v in px.values() for c in v})


def _band(atoms, kind: str, lo: int, hi: int) -> tuple[int, int]:
    """The [lo, hi] range that meets every comparison on `kind`."""
    for a in atoms:
        if a.kind != kind or a.value is None:
            continue
        v = int(a.value)
        if a.op == "=":
            lo, hi = v, v
        elif a.op in (">", ">="):
            lo = max(lo, v + (1 if a.op == ">" else 0))
        elif a.op in ("<", "<="):
            hi = min(hi, v - (1 if a.op == "<" else 0))
    return lo, hi


def rule_pack_tables(pack, config: SynthConfig, seed: int) -> PackTables:
    """A format-2 pack (jobs.schemes.pack) in the generator's terms: one Entry per MDC x ADRG entry
    alternative (see the module docstring); DRGs with a CHS suffix (1/3/5/9) are generated."""
    order = {a["adrg"]: i for i, a in enumerate(pack.adrgs)}
    proc_kind = "ppx" if pack.settings.procedure_entry == "principal" else "px"
    vent = pack.settings.ventilation
    adrgs, entries, by_rule = [], [], set()
    in_lists = lambda atoms, kind: [pack.lists[x.list] for x in atoms if x.kind == kind and x.op == "in"]  # noqa: E731
    mdc_pool = {}
    for m, _name in pack.mdcs:
        pools = [set(lst) for alt in pack.alternatives("mdc", m) for lst in in_lists(alt, "pdx")]
        mdc_pool[m] = sorted(set.union(*pools)) if pools else []
    for a in pack.adrgs:
        if a["kind"] == "qy" or not a["active"]:
            continue
        adrgs.append({"adrg": a["adrg"], "name": a["name"], "mdc": a["mdc"], "kind": a["kind"],
                      "priority": str(order[a["adrg"]])})
        for mdc_atoms in pack.alternatives("mdc", a["mdc"]):
            for own in pack.alternatives("adrg", a["adrg"]):
                atoms = [*mdc_atoms, *own]
                atoms = [type(x)(proc_kind, x.op, x.list, x.value) if x.kind == "proc" else x for x in atoms]
                entry = _rule_entry(pack, a, atoms, own, mdc_pool)
                if entry.demographics and entry.demographics.newborn:
                    by_rule.add(a["adrg"])
                entries.append(entry)
    drgs = [{"drg": d["drg"], "adrg": adrg, "suffix": d["drg"][3:], "name": d["name"],
             "reference_weight": d["reference_weight"]}
            for adrg, ds in pack.drgs.items() for d in ds if d["drg"][3:] in SUFFIXES_GENERATED]
    codes = []
    for code, (kind, name) in pack.code_names.items():
        sev = pack.severity.get(code, {})
        level = "MCC" if "MCC" in sev else "CC" if "CC" in sev else ""
        codes.append({"code": code, "kind": kind, "name": name, "severity": level,
                      "exclusion_table": sev.get(level) if level else None})
    exclusions = [{"exclusion_table": t, "principal_diagnosis": c} for c, ts in pack.cc_exclusions.items() for t in ts]
    # As the quality rules see a pack: the MDCs whose conditions list a code (not the OR-procedure lists).
    mdc_of = {a["adrg"]: a["mdc"] for a in pack.adrgs}
    code_mdcs, secondary_read, listed = defaultdict(set), set(), set()
    for (level, target), alts in pack.conditions.items():
        mdc = target if level == "mdc" else mdc_of.get(target)
        for alt in alts:
            for x in alt:
                if not x.list or x.kind == "regions":
                    continue
                codes_ = pack.lists[x.list]
                if x.kind in PX_KINDS:
                    listed |= codes_
                if x.kind in ("sdx", "dx"):
                    secondary_read |= codes_
                if (mdc and x.op == "in" and x.kind in ("pdx", "dx", *PX_KINDS) and "SS_VALID" not in x.list
                        and not (level == "adrg" and target.endswith("QY"))):
                    for c in codes_:
                        code_mdcs[c].add(mdc)
    secondary_read |= {c for region_set in pack.regions.values() for c in region_set}
    return build_tables(pack.name, pack.version, vent.min_hours, adrgs, entries, drgs, codes, exclusions, config,
                        seed, by_rule, mdc_pool=mdc_pool, code_mdcs=code_mdcs, listed_procs=listed,
                        secondary_read=secondary_read, regions=pack.regions,
                        vent_code=vent.code if vent.mode != "hours" else None)


def _rule_entry(pack, a: dict, atoms: list, own: list, mdc_pool: dict) -> Entry:
    """One MDC x ADRG alternative as an Entry: its lists, and the demographics its numbers ask for."""
    def lists(kind, op="in"):
        return [set(pack.lists[x.list]) for x in atoms if x.kind == kind and x.op == op]

    pdx_in, dx_in = lists("pdx"), lists("dx")
    own_pdx = any(x.kind in ("pdx", "dx") and x.op == "in" for x in own)
    if pdx_in:
        pool = set.intersection(*pdx_in)
    elif dx_in:  # "any diagnosis in the list": the principal can be it
        pool = set(dx_in[0])
    else:
        pool = set(mdc_pool.get(a["mdc"], []))
    for lst in lists("pdx", "not_in"):
        pool -= lst
    sdx_lists = []
    for lst in dx_in:  # met by the principal where possible, else by a secondary diagnosis
        if pool & lst:
            pool &= lst
        else:
            sdx_lists.append(sorted(lst))
    sdx_lists += [sorted(lst) for lst in lists("sdx")]
    ppx = lists("ppx")  # the principal procedure is in every one (MDCA's OR list and the ADRG's own)
    proc_lists = ([sorted(set.intersection(*ppx))] if ppx else []) + [sorted(lst) for lst in lists("px")]
    regions = next(((x.list, int(x.value)) for x in atoms if x.kind == "regions"), None)
    named = {x.kind for x in atoms}
    demo = None
    if named & {"sex", "age_years", "age_days", "birth_weight"}:
        given: dict = {"sex": next((int(x.value) for x in atoms if x.kind == "sex" and x.op == "="), None)}
        if named & {"age_days", "birth_weight"}:
            days = _band(atoms, "age_days", 0, 364)
            if days[0] == 0 and days[1] > 28:  # "under one year": mostly newborns, as in real MDCP
                days = (0, 28)
            newborn = days[1] <= 28
            given.update(newborn=newborn, infant=not newborn, age_days=days, birth_weight=_band(
                atoms, "birth_weight", NEWBORN_WEIGHT_MIN, NEWBORN_WEIGHT[1]) if newborn else None)
        elif "age_years" in named and _band(atoms, "age_years", 0, 98) != (0, 0):
            given["age"] = _band(atoms, "age_years", 0, 98)
        demo = Demographics(**{k: v for k, v in given.items() if v is not None})
    hours = None
    if "vent_hours" in named:
        lo, hi = _band(atoms, "vent_hours", 1, 2000)
        hours = (float(lo), float(min(hi, lo * 4)))
    return Entry(a["adrg"], sorted(pool) if own_pdx else [], proc_lists, sdx_lists, regions, demo, hours)


SUFFIXES_GENERATED = ("1", "3", "5", "9")


def _priority(row: dict) -> float:
    try:
        return float(row["priority"])
    except ValueError:
        return math.inf


def restricted_codes(codes: Iterable[str], code_mdcs: dict[str, set[str]]) -> tuple[dict, list]:
    """What the quality catalogue forbids a clean case: {sex: codes a case of that sex may not carry}
    and [(codes, min_age_years, max_age_years)] for the age rules in years (e.g. obstetric codes).

    Why from the catalogue: the generator's clean cases must pass the same batch contract as real
    data; reading the rules themselves keeps the two from drifting apart."""
    by_sex: dict[int, set[str]] = {1: set(), 2: set()}
    by_age = []
    codes = list(codes)
    for rule in load_catalogue().rules:
        c = rule.check
        if isinstance(c, SexConflict):
            patterns = [re.compile(x) for x in (c.diagnosis_pattern, c.procedure_pattern) if x]
            for code in codes:
                mdcs = code_mdcs.get(code)
                if any(x.search(code) for x in patterns) or (c.mdcs and mdcs and mdcs <= set(c.mdcs)):
                    by_sex[c.sex].add(code)
        elif isinstance(c, AgeConflict) and (c.min_age_years is not None or c.max_age_years is not None):
            patterns = [re.compile(x) for x in (c.diagnosis_pattern, c.principal_pattern) if x]
            by_age.append(({code for code in codes if any(x.search(code) for x in patterns)},
                           c.min_age_years or 0, c.max_age_years if c.max_age_years is not None else 200))
    return by_sex, by_age


def build_tables(name, version, vent_threshold, adrgs, entries: list[Entry], drgs, codes, exclusions,
                 config: SynthConfig, seed: int, by_rule: set[str] = frozenset(), *, mdc_pool: dict,
                 code_mdcs: dict, listed_procs: set[str], secondary_read: set[str] = frozenset(),
                 regions: dict | None = None, vent_code: str | None = None) -> PackTables:
    rng = random.Random(seed)
    info = {a["adrg"]: a for a in adrgs}
    entries = [e for e in entries if e.adrg in info]
    # Who claims a code first: pre-MDC ADRGs always, then lower priority within the MDC; a claim through
    # an entry that also needs procedures or secondaries counts only if this entry's codes can meet them.
    rank_of = {adrg: (-math.inf if a["mdc"] == PRE_MDC else _priority(a)) for adrg, a in info.items()}
    needs = [([frozenset(lst) for lst in e.proc_lists], [frozenset(lst) for lst in e.sdx_lists], frozenset(e.pdx))
             for e in entries]
    offers = [(frozenset(c for lst in e.proc_lists for c in lst), frozenset(c for lst in e.sdx_lists for c in lst),
               frozenset(e.pdx)) for e in entries]
    by_mdc = defaultdict(list)
    for i, e in enumerate(entries):
        by_mdc[info[e.adrg]["mdc"]].append(i)

    def can_reach(rival: int, mine: int, role: str) -> bool:
        """Could a case of entry `mine` meet entry `rival`'s other lists?"""
        procs, sdx, pdx = needs[rival]
        my_procs, my_sdx, my_pdx = offers[mine]
        return (all(lst & my_procs for lst in procs) and all(lst & my_sdx for lst in sdx)
                and (role == "pdx" or not pdx or not my_pdx or bool(pdx & my_pdx)))

    blocked_of: dict[int, set[str]] = {}

    def blocked(mine: int) -> set[str]:
        """The codes through which an entry tried before `mine` could take its cases."""
        if mine not in blocked_of:
            adrg = entries[mine].adrg
            mdc, rank = info[adrg]["mdc"], rank_of[adrg]
            before = [i for i in {*by_mdc[PRE_MDC], *by_mdc[mdc]} if (r := entries[i].adrg) != adrg
                      and not (adrg in by_rule and r in by_rule)
                      and (info[r]["mdc"] == PRE_MDC or rank_of[r] <= rank)]
            blocked_of[mine] = set().union(*[offers[i][2] for i in before if can_reach(i, mine, "pdx")],
                                           *[offers[i][0] for i in before if can_reach(i, mine, "proc")])
        return blocked_of[mine]

    def safe(codes_: list[str], mine: int) -> list[str]:
        taken = blocked(mine)
        return [c for c in dict.fromkeys(codes_) if c not in taken and not c.startswith(NOT_PRINCIPAL)]

    all_codes = [c["code"] for c in codes]
    by_sex, by_age = restricted_codes(all_codes, code_mdcs)
    sex_specific = by_sex[1] | by_sex[2]
    age_specific = set().union(*(s for s, _, _ in by_age)) if by_age else set()
    diagnoses = [c for c in codes if c["kind"] == "diagnosis"]

    def neutral(code: str) -> bool:  # a secondary diagnosis any clean case may carry
        return (code not in sex_specific and code not in age_specific and code not in secondary_read
                and not code.startswith(("O", "P", *NOT_PRINCIPAL)))

    plain_procs = [c["code"] for c in codes if c["kind"] == "procedure" and c["code"] not in listed_procs
                   and c["code"] not in sex_specific]
    procs_for = {None: [c for c in plain_procs if c not in sex_specific],
                 **{sex: [c for c in plain_procs if c not in by_sex[sex]] for sex in (1, 2)}}
    severity = {c["code"] for c in diagnoses if c["severity"]}
    levels = {c["code"]: (c["severity"], c["exclusion_table"]) for c in diagnoses if c["severity"]}
    excluded = defaultdict(set)  # principal diagnosis -> exclusion tables that list it
    for x in exclusions:
        excluded[x["principal_diagnosis"]].add(x["exclusion_table"])
    region_of = {c: r for rs in (regions or {}).values() for c, r in rs.items()}

    def calm(pool: list[str]) -> list[str]:  # secondaries that leave the split alone, where there are any
        return [c for c in pool if c not in severity] or pool

    region_pools = {}  # region set -> region -> its codes
    for rs, codes_ in (regions or {}).items():
        by_region = defaultdict(list)
        for c, r in sorted(codes_.items()):
            by_region[r].append(c)
        region_pools[rs] = {r: calm(v) for r, v in sorted(by_region.items())}

    by_adrg = defaultdict(dict)
    for d in drgs:
        by_adrg[d["adrg"]][d["suffix"]] = d
    weights_of, freq_of = {}, {}
    for adrg, a in sorted(info.items()):  # ADRG weights and frequency first: the same for every entry
        splits = by_adrg.get(adrg)
        if not splits or not ({"5", "9"} & set(splits)):
            continue
        weights = {s: _true_weight(splits[s], a["kind"], s, config, rng) for s in splits}
        freq = (config.pre_mdc_frequency if a["mdc"] == PRE_MDC else config.kind_frequency.get(a["kind"], 1.0))
        freq *= math.exp(config.adrg_frequency_sigma * rng.gauss(0, 1)) / (
            sum(weights.values()) / len(weights)) ** config.weight_damping
        weights_of[adrg], freq_of[adrg] = weights, freq

    drafts = defaultdict(list)  # adrg -> [(entry, demographics, pdx, proc_lists, sdx_lists)]
    # a group open to any diagnosis in an MDC without its own list (pre-MDC): any MDC's but the newborns'
    any_dx = sorted({c for m, pool in mdc_pool.items() if m != NEWBORN_MDC for c in pool})
    for i, e in sorted(enumerate(entries), key=lambda ie: ie[1].adrg):
        a = info[e.adrg]
        if e.adrg not in weights_of:
            continue
        pdx = safe(e.pdx or mdc_pool.get(a["mdc"]) or any_dx, i)
        proc_lists = [safe(lst, i) for lst in e.proc_lists]
        base = config.demographics_for(a["mdc"], e.adrg)
        demo = base.model_copy(update=e.demographics.model_dump(exclude_unset=True)) if e.demographics else base
        if demo.sex is None and demo.age is None and not (demo.newborn or demo.infant):
            for codes_, lo, hi in by_age:  # a group of age-restricted codes only: the ages they allow
                if pdx and set(pdx) <= codes_:
                    demo = demo.model_copy(update={"age": (max(lo, 15), min(hi, 50))})
        ages = demo.age or ((0, 0) if demo.newborn or demo.infant else (1, 98))
        pdx = [c for c in pdx if c not in age_specific
               or all(c not in s or lo <= ages[0] and ages[1] <= hi for s, lo, hi in by_age)]
        codes_here = set(pdx) | {c for lst in proc_lists for c in lst} | {c for lst in e.sdx_lists for c in lst}
        sexes = [demo.sex] if demo.sex else [1, 2] if codes_here & sex_specific else [None]
        for sex in sexes:
            allowed = (lambda c, s=sex: c not in by_sex[s]) if sex else (lambda c: True)
            variant = ([c for c in pdx if allowed(c)], [[c for c in lst if allowed(c)] for lst in proc_lists],
                       [[c for c in lst if allowed(c)] for lst in e.sdx_lists])
            if variant[0] and all(variant[1]) and all(variant[2]):
                drafts[e.adrg].append((e, demo.model_copy(update={"sex": sex}), *variant))

    profiles, skipped = [], []
    for adrg, a in sorted(info.items()):
        if not drafts.get(adrg):
            skipped.append(adrg)
            continue
        for e, demo, pdx, proc_lists, sdx_lists in drafts[adrg]:
            kind, mdc = a["kind"], a["mdc"]
            vent = e.vent or config.ventilation_groups.get(adrg)
            # the few further procedures this group's cases usually carry (a real group's companions)
            extras = rng.sample(procs_for[demo.sex], min(len(procs_for[demo.sex]), config.companion_procedures))
            other_sex = by_sex[3 - demo.sex] if demo.sex else set()
            lists = [(lst, frozenset(lst)) for lst in proc_lists]
            pools = [(frozenset(lst), calm(lst)) for lst in sdx_lists]
            need = (region_pools[e.regions[0]], e.regions[1]) if e.regions and e.regions[0] in region_pools else None
            combos = [_combo(rng, pdx, lists, pools, need, region_of, extras, kind)
                      for _ in range(config.combos_per_group)]
            # bound: the combination carries a code of its sex, so a flipped sex is a visible conflict;
            # its severity: what its required secondaries (trauma regions, dx lists) already count as
            combos = [(*k, bool({k[0], *k[1], *k[2]} & other_sex), _level(k[0], k[2], levels, excluded))
                      for k in dict.fromkeys(combos)]
            splits, weights = by_adrg[adrg], weights_of[adrg]
            profiles.append({
                "adrg": adrg, "mdc": mdc, "kind": kind, "frequency": freq_of[adrg] / len(drafts[adrg]),
                "combos": combos,
                **{f"drg{s}": (splits[s]["drg"] if s in splits else None) for s in ("1", "3", "5", "9")},
                **{f"w{s}": weights.get(s) for s in ("1", "3", "5", "9")},
                "fixed_sex": demo.sex, "age_lo": (demo.age or (None, None))[0],
                "age_hi": (demo.age or (None, None))[1], "age_mean": demo.age_mean, "age_sd": demo.age_sd,
                "newborn": demo.newborn, "infant": demo.infant,
                "days_lo": (demo.age_days or (None, None))[0], "days_hi": (demo.age_days or (None, None))[1],
                "bw_lo": (demo.birth_weight or (None, None))[0], "bw_hi": (demo.birth_weight or (None, None))[1],
                "vent_lo": vent[0] if vent else None, "vent_hi": vent[1] if vent else None,
            })
    if not profiles:
        raise PipelineError(f"definitions pack {name}: no ADRG has codes the generator can draw")

    mcc = [(c["code"], c["exclusion_table"]) for c in diagnoses if c["severity"] == "MCC" and neutral(c["code"])]
    cc = [(c["code"], c["exclusion_table"]) for c in diagnoses if c["severity"] == "CC" and neutral(c["code"])]
    plain = [c["code"] for c in diagnoses if not c["severity"] and neutral(c["code"])]
    common = [c for c in plain if c.startswith(tuple(config.common_comorbidities))]
    others = rng.sample(plain, min(len(plain), 400))
    comorbid = sorted(set(others)) + sorted(common) * 5
    symptom = [c["code"] for c in diagnoses if c["code"].startswith("R")]
    external = [c["code"] for c in diagnoses if c["code"].startswith(("V", "W", "X", "Y"))]
    return PackTables(
        name=name, version=version, vent_threshold=vent_threshold, vent_code=vent_code, profiles=profiles,
        mcc=mcc, cc=cc, comorbid=comorbid,
        symptom=symptom + (external or list(config.external_cause_codes)),
        obstetric=[c["code"] for c in diagnoses if c["code"].startswith("O")] or ["O80.000"],
        # newborn-only codes for the age error: P-codes the pack does not also group outside the newborn MDC
        perinatal=[c["code"] for c in diagnoses if c["code"].startswith("P")
                   and code_mdcs.get(c["code"], {NEWBORN_MDC}) <= {NEWBORN_MDC}] or ["P07.300"],
        exclusions=[(e["exclusion_table"], e["principal_diagnosis"]) for e in exclusions],
        skipped=skipped,
    )


def _level(pdx: str, sdx: tuple[str, ...], levels: dict, excluded: dict) -> str:
    """MCC, CC or NONE: the worst of these secondaries that the principal diagnosis does not exclude."""
    counted = {lv for c in sdx if c in levels for lv, table in [levels[c]] if table not in excluded[pdx]}
    return "MCC" if "MCC" in counted else "CC" if "CC" in counted else "NONE"


def _combo(rng: random.Random, pdx: list[str], proc_lists: list[tuple[list[str], frozenset[str]]],
           sdx_pools: list[tuple[frozenset[str], list[str]]], need_regions: tuple[dict, int] | None,
           region_of: dict, extras: list[str], kind: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """One (principal diagnosis, procedures, required secondaries) combination of a profile.

    Procedures: one of each list (the principal first), then for a surgical case a few further
    procedures that put it in no group, for any other case now and then one (a diagnostic procedure).
    Secondaries: one of each `dx`/`sdx` list, and trauma in as many body regions as MDCZ counts (the
    pools hold codes without CC/MCC rank where there are any, so the split drawn stays the one intended)."""
    def skewed(pool: list[str]) -> str:  # the first codes of a list are the group's common ones
        return pool[min(len(pool) - 1, int(rng.random() ** 2 * len(pool)))]

    principal = skewed(pdx)
    procs: list[str] = []
    for lst, members in proc_lists:
        if not any(c in members for c in procs):
            procs.append(skewed(lst))
    if extras and (kind == "surgical" or (proc_lists and kind != "medical")):
        procs += [rng.choice(extras) for _ in range(rng.choice(EXTRA_PROCS))]
    elif extras and rng.random() < 0.25:
        procs.append(rng.choice(extras))
    sdx = [rng.choice(pool) for members, pool in sdx_pools if principal not in members]
    if need_regions:
        by_region, n = need_regions
        have = {region_of.get(c) for c in [principal, *sdx]} - {None}
        missing = [r for r in by_region if r not in have]
        rng.shuffle(missing)
        sdx += [rng.choice(by_region[r]) for r in missing[: max(0, n - len(have))]]
    return principal, tuple(dict.fromkeys(procs)), tuple(c for c in dict.fromkeys(sdx) if c != principal)


def _true_weight(drg: dict, kind: str, suffix: str, config: SynthConfig, rng: random.Random) -> float:
    """The pack's reference weight when given (a published weight is the best 'truth'), else assumed."""
    if drg.get("reference_weight") is not None:
        return float(drg["reference_weight"])
    return round(config.default_weight[kind] * config.suffix_factor[suffix] * math.exp(0.5 * rng.gauss(0, 1)), 4)
