"""A tiny definitions pack and a clean-case builder for the quality tests (no reference data needed)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from schemas.discharge import canonical_schema

PACK_TABLES = {
    "manifest.yaml": (
        "name: tiny\nversion: '1'\ncode_system: {diagnosis: ICD-10 医保版 2.0, procedure: ICD-9-CM-3 医保版}\n"
        "description: quality tests\nsource: tests\nrules:\n  pre_mdc_order: [MDCP]\n"
    ),
    "mdc.csv": """mdc,name,kind
MDCB,神经系统,body_system
MDCE,呼吸系统,body_system
MDCF,循环系统,body_system
MDCG,消化系统,body_system
MDCM,男性生殖,body_system
MDCN,女性生殖,body_system
MDCO,妊娠分娩,body_system
MDCP,新生儿,special
MDCS,感染及寄生虫病,body_system
""",
    "drg.csv": """drg,adrg,suffix,name,reference_weight
ES19,ES1,9,呼吸系统感染,
""",
    "adrg.csv": """adrg,name,mdc,kind,priority
ES1,呼吸系统感染,MDCE,medical,1
FR1,急性心肌梗死,MDCF,medical,1
NA1,女性生殖器手术,MDCN,surgical,1
MA1,男性生殖器手术,MDCM,surgical,1
OB1,阴道分娩,MDCO,medical,1
PU1,足月儿相关疾患,MDCP,medical,1
BS1,昏迷,MDCB,medical,1
GZ1,阑尾炎,MDCG,medical,1
NZ1,女性盆腔炎,MDCN,medical,1
SZ1,其他感染性疾患,MDCS,medical,1
""",
    "adrg_members.csv": """adrg,role,code
ES1,principal_diagnosis,J18.900
FR1,principal_diagnosis,I21.000x001
NA1,principal_procedure,68.4100
NA1,principal_diagnosis,D25.900
MA1,principal_diagnosis,N40.x00
MA1,principal_procedure,60.2100
OB1,principal_diagnosis,O80.000
PU1,principal_diagnosis,P07.300
PU1,principal_diagnosis,A04.000x001
BS1,principal_diagnosis,R40.100
GZ1,principal_diagnosis,K35.800
NZ1,principal_diagnosis,K35.800
NZ1,principal_diagnosis,Q51.000
SZ1,principal_diagnosis,P37.000
""",
    "codes.csv": """code,kind,name,severity,exclusion_table
J18.900,diagnosis,肺炎,,
I21.000x001,diagnosis,急性前壁心肌梗死,MCC,7-1
E11.900,diagnosis,2型糖尿病,CC,7-2
J96.000,diagnosis,急性呼吸衰竭,MCC,7-3
I10.x00,diagnosis,高血压,,
D25.900,diagnosis,子宫平滑肌瘤,,
N40.x00,diagnosis,前列腺增生,,
O80.000,diagnosis,单胎顺产,,
P07.300,diagnosis,早产儿,,
A04.000x001,diagnosis,新生儿肠致病性大肠杆菌肠炎,,
P07.200,diagnosis,极度不成熟,MCC,7-4
P37.000,diagnosis,先天性结核病,,
R40.100,diagnosis,木僵,,
K35.800,diagnosis,急性阑尾炎,,
Q51.000,diagnosis,子宫发育不全,,
E11.400x021+G63.2*,diagnosis,糖尿病性周围神经病,CC,7-2
68.4100,procedure,腹腔镜子宫切除术,,
60.2100,procedure,经尿道前列腺切除术,,
36.0700,procedure,冠状动脉药物洗脱支架置入,,
96.7100,procedure,呼吸机治疗[小于96小时],,
""",
    "cc_exclusions.csv": """exclusion_table,principal_diagnosis
7-3,J18.900
7-2,E11.900
""",
}


def write_tiny_pack(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in PACK_TABLES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return str(folder)


CLEAN = {
    "case_id": "C0", "hospital_id": "H1", "region_code": "230100", "patient_id": "p0",
    "sex": 1, "age_years": 50, "age_days": None, "birth_weight_g": None,
    "admit_date": date(2026, 1, 1), "discharge_date": date(2026, 1, 6), "los_days": 5,
    "discharge_disposition": 1, "principal_dx": "J18.900", "secondary_dx": ["I10.x00"],
    "principal_proc": None, "other_procs": [], "vent_hours": None, "total_cost": 1000.0, "payer": "employee",
    "cost_service": 100.0, "cost_diagnosis": 100.0, "cost_treatment": 100.0, "cost_drug": 500.0,
    "cost_material": 100.0, "cost_other": 100.0,
    "batch_id": "b1", "source_file": "f.csv", "source_row": 1, "ingested_at": datetime(2026, 2, 1, 3, 0),
}


def cases_df(spark, rows: list[dict]):
    """Silver rows: each dict overrides the clean case; case_id/patient_id default to unique values."""
    full = []
    for i, overrides in enumerate(rows):
        row = {**CLEAN, "case_id": f"C{i}", "patient_id": f"p{i}", "source_row": i + 1, **overrides}
        full.append(row)
    schema = canonical_schema()
    return spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in full], schema)
