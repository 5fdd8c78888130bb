"""The DIP section of a release's HTML report: catalogue shape, point values, largest packets.

Why separate from jobs.report: the DRG report's layout belongs to its own stage; this function only
adds one section built from the release's published DIP tables (aggregates, already suppressed), and
nothing when the release has none.
"""

from __future__ import annotations

import html

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import lake as lk


def _rows(frame, columns) -> str:
    def cell(v):
        return f"{v:,.4f}" if isinstance(v, float) else ("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(r[c]))}</td>" for c in columns) + "</tr>"
                   for r in frame)
    return f"<table><tr>{head}</tr>{body}</table>"


def dip_section(spark: SparkSession, lake: str, release: dict) -> str:
    """HTML for the DIP tables of `release`, or "" when the release has no DIP tables."""
    def table(name):
        if not lk.exists(spark, lk.table_path(lake, "published", name)):
            return None
        return lk.read(spark, lake, "published", name).where(F.col("release_id") == release["release_id"])

    cat, pv = table("dip_catalogue"), table("dip_point_values")
    if cat is None or pv is None or cat.isEmpty():
        return ""
    shape = cat.groupBy("kind").agg(F.count("*").alias("packets")).orderBy("kind").collect()
    points = pv.orderBy("fund").collect()
    top = cat.where(~F.col("suppressed")).orderBy(F.desc("n_cases"), "packet_code").limit(15).collect()
    counts = ", ".join(f"{r['packets']:,} {r['kind']}" for r in shape)
    return (
        "<section style='width:100%'><h2>DIP (按病种分值付费)</h2>"
        f"<p>Packets: {html.escape(counts)}; DIP run {html.escape(str(points[0]['dip_run_id']))}.</p>"
        + _rows(points, ("fund", "settlement_year", "n_cases", "year_start_point_value",
                         "settlement_point_value", "budget", "payment_ratio"))
        + "<p>Largest packets (score = weighted mean cost / overall weighted mean x 1000):</p>"
        + _rows(top, ("packet_code", "kind", "attribute", "n_cases", "mean_cost", "cv", "score"))
        + "</section>"
    )
