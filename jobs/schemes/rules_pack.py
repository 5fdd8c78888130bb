"""`drg definitions import opendrg-rules`: a scheme read from the NHSA rule text (jobs.schemes.rules_text)
written as a definitions pack, format 2 (schemas/CONTRACTS.md, "Definitions pack format 2").

How the text's rules become format-2 rows, and why:
- MDCs are tried A, P, Y, Z (pre-MDC and special MDCs, whose entry does not rest on the principal
  diagnosis alone), then M and N (their sex condition decides between the two lists that share codes),
  then B..X in the scheme's order: the order of the national grouper as OpenDRG reproduces it.
  Every MDC also needs a principal diagnosis that is not in the scheme's invalid-principal list (2.0's
  ZD_INVALID), so such a case stays ungroupable even where an MDC would take it (MDCA).
- An ADRG's alternatives (`入组条件 1 ... 或入组条件 2 ...`, `或包含以下其他诊断`) and terms that are
  themselves alternatives (`（其他诊断或手术或操作 1）`) are multiplied out into format-2 alternatives
  (rows with one `alt` number are ANDed, different numbers ORed).
- "All procedures" (2.0 `包含全部手术或操作`: SB1, TB1, XJ1, YC1) and "no procedure" (2.0 ZZ1) become
  the principal procedure in, and no procedure in, `PROCS`: every procedure code any ADRG of the scheme
  lists. A code outside every list (2.0's SS_INVALID codes among them: they are in none) is no
  procedure for the scheme. 1.1's wording is "all surgery" (`全部手术`, `且无手术`): `OR_PROCS` below.
  Format 2 cannot say "any procedure except the invalid list" (a `not_in` list atom is also true when
  nothing is coded), hence the union of the listed codes.
- QY: in every MDC but the pre-MDC one, after its procedure ADRGs and before its medical ones, a case
  with an operating-room procedure (a code of a surgical ADRG of a body-system MDC, `OR_PROCS`: MDCA's
  lists are left out, they hold ventilation and tracheostomy) that none of the MDC's procedure ADRGs
  took is `<letter>QY`.
- DRG splits come from the DRG list itself: suffixes 1/3/5 -> MCC, CC, rest; 1/5 -> MCC, rest;
  3/5 -> CC or MCC, rest; 9 -> unsplit. A CC/MCC counts unless the exclusion table it names lists the
  principal diagnosis (severity.csv + cc_exclusions.csv).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from jobs.errors import PipelineError
from jobs.schemes.pack import OPTIONAL_TABLES, TABLE_COLUMNS, write_table
from jobs.schemes.rules_text import (
    ANY_DX,
    ANY_PROC,
    DX_CODE,
    HIV_MDC,
    NEWBORN_MDC,
    NO_PROC,
    PDX,
    PPROC,
    PRE_MDC,
    SDX,
    SURGERY,
    TRAUMA_MDC,
    VALID_PROC,
    Adrg,
    Scheme,
    read_scheme,
)

KIND = {PDX: "pdx", SDX: "sdx", ANY_DX: "dx", PPROC: "ppx", ANY_PROC: "px"}
SEX = {"M": "1", "F": "2"}
TRAUMA_MIN_REGIONS = 2  # CHS multiple significant trauma: diagnoses in at least two body regions
SPLITS = {  # sorted suffixes -> (suffix, format-2 condition or None = unconditional), in trial order
    "135": [("1", ("mcc", "true")), ("3", ("cc", "true")), ("5", None)],
    "15": [("1", ("mcc", "true")), ("5", None)],
    "35": [("3", ("cc_or_mcc", "true")), ("5", None)],
    "13": [("1", ("mcc", "true")), ("3", None)],
    "9": [("9", None)],
    "1": [("1", None)],
    "3": [("3", None)],
    "5": [("5", None)],
}


class PartialImport(PipelineError):
    """The text holds rules the importer cannot translate (listed); see `--allow-partial`."""


def adrg_kind(adrg: Adrg) -> str:
    """CHS convention for the ADRG's 2nd letter: A-J surgical, K-Q non-OR procedure, R-Z medical; except
    a letter-surgical ADRG whose name says treatment (治疗) and no operation (术): 1.1's MDCR chemotherapy
    and radiotherapy ADRGs RB1-RG1 (2.0 moved them to RK-RM), BE2/FD3 interventions. Its procedures are
    no operating-room procedures for QY."""
    letter = adrg.code[1]
    if "A" <= letter <= "J":
        return "non_or" if "治疗" in adrg.name and "术" not in adrg.name else "surgical"
    return "non_or" if "K" <= letter <= "Q" else "medical"


def mdc_order(scheme: Scheme) -> list[str]:
    first = [m for m in (PRE_MDC, NEWBORN_MDC, HIV_MDC, TRAUMA_MDC) if m in scheme.mdcs]
    sexed = [m for m in scheme.mdcs if scheme.mdcs[m].sex and m not in first]
    return first + sexed + [m for m in scheme.mdcs if m not in first and m not in sexed]


def _list_names(adrg: Adrg) -> dict[str, str]:
    """Readable pack list names for the ADRG's lists: `JA1.pdx`, `JA1.px.1`, `JA1.px.2` ..."""
    roles: dict[str, list[str]] = {}
    for cond in adrg.conditions:
        for term in cond:
            for atom in term:
                if atom.role in KIND and atom.list and atom.list not in roles.setdefault(KIND[atom.role], []):
                    roles[KIND[atom.role]].append(atom.list)
    out = {}
    for kind, keys in roles.items():
        for i, key in enumerate(keys, start=1):
            out[key] = f"{adrg.code}.{kind}" + (f".{i}" if len(keys) > 1 else "")
    return out


def build_rows(scheme: Scheme) -> dict[str, list[tuple]]:
    """The format-2 tables of a parsed scheme (rows, in file order)."""
    lists: dict[str, list[str]] = {}
    conds: list[tuple] = []

    def add_list(name: str, codes) -> str:
        lists[name] = list(dict.fromkeys(codes))
        return name

    def add_alts(level: str, target: str, alts: list[list[tuple]]) -> None:
        for alt, atoms in enumerate(alts, start=1):
            for kind, lst, op, value in atoms:
                conds.append((level, target, alt, kind, lst, op, value))

    procs = [c for a in scheme.adrgs.values() for k, codes in a.lists.items() for c in codes if not DX_CODE.match(c)]
    or_procs = [
        c
        for a in scheme.adrgs.values()
        if adrg_kind(a) == "surgical" and a.mdc != PRE_MDC
        for codes in a.lists.values()
        for c in codes
        if not DX_CODE.match(c)
    ]
    add_list("PROCS", procs)
    add_list("OR_PROCS", or_procs)
    invalid = [("pdx", add_list("INVALID_PDX", scheme.invalid_dx), "not_in", None)] if scheme.invalid_dx else []

    mdc_rows, adrg_rows, drg_rows, region_rows = [], [], [], []
    suffixes: dict[str, dict[str, str]] = {}
    for drg, adrg, suffix, name in scheme.drgs:
        suffixes.setdefault(adrg, {})[suffix] = (drg, name)
    for seq, code in enumerate(mdc_order(scheme), start=1):
        mdc = scheme.mdcs[code]
        mdc_rows.append((code, mdc.name, seq))
        entry = list(invalid)
        if mdc.kind == "principal":
            entry.append(("pdx", add_list(f"{code}.pdx", mdc.diagnoses), "in", None))
        elif mdc.kind == "any_dx":
            entry.append(("dx", add_list(f"{code}.dx", mdc.diagnoses), "in", None))
        elif mdc.kind == "trauma":
            entry.append(("pdx", add_list(f"{code}.pdx", mdc.diagnoses), "in", None))
            entry.append(("regions", code, ">=", TRAUMA_MIN_REGIONS))
            region_rows += [(code, region, c) for region, codes in mdc.regions.items() for c in dict.fromkeys(codes)]
        if mdc.sex:
            entry.append(("sex", None, "=", SEX[mdc.sex]))
        if mdc.max_age_days is not None:
            entry.append(("age_days", None, "<=", mdc.max_age_days))
        add_alts("mdc", code, [entry] if entry else [])

        members = [a for a in scheme.adrgs.values() if a.mdc == code]
        medical_at = next((i for i, a in enumerate(members) if adrg_kind(a) == "medical"), len(members))
        order: list[Adrg | str] = list(members)
        if code != PRE_MDC:
            order.insert(medical_at, "QY")
        for aseq, a in enumerate(order, start=1):
            if a == "QY":
                qy = f"{code[3]}QY"
                adrg_rows.append((qy, "歧义组", code, "qy", aseq, "true"))
                add_alts("adrg", qy, [[("px", "OR_PROCS", "in", None)]])
                drg_rows.append((qy, qy, "歧义组", 1, None))
                continue
            adrg_rows.append((a.code, a.name, code, adrg_kind(a), aseq, "true"))
            add_alts("adrg", a.code, _adrg_alternatives(a, add_list))
            have = suffixes.get(a.code, {})
            for dseq, (suffix, cond) in enumerate(SPLITS["".join(sorted(have))], start=1):
                drg, name = have[suffix]
                drg_rows.append((drg, a.code, name, dseq, None))
                if cond:
                    add_alts("drg", drg, [[(cond[0], None, "=", cond[1])]])

    severity = [(c, "MCC", t) for c, t in scheme.mcc.items()] + [(c, "CC", t) for c, t in scheme.cc.items()]
    excl = sorted({(t, pdx) for pdx, tables in scheme.cce.items() for t in tables}, key=lambda r: (int(r[0]), r[1]))
    codes = [(c, "diagnosis" if DX_CODE.match(c) else "procedure", n) for c, n in sorted(scheme.names.items())]
    return {
        "mdc": mdc_rows,
        "adrg": adrg_rows,
        "drg": drg_rows,
        "lists": [(n, c) for n, cs in lists.items() for c in cs],
        "conditions": conds,
        "severity": severity,
        "cc_exclusions": excl,
        "regions": region_rows,
        "codes": codes,
    }


def _adrg_alternatives(a: Adrg, add_list) -> list[list[tuple]]:
    """The ADRG's conditions multiplied out into format-2 alternatives, plus the age and birth-weight
    bounds its name states (added to every alternative)."""
    names = _list_names(a)
    extra = []
    for kind, bounds in (("age_days", a.age_days), ("birth_weight", a.birth_weight_g)):
        if bounds:
            if bounds[0] is not None:
                extra.append((kind, None, ">=", bounds[0]))
            if bounds[1] is not None:
                extra.append((kind, None, "<=", bounds[1]))
    alts = []
    for cond in a.conditions:
        combos: list[list[tuple]] = [[]]
        for term in cond:
            options = []
            for atom in term:
                if atom.role in (VALID_PROC, NO_PROC):
                    procs = "OR_PROCS" if atom.list == SURGERY else "PROCS"
                    options.append(
                        ("ppx", procs, "in", None) if atom.role == VALID_PROC else ("px", procs, "not_in", None)
                    )
                else:
                    options.append((KIND[atom.role], add_list(names[atom.list], a.codes(atom)), "in", None))
            combos = [c + [o] for c in combos for o in options]
        for c in combos:
            if c + extra not in alts:
                alts.append(c + extra)
    return alts


def import_rules(src: str | Path, out: str | Path, allow_partial: bool = False, log=print) -> dict[str, int]:
    """Parse the rule text at `src` and write the pack at `out`. Notes (repairs, readings) are printed;
    untranslatable text fails the import unless `allow_partial`, and is then listed in the manifest."""
    src, out = Path(src), Path(out)
    scheme = read_scheme(src)
    for note in scheme.notes:
        log(f"note: {note}")
    if scheme.problems:
        for p in scheme.problems:
            log(f"cannot translate: {p}")
        if not allow_partial:
            raise PartialImport(
                f"import opendrg-rules: {len(scheme.problems)} rule(s) of {src} could not be translated (listed "
                "above); nothing written. --allow-partial writes the pack without them"
            )
    rows = build_rows(scheme)
    out.mkdir(parents=True, exist_ok=True)
    counts = {name: write_table(out, name, rows[name]) for name in {**TABLE_COLUMNS, **OPTIONAL_TABLES}}
    source_file = src.parent / "SOURCE"
    source = source_file.read_text(encoding="utf-8").splitlines()[0].strip() if source_file.is_file() else ""
    manifest = {
        "format": 2,
        "name": "chs-drg",
        "version": scheme.version,
        "code_system": {"diagnosis": "ICD-10 医保版 2.0", "procedure": "ICD-9-CM-3 医保版 2.0"},
        "description": f"CHS-DRG {scheme.version} (NHSA), imported from the published rule text by "
        "`drg definitions import opendrg-rules`",
        "source": f"{source} {src.name}".strip(),
        "licence": "Apache-2.0 (weicong/OpenDRG_Rules, a fork of OpenDRG/DRG_Rules)",
        "settings": {"procedure_entry": "principal", "fallthrough": True, "ventilation": {"mode": "codes"}},
        "notes": [*scheme.notes, *(f"not translated: {p}" for p in scheme.problems)],
    }
    (out / "manifest.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return counts
