"""Read published releases without Spark: deltalake + pandas, and DuckDB. Runnable example.

    python bench/read_published.py LAKE [RELEASE]      # RELEASE: id, name or YYYY-MM-DD (default latest)

A release is found through `published.releases` and read by filtering on release_id, never by Delta
time travel, so this works for any past release however long ago it was published.
"""

from __future__ import annotations

import sys

import duckdb
from deltalake import DeltaTable

from jobs.releases import read_release


def main(lake: str, release: str | None = None) -> None:
    # 1. pandas via deltalake, with the project's helper (resolves ids, names and dates):
    weights = read_release(lake, "drg_weights", release)
    print(weights[["release_id", "drg", "rw", "previous_rw", "rw_change", "n_cases"]].head(10))

    # 2. pandas via deltalake only (no project code): pick the release from the log, then filter.
    log = DeltaTable(f"{lake}/published/releases").to_pandas()
    complete = log[log["status"] == "complete"].sort_values(["release_date", "published_at"])
    if release and release[:4].isdigit() and len(release) == 10:  # a date: the release in force then
        complete = complete[complete["release_date"].astype(str) <= release]
    release_id = complete["release_id"].iloc[-1]
    stats = DeltaTable(f"{lake}/published/group_stats").to_pandas(filters=[("release_id", "==", release_id)])
    print(stats[stats["level"] == "mdc"][["mdc", "n_cases", "cost_mean", "cost_median", "rw"]])

    # 3. DuckDB over the Delta tables (delta extension; falls back to the deltalake Arrow dataset offline).
    con = duckdb.connect()
    try:
        con.execute("INSTALL delta; LOAD delta;")
        source = f"delta_scan('{lake}/published/hospital_indices')"
    except duckdb.Error:
        hospital_indices = DeltaTable(f"{lake}/published/hospital_indices").to_pyarrow_dataset()  # noqa: F841
        source = "hospital_indices"
    print(con.execute(
        f"SELECT region_code, hospital_id, n_cases, round(cmi, 3) AS cmi FROM {source} "
        "WHERE release_id = ? AND NOT suppressed ORDER BY cmi DESC LIMIT 10", [release_id]
    ).df())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
