"""Procedure attributes (手术操作属性) for comprehensive packets: `BSZL` < `ZDXCZ` < `ZLXCZ` < `SS`.

Why data, not code: S1 p.46 leaves the attribute table to the region ("各地可结合已有做法…确定"). The
shipped table (package data `procedure_attributes.csv`, overridable by the policy) is made by `derive`
from a DRG definitions pack plus ICD-9-CM-3 ranges, and every row says how it was decided:
- a code that is a principal procedure of a surgical ADRG (2nd letter A-J) is `SS` (手术, incl. 介入);
- a code of a non-OR ADRG (K-Q) is `ZLXCZ` (治疗性操作) unless its range below is diagnostic (`ZDXCZ`);
- any other code falls to the longest matching ICD-9-CM-3 range: chapters 00-86 are operations (`SS`)
  except the subcategories titled "diagnostic procedures on ..." (`ZDXCZ`); 87-91 (radiology, examination,
  microscopy) `ZDXCZ`; 92-99 (nuclear medicine and radiotherapy, therapy, nonoperative) `ZLXCZ`, except
  the diagnostic scans and evaluations 92.0-92.1, 94.0-94.1, 95.0-95.2 (`ZDXCZ`).
A case's attribute is the highest among its procedures (v1.0 vendor practice, dip.md §2.3); no procedure,
or none matching the table, is `BSZL` (内科保守).

Regenerate: `python -m jobs.dip.attributes --definitions PACK --out jobs/dip/procedure_attributes.csv`.
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


def derive(adrgs: list[tuple], members: list[tuple], pack_name: str) -> list[tuple[str, str, str]]:
    """Rows (prefix, attribute, basis) from a pack's adrg (adrg, name, mdc, kind, ...) and adrg_members
    (adrg, role, code) rows: pack codes first, then the ranges."""
    kind = {a[0]: a[3] for a in adrgs}
    found: dict[str, tuple[str, str]] = {}
    for adrg, role, code in (m[:3] for m in members):
        if role != "principal_procedure":
            continue
        if kind.get(adrg) == "surgical":
            found[code] = ("SS", f"{pack_name}: principal procedure of surgical ADRG {adrg}")
        elif kind.get(adrg) == "non_or" and found.get(code, ("",))[0] != "SS":
            diagnostic = (range_attribute(code) or ("",))[0] == "ZDXCZ"
            found[code] = (
                ("ZDXCZ", f"{pack_name}: procedure of non-OR ADRG {adrg}, diagnostic by its ICD-9-CM-3 range")
                if diagnostic else ("ZLXCZ", f"{pack_name}: procedure of non-OR ADRG {adrg}")
            )
    return [(code, *found[code]) for code in sorted(found)] + list(RANGES)


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
    from jobs.definitions import parse_pack

    parser = argparse.ArgumentParser(description="derive the DIP procedure attribute table from a DRG pack")
    parser.add_argument("--definitions", required=True, help="definitions pack folder")
    parser.add_argument("--out", required=True, help="CSV to write")
    args = parser.parse_args(argv)
    manifest, rows = parse_pack(args.definitions)
    table = derive(rows["adrg"], rows["adrg_members"], f"pack {manifest.name} {manifest.version}")
    with open(args.out, "w", encoding="utf-8", newline="") as out:
        out.write(f"# DIP procedure attributes derived from pack {manifest.name} {manifest.version} "
                  "by jobs/dip/attributes.py (rules in its docstring); longest prefix wins\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(table)
    print(f"wrote {len(table)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
