"""Definitions pack format 2: a grouping scheme as ordered rules over named code lists (schemas/CONTRACTS.md,
"Definitions pack format 2").

Why a second format: the real schemes (CHS-DRG 1.1/1.0/2.0 and the regional versions) are ordered
decision lists whose conditions differ from ADRG to ADRG. Format 1 knew rule *families* and guessed the
rest; format 2 states every rule, so the grouper needs no knowledge of any scheme. Everything here is
parsed and cross-checked on the driver; a pack that loads is one the grouper can evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobs.errors import PipelineError
from jobs.pack_files import CodeSystem, locate_pack, read_csv, write_csv

FORMAT = 2
LEVELS = ("mdc", "adrg", "drg")
ADRG_KINDS = ("surgical", "non_or", "medical", "qy")
LIST_KINDS = ("pdx", "sdx", "dx", "ppx", "px", "proc")  # op in / not_in, list required
FLAG_KINDS = ("mcc", "cc", "cc_or_mcc")  # op =, value true / false
NUMBER_KINDS = {  # kind -> canonical case column
    "age_years": "age_years",
    "age_days": "age_days",
    "birth_weight": "birth_weight_g",
    "los": "los_days",
    "vent_hours": "vent_hours",
    "disposition": "discharge_disposition",
    "sex": "sex",
}
COMPARE = ("=", "!=", "<", "<=", ">", ">=")

TABLE_COLUMNS = {
    "mdc": ["mdc", "name", "seq"],
    "adrg": ["adrg", "name", "mdc", "kind", "seq", "active"],
    "drg": ["drg", "adrg", "name", "seq", "reference_weight"],
    "lists": ["list", "code"],
    "conditions": ["level", "target", "alt", "kind", "list", "op", "value"],
    "severity": ["code", "level", "exclusion_table"],
    "cc_exclusions": ["exclusion_table", "principal_diagnosis"],
    "regions": ["region_set", "region", "code"],
}
OPTIONAL_TABLES = {"codes": ["code", "kind", "name"]}


class Ventilation(BaseModel):
    """How invasive ventilation reaches the rules (CONTRACTS: settings.ventilation)."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["codes", "hours", "both"] = "codes"
    min_hours: float = Field(default=96, gt=0)
    code: str = "96.7201"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    procedure_entry: Literal["principal", "any"] = "principal"
    fallthrough: bool = True
    ungroupable_drg: str = "0000"
    qy_suffix: str = "QY"
    ventilation: Ventilation = Ventilation()
    newborn_max_age_days: int = 28


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal[2]
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    code_system: CodeSystem
    description: str = ""
    source: str = ""
    licence: str = ""
    settings: Settings = Settings()
    notes: list[str] = []


@dataclass(frozen=True)
class Atom:
    """One condition atom (CONTRACTS table of atoms): `kind`, `op`, and a list name or a value."""

    kind: str
    op: str
    list: str | None = None
    value: float | bool | None = None


@dataclass
class RulePack:
    """A loaded format-2 pack. `conditions[(level, target)]` is a list of alternatives, each a list of
    atoms (an empty alternative list means unconditional)."""

    path: Path
    manifest: Manifest
    mdcs: list[tuple[str, str]]  # (mdc, name) in evaluation order
    adrgs: list[dict]  # in evaluation order: MDC seq, then ADRG seq
    drgs: dict[str, list[dict]]  # adrg -> its DRGs in seq order
    lists: dict[str, frozenset[str]]
    conditions: dict[tuple[str, str], list[list[Atom]]]
    severity: dict[str, dict[str, str | None]]  # code -> {level: exclusion_table}
    cc_exclusions: dict[str, set[str]]  # principal diagnosis -> exclusion tables listing it
    regions: dict[str, dict[str, str]]  # region_set -> code -> region
    code_names: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (kind, name)
    spark: object = None

    format = FORMAT

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def settings(self) -> Settings:
        return self.manifest.settings

    def alternatives(self, level: str, target: str) -> list[list[Atom]]:
        return self.conditions.get((level, target), [[]])


def _fail(path: Path, line: int, msg: str):
    raise PipelineError(f"definitions pack: {path} row {line}: {msg}")


def _read(path: Path, columns: list[str], required: bool = True) -> list[dict]:
    """A pack table read as format 1 reads its tables (jobs.pack_files.read_csv); an optional one may be absent."""
    return read_csv(path, columns) if required or path.is_file() else []


def read_manifest(folder: Path) -> Manifest:
    path = folder / "manifest.yaml"
    try:
        return Manifest.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        raise PipelineError(f"definitions pack: {path} is not valid YAML ({str(exc).splitlines()[0]})") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top)"
        raise PipelineError(f"definitions pack: {path}: {where}: {err['msg']}") from exc


def _int(path: Path, line: int, name: str, text: str) -> int:
    if not text.lstrip("-").isdigit():
        _fail(path, line, f"{name} {text!r} is not an integer")
    return int(text)


def _atom(path: Path, line: int, r: dict, lists: dict) -> Atom:
    kind, op = r["kind"], r["op"]
    if kind in LIST_KINDS or kind == "regions":
        if kind != "regions" and op not in ("in", "not_in"):
            _fail(path, line, f"kind {kind} needs op in/not_in, not {op!r}")
        if not r["list"]:
            _fail(path, line, f"kind {kind} needs a list")
        if kind in LIST_KINDS and r["list"] not in lists:
            _fail(path, line, f"list {r['list']!r} is not in lists.csv")
        if kind == "regions":
            if op not in COMPARE:
                _fail(path, line, f"op {op!r} is not one of {' '.join(COMPARE)}")
            return Atom(kind, op, r["list"], float(_int(path, line, "value", r["value"])))
        return Atom(kind, op, r["list"])
    if kind in FLAG_KINDS:
        if op != "=" or r["value"] not in ("true", "false"):
            _fail(path, line, f"kind {kind} needs op = and value true/false")
        return Atom(kind, op, None, r["value"] == "true")
    if kind in NUMBER_KINDS:
        if op not in COMPARE:
            _fail(path, line, f"op {op!r} is not one of {' '.join(COMPARE)}")
        try:
            return Atom(kind, op, None, float(r["value"]))
        except ValueError:
            _fail(path, line, f"value {r['value']!r} is not a number")
    _fail(path, line, f"unknown condition kind {kind!r}")


def is_rule_pack(folder) -> bool:
    """Whether `folder` (a path or a Traversable) holds a format-2 pack (manifest `format: 2`)."""
    path = (Path(folder) if isinstance(folder, str) else folder) / "manifest.yaml"
    if not path.is_file():
        return False
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def parse_rule_pack(folder, spark=None) -> RulePack:
    """Read and cross-check every table of a format-2 pack (a path, a shipped pack's name or a
    Traversable); errors name the file and row."""
    folder = locate_pack(folder)
    manifest = read_manifest(folder)
    raw = {n: _read(folder / f"{n}.csv", cols) for n, cols in TABLE_COLUMNS.items()}
    raw.update({n: _read(folder / f"{n}.csv", cols, required=False) for n, cols in OPTIONAL_TABLES.items()})

    mdc_rows = []
    for i, r in enumerate(raw["mdc"], start=2):
        mdc_rows.append((_int(folder / "mdc.csv", i, "seq", r["seq"]), r["mdc"], r["name"]))
    mdc_seq = {m: s for s, m, _ in mdc_rows}
    if len(mdc_seq) != len(mdc_rows):
        raise PipelineError(f"definitions pack: {folder / 'mdc.csv'}: duplicate mdc")

    adrgs: dict[str, dict] = {}
    p = folder / "adrg.csv"
    for i, r in enumerate(raw["adrg"], start=2):
        if r["mdc"] not in mdc_seq:
            _fail(p, i, f"mdc {r['mdc']!r} is not in mdc.csv")
        if r["kind"] not in ADRG_KINDS:
            _fail(p, i, f"kind {r['kind']!r} is not one of {', '.join(ADRG_KINDS)}")
        if r["active"] not in ("true", "false"):
            _fail(p, i, f"active {r['active']!r} is not true/false")
        if r["adrg"] in adrgs:
            _fail(p, i, f"duplicate adrg {r['adrg']!r}")
        adrgs[r["adrg"]] = {
            **r,
            "seq": _int(p, i, "seq", r["seq"]),
            "active": r["active"] == "true",
        }

    drgs: dict[str, list[dict]] = {}
    seen = set()
    p = folder / "drg.csv"
    for i, r in enumerate(raw["drg"], start=2):
        if r["adrg"] not in adrgs:
            _fail(p, i, f"adrg {r['adrg']!r} is not in adrg.csv")
        if r["drg"] in seen:
            _fail(p, i, f"duplicate drg {r['drg']!r}")
        seen.add(r["drg"])
        try:
            weight = float(r["reference_weight"]) if r["reference_weight"] else None
        except ValueError:
            _fail(p, i, f"reference_weight {r['reference_weight']!r} is not a number")
        drgs.setdefault(r["adrg"], []).append({**r, "seq": _int(p, i, "seq", r["seq"]), "reference_weight": weight})
    for a in drgs.values():
        a.sort(key=lambda d: d["seq"])

    lists: dict[str, set] = {}
    for i, r in enumerate(raw["lists"], start=2):
        if not r["list"] or not r["code"]:
            _fail(folder / "lists.csv", i, "empty list name or code")
        lists.setdefault(r["list"], set()).add(r["code"])

    conds: dict[tuple[str, str], dict[int, list[Atom]]] = {}
    p = folder / "conditions.csv"
    known = {"mdc": set(mdc_seq), "adrg": set(adrgs), "drg": seen}
    for i, r in enumerate(raw["conditions"], start=2):
        if r["level"] not in LEVELS:
            _fail(p, i, f"level {r['level']!r} is not one of {', '.join(LEVELS)}")
        if r["target"] not in known[r["level"]]:
            _fail(p, i, f"{r['level']} {r['target']!r} is not in {r['level']}.csv")
        alt = _int(p, i, "alt", r["alt"])
        conds.setdefault((r["level"], r["target"]), {}).setdefault(alt, []).append(_atom(p, i, r, lists))

    severity: dict[str, dict] = {}
    for i, r in enumerate(raw["severity"], start=2):
        if r["level"] not in ("MCC", "CC"):
            _fail(folder / "severity.csv", i, f"level {r['level']!r} is not MCC/CC")
        severity.setdefault(r["code"], {})[r["level"]] = r["exclusion_table"] or None
    excl: dict[str, set] = {}
    for r in raw["cc_exclusions"]:
        excl.setdefault(r["principal_diagnosis"], set()).add(r["exclusion_table"])
    regions: dict[str, dict] = {}
    for r in raw["regions"]:
        regions.setdefault(r["region_set"], {})[r["code"]] = r["region"]
    for (level, target), alts in conds.items():
        for atoms in alts.values():
            for a in atoms:
                if a.kind == "regions" and a.list not in regions:
                    raise PipelineError(
                        f"definitions pack: {p}: {level} {target}: region set {a.list!r} is not in regions.csv"
                    )

    order = sorted(adrgs.values(), key=lambda a: (mdc_seq[a["mdc"]], a["seq"]))
    return RulePack(
        path=folder,
        manifest=manifest,
        mdcs=[(m, n) for _, m, n in sorted(mdc_rows)],
        adrgs=order,
        drgs=drgs,
        lists={k: frozenset(v) for k, v in lists.items()},
        conditions={k: [v[a] for a in sorted(v)] for k, v in conds.items()},
        severity=severity,
        cc_exclusions=excl,
        regions=regions,
        code_names={r["code"]: (r["kind"], r["name"]) for r in raw["codes"]},
        spark=spark,
    )


def write_table(out: Path, name: str, rows) -> int:
    """Write pack table `name` into folder `out` with the columns the loader reads (TABLE_COLUMNS,
    OPTIONAL_TABLES), so importers cannot drift from the format; returns the row count."""
    return write_csv(out / f"{name}.csv", {**TABLE_COLUMNS, **OPTIONAL_TABLES}[name], rows)
