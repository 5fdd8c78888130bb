"""`drg stats`: a release's group statistics by DRG, ADRG, MDC, region or hospital, for statisticians.

Why without Spark: published tables are small aggregates, so they are read with deltalake + pandas
(jobs.releases.read_release) in a second instead of starting a JVM; the same call works in a notebook.
Everything shown is already suppressed (n < k) at publish time, so any output here is safe to share.
"""

from __future__ import annotations

import sys

from jobs.errors import PipelineError
from jobs.releases import read_release

BY = ("drg", "adrg", "mdc", "region", "drg_region", "all", "hospital")
KEYS = {
    "drg": ["mdc", "adrg", "drg"],
    "drg_region": ["mdc", "adrg", "drg", "region_code"],
    "adrg": ["mdc", "adrg"],
    "mdc": ["mdc"],
    "region": ["region_code"],
    "all": [],
}
NAME_OF = {"mdc": "mdc_name", "adrg": "adrg_name", "drg": "drg_name", "region_code": "region_name"}
STATS = ["n_cases", "cost_mean", "cost_median", "cost_p10", "cost_p90", "cost_cv", "los_mean", "los_median",
         "los_cv", "rw", "previous_rw", "rw_change", "suppressed"]


def stats_table(lake: str, by: str = "drg", release: str | None = None):
    """The pandas frame `drg stats` prints: one row per cell of the level `by`, keys then statistics."""
    if by not in BY:
        raise PipelineError(f"--by must be one of {', '.join(BY)}, got {by!r}")
    if by == "hospital":
        hospitals = read_release(lake, "hospital_indices", release)
        hospitals["n_cases"] = hospitals["n_cases"].astype("Int64")
        return hospitals.sort_values(["region_code", "hospital_id"]).reset_index(drop=True)
    stats = read_release(lake, "group_stats", release)
    stats["n_cases"] = stats["n_cases"].astype("Int64")  # suppressed counts are missing, not NaN floats
    cells = stats[stats["level"] == by]
    keys = KEYS[by]
    named = [c for key in keys for c in (key, NAME_OF[key])]  # each code with its name beside it
    return cells[["release_id", *named, *STATS]].sort_values(keys or ["release_id"]).reset_index(drop=True)


def export_excel(lake: str, path: str, release: str | None = None) -> None:
    """One workbook per release: a sheet per level, hospitals, weights, rates and an 'about' sheet."""
    import pandas as pd
    from deltalake import DeltaTable

    from jobs.releases import RELEASES_TABLE, resolve

    log = DeltaTable(str(lake).rstrip("/") + f"/published/{RELEASES_TABLE}").to_pandas().to_dict("records")
    meta = resolve(log, release)
    about = pd.DataFrame(
        [(key, str(meta[key])) for key in ("release_id", "release_date", "run_id", "pack_version",
                                           "policy_version", "k", "suppression_rule")],
        columns=["field", "value"],
    )
    rid = meta["release_id"]
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        about.to_excel(writer, sheet_name="about", index=False)
        for by in BY:
            stats_table(lake, by, rid).to_excel(writer, sheet_name=by, index=False)
        for table in ("drg_weights", "base_rates"):
            read_release(lake, table, rid).to_excel(writer, sheet_name=table, index=False)


# Chinese label above each column's machine name on the terminal (the CSV/JSON/Excel keep the names)
LABELS = {
    "mdc": "MDC", "mdc_name": "MDC 名称", "adrg": "ADRG", "adrg_name": "ADRG 名称", "drg": "DRG",
    "drg_name": "DRG 名称", "region_code": "地区", "region_name": "地区名称", "hospital_id": "医院",
    "hospital_name": "医院名称", "hospital_short_name": "简称", "n_cases": "病例数", "cost_mean": "次均费用(元)",
    "cost_median": "费用中位数(元)", "cost_p10": "费用P10(元)", "cost_p90": "费用P90(元)", "cost_cv": "费用变异系数",
    "los_mean": "平均住院日", "los_median": "住院日中位数", "los_cv": "住院日变异系数", "rw": "相对权重",
    "previous_rw": "上期权重", "rw_change": "权重变化", "suppressed": "已抑制", "cmi": "病例组合指数",
    "total_weight": "总权重", "cost_efficiency_index": "费用消耗指数", "time_efficiency_index": "时间消耗指数",
    "high_outlier_share": "高倍率占比", "low_outlier_share": "低倍率占比", "total_payment": "支付总额(元)",
    "total_cost": "费用总额(元)",
}


def _cell(column: str, value) -> str:
    """A value for people: counts with separators, money with 2 decimals, changes and shares in %."""
    import numbers

    import numpy as np
    import pandas as pd

    from jobs import display as D

    if pd.isna(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "是" if value else "否"
    if not isinstance(value, numbers.Real):
        return str(value)
    if column == "n_cases":
        return D.count(value)
    if column == "rw_change":
        return D.signed_percent(value)
    if column.endswith("_share"):
        return D.percent(value)
    if column.startswith("cost_") and not column.endswith("_cv") or column.startswith("total_"):
        return D.number(value, 2)
    return D.number(value, 4 if column in ("rw", "previous_rw", "cmi") else 2)


def _print_table(frame, title: str) -> None:
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    headers = [f"{LABELS[str(n)]}\n{n}" if str(n) in LABELS else str(n) for n in frame.columns]
    for name, header in zip(frame.columns, headers, strict=True):
        table.add_column(header, justify="left" if "name" in str(name) else "right")
    rows = [[_cell(str(c), v) for c, v in zip(frame.columns, row, strict=True)]
            for row in frame.itertuples(index=False)]
    for cells in rows:
        table.add_row(*cells)
    console = Console()
    if console.is_terminal:
        console.print(table)
        return
    # A file or pipe has no width: make it as wide as the widest cell of each column (CJK counts double),
    # so that no name is wrapped across lines where grep and diff would miss it.
    widths = [max(cell_len(part) for text in (header, *(r[i] for r in rows)) for part in text.split("\n"))
              for i, header in enumerate(headers)]
    Console(width=max(200, sum(widths) + 3 * len(widths) + 1)).print(table)


def register(sub) -> None:
    parser = sub.add_parser("stats", help="group statistics of a release (no Spark needed)")
    parser.add_argument("--lake", required=True, help="lake root folder")
    parser.add_argument("--release", help="release id, name or date YYYY-MM-DD (default: the latest)")
    parser.add_argument("--by", choices=BY, default="drg", help="level of the statistics (default drg)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--out", help="write CSV/JSON to this file instead of standard output")
    parser.add_argument("--excel", metavar="FILE", help="also export every level of the release to an .xlsx")
    parser.set_defaults(func=run)


def run(args) -> int:
    frame = stats_table(args.lake, args.by, args.release)
    if args.format == "table":
        release = frame["release_id"].iloc[0] if len(frame) else args.release
        # on a terminal only the finest key keeps its name (the parents' names are in CSV, JSON, Excel)
        keys = KEYS.get(args.by, [])
        parents = [NAME_OF[k] for k in keys[:-1] if k != "region_code"]
        _print_table(frame.drop(columns=["release_id", *parents]), f"release {release}: by {args.by}")
    else:
        text = frame.to_csv(index=False) if args.format == "csv" else frame.to_json(
            orient="records", date_format="iso", indent=1
        )
        if args.out:
            with open(args.out, "w", encoding="utf-8") as handle:
                handle.write(text)
        else:
            sys.stdout.write(text)
    if args.excel:
        export_excel(args.lake, args.excel, args.release)
        print(f"wrote {args.excel}", file=sys.stderr)
    return 0
