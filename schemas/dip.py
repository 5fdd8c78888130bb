"""Schemas of the DIP stage's gold tables and of DIP's published tables (documented in CONTRACTS.md).

Why here: `drg dip` writes the gold tables, `drg publish` reads them, and readers outside this code read
the published ones for years; both sides import these definitions so a renamed column fails in tests.
Every gold table is replaced whole by each DIP build (one commit stamped with the run id) and
carries run_id and policy_version (a night settling new batches adds their rows to dip_case_scores under
the build's run id); an earlier run is read as of its Delta version (lake.version_of_run).
"""

from __future__ import annotations

SUBTYPE = ("array<struct<subtype:string,severity:string,n_cases:bigint,mean_cost:double,cv:double,"
           "cv_drop:double,coefficient:double>>")

CATALOGUE = (
    ("packet_code", "string"),  # core: <dx5> or <dx5>:<procedures>; comprehensive: <dx3>:<attribute>
    ("kind", "string"),  # core | comprehensive
    ("diagnosis_key", "string"),  # 亚目 (5 characters) for core packets, 类目 (3) for comprehensive ones
    ("procedure_key", "string"),  # core: the sorted procedure codes joined by "+", null without procedure
    ("attribute", "string"),  # BSZL | ZDXCZ | ZLXCZ | SS (highest attribute among the procedures)
    ("n_keys", "bigint"),  # (diagnosis, procedure) combinations merged into the packet (1 for core)
    ("n_cases", "bigint"),  # priceable base-period cases
    ("n_cases_by_year", "map<int,bigint>"),  # per discharge year of the base period (years with cases)
    ("mean_cost", "double"),  # m_i: yearly means weighted 1:2:7, renormalised over the years with cases
    ("cv", "double"),  # SD / mean of the base-period case costs (unweighted)
    ("mean_los", "double"),
    ("score", "double"),  # m_i / M x 1000
    ("primary_care", "boolean"),  # 基层病种 (no hospital coefficient)
    ("subtypes", SUBTYPE),  # adopted severity subtypes (severe = MCC, moderate = CC), null when none
    ("base_years", "array<int>"),
    ("overall_mean_cost", "double"),  # M
    ("run_id", "string"),
    ("policy_version", "string"),
)

CASE_SCORES = (
    ("region_code", "string"),
    ("hospital_id", "string"),
    ("case_id", "string"),
    ("batch_id", "string"),  # the delivery: a settling night replaces its batches' rows (jobs.dip.stage.settle)
    ("fund", "string"),
    ("discharge_year", "int"),
    ("packet_code", "string"),
    ("kind", "string"),
    ("subtype", "string"),  # severe | moderate | null
    ("packet_score", "double"),
    ("hospital_coef", "double"),
    ("subtype_coef", "double"),
    ("cost_ratio", "double"),  # cost / (packet score x coefficients x year-start point value)
    ("outlier", "string"),  # low | high | null
    ("special_review", "boolean"),  # 特例单议 candidate
    ("case_score", "double"),
    ("total_cost", "double"),
    ("payment", "double"),  # settlement-year cases only: case score x settlement point value x payment ratio
    ("run_id", "string"),
    ("policy_version", "string"),
)

POINT_VALUES = (
    ("fund", "string"),  # employee | resident | all
    ("settlement_year", "int"),
    ("n_cases", "bigint"),
    ("total_cost", "double"),
    ("total_score", "double"),  # sum of the settlement year's case scores
    ("budget", "double"),
    ("payment_ratio", "double"),
    ("budget_neutral", "boolean"),
    ("year_start_point_value", "double"),  # regional: weighted total cost / weighted total score
    ("settlement_point_value", "double"),  # (budget / payment ratio) / total score
    ("run_id", "string"),
    ("policy_version", "string"),
)

_INDICES = (
    ("n_cases", "bigint"),
    ("total_packet_score", "double"),
    ("cmi", "double"),
    ("cost_consumption_index", "double"),
    ("time_consumption_index", "double"),
    ("core_share", "double"),
    ("low_outlier_share", "double"),
    ("high_outlier_share", "double"),
    ("special_review_cases", "bigint"),
    ("total_case_score", "double"),
    ("total_payment", "double"),
    ("total_cost", "double"),
)

HOSPITAL_INDICES = (
    ("region_code", "string"),
    ("hospital_id", "string"),
    *_INDICES,
    ("run_id", "string"),
    ("policy_version", "string"),
)

MONITORING = (
    ("settlement_year", "int"),
    *_INDICES,
    ("n_core_packets", "bigint"),
    ("n_comprehensive_packets", "bigint"),
    ("packets_cv_lt_0_5", "bigint"),
    ("packets_cv_0_5_to_1", "bigint"),
    ("packets_cv_gt_1", "bigint"),
    ("n_subtypes", "bigint"),
    ("n_base_cases", "bigint"),
    ("special_review_cutoff", "double"),  # lowest cost ratio flagged for 特例单议 (null: none qualified)
    ("run_id", "string"),
    ("policy_version", "string"),
)

GOLD = {
    "dip_catalogue": CATALOGUE,
    "dip_case_scores": CASE_SCORES,
    "dip_point_values": POINT_VALUES,
    "dip_hospital_indices": HOSPITAL_INDICES,
    "dip_monitoring": MONITORING,
}

# Published (after the release columns of schemas.publish, plus dip_run_id): aggregates only.
_UNSTAMPED = ("run_id", "policy_version")
PUBLISHED = {
    "dip_catalogue": (*[c for c in CATALOGUE if c[0] not in (*_UNSTAMPED, "subtypes", "n_cases_by_year")],
                      ("suppressed", "boolean")),
    "dip_point_values": tuple(c for c in POINT_VALUES if c[0] not in _UNSTAMPED),
    "dip_hospital_indices": (*[c for c in HOSPITAL_INDICES if c[0] not in _UNSTAMPED], ("suppressed", "boolean")),
}
