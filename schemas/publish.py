"""Schemas of the `published.*` tables: what a release holds, column by column.

Why explicit schemas: a release is read for years by people and tools outside this code (pandas,
DuckDB, Excel), so its columns must not drift with the pricing stage's internals. The publish stage
selects exactly these columns (in this order) from gold, which is also what guarantees no case-level
field or identifier can leak into a release: only the columns listed here are ever written.

Every published table is append-only, partitioned and keyed by `release_id`, and carries the release
columns below. A release is complete only once its row is in `published.releases` (written last).
"""

from __future__ import annotations

# Columns every published table starts with.
RELEASE_COLUMNS = (
    ("release_id", "string"),
    ("release_date", "date"),
    ("run_id", "string"),
    ("pack_version", "string"),
    ("policy_version", "string"),
)

# Written when a cell is suppressed; also stored in published.releases.suppression_rule.
SUPPRESSION_RULE = (
    "cells built from fewer than k={k} cases are suppressed: their case count and statistics are null "
    "and suppressed=true; in group_stats, regions with fewer than k cases of a DRG are merged into one "
    "OTHER row per DRG (with the next smallest region added when the merged row would still have fewer "
    "than k), so no suppressed figure can be recovered by subtraction from the DRG total"
)

# Names beside codes (jobs.names): from the definitions pack (gold.definition_names of the run's pack
# version) and the optional silver.hospitals / silver.regions reference tables. Never empty: a code without
# a name shows the code; on group_stats rows that aggregate over a key (drg_name of an MDC row) the name is
# 全部 ("all"); region/hospital OTHER (merged small cells) is named 其他（合并的小地区/医院）.
NAME_COLUMNS = ("mdc_name", "adrg_name", "drg_name", "region_name", "hospital_name", "hospital_short_name")

DRG_WEIGHTS = (
    ("mdc", "string"),
    ("mdc_name", "string"),
    ("adrg", "string"),
    ("adrg_name", "string"),
    ("drg", "string"),
    ("drg_name", "string"),
    ("rw", "double"),  # the published relative weight
    ("rw_ci_low", "double"),  # confidence interval from pricing (null when suppressed)
    ("rw_ci_high", "double"),
    ("previous_rw", "double"),  # rw in the previous release (else the pricing stage's prior weight)
    ("rw_change", "double"),  # rw / previous_rw - 1
    ("n_cases", "long"),  # null when suppressed (n < k)
    ("low_volume", "boolean"),  # pricing borrowed strength (ADRG shrinkage or prior weight)
    ("method", "string"),  # how pricing set the weight
    ("capped", "boolean"),  # year-on-year change cap applied
    ("suppressed", "boolean"),
)

BASE_RATES = (
    ("region_code", "string"),
    ("region_name", "string"),
    ("fund", "string"),
    ("budget", "double"),
    ("sum_rw_coef", "double"),  # null when suppressed
    ("n_cases", "long"),  # null when suppressed (n < k)
    ("base_rate", "double"),
    ("expected_payment", "double"),
    ("budget_gap_pct", "double"),
)

# level: all | mdc | adrg | drg | region | drg_region. Keys not part of a level are null; in drg_region
# rows region_code is a region or "OTHER" (merged small regions). rw: the DRG's published weight on drg
# and drg_region rows, the case-weighted mean weight (the cell's CMI) on the other levels.
# Percentiles are percentile_approx with accuracy 10000 (rank error <= 0.01% of n).
STAT_COLUMNS = (
    ("n_cases", "long"),
    ("cost_mean", "double"),
    ("cost_sd", "double"),
    ("cost_cv", "double"),
    ("cost_p10", "double"),
    ("cost_p25", "double"),
    ("cost_median", "double"),
    ("cost_p75", "double"),
    ("cost_p90", "double"),
    ("los_mean", "double"),
    ("los_sd", "double"),
    ("los_cv", "double"),
    ("los_p10", "double"),
    ("los_p25", "double"),
    ("los_median", "double"),
    ("los_p75", "double"),
    ("los_p90", "double"),
    ("rw", "double"),
)
GROUP_STATS = (
    ("level", "string"),
    ("mdc", "string"),
    ("mdc_name", "string"),
    ("adrg", "string"),
    ("adrg_name", "string"),
    ("drg", "string"),
    ("drg_name", "string"),
    ("region_code", "string"),
    ("region_name", "string"),
    *STAT_COLUMNS,
    ("previous_rw", "double"),
    ("rw_change", "double"),
    ("suppressed", "boolean"),
)
GROUP_LEVELS = ("all", "mdc", "adrg", "drg", "region", "drg_region")

HOSPITAL_INDICES = (
    ("region_code", "string"),
    ("region_name", "string"),
    ("hospital_id", "string"),
    ("hospital_name", "string"),  # from silver.hospitals, else the id
    ("hospital_short_name", "string"),  # short label for plots (reference short_name, else the name; null: none)
    ("n_cases", "long"),
    ("total_weight", "double"),
    ("cmi", "double"),
    ("cost_efficiency_index", "double"),
    ("time_efficiency_index", "double"),
    ("high_outlier_share", "double"),
    ("low_outlier_share", "double"),
    ("total_payment", "double"),
    ("total_cost", "double"),
    ("suppressed", "boolean"),
)

RELEASES = (
    ("release_id", "string"),
    ("release_name", "string"),
    ("release_date", "date"),
    ("published_at", "timestamp"),
    ("run_id", "string"),
    ("pack_version", "string"),
    ("policy_version", "string"),
    ("k", "int"),
    ("suppression_rule", "string"),
    ("previous_release_id", "string"),
    ("table_versions", "map<string,bigint>"),  # Delta version of each published table written
    ("status", "string"),  # complete (a release without its row was never finished)
)

TABLES = {
    "drg_weights": DRG_WEIGHTS,
    "base_rates": BASE_RATES,
    "group_stats": GROUP_STATS,
    "hospital_indices": HOSPITAL_INDICES,
}


def table_fields(table: str) -> list[tuple[str, str]]:
    """(name, type) of every column of a published data table, release columns first."""
    return [*RELEASE_COLUMNS, *TABLES[table]]


def columns(table: str) -> list[str]:
    """Column names of a published data table, release columns first."""
    return [name for name, _ in table_fields(table)]


def data_columns(fields) -> list[str]:
    """The columns a frame builder computes: all but the names, which publish adds (jobs.names)."""
    return [name for name, _ in fields if name not in NAME_COLUMNS]


def ddl(fields) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in fields)

