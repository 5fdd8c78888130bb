"""The NHSA's published CHS-DRG rule text (OpenDRG_Rules) read into one neutral, checked structure.

Why a parser of its own: the NHSA publishes each scheme as a document; OpenDRG_Rules splits it into
plain UTF-8 text, one record a line (`CODE NAME`), an ADRG file being a sequence of section headers each
followed by its code lines. That text is the scheme's own wording, so reading it (rather than a grouper
that already interpreted it) is how the project proves it knows the scheme. The text is not uniform:
CHS-DRG 2.0 (`*.dat`) and 1.1 (numbered `*.txt`, page-broken) differ, and 2.0 states several entry rules
as formulas over numbered lists (`入组条件 1：主要诊断+手术或操作 1+手术或操作 2 或入组条件 2：...`).
Every header line is matched against the layouts known below; an unknown one is a *problem* and the
import fails unless the caller accepts a partial pack (`--allow-partial`), because a rule silently
dropped is a case silently misgrouped. Known glitches of the text are repaired and each repair is
reported as a *note* (printed by the CLI), never silently.

The result (`Scheme`) says, per ADRG, an OR of alternative conditions, each an AND of terms, each term
an OR of atoms `(role, list)`: e.g. AH2 = (other diagnosis in Z93.000 | any procedure in list 1) + any
procedure in list 2. Rules the text states only in names (sex of MDCM/MDCN, newborn age and birth
weight of MDCP ADRGs) are parsed from those names and reported as notes. `jobs.schemes.rules_pack` turns a
Scheme into a definitions pack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from jobs.errors import PipelineError

# An ICD-10 (医保版) diagnosis or ICD-9-CM-3 procedure code, dagger-asterisk pairs included.
CODE = re.compile(r"[A-Z]\d{2}\.[0-9x]+(?:\+[A-Z]\d{2}(?:\.[0-9x]+)?\*)?|\d{2}\.[0-9A-Zx]+")
CODE_LINE = re.compile(rf"^({CODE.pattern})(?:\s+(.*))?$")
DX_CODE = re.compile(r"^[A-Z]\d{2}\.")

# atom roles
PDX, SDX, ANY_DX = "principal_diagnosis", "secondary_diagnosis", "any_diagnosis"
PPROC, ANY_PROC = "principal_procedure", "any_procedure"
# list-less atoms: Atom.list None = any procedure (2.0 手术或操作), SURGERY = operating-room ones (1.1 手术)
VALID_PROC, NO_PROC = "valid_principal_procedure", "no_valid_procedure"
SURGERY = "surgery"
ROLES = (PDX, SDX, ANY_DX, PPROC, ANY_PROC, VALID_PROC, NO_PROC)

# A named list of a formula file: its name (normalised "主要诊断 1") tells the role it plays.
LIST_NAME = re.compile(r"^(主要诊断|其他诊断|主要手术或操作|手术或操作|手术表)\s*(\d*)$")
LIST_ROLE = {"主要诊断": PDX, "其他诊断": SDX, "主要手术或操作": PPROC, "手术或操作": ANY_PROC, "手术表": ANY_PROC}
LIST_TOKEN = re.compile(
    r"主要诊断(?:\s*\d+)?|其他诊断(?:\s*\d+)?|主要手术或操作(?:\s*\d+)?|手术或操作(?:\s*\d+)?|手术表(?:\s*\d+)?"
)

# Section headers that state a term directly (no formula): header -> role of the list that follows.
DIRECT = {
    "包含以下主要诊断": PDX,
    "包含以下主要手术或操作": PPROC,
    "包含以下主要诊断或其他诊断": ANY_DX,
    "主要诊断或其他诊断中包含以下诊断": ANY_DX,
    "包含以下诊断": ANY_DX,
    "包含以下其他诊断": SDX,
    "包含以下手术或操作": ANY_PROC,
    "同时包含以下手术或操作": ANY_PROC,  # ... 和 <second list>: one code from each, any position
    "同时包含以下手术": ANY_PROC,
    "和": ANY_PROC,
}
ALL_PROCS = re.compile(r"^(?:包含)?全部手术(或操作)?$")
NO_PROCS = re.compile(r"^符合\s*(MDC[A-Z])\s*(?:诊断表|主诊表)，且无手术(或操作)?$")
UNION_PROCS = re.compile(r"^包含\s*([A-Z]{2}\d(?:、[A-Z]{2}\d)*)\s*的所有主要手术或操作$")
FORMULA = re.compile(r"^或?(?:入组条件\s*\d*：|包含以下[^：]*\+)")

SEX_BY_NAME = (("男性", "M"), ("女性", "F"))


@dataclass(frozen=True)
class Atom:
    role: str
    list: str | None = None  # key into Adrg.lists; None for list-less roles


Term = tuple[Atom, ...]  # OR
Condition = tuple[Term, ...]  # AND


@dataclass
class Adrg:
    code: str
    name: str
    mdc: str
    lists: dict[str, list[str]] = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)  # OR
    age_days: tuple[int | None, int | None] | None = None  # inclusive bounds parsed from the name
    birth_weight_g: tuple[int | None, int | None] | None = None
    source: str = ""

    def codes(self, atom: Atom) -> list[str]:
        return self.lists.get(atom.list, []) if atom.list and atom.role not in (VALID_PROC, NO_PROC) else []


@dataclass
class Mdc:
    code: str
    name: str
    kind: str  # pre_mdc (entered by ADRG rules) | principal (principal diagnosis) | any_dx | trauma
    diagnoses: list[str] = field(default_factory=list)
    regions: dict[str, list[str]] = field(default_factory=dict)  # multiple trauma body regions
    sex: str | None = None
    max_age_days: int | None = None


@dataclass
class Scheme:
    version: str
    source: Path
    mdcs: dict[str, Mdc] = field(default_factory=dict)
    adrgs: dict[str, Adrg] = field(default_factory=dict)  # in the text's order (= trial order)
    drgs: list[tuple[str, str, str, str]] = field(default_factory=list)  # drg, adrg, suffix, name
    mcc: dict[str, str] = field(default_factory=dict)  # code -> exclusion table
    cc: dict[str, str] = field(default_factory=dict)
    cce: dict[str, set[str]] = field(default_factory=dict)  # principal diagnosis -> exclusion tables
    invalid_dx: dict[str, str] = field(default_factory=dict)  # may not be the principal diagnosis
    invalid_proc: dict[str, str] = field(default_factory=dict)  # do not count as a procedure
    names: dict[str, str] = field(default_factory=dict)  # code -> name as the text gives it
    notes: list[str] = field(default_factory=list)  # repairs and readings, printed by the CLI
    problems: list[str] = field(default_factory=list)  # what could not be translated


# --------------------------------------------------------------------------------------------------
# small readers
def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise PipelineError(f"rule text {path} is not UTF-8 ({exc.reason})") from exc


def _code_of(token: str, where: str, scheme: Scheme) -> str | None:
    """The code a record starts with; a code fused with text before or after it (a known glitch of
    the text) is cut out of it with a note; None when the token holds no code."""
    if CODE.fullmatch(token):
        return token
    m = CODE.search(token)
    if not m:
        return None
    scheme.notes.append(f"repaired {where}: {token!r} read as code {m.group(0)}")
    return m.group(0)


def _key_value(path: Path, scheme: Scheme, value=re.compile(r"^\d+$")) -> dict[str, str]:
    """`CODE VALUE` records (2.0 MCC/CC/CCE: VALUE = exclusion table)."""
    out: dict[str, str] = {}
    for i, line in enumerate(_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        code = _code_of(parts[0], f"{path.name} line {i}", scheme)
        if code is None or len(parts) != 2 or not value.match(parts[1]):
            scheme.problems.append(f"{path.name} line {i}: not a 'CODE TABLE' record: {line!r}")
            continue
        out[code] = parts[1]
    return out


def _named(path: Path, scheme: Scheme, pattern: re.Pattern) -> list[tuple[str, str]]:
    out = []
    for i, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        key, _, name = line.strip().partition(" ")
        if not pattern.match(key):
            scheme.problems.append(f"{path.name} line {i}: unexpected record {line!r}")
            continue
        out.append((key, name.strip()))
    return out


def _code_records(path: Path, scheme: Scheme) -> dict[str, str]:
    out = {}
    for i, line in enumerate(_lines(path), start=1):
        m = CODE_LINE.match(line.strip())
        if m:
            out[m.group(1)] = (m.group(2) or "").strip()
        elif line.strip():
            scheme.problems.append(f"{path.name} line {i}: not a code record: {line!r}")
    return out


# --------------------------------------------------------------------------------------------------
# sections of an ADRG or MDC file
@dataclass
class Section:
    header: str
    line: int
    codes: list[str] = field(default_factory=list)


def _sections(path: Path, scheme: Scheme) -> tuple[list[str], list[Section]]:
    """Formula lines (at the top) and the header + code-line sections of one rule file."""
    formulas: list[str] = []
    sections: list[Section] = []
    commented = []
    for i, raw in enumerate(_lines(path), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            commented.append(line.lstrip("# ").split(" ")[0])
            continue
        m = CODE_LINE.match(line)
        if m:
            if not sections:
                scheme.problems.append(f"{path.name} line {i}: code before any header: {line!r}")
                continue
            sections[-1].codes.append(m.group(1))
            if m.group(2):
                scheme.names.setdefault(m.group(1), m.group(2).strip())
        elif FORMULA.match(line) and not sections:
            formulas.append(line)
        else:
            sections.append(Section(line.rstrip("：:").strip() if line.endswith(("：", ":")) else line, i))
    if commented:
        scheme.notes.append(
            f"{path.parent.name}/{path.name}: {len(commented)} line(s) commented out in the text left out: "
            + ", ".join(commented)
        )
    return formulas, sections


def _list_key(name: str) -> str | None:
    m = LIST_NAME.match(re.sub(r"\s+", " ", name.strip()))
    return f"{m.group(1)} {m.group(2)}".strip() if m else None


def _parse_formula(text: str, where: str, scheme: Scheme) -> list[list[list[str]]]:
    """`入组条件 1：A+B或入组条件 2：（C或D）+E` -> [[[A], [B]], [[C, D], [E]]] (list names)."""
    body = re.sub(r"^或?入组条件\s*\d*：", "", text)
    parts = re.split(r"或入组条件\s*\d*：", body)
    if len(parts) == 1 and text.lstrip("或").startswith("包含以下"):  # 1.1: 包含以下主要诊断+手术表 1
        parts = [re.sub(r"^或?包含以下", "", text)]
    out = []
    for part in parts:
        terms = []
        for raw in part.split("+"):
            raw = raw.strip()
            names = LIST_TOKEN.findall(raw)
            rest = LIST_TOKEN.sub("", raw).replace("或", "").strip("（）() ")
            if not names or rest:
                scheme.problems.append(f"{where}: cannot read term {raw!r} of formula {text!r}")
                continue
            terms.append([_list_key(n) for n in names])
        out.append(terms)
    return out


def _adrg_conditions(adrg: Adrg, formulas: list[str], sections: list[Section], where: str, scheme: Scheme):
    """Fill adrg.lists and adrg.conditions from one file; every header must be a known layout."""
    if formulas:  # formula file: sections are named lists, the formula says how they combine
        for s in sections:
            key = _list_key(s.header)
            if key is None:
                scheme.problems.append(f"{where} line {s.line}: unknown list header {s.header!r}")
                continue
            adrg.lists[key] = s.codes
        used = set()
        for text in formulas:
            for cond in _parse_formula(text, where, scheme):
                terms = []
                for names in cond:
                    atoms = []
                    for n in names:
                        if n not in adrg.lists:
                            scheme.problems.append(f"{where}: formula names list {n!r} the file does not give")
                            continue
                        used.add(n)
                        atoms.append(Atom(LIST_ROLE[LIST_NAME.match(n).group(1)], n))
                    terms.append(tuple(atoms))
                adrg.conditions.append(tuple(terms))
        for n in adrg.lists:
            if n not in used:
                scheme.problems.append(f"{where}: list {n!r} is used by no entry condition")
        return

    terms: list[Term] = []
    for k, s in enumerate(sections):
        header = s.header
        alt = header.startswith("或") and not header.startswith("或入组")
        if alt:  # 或包含以下其他诊断：an alternative condition
            if terms:
                adrg.conditions.append(tuple(terms))
            terms = []
            header = header[1:]
        key = f"{k + 1}:{header}"
        if header in DIRECT:
            adrg.lists[key] = s.codes
            terms.append((Atom(DIRECT[header], key),))
        elif _list_key(header):  # a list header without a formula (alternative-condition files)
            adrg.lists[key] = s.codes
            terms.append((Atom(LIST_ROLE[LIST_NAME.match(_list_key(header)).group(1)], key),))
        elif m := ALL_PROCS.match(header):
            terms.append((Atom(VALID_PROC, None if m.group(1) else SURGERY),))
            if s.codes:
                scheme.problems.append(f"{where}: {header!r} followed by codes")
        elif m := NO_PROCS.match(header):
            if m.group(1) != adrg.mdc:
                scheme.problems.append(f"{where}: {header!r} names another MDC than {adrg.mdc}")
            terms.append((Atom(NO_PROC, None if m.group(2) else SURGERY),))
        elif UNION_PROCS.match(header):
            adrg.lists[key] = []  # filled in by _resolve_unions once every ADRG is read
            adrg.lists[f"{key}:from"] = UNION_PROCS.match(header).group(1).split("、")
            terms.append((Atom(PPROC, key),))
        else:
            scheme.problems.append(f"{where} line {s.line}: unknown header {s.header!r}")
            continue
        if not s.codes and header in DIRECT:
            scheme.problems.append(f"{where} line {s.line}: header {header!r} has no codes")
    if terms:
        adrg.conditions.append(tuple(terms))
    if not adrg.conditions:
        scheme.problems.append(f"{where}: no entry condition")


def _dnf(adrg: Adrg) -> set[frozenset]:
    """The ADRG's conditions as a set of AND-sets of (role, codes) atoms, lists compared by content."""
    out = set()
    for cond in adrg.conditions:
        combos = [frozenset()]
        for term in cond:
            combos = [c | {(a.role, frozenset(adrg.codes(a)))} for c in combos for a in term]
        out.update(combos)
    return out


# --------------------------------------------------------------------------------------------------
# name-stated rules
AGE_RANGE = re.compile(r"[（(](\d+)天≤出生年龄[＜<]1周岁[）)]")
AGE_BELOW = re.compile(r"出生年龄[＜<]\s*(\d+)\s*天")
WEIGHT_BELOW = re.compile(r"出生体重＜(\d+)g")
WEIGHT_RANGE = re.compile(r"出生体重(\d+)-(\d+)g")
WEIGHT_ABOVE = re.compile(r"出生体重＞(\d+)g")


def _name_rules(adrg: Adrg, newborn_mdc: str | None) -> str | None:
    """Age (days) and birth-weight bounds the ADRG's name states; MDCP ADRGs without an age in their
    name are for newborns (< 29 days), as the MDC's definition of 新生儿 says."""
    n = adrg.name
    if m := AGE_RANGE.search(n):
        adrg.age_days = (int(m.group(1)), 364)
    elif m := AGE_BELOW.search(n):
        adrg.age_days = (None, int(m.group(1)) - 1)
    elif adrg.mdc == newborn_mdc:
        adrg.age_days = (None, 28)
    if m := WEIGHT_BELOW.search(n):
        adrg.birth_weight_g = (None, int(m.group(1)) - 1)
    elif m := WEIGHT_RANGE.search(n):
        adrg.birth_weight_g = (int(m.group(1)), int(m.group(2)))
    elif m := WEIGHT_ABOVE.search(n):
        adrg.birth_weight_g = (int(m.group(1)) + 1, None)
    if adrg.age_days or adrg.birth_weight_g:
        return f"{adrg.code}: age days {adrg.age_days}, birth weight g {adrg.birth_weight_g}"
    return None


# --------------------------------------------------------------------------------------------------
# the scheme folders
SCHEME_FILES = {
    "2.0": {"mdc": "MDC.dat", "adrg": "ADRG.dat", "drg": "DRG.dat"},
    "1.1": {"mdc": "1_MDC.txt", "adrg": "2_ADRG.txt", "drg": "3_DRG.txt"},
}
NEWBORN_MDC, TRAUMA_MDC, HIV_MDC, PRE_MDC = "MDCP", "MDCZ", "MDCY", "MDCA"


def detect_version(folder: Path) -> str:
    for version, files in SCHEME_FILES.items():
        if all((folder / f).is_file() for f in files.values()):
            return version
    raise PipelineError(
        f"{folder} is not an OpenDRG_Rules scheme folder (needs MDC.dat/ADRG.dat/DRG.dat or "
        "1_MDC.txt/2_ADRG.txt/3_DRG.txt, and the ADRG/ and MDC/ folders)"
    )


def read_scheme(folder: str | Path) -> Scheme:
    """Parse one scheme folder (CHS_DRG_20 or CHS_DRG_11 layout); problems and notes are collected."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"rule text folder not found: {folder}")
    version = detect_version(folder)
    for sub in ("ADRG", "MDC"):
        if not (folder / sub).is_dir():
            raise PipelineError(f"{folder} lacks the {sub}/ folder of the rule text")
    files = SCHEME_FILES[version]
    scheme = Scheme(version=version, source=folder)

    for code, name in _named(folder / files["mdc"], scheme, re.compile(r"^MDC[A-Z]$")):
        scheme.mdcs[code] = Mdc(code, name, "principal")
    for code, name in _named(folder / files["adrg"], scheme, re.compile(r"^[A-Z]{2}\d$")):
        mdc = f"MDC{code[0]}"
        if mdc not in scheme.mdcs:
            scheme.problems.append(f"{files['adrg']}: ADRG {code} of unknown {mdc}")
            continue
        scheme.adrgs[code] = Adrg(code, name, mdc)
    for drg, name in _named(folder / files["drg"], scheme, re.compile(r"^[A-Z]{2}\d[1359]$")):
        if drg[:3] not in scheme.adrgs:
            scheme.problems.append(f"{files['drg']}: DRG {drg} of unknown ADRG {drg[:3]}")
            continue
        scheme.drgs.append((drg, drg[:3], drg[3], name))

    _read_mdc_files(folder, scheme)
    _read_adrg_files(folder, scheme)
    if version == "2.0":
        scheme.mcc = _key_value(folder / "MCC.dat", scheme)
        scheme.cc = _key_value(folder / "CC.dat", scheme)
        for code, table in _key_value(folder / "CCE.dat", scheme).items():
            scheme.cce.setdefault(code, set()).add(table)
        scheme.invalid_dx = _code_records(folder / "ZD_INVALID.dat", scheme)
        scheme.invalid_proc = _code_records(folder / "SS_INVALID.dat", scheme)
    else:
        scheme.mcc = _severity_11(folder / "5_MCC.txt", scheme)
        scheme.cc = _severity_11(folder / "6_CC.txt", scheme)
        scheme.cce = _cce_11(folder / "7_CCE.txt", scheme)
    _check(scheme)
    return scheme


def _read_mdc_files(folder: Path, scheme: Scheme) -> None:
    by_code = {p.name[:4]: p for p in (folder / "MDC").iterdir() if p.is_file()}
    for code, mdc in scheme.mdcs.items():
        path = by_code.get(code)
        if path is None:
            scheme.problems.append(f"MDC/{code}_*: missing")
            continue
        formulas, sections = _sections(path, scheme)
        where = f"MDC/{path.name}"
        for f in formulas:
            scheme.problems.append(f"{where}: unexpected formula {f!r}")
        for word, sex in SEX_BY_NAME:
            if word in mdc.name:
                mdc.sex = sex
                scheme.notes.append(f"{code} ({mdc.name}): sex {sex} read from its name")
        if code == NEWBORN_MDC:
            mdc.max_age_days = 364
            scheme.notes.append(f"{code}: age below 1 year (newborn ADRGs below 29 days) read from the ADRG names")
        if not sections:
            if code != PRE_MDC:
                scheme.problems.append(f"{where}: no diagnosis list")
            mdc.kind = "pre_mdc"
            continue
        if code == TRAUMA_MDC:  # region name line, then 包含以下(主要)诊断：, then codes
            mdc.kind = "trauma"
            region = None
            for s in sections:
                if s.header in ("包含以下诊断", "包含以下主要诊断") and region:
                    mdc.regions[region].extend(s.codes)
                elif s.header.endswith("创伤") and not s.codes:
                    region = s.header
                    mdc.regions[region] = []
                else:
                    scheme.problems.append(f"{where} line {s.line}: unknown header {s.header!r}")
            mdc.diagnoses = list(dict.fromkeys(c for codes in mdc.regions.values() for c in codes))
            continue
        for s in sections:
            if s.header == "包含以下主要诊断":
                mdc.diagnoses.extend(s.codes)
            elif s.header == "包含以下诊断":  # 2.0 MDCY: principal or other diagnosis
                mdc.kind = "any_dx"
                mdc.diagnoses.extend(s.codes)
            else:
                scheme.problems.append(f"{where} line {s.line}: unknown header {s.header!r}")
        if mdc.kind == "any_dx":
            scheme.notes.append(f"{code}: entered by a principal or other diagnosis in its list (包含以下诊断)")


def _read_adrg_files(folder: Path, scheme: Scheme) -> None:
    files: dict[str, list[Path]] = {}
    for p in sorted((folder / "ADRG").iterdir()):
        files.setdefault(p.name[:3], []).append(p)
    for code in files.keys() - scheme.adrgs.keys():
        scheme.problems.append(f"ADRG/{files[code][0].name}: ADRG {code} not in the ADRG list")
    for code, adrg in scheme.adrgs.items():
        paths = files.get(code)
        if not paths:
            scheme.problems.append(f"ADRG/{code}_*: missing")
            continue
        base = [p for p in paths if not re.match(r"^[A-Z]{2}\d_\d+_", p.name)]
        alternatives = [p for p in paths if p not in base]
        if len(base) != 1:
            scheme.problems.append(f"ADRG/{code}: {len(base)} files without an alternative number")
            continue
        formulas, sections = _sections(base[0], scheme)
        adrg.source = f"ADRG/{base[0].name}"
        _adrg_conditions(adrg, formulas, sections, adrg.source, scheme)
        if alternatives:
            _check_alternatives(adrg, alternatives, scheme)
    for adrg in scheme.adrgs.values():
        _resolve_unions(adrg, scheme)
        note = _name_rules(adrg, NEWBORN_MDC if NEWBORN_MDC in scheme.mdcs else None)
        if note:
            scheme.notes.append(f"{note} (from its name)")


def _check_alternatives(adrg: Adrg, paths: list[Path], scheme: Scheme) -> None:
    """`AH2_1_...`, `AH2_2_...`: one file per alternative entry condition of the ADRG. The combined file
    is what is imported; the alternatives must say the same (union of their conditions), else a problem."""
    union: set[frozenset] = set()
    for p in paths:
        alt = Adrg(adrg.code, adrg.name, adrg.mdc)
        _formulas, sections = _sections(p, Scheme(scheme.version, scheme.source))  # formula copied: ignored
        _adrg_conditions(alt, [], sections, f"ADRG/{p.name}", scheme)
        union |= _dnf(alt)
    mine = _dnf(adrg)
    if union != mine:
        scheme.problems.append(
            f"ADRG {adrg.code}: the {len(paths)} alternative-condition files do not add up to {adrg.source} "
            f"({len(union - mine)} condition(s) only in them, {len(mine - union)} only in the combined file)"
        )
    else:
        scheme.notes.append(
            f"ADRG {adrg.code}: {len(mine)} alternative condition(s) in {adrg.source}, matching its "
            f"{len(paths)} alternative-condition files"
        )


def _resolve_unions(adrg: Adrg, scheme: Scheme) -> None:
    """`包含 WB1、WB2、WB3 的所有主要手术或操作`: the union of those ADRGs' principal-procedure lists."""
    for key in [k for k in adrg.lists if k.endswith(":from")]:
        target = key[: -len(":from")]
        codes: list[str] = []
        for other in adrg.lists.pop(key):
            src = scheme.adrgs.get(other)
            if src is None:
                scheme.problems.append(f"{adrg.source}: refers to unknown ADRG {other}")
                continue
            lists = [a.list for c in src.conditions for t in c for a in t if a.role == PPROC]
            if not lists:
                scheme.problems.append(f"{adrg.source}: {other} has no principal-procedure list")
            for k in lists:
                codes.extend(src.lists[k])
        adrg.lists[target] = list(dict.fromkeys(codes))
        scheme.notes.append(
            f"ADRG {adrg.code}: principal procedures of {len(adrg.lists[target])} codes from those ADRGs"
        )


# --------------------------------------------------------------------------------------------------
# CHS-DRG 1.1's page-broken severity tables
SEVERITY_11 = re.compile(rf"(?<!\S)({CODE.pattern})\s+(.*?)\s*(?:表\s*7-(\d+)|(?<!\S)无)(?=\s|$)", re.S)


def _severity_11(path: Path, scheme: Scheme) -> dict[str, str]:
    """`CODE NAME 表 7-N` (or `无`: no exclusion table) records, across page breaks, repeated table
    headers, page numbers and names wrapped over lines: the whole text is read as one stream."""
    text = "\n".join(_lines(path))
    text = re.sub(r"疾病编码\s+疾病名称\s+排除内容", " ", text)
    out: dict[str, str] = {}
    for m in SEVERITY_11.finditer(text):
        out[m.group(1)] = m.group(3) or ""
        scheme.names.setdefault(m.group(1), re.sub(r"\s+", "", m.group(2)))
    rest = SEVERITY_11.sub(" ", text)
    leftover = [t for t in rest.split() if CODE.fullmatch(t)]
    for t in leftover:
        scheme.problems.append(f"{path.name}: code {t} without an exclusion-table entry")
    return out


CCE_11_TOKEN = re.compile(rf"表\s*7-(\d+)|(?<![0-9A-Za-z.])({CODE.pattern})(?![0-9A-Za-z.])")


def _cce_11(path: Path, scheme: Scheme) -> dict[str, set[str]]:
    """`表 7-N` / `包含以下主要诊断：` / code records, read as one stream of tokens: pages are fused onto
    single lines and names wrapped over lines, once gluing the wrapped end of a name to the next code
    (`腹膜 炎K35.300`, cut apart with a note)."""
    text = "\n".join(_lines(path))
    out: dict[str, set[str]] = {}
    table = None
    for m in CCE_11_TOKEN.finditer(text):
        if m.group(1):
            table = m.group(1)
            continue
        code = m.group(2)
        if table is None:
            scheme.problems.append(f"{path.name}: code {code} before any table")
            continue
        before = text[m.start() - 1] if m.start() else " "
        if not before.isspace():
            scheme.notes.append(f"repaired {path.name}: code {code} glued to the text before it ({before!r})")
        out.setdefault(code, set()).add(table)
    return out


# --------------------------------------------------------------------------------------------------
def _check(scheme: Scheme) -> None:
    """Cross-checks that make a wrong reading visible: every ADRG has DRGs and conditions, every DRG's
    ADRG splits in a known way, and the severity tables point at exclusion tables that exist."""
    splits: dict[str, str] = {}
    for _drg, adrg, suffix, _n in scheme.drgs:
        splits[adrg] = splits.get(adrg, "") + suffix
    for code in scheme.adrgs:
        s = "".join(sorted(splits.get(code, "")))
        if s not in ("9", "135", "15", "35", "13", "5", "1", "3"):
            scheme.problems.append(f"ADRG {code}: DRG suffixes {s or '(none)'} are not a known split")
    tables = {t for ts in scheme.cce.values() for t in ts}
    for kind, table in (("MCC", scheme.mcc), ("CC", scheme.cc)):
        missing = sorted({t for t in table.values() if t and t not in tables}, key=int)
        if missing:
            scheme.notes.append(f"{kind}: exclusion table(s) {', '.join(missing)} list no principal diagnosis")
    overlap = scheme.mcc.keys() & scheme.cc.keys()
    if overlap:
        scheme.problems.append(f"{len(overlap)} codes are both MCC and CC, e.g. {sorted(overlap)[:3]}")
    if scheme.invalid_dx:
        clash = sorted(c for m in scheme.mdcs.values() for c in m.diagnoses if c in scheme.invalid_dx)
        if clash:
            scheme.notes.append(
                f"ZD_INVALID: {len(clash)} invalid principal diagnoses are also in an MDC list, the invalid "
                f"list wins: {', '.join(clash)}"
            )
