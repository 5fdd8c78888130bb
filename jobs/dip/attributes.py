"""Procedure attributes (手术操作属性) for comprehensive packets: `BSZL` < `ZDXCZ` < `ZLXCZ` < `SS`.

Why data, not code: S1 p.46 leaves the attribute table to the region ("各地可结合已有做法…确定"). The
shipped table (package data `procedure_attributes.csv`, overridable by the policy's
`procedure_attributes`) is made by `derive` from the national DRG pack users group with, CHS-DRG 2.0
(`jobs/packs/chs-2.0`, format 2), plus ICD-9-CM-3 ranges; every row's `basis` says how it was decided:
- a procedure an ADRG lists (format 2: the ADRG's own `ppx`/`px` lists in conditions.csv; format 1:
  adrg_members `principal_procedure` rows) takes the ADRG's kind (adrg.csv; CHS-DRG letters A-J
  surgical, K-Q non-OR):
  - surgical ADRG -> `SS` (手术);
  - non-OR ADRG whose name says interventional (介入, 经皮: e.g. FL1 经皮瓣膜植入或修复术, RM1 …介入、消融治疗)
    -> `SS` (dip.md §2.3: 介入 belongs to the 相关手术组), unless diagnostic (below);
  - other non-OR ADRGs -> `ZLXCZ` (治疗性操作), unless diagnostic;
  - diagnostic = the ADRG's name says examination or diagnosis and not treatment (检查/诊断, no 治疗: BM1
    神经介入检查术, FM5 经皮心导管检查操作, HL2 肝胆胰系统的诊断性操作), or the code's ICD-9-CM-3 range
    below is diagnostic -> `ZDXCZ` (诊断性操作);
  - a code several ADRGs list takes the highest of their attributes;
  - ADRGs of the pre-MDC (MDCA: transplants, ventilation, ECMO, tracheostomy) are skipped: their lists
    mix operations with ventilation hours, so codes only they list fall to the ranges below.
- a procedure of the pack's code table that no ADRG lists is not an operation for the scheme (non-OR):
  `ZLXCZ`, or `ZDXCZ` when its range is diagnostic (chs-1.1 has such codes; chs-2.0's table holds
  only listed ones);
- any other code takes the longest matching ICD-9-CM-3 range: chapters 00-86 are operations (`SS`)
  except the subcategories titled "diagnostic procedures on ..." (`ZDXCZ`); 87-91 (radiology,
  examination, microscopy) `ZDXCZ`; 92-99 (nuclear medicine and radiotherapy, therapy, nonoperative)
  `ZLXCZ`, except the diagnostic scans and evaluations 92.0-92.1, 94.0-94.1, 95.0-95.2 (`ZDXCZ`).
A case's attribute is the highest among its procedures (v1.0 vendor practice, dip.md §2.3); no procedure,
or none matching the table, is `BSZL` (内科保守). `derive` reads format-1 packs (e.g. `demo`) as well.

Regenerate: `python -m jobs.dip.attributes --definitions chs-2.0 --out jobs/dip/procedure_attributes.csv`.
"""

from __future__ import annotations

import argparse
import csv
from importlib import resources
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.errors import PipelineError

ATTRIBUTES = ("BSZL", "ZDXCZ", "ZLXCZ", "SS")  # rank 0..3: the highest among a case's procedures wins
SHIPPED = "procedure_attributes.csv"
COLUMNS = ("prefix", "attribute", "basis")

OPERATIONS = "ICD-9-CM-3 chapters 00-86: operations"
DIAGNOSTIC_SUB = "ICD-9-CM-3 subcategory 'diagnostic procedures on ...'"
# (prefix, attribute, basis); a prefix matches the start of the coded procedure, the longest wins.
RANGES: tuple[tuple[str, str, str], ...] = (
    *((f"{c:02d}", "SS", OPERATIONS) for c in range(0, 87)),
    *((c, "ZDXCZ", DIAGNOSTIC_SUB) for c in (
        "01.1", "03.3", "04.1", "06.1", "07.1", "08.1", "09.1", "10.2", "11.2", "12.2", "14.1", "16.2",
        "18.1", "20.3", "21.2", "22.1", "24.1", "25.0", "26.1", "27.2", "28.1", "29.1", "31.4", "33.2",
        "34.2", "37.2", "38.2", "40.1", "41.3", "42.2", "44.1", "45.1", "45.2", "48.2", "49.2", "50.1",
        "51.1", "52.1", "54.2", "55.2", "56.3", "57.3", "58.2", "59.2", "60.1", "61.1", "62.1", "65.1",
        "66.1", "67.1", "68.1", "70.2", "71.1", "75.1", "76.1", "77.4", "80.2", "80.3", "83.2", "85.1",
        "86.1",
    )),
    *((f"{c}", "ZDXCZ", "ICD-9-CM-3 chapters 87-91: diagnostic radiology, examination, microscopy")
      for c in range(87, 92)),
    *((f"{c}", "ZLXCZ", "ICD-9-CM-3 chapters 92-99: radiotherapy, therapy, nonoperative procedures")
      for c in range(92, 100)),
    *((c, "ZDXCZ", "ICD-9-CM-3 diagnostic scans and evaluations within 92-95")
      for c in ("92.0", "92.1", "94.0", "94.1", "95.0", "95.1", "95.2")),
)


def range_attribute(code: str) -> tuple[str, str] | None:
    """(attribute, basis) of the longest range prefix of `code`, driver-side."""
    best = max((r for r in RANGES if code.startswith(r[0])), key=lambda r: len(r[0]), default=None)
    return (best[1], best[2]) if best else None


INTERVENTIONAL = ("介入", "经皮")
EXAMINATION = ("检查", "诊断")


def _adrg_attribute(kind: str, name: str, code: str, adrg: str, pack: str) -> tuple[str, str] | None:
    """(attribute, basis) a code takes from one ADRG that lists it; None for medical/QY ADRGs."""
    if kind == "surgical":
        return "SS", f"{pack}: surgical ADRG {adrg}"
    if kind != "non_or":
        return None
    if any(w in name for w in EXAMINATION) and "治疗" not in name:
        return "ZDXCZ", f"{pack}: non-OR ADRG {adrg} ({name}): diagnostic by its name"
    if (range_attribute(code) or ("",))[0] == "ZDXCZ":
        return "ZDXCZ", f"{pack}: non-OR ADRG {adrg}, diagnostic by its ICD-9-CM-3 range"
    if any(w in name for w in INTERVENTIONAL):
        return "SS", f"{pack}: non-OR ADRG {adrg} ({name}): interventional"
    return "ZLXCZ", f"{pack}: non-OR ADRG {adrg}"


def derive(adrgs: list[tuple[str, str, str, str]], members: list[tuple[str, str]], procedures: list[str],
           pack: str, pre_mdc: str = "MDCA") -> list[tuple[str, str, str]]:
    """Rows (prefix, attribute, basis) from a pack's ADRGs (adrg, name, mdc, kind), the procedures they
    list (adrg, code) and its procedure codes: pack codes first (each at the highest attribute any of
    its ADRGs gives), then the ranges."""
    info = {a: (name, mdc, kind) for a, name, mdc, kind in adrgs}
    found: dict[str, tuple[str, str]] = {}
    for adrg, code in sorted(set(members)):
        name, mdc, kind = info[adrg]
        got = None if mdc == pre_mdc else _adrg_attribute(kind, name, code, adrg, pack)
        if got and ATTRIBUTES.index(got[0]) > ATTRIBUTES.index(found.get(code, ("BSZL",))[0]):
            found[code] = got
    listed = {code for _, code in members}
    for code in sorted(set(procedures) - listed):
        diagnostic = (range_attribute(code) or ("",))[0] == "ZDXCZ"
        found[code] = ("ZDXCZ" if diagnostic else "ZLXCZ", f"{pack}: listed by no ADRG (non-OR)"
                       + (", diagnostic by its ICD-9-CM-3 range" if diagnostic else ""))
    return [(code, *found[code]) for code in sorted(found)] + list(RANGES)


def pack_procedures(folder) -> tuple[str, list[tuple[str, str, str, str]], list[tuple[str, str]], list[str]]:
    """(pack label, ADRGs (adrg, name, mdc, kind), (adrg, procedure code) pairs, procedure codes) of a
    format-1 or format-2 pack folder or shipped name."""
    from jobs.definitions import locate_pack, parse_pack, read_csv
    from jobs.schemes.pack import is_rule_pack

    folder = locate_pack(folder)
    if not is_rule_pack(folder):
        manifest, rows = parse_pack(folder)
        members = [(a, code) for a, role, code in rows["adrg_members"] if role == "principal_procedure"]
        procedures = [r[0] for r in rows["codes"] if r[1] == "procedure"]
        return f"{manifest.name} {manifest.version}", [r[:4] for r in rows["adrg"]], members, procedures
    import yaml

    manifest = yaml.safe_load((folder / "manifest.yaml").read_text(encoding="utf-8"))
    adrgs = [(r["adrg"], r["name"], r["mdc"], r["kind"])
             for r in read_csv(folder / "adrg.csv", ["adrg", "name", "mdc", "kind"])]
    conditions = read_csv(folder / "conditions.csv", ["level", "target", "kind", "list", "op"])
    owned = {r["list"]: r["target"] for r in conditions  # the ADRG's own lists, not PROCS / OR_PROCS
             if r["level"] == "adrg" and r["kind"] in ("ppx", "px") and r["op"] == "in"
             and r["list"].startswith(r["target"] + ".")}
    members = [(owned[r["list"]], r["code"]) for r in read_csv(folder / "lists.csv", ["list", "code"])
               if r["list"] in owned]
    procedures = [r["code"] for r in read_csv(folder / "codes.csv", ["code", "kind"]) if r["kind"] == "procedure"]
    return f"{manifest['name']} {manifest['version']}", adrgs, members, procedures


def read_rows(path: Path | None = None) -> list[tuple[str, str, str]]:
    """The table's rows: a CSV file, or the shipped one (package data)."""
    if path is None:
        text = resources.files("jobs.dip").joinpath(SHIPPED).read_text(encoding="utf-8")
        label = SHIPPED
    else:
        if not path.is_file():
            raise PipelineError(f"procedure attribute table not found: {path}")
        text, label = path.read_text(encoding="utf-8"), str(path)
    reader = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise PipelineError(f"{label}: expected columns {', '.join(COLUMNS)}, got {reader.fieldnames}")
    rows = []
    for i, row in enumerate(reader, start=2):
        if row["attribute"] not in ATTRIBUTES or not row["prefix"]:
            raise PipelineError(f"{label}: row {i}: prefix must be set and attribute one of {', '.join(ATTRIBUTES)}")
        rows.append((row["prefix"].strip(), row["attribute"], row["basis"]))
    if len({r[0] for r in rows}) != len(rows):
        raise PipelineError(f"{label}: a prefix is listed twice")
    return rows


def attribute_table(spark: SparkSession, rows: list[tuple[str, str, str]]) -> DataFrame:
    """(prefix, plen, rank) for the prefix join."""
    return spark.createDataFrame(
        [(p, len(p), ATTRIBUTES.index(a)) for p, a, _ in rows], "prefix string, plen int, rank int"
    )


def attribute_name(rank: Column) -> Column:
    return F.try_element_at(F.array(*map(F.lit, ATTRIBUTES)), rank + 1)


def key_attributes(keys: DataFrame, table: DataFrame) -> DataFrame:
    """(procedure_key, attribute_rank) for each procedure key with a code in the table: the highest-ranked
    attribute among its codes, each code taking its longest matching prefix (a key none of whose codes
    matches is left out: the caller's left join counts it as BSZL).

    Runs on the distinct procedure keys (a small table), never per case: prefixes of every length are
    generated and equi-joined, which stays a broadcast hash join however large the table is.
    """
    codes = keys.select("procedure_key", F.explode(F.split("procedure_key", r"\+")).alias("code"))
    prefixes = codes.select(
        "procedure_key", "code",
        F.explode(F.transform(F.sequence(F.lit(1), F.length("code")), lambda i: F.substring("code", 1, i)))
        .alias("prefix"),
    )
    matched = prefixes.join(F.broadcast(table), "prefix")
    best = matched.groupBy("procedure_key", "code").agg(F.max_by("rank", "plen").alias("rank"))
    return best.groupBy("procedure_key").agg(F.max("rank").alias("attribute_rank"))  # keys with no match: absent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="derive the DIP procedure attribute table from a DRG pack")
    parser.add_argument("--definitions", required=True, help="definitions pack folder or shipped name (chs-2.0)")
    parser.add_argument("--out", required=True, help="CSV to write")
    args = parser.parse_args(argv)
    label, adrgs, members, procedures = pack_procedures(args.definitions)
    table = derive(adrgs, members, procedures, label)
    counts = {a: sum(1 for r in table if r[1] == a) for a in ATTRIBUTES[1:]}
    with open(args.out, "w", encoding="utf-8", newline="") as out:
        out.write(f"# DIP procedure attributes (手术操作属性) derived from pack {label} by jobs/dip/attributes.py:\n"
                  "# its docstring says how each kind of row is decided; each row's basis names the ADRG or the\n"
                  "# ICD-9-CM-3 range that decided it. A code takes its longest matching prefix.\n"
                  f"# {len(table)} rows: " + ", ".join(f"{a} {n}" for a, n in counts.items()) + "\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(table)
    print(f"wrote {len(table)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
