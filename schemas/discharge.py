"""The canonical discharge abstract (inpatient front page / settlement list), one source of truth.

Code (ingest typing, the synthetic generator, tests) and documentation (`drg schema`) both read
`FIELDS`, so the contract cannot drift from what is enforced. Diagnosis codes are ICD-10 医保版 2.0
(`I21.000x001`, dagger-asterisk pairs `E11.400x021+G63.2*`), procedures ICD-9-CM-3 医保版 (`36.0700`);
both are kept as text exactly as coded, since reformatting a code would hide coding errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # string | int | double | date | codes (list of codes)
    description: str
    key: bool = False  # part of the case key: a row without it cannot be accepted


SPARK_TYPES = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "double": T.DoubleType(),
    "date": T.DateType(),
    "codes": T.ArrayType(T.StringType()),
}

# Cost categories of the settlement list (医保结算清单 收费项目类别), grouped to six; they should sum to
# total_cost (checked by the quality stage, not enforced here).
COST_CATEGORIES = (
    "cost_service",  # 综合医疗服务类
    "cost_diagnosis",  # 诊断类
    "cost_treatment",  # 治疗类 (incl. surgery, rehabilitation, TCM treatment)
    "cost_drug",  # 西药 + 中药类
    "cost_material",  # 耗材类
    "cost_other",  # 血液制品及其他类
)

FIELDS: tuple[Field, ...] = (
    Field("case_id", "string", "病案号/结算清单号: case identifier, unique per hospital", key=True),
    Field("hospital_id", "string", "医疗机构编码: hospital identifier", key=True),
    Field("region_code", "string", "医保区划: region the batch was submitted by"),
    Field("patient_id", "string", "患者标识: pseudonymised (keyed HMAC-SHA256) at ingestion"),
    Field("sex", "int", "性别: 1 male, 2 female, 9 unknown"),
    Field("age_years", "int", "年龄(岁)"),
    Field("age_days", "int", "年龄不足1周岁的天数 (newborns)"),
    Field("birth_weight_g", "int", "新生儿出生体重(克)"),
    Field("admit_date", "date", "入院日期"),
    Field("discharge_date", "date", "出院日期"),
    Field("los_days", "int", "实际住院天数 as reported"),
    Field("discharge_disposition", "int", "离院方式: 1 医嘱离院 2 转院 3 转社区 4 非医嘱离院 5 死亡 9 其他"),
    Field("principal_dx", "string", "主要诊断编码 (ICD-10 医保版)"),
    Field("secondary_dx", "codes", "其他诊断编码 (ICD-10 医保版), in coded order"),
    Field("principal_proc", "string", "主要手术操作编码 (ICD-9-CM-3 医保版)"),
    Field("other_procs", "codes", "其他手术操作编码, in coded order"),
    Field("vent_hours", "double", "有创呼吸机使用时长(小时)"),
    Field("total_cost", "double", "住院总费用(元)"),
    Field("payer", "string", "险种: employee (职工) or resident (居民)"),
    *(Field(c, "double", "cost category (元), optional") for c in COST_CATEGORIES),
)

FIELD_NAMES = tuple(f.name for f in FIELDS)
KEY_FIELDS = tuple(f.name for f in FIELDS if f.key)
# A case across the lake: its key fields within the region that submitted it (unique in silver).
CASE_KEY = ("region_code", "hospital_id", "case_id")
# the discharge columns gold.grouped_cases carries over unchanged, whichever grouper path ran
GROUPED_COPIED = ("batch_id", "payer", "age_years", "sex", "los_days", "total_cost", "discharge_date")
SEX_VALUES = (1, 2, 9)
DISPOSITION_VALUES = (1, 2, 3, 4, 5, 9)
PAYER_VALUES = ("employee", "resident")

# Lineage added by ingestion to every bronze and silver row.
LINEAGE = (
    T.StructField("batch_id", T.StringType(), False),
    T.StructField("source_file", T.StringType(), False),
    T.StructField("source_row", T.LongType(), False),
    T.StructField("ingested_at", T.TimestampType(), False),
)


def canonical_schema() -> T.StructType:
    """Typed schema of silver.discharges (canonical fields, then lineage)."""
    fields = [T.StructField(f.name, SPARK_TYPES[f.kind], not f.key) for f in FIELDS]
    return T.StructType([*fields, *LINEAGE])


def markdown_table() -> str:
    """The contract as a Markdown table, for `drg schema` and the docs."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {f.kind} | {f.description} |" for f in FIELDS]
    return "\n".join(lines)
