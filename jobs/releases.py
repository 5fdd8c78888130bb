"""Resolve and read published releases, with or without Spark.

Why a separate, Spark-free module: a release must stay readable for years by the people who use it,
from pandas or DuckDB on a laptop, long after Delta's VACUUM and log retention have removed the old
table versions. So a release is never found by Delta time travel: every published table is append-only
and keyed by `release_id`, and `published.releases` (one row per *complete* release, written last) is
the only index. A release whose log row is missing was never finished and is invisible to readers.

`resolve` holds the one rule for "which release does this name/date mean"; the Spark side
(jobs.publish) and the pandas side (`read_release` below) both call it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from jobs.errors import PipelineError

PUBLISHED_TABLES = ("drg_weights", "base_rates", "group_stats", "hospital_indices")
DIP_TABLES = ("dip_catalogue", "dip_point_values", "dip_hospital_indices")  # present once `drg dip` has run
RELEASES_TABLE = "releases"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _as_naive_utc(value) -> datetime:
    """Timestamps come back tz-aware from deltalake and naive-UTC from Spark: compare them as naive UTC."""
    ts = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def _order(row: dict) -> tuple:
    return (_as_date(row["release_date"]), _as_naive_utc(row["published_at"]), row["release_id"])


def resolve(log: list[dict], release: str | None = None) -> dict:
    """The release row meant by `release`, from the rows of `published.releases`.

    - None: the latest complete release;
    - a release id or a `--release` name: that release;
    - `YYYY-MM-DD`: the release in force on that date (the latest with release_date <= date);
    - an ISO timestamp: the latest release published at or before it (tells apart two releases of a day).
    """
    complete = sorted((r for r in log if r.get("status") == "complete"), key=_order)
    if not complete:
        raise PipelineError("no complete release in published.releases: run `drg publish --run RUN` first")
    if release is None:
        return complete[-1]
    named = [r for r in complete if release in (r["release_id"], r.get("release_name"))]
    if named:
        return named[-1]
    if _DATE.match(release):
        day = date.fromisoformat(release)
        candidates = [r for r in complete if _as_date(r["release_date"]) <= day]
    elif _TIMESTAMP.match(release):
        moment = _as_naive_utc(release.replace(" ", "T").replace("Z", "+00:00"))
        candidates = [r for r in complete if _as_naive_utc(r["published_at"]) <= moment]
    else:
        known = ", ".join(r["release_id"] for r in complete[-5:])
        raise PipelineError(f"release {release!r} not found in published.releases (latest: {known})")
    if not candidates:
        raise PipelineError(f"no release was in force on {release} (first: {complete[0]['release_id']})")
    return candidates[-1]


def delta_rs_uri(lake: str) -> str:
    """The lake URI as delta-rs (object_store) names it: Hadoop's `s3a://` is `s3://` there."""
    text = str(lake).rstrip("/")
    return "s3://" + text[len("s3a://"):] if text.startswith("s3a://") else text


def read_release(lake: str, table: str, release: str | None = None, storage_options: dict | None = None):
    """Read one published table of one release as a pandas DataFrame, without Spark (deltalake).

    Example: `read_release("/data/lake", "drg_weights", "2026-11-23")`. Filters on release_id, so it
    works however old the release is and whatever VACUUM has removed. A lake on object storage
    (`s3a://bucket/lake` or `s3://...`) takes delta-rs storage options, e.g. `{"AWS_ENDPOINT_URL":
    "http://minio:9000", "AWS_ACCESS_KEY_ID": ..., "AWS_SECRET_ACCESS_KEY": ..., "AWS_REGION": "us-east-1",
    "AWS_ALLOW_HTTP": "true"}` (deploy/README.md); without them delta-rs reads the usual AWS_* environment.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if table not in PUBLISHED_TABLES + DIP_TABLES:
        known = ", ".join(PUBLISHED_TABLES + DIP_TABLES)
        raise PipelineError(f"unknown published table {table!r}; expected one of {known}")
    root = delta_rs_uri(lake) + "/published/"
    options = storage_options or None
    try:
        log = DeltaTable(root + RELEASES_TABLE, storage_options=options).to_pandas().to_dict("records")
        row = resolve(log, release)
        data = DeltaTable(root + table, storage_options=options).to_pandas(
            filters=[("release_id", "==", row["release_id"])]
        )
    except TableNotFoundError as exc:
        raise PipelineError(f"no published tables under {root}: run `drg publish` first") from exc
    # Names are a contract of the DRG tables; DIP's tables carry packet codes (schemas/dip.py).
    return (with_names(data, table) if table in PUBLISHED_TABLES else data).reset_index(drop=True)


# name column -> the code column it names (schemas.publish.NAME_COLUMNS)
NAMED = {"mdc_name": "mdc", "adrg_name": "adrg", "drg_name": "drg", "region_name": "region_code",
         "hospital_name": "hospital_id"}
ALL = "全部"  # as jobs.names.ALL: the name of a key a statistics row aggregates over


def with_names(frame, table: str):
    """The table's name columns, also for a release published before names were kept: a missing name
    reads as its code (全部 where the row aggregates over the code), as publish itself falls back.
    Columns come back in contract order (schemas.publish), extra columns after them."""
    from schemas.publish import columns

    order = columns(table)
    for name, code in NAMED.items():
        if name in order and code in frame.columns:
            filled = frame[code].where(frame[code].notna(), ALL)
            frame[name] = frame[name].where(frame[name].notna(), filled) if name in frame.columns else filled
    if "hospital_short_name" in order and "hospital_short_name" not in frame.columns:
        frame["hospital_short_name"] = None
    return frame[[c for c in order if c in frame.columns] + [c for c in frame.columns if c not in order]]
