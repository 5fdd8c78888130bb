"""The DIP section of a release's HTML report: catalogue shape, point values, largest packets.

Why separate from jobs.report: the DRG report's layout belongs to its own stage; this module only
builds one section from the release's published DIP tables (aggregates, already suppressed), and
nothing when the release has none. It speaks the report's language as the DRG sections do: Chinese
headings and labels, numbers for people (jobs.display), and it is rendered *inside* the page
(jobs.report.render's `extra`), so the embedded font subset holds its characters too.
"""

from __future__ import annotations

import html

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import display as D
from jobs import lake as lk

TITLE = "DIP (按病种分值付费)"
KIND_ZH = {"core": "核心病种", "comprehensive": "综合病种"}
ATTRIBUTE_ZH = {"BSZL": "保守治疗", "ZDXCZ": "诊断性操作", "ZLXCZ": "治疗性操作", "SS": "相关手术"}
FUND_ZH = {"employee": "职工医保", "resident": "居民医保", "all": "全部基金"}


def dip_html(catalogue, points) -> str:
    """The section from pandas frames of the release's dip_catalogue and dip_point_values rows."""
    if catalogue is None or points is None or len(catalogue) == 0:
        return ""
    kinds = catalogue["kind"].value_counts()
    counts = "，".join(f"{KIND_ZH.get(k, k)} {D.count(kinds.get(k, 0))} 个" for k in ("core", "comprehensive"))
    points = points.sort_values("fund").copy()
    points["fund_zh"] = [FUND_ZH.get(f, f) for f in points["fund"]]
    top = catalogue[~catalogue["suppressed"].astype(bool)].sort_values(
        ["n_cases", "packet_code"], ascending=[False, True]).copy()
    top["kind_zh"] = [KIND_ZH.get(k, k) for k in top["kind"]]
    top["attribute_zh"] = [ATTRIBUTE_ZH.get(a, a or "") for a in top["attribute"]]
    run = points["dip_run_id"].iloc[0] if "dip_run_id" in points and len(points) else ""
    return (
        f"<section class='wide'><h2>{html.escape(TITLE)}</h2>"
        f"<p>病种目录：{html.escape(counts)}；DIP 运行编号 {html.escape(str(run))}。</p>"
        + D.table(points, [("基金", "fund_zh", None), ("清算年度", "settlement_year", None),
                           ("病例数", "n_cases", D.count), ("年初点值（元/分）", "year_start_point_value", _point),
                           ("结算点值（元/分）", "settlement_point_value", _point), ("预算（元）", "budget", D.number),
                           ("医保支付比例", "payment_ratio", D.percent)])
        + "<p>病例数最多的病种（分值 = 病种加权平均费用 ÷ 全部病例加权平均费用 × 1000，"
          "各基期年份按政策权重加权，默认 1:2:7）：</p>"
        + D.table(top, [("病种编码", "packet_code", None), ("类型", "kind_zh", None),
                        ("手术操作属性", "attribute_zh", None), ("病例数", "n_cases", D.count),
                        ("次均费用（元）", "mean_cost", D.number), ("变异系数 CV", "cv", _point),
                        ("分值", "score", D.number)], 15, "没有可披露的病种。")
        + "</section>"
    )


def _point(value) -> str:
    return D.number(value, 4)


def dip_section(spark: SparkSession, lake: str, release: dict) -> str:
    """HTML for the DIP tables of `release`, or "" when the release has no DIP tables."""
    def table(name):
        if not lk.exists(spark, lk.table_path(lake, "published", name)):
            return None
        return lk.read(spark, lake, "published", name).where(F.col("release_id") == release["release_id"]).toPandas()

    return dip_html(table("dip_catalogue"), table("dip_point_values"))
