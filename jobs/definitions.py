"""Definitions packs: the versioned grouping tables that drive the grouper, and `drg definitions`.

Why tables, not code: a DRG version changes every year and every region patches it. The grouper only
knows rule *families* (pre-MDC, MDC by principal diagnosis, ADRG by procedure/diagnosis lists, severity
with exclusions, split suffixes); which codes and ADRGs take part lives in a pack on disk, so a new
version is a new folder, reviewed as data. A pack is named by folder path, or by the name of a pack the
project ships in `jobs/packs/` (`demo`), read through importlib.resources so it is found from a wheel
or the cluster's `--py-files` zip as well as from a checkout. The format is documented in schemas/CONTRACTS.md
("Definitions pack"). Packs are small (tens of thousands of rows), so they are parsed and validated
on the driver and handed to Spark as DataFrames that the grouper broadcasts.

`drg definitions import chs-1.1 --from DIR --out PACK` builds a full CHS-DRG 1.1 pack from the public
tables kept outside the repository (../shared/reference/chs-drg-1.1); that data is never committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from jobs.config import builtin_names
from jobs.errors import PipelineError
from jobs.pack_files import BUILTIN_PACKS, CodeSystem, locate_pack, read_csv, write_csv

SEVERITIES = ("MCC", "CC", "NONE")
SUFFIXES = ("1", "3", "5", "9")
KINDS = ("surgical", "non_or", "medical")
ROLES = ("principal_diagnosis", "principal_procedure")

S = T.StringType()
TABLES: dict[str, T.StructType] = {
    "mdc": T.StructType([T.StructField(c, S) for c in ("mdc", "name", "kind")]),
    "adrg": T.StructType(
        [*(T.StructField(c, S) for c in ("adrg", "name", "mdc", "kind")), T.StructField("priority", T.IntegerType())]
    ),
    "adrg_members": T.StructType([T.StructField(c, S) for c in ("adrg", "role", "code")]),
    "drg": T.StructType(
        [
            *(T.StructField(c, S) for c in ("drg", "adrg", "suffix", "name")),
            T.StructField("reference_weight", T.DoubleType()),
        ]
    ),
    "codes": T.StructType([T.StructField(c, S) for c in ("code", "kind", "name", "severity", "exclusion_table")]),
    "cc_exclusions": T.StructType([T.StructField(c, S) for c in ("exclusion_table", "principal_diagnosis")]),
}


# --------------------------------------------------------------------------------------------------
# manifest
class VentilationRule(BaseModel):
    """Invasive ventilation of at least `min_hours` puts the case in `adrg` (pre-MDC), whatever is coded."""

    model_config = ConfigDict(extra="forbid")
    adrg: str
    min_hours: float = Field(gt=0)


class NewbornRule(BaseModel):
    """Which cases may enter the newborn MDC and how birth weight picks among weight-band ADRGs.

    Newborn: age_days <= max_age_days (CHS: < 29 days) and age_years missing or 0. `infant_adrgs` are
    the MDC's ADRGs for 29 days <= age < 1 year (CHS PV1) and are closed to newborns. A weight band
    [low, high] (grams, inclusive, null = open) restricts its ADRG to newborns of that birth weight.
    """

    model_config = ConfigDict(extra="forbid")
    mdc: str
    max_age_days: int = Field(ge=0)
    infant_max_age_days: int = Field(ge=0)
    infant_adrgs: list[str] = []
    weight_bands: dict[str, tuple[int | None, int | None]] = {}


class TraumaRule(BaseModel):
    """Multiple significant trauma: a trauma principal diagnosis plus significant (CC/MCC) trauma
    diagnoses covering at least `min_sites` body sites; a site is a list of ICD-10 code prefixes."""

    model_config = ConfigDict(extra="forbid")
    mdc: str
    min_sites: int = Field(ge=2)
    fallback_adrg: str | None = None
    sites: dict[str, list[str]]


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pre_mdc_order: list[str] = Field(min_length=1)
    ventilation: VentilationRule | None = None
    newborn: NewbornRule | None = None
    multiple_trauma: TraumaRule | None = None
    # severity -> suffixes tried in order when the ADRG lacks the exact one ("9" always wins)
    split_fallback: dict[str, list[str]] = {"MCC": ["1", "3", "5"], "CC": ["3", "5"], "NONE": ["5", "3", "1"]}
    invalid_principal_drg: str = "0000"
    unrelated_procedure_suffix: str = "QY"

    @model_validator(mode="after")
    def _check(self):
        if set(self.split_fallback) != set(SEVERITIES):
            raise ValueError(f"split_fallback needs exactly the keys {', '.join(SEVERITIES)}")
        for sev, sufs in self.split_fallback.items():
            bad = [s for s in sufs if s not in SUFFIXES]
            if bad:
                raise ValueError(f"split_fallback.{sev}: unknown suffix {bad[0]!r}")
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    code_system: CodeSystem
    description: str = ""
    source: str = ""
    rules: Rules


# --------------------------------------------------------------------------------------------------
# pack
@dataclass
class Pack:
    """A loaded, validated pack: `.manifest`, plain rows per table (`.rows`) and `.table(name)`."""

    path: Traversable  # a folder, or a pack shipped in jobs/packs
    manifest: Manifest
    rows: dict[str, list[tuple]]
    spark: SparkSession
    _frames: dict[str, DataFrame] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def table(self, name: str) -> DataFrame:
        """One pack table as a DataFrame with the contract's columns (cached per pack)."""
        if name not in TABLES:
            raise PipelineError(f"definitions pack has no table {name!r}; tables: {', '.join(TABLES)}")
        if name not in self._frames:
            self._frames[name] = self.spark.createDataFrame(self.rows[name], TABLES[name])
        return self._frames[name]

    def dicts(self, name: str) -> list[dict]:
        cols = TABLES[name].fieldNames()
        return [dict(zip(cols, r, strict=True)) for r in self.rows[name]]


def _fail(path: Traversable, line: int, msg: str):
    raise PipelineError(f"definitions pack: {path} row {line}: {msg}")


def read_manifest(folder: Traversable) -> Manifest:
    path = folder / "manifest.yaml"
    if not path.is_file():
        raise PipelineError(
            f"definitions pack not found: {path} (a pack is a folder with manifest.yaml and CSV tables, "
            f"or the name of a shipped pack: {', '.join(builtin_names(BUILTIN_PACKS))})"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Manifest.model_validate(data)
    except yaml.YAMLError as exc:
        raise PipelineError(f"definitions pack: {path} is not valid YAML ({str(exc).splitlines()[0]})") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top)"
        raise PipelineError(f"definitions pack: {path}: {where}: {err['msg']}") from exc


def parse_pack(folder: str | Path | Traversable) -> tuple[Manifest, dict[str, list[tuple]]]:
    """Read and cross-check every table of a pack (driver side); errors name the file and row."""
    folder = locate_pack(folder)
    manifest = read_manifest(folder)
    raw = {name: read_csv(folder / f"{name}.csv", schema.fieldNames()) for name, schema in TABLES.items()}
    rows: dict[str, list[tuple]] = {}

    mdcs = set()
    for i, r in enumerate(raw["mdc"], start=2):
        if r["kind"] not in ("pre_mdc", "body_system", "special"):
            _fail(folder / "mdc.csv", i, f"kind {r['kind']!r} is not pre_mdc/body_system/special")
        mdcs.add(r["mdc"])
    rows["mdc"] = [(r["mdc"], r["name"], r["kind"]) for r in raw["mdc"]]

    adrgs: dict[str, dict] = {}
    for i, r in enumerate(raw["adrg"], start=2):
        p = folder / "adrg.csv"
        if r["mdc"] not in mdcs:
            _fail(p, i, f"mdc {r['mdc']!r} is not in mdc.csv")
        if r["kind"] not in KINDS:
            _fail(p, i, f"kind {r['kind']!r} is not one of {', '.join(KINDS)}")
        if not r["priority"].lstrip("-").isdigit():
            _fail(p, i, f"priority {r['priority']!r} is not an integer")
        if r["adrg"] in adrgs:
            _fail(p, i, f"duplicate adrg {r['adrg']!r}")
        adrgs[r["adrg"]] = r
    rows["adrg"] = [(r["adrg"], r["name"], r["mdc"], r["kind"], int(r["priority"])) for r in adrgs.values()]

    members = []
    for i, r in enumerate(raw["adrg_members"], start=2):
        p = folder / "adrg_members.csv"
        if r["adrg"] not in adrgs:
            _fail(p, i, f"adrg {r['adrg']!r} is not in adrg.csv")
        if r["role"] not in ROLES:
            _fail(p, i, f"role {r['role']!r} is not one of {', '.join(ROLES)}")
        if not r["code"]:
            _fail(p, i, "empty code")
        members.append((r["adrg"], r["role"], r["code"]))
    rows["adrg_members"] = sorted(set(members))

    drgs = []
    seen = set()
    for i, r in enumerate(raw["drg"], start=2):
        p = folder / "drg.csv"
        if r["adrg"] not in adrgs:
            _fail(p, i, f"adrg {r['adrg']!r} is not in adrg.csv")
        if r["suffix"] not in SUFFIXES:
            _fail(p, i, f"suffix {r['suffix']!r} is not one of {', '.join(SUFFIXES)}")
        if (r["adrg"], r["suffix"]) in seen:
            _fail(p, i, f"duplicate suffix {r['suffix']} for {r['adrg']}")
        seen.add((r["adrg"], r["suffix"]))
        try:
            weight = float(r["reference_weight"]) if r["reference_weight"] else None
        except ValueError:
            _fail(p, i, f"reference_weight {r['reference_weight']!r} is not a number")
        drgs.append((r["drg"], r["adrg"], r["suffix"], r["name"], weight))
    rows["drg"] = drgs

    codes = {}
    for i, r in enumerate(raw["codes"], start=2):
        p = folder / "codes.csv"
        if r["kind"] not in ("diagnosis", "procedure"):
            _fail(p, i, f"kind {r['kind']!r} is not diagnosis/procedure")
        if r["severity"] not in ("", "CC", "MCC"):
            _fail(p, i, f"severity {r['severity']!r} is not CC, MCC or empty")
        if r["code"] in codes:
            _fail(p, i, f"duplicate code {r['code']!r}")
        codes[r["code"]] = (r["code"], r["kind"], r["name"], r["severity"] or None, r["exclusion_table"] or None)
    rows["codes"] = list(codes.values())
    rows["cc_exclusions"] = sorted({(r["exclusion_table"], r["principal_diagnosis"]) for r in raw["cc_exclusions"]})

    _check_rules(folder, manifest, adrgs, mdcs)
    return manifest, rows


def _check_rules(folder: Traversable, manifest: Manifest, adrgs: dict, mdcs: set) -> None:
    """Every ADRG/MDC a special rule names must exist, so a typo fails at load, not as silent misgrouping."""
    rules = manifest.rules
    named = [(f"pre_mdc_order {m}", m, mdcs) for m in rules.pre_mdc_order]
    if rules.ventilation:
        named.append(("ventilation.adrg", rules.ventilation.adrg, adrgs))
    if rules.newborn:
        named.append(("newborn.mdc", rules.newborn.mdc, mdcs))
        named += [("newborn.infant_adrgs", a, adrgs) for a in rules.newborn.infant_adrgs]
        named += [("newborn.weight_bands", a, adrgs) for a in rules.newborn.weight_bands]
    if rules.multiple_trauma:
        named.append(("multiple_trauma.mdc", rules.multiple_trauma.mdc, mdcs))
        if rules.multiple_trauma.fallback_adrg:
            named.append(("multiple_trauma.fallback_adrg", rules.multiple_trauma.fallback_adrg, adrgs))
    for where, value, known in named:
        if value not in known:
            raise PipelineError(
                f"definitions pack: {folder / 'manifest.yaml'}: rules.{where}: {value!r} is not in the pack"
            )


def load_pack(spark: SparkSession, path: str | Path | Traversable):
    """Load and validate a pack (folder path or shipped name); a missing or malformed pack raises
    PipelineError naming the file. A format-2 pack (manifest `format: 2`) loads as a
    jobs.schemes.pack.RulePack, evaluated by jobs.schemes.evaluate."""
    from jobs.schemes.pack import is_rule_pack, parse_rule_pack

    folder = locate_pack(path)
    if is_rule_pack(folder):
        return parse_rule_pack(folder, spark)
    manifest, rows = parse_pack(folder)
    return Pack(folder, manifest, rows, spark)


# --------------------------------------------------------------------------------------------------
# CHS-DRG 1.1 import
MDC_NAMES = {
    "MDCA": ("先期分组疾病及相关操作", "pre_mdc"),
    "MDCB": ("神经系统疾病及功能障碍", "body_system"),
    "MDCC": ("眼疾病及功能障碍", "body_system"),
    "MDCD": ("头颈、耳、鼻、口、咽疾病及功能障碍", "body_system"),
    "MDCE": ("呼吸系统疾病及功能障碍", "body_system"),
    "MDCF": ("循环系统疾病及功能障碍", "body_system"),
    "MDCG": ("消化系统疾病及功能障碍", "body_system"),
    "MDCH": ("肝、胆、胰疾病及功能障碍", "body_system"),
    "MDCI": ("肌肉、骨骼疾病及功能障碍", "body_system"),
    "MDCJ": ("皮肤、皮下组织及乳腺疾病及功能障碍", "body_system"),
    "MDCK": ("内分泌、营养、代谢疾病及功能障碍", "body_system"),
    "MDCL": ("肾脏及泌尿系统疾病及功能障碍", "body_system"),
    "MDCM": ("男性生殖系统疾病及功能障碍", "body_system"),
    "MDCN": ("女性生殖系统疾病及功能障碍", "body_system"),
    "MDCO": ("妊娠、分娩及产褥期", "body_system"),
    "MDCP": ("新生儿及其他围产期新生儿疾病", "special"),
    "MDCQ": ("血液、造血器官及免疫疾病和功能障碍", "body_system"),
    "MDCR": ("骨髓增生疾病和功能障碍，低分化肿瘤", "body_system"),
    "MDCS": ("感染及寄生虫病（全身性或不明确部位的）", "body_system"),
    "MDCT": ("精神疾病及功能障碍", "body_system"),
    "MDCU": ("酒精/药物使用及其引起的器质性精神功能障碍", "body_system"),
    "MDCV": ("创伤、中毒及药物毒性反应", "body_system"),
    "MDCW": ("烧伤", "body_system"),
    "MDCX": ("影响健康因素及其他就医情况", "body_system"),
    "MDCY": ("HIV感染疾病及相关操作", "special"),
    "MDCZ": ("多发严重创伤", "special"),
}

SUFFIX_LABEL = {"1": "伴严重并发症或合并症", "3": "伴一般并发症或合并症", "5": "不伴并发症或合并症", "9": "不分组"}


def drg_display_name(adrg_name: str, suffix: str) -> str:
    """A DRG's name from its ADRG's and the split: `急性心肌梗死，伴一般并发症或合并症`; unsplit: the ADRG's."""
    return adrg_name if suffix == "9" or suffix not in SUFFIX_LABEL else f"{adrg_name}，{SUFFIX_LABEL[suffix]}"


CHS_RULES = {
    "pre_mdc_order": ["MDCA", "MDCP", "MDCY", "MDCZ"],
    "ventilation": {"adrg": "AH1", "min_hours": 96},
    "newborn": {
        "mdc": "MDCP",
        "max_age_days": 28,
        "infant_max_age_days": 364,
        "infant_adrgs": ["PV1"],
        "weight_bands": {"PS1": [None, 1499], "PS2": [1500, 1999], "PS3": [2000, 2499], "PS4": [2500, None]},
    },
    "multiple_trauma": {
        "mdc": "MDCZ",
        "min_sites": 2,
        "fallback_adrg": "ZZ1",
        "sites": {
            "head": ["S0"],
            "neck": ["S1"],
            "thorax": ["S2"],
            "abdomen_pelvis": ["S3"],
            "upper_limb": ["S4", "S5", "S6"],
            "lower_limb": ["S7", "S8", "S9"],
        },
    },
}


def adrg_kind(adrg: str) -> str:
    """CHS convention: the ADRG's 2nd letter A-J is surgical, K-Q non-OR procedure, R-Z medical."""
    letter = adrg[1:2].upper()
    return "surgical" if "A" <= letter <= "J" else "non_or" if "K" <= letter <= "Q" else "medical"


def import_chs11(src: str | Path, out: str | Path) -> dict[str, int]:
    """Build a CHS-DRG 1.1 pack from the public tables (see module docstring); returns row counts.

    DRG list and suffixes come from the latest year of published_weights_harbin.csv (its weights
    become reference_weight); an ADRG without a weight that year takes its latest earlier weight, and
    one never published gets an unsplit `9` DRG without weight so it still groups.
    """
    src, out = Path(src), Path(out)
    need = ["adrg.csv", "adrg_members.csv", "codes.csv", "cc_exclusions.csv", "published_weights_harbin.csv"]
    missing = [n for n in need if not (src / n).is_file()]
    if missing:
        raise PipelineError(f"definitions import chs-1.1: {src} lacks {', '.join(missing)}")
    adrg = read_csv(src / "adrg.csv", ["adrg", "name", "mdc"])
    members = read_csv(src / "adrg_members.csv", ["adrg", "role", "code"])
    codes = read_csv(src / "codes.csv", ["code", "name", "kind", "severity", "exclusion_table"])
    excl = read_csv(src / "cc_exclusions.csv", ["exclusion_table", "principal_diagnosis"])
    weights = read_csv(src / "published_weights_harbin.csv", ["year", "drg", "weight"])

    out.mkdir(parents=True, exist_ok=True)
    names = {a["adrg"]: a["name"] or a["adrg"] for a in adrg}
    counts = {}
    mdcs = sorted({a["mdc"] for a in adrg})
    counts["mdc"] = write_csv(
        out / "mdc.csv", ["mdc", "name", "kind"], [(m, *MDC_NAMES.get(m, (m, "body_system"))) for m in mdcs]
    )
    counts["adrg"] = write_csv(
        out / "adrg.csv",
        ["adrg", "name", "mdc", "kind", "priority"],
        [(a["adrg"], a["name"], a["mdc"], adrg_kind(a["adrg"]), i) for i, a in enumerate(adrg, start=1)],
    )
    counts["adrg_members"] = write_csv(
        out / "adrg_members.csv",
        ["adrg", "role", "code"],
        sorted({(m["adrg"], m["role"], m["code"]) for m in members if m["adrg"] in names}),
    )
    # latest year wins per DRG; ADRGs absent from the latest year keep their latest earlier DRGs
    by_year: dict[str, dict[str, dict[str, float]]] = {}
    for w in weights:
        a, suffix = w["drg"][:3], w["drg"][3:4]
        if a in names and suffix in SUFFIXES:
            by_year.setdefault(a, {}).setdefault(w["year"], {})[suffix] = float(w["weight"])
    drg_rows = []
    for a in names:
        years = by_year.get(a)
        splits = years[max(years)] if years else {"9": None}
        for suffix in sorted(splits):
            drg_rows.append((f"{a}{suffix}", a, suffix, drg_display_name(names[a], suffix), splits[suffix]))
    counts["drg"] = write_csv(out / "drg.csv", ["drg", "adrg", "suffix", "name", "reference_weight"], drg_rows)
    one_per_code = {}
    for c in codes:
        one_per_code.setdefault(c["code"], (c["code"], c["kind"], c["name"], c["severity"], c["exclusion_table"]))
    counts["codes"] = write_csv(
        out / "codes.csv", ["code", "kind", "name", "severity", "exclusion_table"], one_per_code.values()
    )
    counts["cc_exclusions"] = write_csv(
        out / "cc_exclusions.csv",
        ["exclusion_table", "principal_diagnosis"],
        sorted({(e["exclusion_table"], e["principal_diagnosis"]) for e in excl}),
    )
    source = (src / "SOURCE").read_text(encoding="utf-8").strip() if (src / "SOURCE").is_file() else str(src)
    manifest = {
        "name": "chs-drg",
        "version": "1.1",
        "code_system": {"diagnosis": "ICD-10 医保版 2.0", "procedure": "ICD-9-CM-3 医保版 2.0"},
        "description": "CHS-DRG 1.1 imported by `drg definitions import chs-1.1`; weights: Harbin, latest year",
        "source": source,
        "rules": CHS_RULES,
    }
    (out / "manifest.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8")
    parse_pack(out)  # the importer's output must load
    return counts


# --------------------------------------------------------------------------------------------------
# CLI
def register(sub) -> None:
    p = sub.add_parser("definitions", help="import, check and show definitions packs")
    dsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    imp = dsub.add_parser("import", help="build a pack from published tables")
    imp.add_argument(
        "system",
        choices=["chs-1.1", "opendrg", "opendrg-rules"],
        help="chs-1.1: the public CHS-DRG 1.1 tables (format 1); opendrg: one OpenDRG scheme package, "
        "e.g. ../shared/reference/opendrg/drg_group/chs_drg_11 (format 2, rule for rule); opendrg-rules: "
        "the NHSA rule text, e.g. ../shared/reference/opendrg-rules/CHS_DRG_20 (format 2)",
    )
    imp.add_argument("--from", dest="src", required=True, help="folder with the published tables / scheme package")
    imp.add_argument("--out", required=True, help="pack folder to write")
    imp.add_argument("--name", help="opendrg: pack name (default: the scheme package's name)")
    imp.add_argument("--version", dest="pack_version", help="opendrg: pack version (default: the package's name)")
    imp.add_argument(
        "--qy",
        choices=["source", "national"],
        default="source",
        help="opendrg: QY tests as the source has them (default), or `national`: QY tests the source switched "
        "off (`if False and ...`) imported active, except in MDCs entered by procedure (MDCA)",
    )
    imp.add_argument("--weights", help="opendrg: published weights CSV (year, drg, weight) for reference_weight")
    imp.add_argument("--year", help="opendrg: the year of --weights to use")
    imp.add_argument(
        "--allow-partial",
        action="store_true",
        help="opendrg-rules: write the pack even if some rules cannot be translated (they are listed)",
    )
    imp.set_defaults(func=run_import)
    show = dsub.add_parser("show", help="validate a pack and print its identity and table sizes")
    show.add_argument("pack", help="pack folder or shipped pack name (demo)")
    show.set_defaults(func=run_show)


def run_import(args) -> int:
    if args.system == "opendrg":
        from jobs.schemes.opendrg import import_opendrg, published_weights

        if bool(args.weights) != bool(args.year):
            raise PipelineError("definitions import opendrg: --weights and --year go together")
        weights = published_weights(args.weights, args.year) if args.weights else None
        result = import_opendrg(args.src, args.out, args.name, args.pack_version, qy=args.qy, weights=weights)
        print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in result["counts"].items()))
        for note in result["notes"]:
            print(f"  note: {note}")
        return 0
    if args.system == "opendrg-rules":
        from jobs.schemes.rules_pack import import_rules

        counts = import_rules(args.src, args.out, allow_partial=args.allow_partial)
    else:
        counts = import_chs11(args.src, args.out)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def run_show(args) -> int:
    from jobs.schemes.pack import is_rule_pack, parse_rule_pack

    if is_rule_pack(locate_pack(args.pack)):
        rp = parse_rule_pack(args.pack)
        m = rp.manifest
        print(f"{m.name} {m.version} (format 2; {m.code_system.diagnosis}; {m.code_system.procedure})")
        print(f"  source: {m.source}")
        print(f"  {len(rp.mdcs)} MDCs, {sum(a['kind'] != 'qy' for a in rp.adrgs)} ADRGs, "
              f"{sum(len(d) for d in rp.drgs.values())} DRGs, {len(rp.lists)} code lists, "
              f"{sum(len(v) for v in rp.conditions.values())} condition alternatives")
        for note in m.notes:
            print(f"  note: {note}")
        return 0
    manifest, rows = parse_pack(args.pack)
    print(f"{manifest.name} {manifest.version} ({manifest.code_system.diagnosis}; {manifest.code_system.procedure})")
    for name, table_rows in rows.items():
        print(f"  {name}: {len(table_rows)} rows")
    return 0
