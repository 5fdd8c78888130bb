"""Turn a definitions pack into the generator's lookup tables (driver-side: definitions are small).

Why here and not per case: a case is drawn DRG-first, so the intended DRG is only trustworthy if the
codes drawn for it cannot lead the grouper elsewhere. That is a property of the pack, decided once:
- a principal diagnosis or procedure offered for ADRG X is not also a member of an ADRG that the
  grouper tries before X in the same MDC, nor of a pre-MDC ADRG;
- symptom (R) and external-cause (V-Y) codes are never drawn as principal (they are an injected error);
- secondary-diagnosis pools exclude sex- and age-specific codes (obstetric, perinatal, codes of the
  male/female MDCs), so a clean case never looks like a sex or age conflict.
Everything is returned as plain Python lists; jobs/synth/cases.py turns them into small broadcast tables.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path

from jobs.definitions import TABLES, parse_pack
from jobs.errors import PipelineError
from jobs.synth.config import Demographics, SynthConfig

PRE_MDC = "MDCA"
SEX_MDCS = ("MDCM", "MDCN", "MDCO", "MDCP")
NOT_PRINCIPAL = ("R", "V", "W", "X", "Y")
DEFAULT_VENT_HOURS = 96.0
NEWBORN_WEIGHT = (2500, 4300)  # grams, a term newborn unless the pack's weight bands say otherwise
NEWBORN_WEIGHT_MIN = 700


@dataclass
class PackTables:
    """What the generator needs from a pack, as plain lists (see module docstring)."""

    name: str
    version: str
    vent_threshold: float
    profiles: list[dict]  # one per ADRG that can be generated
    mcc: list[tuple[str, str]]  # (code, exclusion_table)
    cc: list[tuple[str, str]]
    comorbid: list[str]  # plain secondary diagnoses, common ones repeated
    other_procs: list[str]  # procedures that put a case in no ADRG
    symptom: list[str]
    obstetric: list[str]
    perinatal: list[str]
    exclusions: list[tuple[str, str]]  # (exclusion_table, principal_diagnosis)
    skipped: list[str] = field(default_factory=list)  # ADRGs with nothing safe to draw


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
    return build_tables(manifest.name, manifest.version, threshold, table["adrg"], table["adrg_members"],
                        table["drg"], table["codes"], table["cc_exclusions"], config, seed, by_rule)


def rule_pack_tables(pack, config: SynthConfig, seed: int) -> PackTables:
    """A format-2 pack (jobs.schemes.pack) in the generator's terms: each ADRG's first entry
    alternative gives its principal-diagnosis pool (its pdx lists, within its MDC's) and procedure pool
    (its procedure lists); DRGs with a CHS suffix (1/3/5/9) are generated; birth-weight, newborn-age and
    sex conditions become the ADRG's or MDC's demographics. Rule-by-rule fidelity (alternatives, several
    procedure lists, regions) is what jobs.synth.scheme draws for the differential tests."""
    order = {a["adrg"]: i for i, a in enumerate(pack.adrgs)}
    adrgs, members, overrides = [], [], {}
    proc_kinds = ("ppx", "px", "proc")

    def band(atoms, kind, lo, hi):
        for a in atoms:
            if a.kind == kind and a.op in (">", ">="):
                lo = int(a.value + (1 if a.op == ">" else 0))
            if a.kind == kind and a.op in ("<", "<="):
                hi = int(a.value - (1 if a.op == "<" else 0))
        return lo, hi

    for m, _name in pack.mdcs:
        matoms = pack.alternatives("mdc", m)[0]
        sexes = [a.value for a in matoms if a.kind == "sex" and a.op == "="]
        if sexes:
            overrides[m] = Demographics(sex=int(sexes[0]))
    for a in pack.adrgs:
        if a["kind"] == "qy" or not a["active"]:
            continue
        mdc_atoms, own = pack.alternatives("mdc", a["mdc"])[0], pack.alternatives("adrg", a["adrg"])[0]
        atoms = [*mdc_atoms, *own]
        adrgs.append({"adrg": a["adrg"], "name": a["name"], "mdc": a["mdc"], "kind": a["kind"],
                      "priority": str(order[a["adrg"]])})
        own_dx = [set(pack.lists[x.list]) for x in own if x.kind in ("pdx", "dx") and x.op == "in"]
        if own_dx:  # the ADRG's own diagnosis lists, within its MDC's
            pool = set.intersection(*own_dx)
            for x in mdc_atoms:
                if x.kind == "pdx" and x.op == "in":
                    pool &= pack.lists[x.list]
            members += [{"adrg": a["adrg"], "role": "principal_diagnosis", "code": c} for c in sorted(pool)]
        px = [x for x in atoms if x.kind in proc_kinds and x.op == "in" and "SS_VALID" not in x.list]
        if px:
            members += [{"adrg": a["adrg"], "role": "principal_procedure", "code": c}
                        for c in sorted(pack.lists[px[0].list])]
        if any(x.kind == "age_days" for x in atoms) or any(x.kind == "birth_weight" for x in atoms):
            bw = band(atoms, "birth_weight", NEWBORN_WEIGHT_MIN, NEWBORN_WEIGHT[1])
            days = band(atoms, "age_days", 0, 28)
            overrides[a["adrg"]] = Demographics(newborn=True, age_days=days, birth_weight=bw)
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
    config = config.model_copy(update={"demographics": {**config.demographics, **overrides}})
    by_rule = {a for a, d in overrides.items() if d.newborn}
    return build_tables(pack.name, pack.version, pack.settings.ventilation.min_hours, adrgs, members, drgs, codes,
                        exclusions, config, seed, by_rule)


SUFFIXES_GENERATED = ("1", "3", "5", "9")


def _priority(row: dict) -> float:
    try:
        return float(row["priority"])
    except ValueError:
        return math.inf


def build_tables(name, version, vent_threshold, adrgs, members, drgs, codes, exclusions,
                 config: SynthConfig, seed: int, by_rule: set[str] = frozenset()) -> PackTables:
    rng = random.Random(seed)
    info = {a["adrg"]: a for a in adrgs}
    dx = defaultdict(list)
    px = defaultdict(list)
    for m in members:
        if m["adrg"] in info:
            (dx if m["role"] == "principal_diagnosis" else px)[m["adrg"]].append(m["code"])
    # Who claims a code first: pre-MDC ADRGs always, then lower priority within the MDC.
    claims = defaultdict(list)  # code -> [(mdc, rank, adrg)]
    for adrg, a in info.items():
        rank = -math.inf if a["mdc"] == PRE_MDC else _priority(a)
        for code in dx[adrg] + px[adrg]:
            claims[code].append((a["mdc"], rank, adrg))

    def safe(codes_: list[str], adrg: str) -> list[str]:
        mdc, rank = info[adrg]["mdc"], (-math.inf if info[adrg]["mdc"] == PRE_MDC else _priority(info[adrg]))
        keep = []
        for c in dict.fromkeys(codes_):
            if c.startswith(NOT_PRINCIPAL):
                continue
            rivals = [r for r in claims[c] if r[2] != adrg and not (adrg in by_rule and r[2] in by_rule)
                      and (r[0] == PRE_MDC or (r[0] == mdc and r[1] <= rank))]
            if not rivals:
                keep.append(c)
        return keep

    dx_sets = {adrg: set(v) for adrg, v in dx.items()}
    # Diagnoses that open an MDC, for surgical groups that list only procedures.
    mdc_dx = defaultdict(list)
    for adrg, a in info.items():
        if a["kind"] == "medical":
            mdc_dx[a["mdc"]].extend(dx[adrg])

    by_adrg = defaultdict(dict)
    for d in drgs:
        by_adrg[d["adrg"]][d["suffix"]] = d

    profiles, skipped = [], []
    for adrg, a in sorted(info.items()):
        kind, mdc = a["kind"], a["mdc"]
        splits = by_adrg.get(adrg)
        pdx = safe(dx[adrg], adrg)
        procs = safe(px[adrg], adrg) if px[adrg] else []
        if not pdx and px[adrg]:  # procedure-only group: any diagnosis of the MDC, none of a rival group
            pool = mdc_dx[mdc] or [c for v in mdc_dx.values() for c in v]
            pdx = [c for c in dict.fromkeys(pool) if not c.startswith(NOT_PRINCIPAL)
                   and not any(r[0] == mdc and r[2] != adrg and r[1] <= _priority(a)
                               and c in dx_sets.get(r[2], ()) and px[r[2]] for r in claims[c])]
        if not splits or not ({"5", "9"} & set(splits)) or not pdx or (px[adrg] and not procs):
            skipped.append(adrg)
            continue
        weights = {s: _true_weight(splits[s], kind, s, config, rng) for s in splits}
        demo = config.demographics_for(mdc, adrg)
        mean_weight = sum(weights.values()) / len(weights)
        freq = (config.pre_mdc_frequency if mdc == PRE_MDC else config.kind_frequency.get(kind, 1.0))
        freq *= math.exp(config.adrg_frequency_sigma * rng.gauss(0, 1)) / mean_weight**config.weight_damping
        vent = config.ventilation_groups.get(adrg)
        profiles.append({
            "adrg": adrg, "mdc": mdc, "kind": kind, "frequency": freq,
            "pdx": pdx, "procs": procs,
            **{f"drg{s}": (splits[s]["drg"] if s in splits else None) for s in ("1", "3", "5", "9")},
            **{f"w{s}": weights.get(s) for s in ("1", "3", "5", "9")},
            "fixed_sex": demo.sex, "age_lo": (demo.age or (None, None))[0], "age_hi": (demo.age or (None, None))[1],
            "age_mean": demo.age_mean, "age_sd": demo.age_sd, "newborn": demo.newborn, "infant": demo.infant,
            "days_lo": (demo.age_days or (None, None))[0], "days_hi": (demo.age_days or (None, None))[1],
            "bw_lo": (demo.birth_weight or (None, None))[0], "bw_hi": (demo.birth_weight or (None, None))[1],
            "vent_lo": vent[0] if vent else None, "vent_hi": vent[1] if vent else None,
        })
    if not profiles:
        raise PipelineError(f"definitions pack {name}: no ADRG has codes the generator can draw")

    # Secondary-diagnosis pools: never sex/age specific, never a symptom code.
    special = {c for adrg, a in info.items() if a["mdc"] in SEX_MDCS for c in dx[adrg]}
    diagnoses = [c for c in codes if c["kind"] == "diagnosis"]

    def neutral(c: dict) -> bool:
        code = c["code"]
        return code not in special and not code.startswith(("O", "P", *NOT_PRINCIPAL))

    mcc = [(c["code"], c["exclusion_table"]) for c in diagnoses if c["severity"] == "MCC" and neutral(c)]
    cc = [(c["code"], c["exclusion_table"]) for c in diagnoses if c["severity"] == "CC" and neutral(c)]
    plain = [c["code"] for c in diagnoses if not c["severity"] and neutral(c)]
    common = [c for c in plain if c.startswith(tuple(config.common_comorbidities))]
    others = rng.sample(plain, min(len(plain), 400))
    comorbid = sorted(set(others)) + sorted(common) * 5
    member_codes = {c for v in px.values() for c in v}
    other_procs = [c["code"] for c in codes if c["kind"] == "procedure" and c["code"] not in member_codes]
    symptom = [c["code"] for c in diagnoses if c["code"].startswith("R")]
    external = [c["code"] for c in diagnoses if c["code"].startswith(("V", "W", "X", "Y"))]
    return PackTables(
        name=name, version=version, vent_threshold=vent_threshold, profiles=profiles,
        mcc=mcc, cc=cc, comorbid=comorbid, other_procs=sorted(other_procs)[:2000],
        symptom=symptom + (external or list(config.external_cause_codes)),
        obstetric=[c["code"] for c in diagnoses if c["code"].startswith("O")] or ["O80.000"],
        # newborn-only codes for the age error: P-codes the pack does not also group outside the newborn MDC
        perinatal=[c["code"] for c in diagnoses if c["code"].startswith("P")
                   and all(r[0] == "MDCP" for r in claims[c["code"]])] or ["P07.300"],
        exclusions=[(e["exclusion_table"], e["principal_diagnosis"]) for e in exclusions],
        skipped=skipped,
    )


def _true_weight(drg: dict, kind: str, suffix: str, config: SynthConfig, rng: random.Random) -> float:
    """The pack's reference weight when given (a published weight is the best 'truth'), else assumed."""
    if drg.get("reference_weight") is not None:
        return float(drg["reference_weight"])
    return round(config.default_weight[kind] * config.suffix_factor[suffix] * math.exp(0.5 * rng.gauss(0, 1)), 4)
