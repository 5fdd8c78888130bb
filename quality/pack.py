"""What the quality rules need to know about each code of a definitions pack, as one small table.

Why one row per code and not the pack as such: every code-level rule asks the same questions of a code
(is it in the code set and of which kind, how severe is it as a secondary diagnosis and under which
exclusion table, which exclusion tables list it as a principal diagnosis, in which MDCs does the pack
place it), so one table answers them all. The MDCs are a bit mask (bit i = the i-th MDC of the pack in
name order) so that "only in these MDCs" is integer arithmetic per code. The pack itself is loaded and
validated by jobs.definitions.load_pack; the table is built on the driver from its rows, without a job.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from jobs.definitions import load_pack
from jobs.errors import PipelineError

SEVERITY_RANK = {"MCC": 2, "CC": 1}
MAX_MDCS = 63  # bits of a signed long

CODE_INFO = T.StructType(
    [
        T.StructField("code", T.StringType()),
        T.StructField("code_kind", T.StringType()),  # diagnosis | procedure | null (only in ADRG lists)
        T.StructField("severity_rank", T.IntegerType()),  # as a secondary diagnosis: 2 MCC, 1 CC, 0 none
        T.StructField("exclusion_table", T.StringType()),  # its CC exclusion table
        T.StructField("mdc_mask", T.LongType()),  # MDCs whose ADRGs list it (bits of mdc_bits), 0: none
        T.StructField("excluding_tables", T.ArrayType(T.StringType())),  # tables listing it as principal
    ]
)


@dataclass(frozen=True)
class QualityPack:
    code_info: DataFrame  # CODE_INFO, one row per code of the pack
    mdc_bits: dict[str, int]  # MDC -> its bit in code_info.mdc_mask

    def mdc_mask(self, mdcs: list[str]) -> int:
        """The mask of `mdcs` (an MDC the pack does not have places no code, so adds no bit)."""
        return sum(self.mdc_bits.get(m, 0) for m in mdcs)


def load_quality_pack(spark: SparkSession, path: str) -> QualityPack:
    """Build the code table from a pack folder (tens of thousands of rows)."""
    pack = load_pack(spark, path)
    if getattr(pack, "format", 1) == 2:
        return _rule_pack_codes(spark, pack, path)
    mdc_of = {adrg: mdc for adrg, _name, mdc, _kind, _priority in pack.rows["adrg"]}
    mdcs = sorted(set(mdc_of.values()))
    if len(mdcs) > MAX_MDCS:
        raise PipelineError(f"definitions pack {path}: {len(mdcs)} MDCs, the quality rules handle at most {MAX_MDCS}")
    bits = {m: 1 << i for i, m in enumerate(mdcs)}
    info: dict[str, list] = {}

    def row(code: str) -> list:
        return info.setdefault(code, [code, None, 0, None, 0, []])

    for code, kind, _name, severity, table in pack.rows["codes"]:
        r = row(code)
        r[1], r[2], r[3] = kind, SEVERITY_RANK.get(severity, 0), table
    for adrg, _role, code in pack.rows["adrg_members"]:
        row(code)[4] |= bits[mdc_of[adrg]]
    for table, principal in pack.rows["cc_exclusions"]:
        row(principal)[5].append(table)
    rows = [(*r[:5], sorted(r[5]) or None) for r in info.values()]
    return QualityPack(code_info=spark.createDataFrame(rows, CODE_INFO, verifySchema=False), mdc_bits=bits)


def _rule_pack_codes(spark: SparkSession, pack, path: str) -> QualityPack:
    """The same table for a format-2 rule pack (jobs.schemes.pack): kinds from codes.csv, severity from
    severity.csv (MCC over CC), MDCs from the lists each MDC's and ADRG's conditions use."""
    mdcs = sorted(m for m, _ in pack.mdcs)
    if len(mdcs) > MAX_MDCS:
        raise PipelineError(f"definitions pack {path}: {len(mdcs)} MDCs, the quality rules handle at most {MAX_MDCS}")
    bits = {m: 1 << i for i, m in enumerate(mdcs)}
    info: dict[str, list] = {}

    def row(code: str) -> list:
        return info.setdefault(code, [code, None, 0, None, 0, []])

    for code, (kind, _name) in pack.code_names.items():
        row(code)[1] = kind
    for code, levels in pack.severity.items():
        level = "MCC" if "MCC" in levels else "CC"
        r = row(code)
        r[2], r[3] = SEVERITY_RANK[level], levels[level]
    mdc_of = {a["adrg"]: a["mdc"] for a in pack.adrgs}
    for (level, target), alts in pack.conditions.items():
        mdc = target if level == "mdc" else mdc_of.get(target)
        if mdc is None or (level == "adrg" and target.endswith("QY")):
            continue
        for alt in alts:
            for a in alt:
                if a.kind in ("pdx", "dx", "ppx", "px", "proc") and a.op == "in" and "SS_VALID" not in a.list:
                    for code in pack.lists[a.list]:
                        row(code)[4] |= bits[mdc]
    for principal, tables in pack.cc_exclusions.items():
        row(principal)[5].extend(tables)
    rows = [(*r[:5], sorted(r[5]) or None) for r in info.values()]
    return QualityPack(code_info=spark.createDataFrame(rows, CODE_INFO, verifySchema=False), mdc_bits=bits)
