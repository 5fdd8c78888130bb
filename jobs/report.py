"""The release report: one static HTML page per release, plots embedded as base64 PNG, in Chinese.

Who reads it: provincial insurance staff. Every heading, axis, legend and table header is Chinese, with
the English term where it helps (`病例组合指数 CMI`); numbers are formatted for people (jobs.display);
DRGs carry their names and hospitals their names or short codes. Plots draw Chinese with the font the
project installs and the page embeds that font's subset, so it reads the same on any machine.

Why a single self-contained file: it is mailed, attached to tickets and opened years later, without a
server or network. It is built only from the release's published (already suppressed) aggregates plus
run-level aggregates of gold and quality tables computed in Spark, so it is as safe to share as the
release itself. A missing input (e.g. the quality stage never ran) still draws its panel, saying so.
"""

from __future__ import annotations

import base64
import html
import io
from functools import cache

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from jobs import display as D  # noqa: E402
from jobs import lake as lk  # noqa: E402
from jobs import lake_files  # noqa: E402
from jobs.published import release_frame  # noqa: E402

# From <lake>/published/reports/<release>/index.html to the coding-quality page of the lake.
QUALITY_LINK = "../../../quality/index.html"

# Typical CHS-style outlier thresholds drawn as bands (the policy file decides actual payment).
HIGH_BANDS = ((1.0, 3.0), (2.0, 2.0), (float("inf"), 1.5))  # (RW upper bound, multiple of expected cost)
LOW_MULTIPLE = 0.4
PLOT_TITLES = (
    "相对权重分布 Relative weight (RW)",
    "本期与上期权重对比 Weight change",
    "各医院病例组合指数 CMI",
    "次均费用与相对权重（高低倍率界限） Cost vs RW",
    "编码质量：各规则问题病例数 Coding quality",
    "分组效能：DRG 费用变异系数 CV",
)


def report_path(lake: str, release_id: str) -> str:
    return f"{str(lake).rstrip('/')}/published/reports/{release_id}/index.html"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(title: str):
    D.use_cjk_font()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.set_title(title)
    return fig, ax


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _thousands(ax, axis: str = "y", digits: int = 0) -> None:
    """Tick labels with thousands separators, never scientific notation or an offset."""
    fmt = FuncFormatter(lambda v, _pos: D.number(v, digits))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def plot_rw_distribution(weights) -> str:
    fig, ax = _figure(PLOT_TITLES[0])
    ax.hist(weights["rw"].dropna(), bins=40, color="#3b6ea5")
    ax.set_xlabel("相对权重 RW")
    ax.set_ylabel("DRG 组数")
    _thousands(ax, "x", 2)
    return _png(fig)


def plot_weight_change(weights) -> str:
    fig, ax = _figure(PLOT_TITLES[1])
    both = weights.dropna(subset=["rw", "previous_rw"])
    if both.empty:
        _empty(ax, "首次发布：没有上期权重可比较")
        return _png(fig)
    moved = (both["rw_change"].abs() > 0.05).to_numpy()
    ax.scatter(both["previous_rw"][~moved], both["rw"][~moved], s=12, color="#7a8a99", label="变化在 5% 以内")
    ax.scatter(both["previous_rw"][moved], both["rw"][moved], s=16, color="#c0392b", label="变化超过 5%")
    top = max(both["rw"].max(), both["previous_rw"].max()) * 1.05
    ax.plot([0, top], [0, top], color="black", linewidth=0.8)
    for _, row in both[moved].nlargest(8, "rw_change", keep="all").iterrows():
        ax.annotate(row["drg"], (row["previous_rw"], row["rw"]), fontsize=7)
    ax.set_xlabel("上期相对权重 RW")
    ax.set_ylabel("本期相对权重 RW")
    ax.legend()
    return _png(fig)


def hospital_labels(hospitals) -> list[str]:
    """Hospital names (short name first) from the reference table, else short codes (`…0042`)."""
    names = hospitals["hospital_short_name"] if "hospital_short_name" in hospitals else None
    if names is not None and "hospital_name" in hospitals:
        names = names.where(names.notna(), hospitals["hospital_name"])
    return D.short_labels(hospitals["hospital_id"].astype(str).tolist(), None if names is None else names.tolist())


def plot_cmi(hospitals) -> str:
    fig, ax = _figure(PLOT_TITLES[2])
    shown = hospitals[~hospitals["suppressed"].astype(bool)].sort_values("cmi", ascending=False).head(40)
    if shown.empty:
        _empty(ax, "没有病例数达到 k 的医院")
        return _png(fig)
    ax.bar(range(len(shown)), shown["cmi"], color="#3b6ea5")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(shown)), hospital_labels(shown), rotation=90, fontsize=7)
    ax.set_xlabel("医院")
    ax.set_ylabel("病例组合指数 CMI")
    return _png(fig)


def _high_multiple(rw: float) -> float:
    return next(multiple for bound, multiple in HIGH_BANDS if rw <= bound)


def plot_cost_vs_rw(drg_stats, overall_mean_cost: float | None) -> str:
    fig, ax = _figure(PLOT_TITLES[3])
    shown = drg_stats.dropna(subset=["rw", "cost_mean"])
    if shown.empty or not overall_mean_cost:
        _empty(ax, "没有病例数达到 k 的 DRG")
        return _png(fig)
    ax.errorbar(
        shown["rw"], shown["cost_mean"],
        yerr=[(shown["cost_mean"] - shown["cost_p10"]).clip(lower=0),
              (shown["cost_p90"] - shown["cost_mean"]).clip(lower=0)],
        fmt="o", markersize=3, color="#3b6ea5", ecolor="#b8c7d9", label="DRG 次均费用（P10–P90）",
    )
    grid = sorted({0.0, *shown["rw"], float(shown["rw"].max()) * 1.05})
    expected = [rw * overall_mean_cost for rw in grid]
    ax.plot(grid, expected, color="black", linewidth=0.8, label="RW × 全部病例次均费用")
    high = [e * _high_multiple(rw) for e, rw in zip(expected, grid, strict=True)]
    ax.fill_between(grid, [e * LOW_MULTIPLE for e in expected], high,
                    color="#2e8b57", alpha=0.12, label="低倍率（0.4 倍）与高倍率（3/2/1.5 倍）界限之间")
    ax.set_xlabel("相对权重 RW")
    ax.set_ylabel("次均费用（元）")
    _thousands(ax, "y")
    ax.legend(fontsize=7)
    return _png(fig)


def plot_coding_quality(quality: dict | None) -> str:
    fig, ax = _figure(PLOT_TITLES[4])
    if quality is None:
        _empty(ax, "编码质量校验尚未运行：未找到 silver.case_quality")
        return _png(fig)
    rules = quality["rules"]
    if not rules:
        _empty(ax, f"全部 {D.count(quality['n_cases'])} 例病例通过所有规则")
        return _png(fig)
    labels = [_rule_label(r) for r, _ in rules][::-1]
    ax.barh(labels, [n for _, n in rules][::-1], color="#c0392b")
    ax.set_xlabel("问题病例数")
    _thousands(ax, "x")
    return _png(fig)


@cache
def _rule_texts() -> dict[str, tuple[str, str]]:
    """rule id -> (Chinese description, severity) from the rule catalogue ({} if it cannot be read)."""
    try:
        from quality.catalogue import load_catalogue

        return {r.id: (r.description_zh, r.severity) for r in load_catalogue().rules}
    except Exception:  # noqa: BLE001 - the report still shows the rule ids
        return {}


def _rule_label(rule_id: str, width: int = 16) -> str:
    text = _rule_texts().get(rule_id, ("", ""))[0]
    text = text if len(text) <= width else text[: width - 1] + "…"
    return f"{rule_id} {text}".strip()


def plot_grouping_quality(drg_stats) -> str:
    fig, ax = _figure(PLOT_TITLES[5])
    cv = drg_stats["cost_cv"].dropna()
    if cv.empty:
        _empty(ax, "没有病例数达到 k 的 DRG")
        return _png(fig)
    top = max(float(cv.max()), 1.2) * 1.05
    ax.hist(cv, bins=[top * i / 30 for i in range(31)], color="#3b6ea5")
    ax.axvline(1.0, color="#c0392b", label="CV = 1")
    ax.set_xlabel("费用变异系数 CV")
    ax.set_ylabel("DRG 组数")
    ax.legend()
    return _png(fig)


# ----------------------------------------------------------------------------------- aggregates (Spark)
def quality_summary(spark: SparkSession, lake: str) -> dict | None:
    """Counts by severity and the 12 most failed rules (aggregates only), or None without the stage."""
    if not lk.exists(spark, lk.table_path(lake, "silver", "case_quality")):
        return None
    quality = lk.read(spark, lake, "silver", "case_quality")
    totals = quality.agg(
        F.count("*").alias("n"),
        F.sum(F.when(F.col("priceable"), 1).otherwise(0)).alias("priceable"),
        F.sum(F.when(F.col("worst_severity") == "error", 1).otherwise(0)).alias("errors"),
        F.sum(F.when(F.col("worst_severity") == "warning", 1).otherwise(0)).alias("warnings"),
    ).first()
    rules = (
        quality.select(F.explode("failed_rules").alias("rule")).groupBy("rule").count()
        .orderBy(F.desc("count"), "rule").limit(12).collect()
    )
    return {
        "n_cases": totals["n"], "priceable": totals["priceable"] or 0, "errors": totals["errors"] or 0,
        "warnings": totals["warnings"] or 0, "rules": [(r["rule"], r["count"]) for r in rules],
    }


def grouping_quality(spark: SparkSession, lake: str, run_id: str) -> dict | None:
    if not lk.exists(spark, lk.table_path(lake, "gold", "grouping_quality")):
        return None
    row = lk.read(spark, lake, "gold", "grouping_quality").where(F.col("run_id") == run_id).first()
    return row.asDict() if row else None


# ------------------------------------------------------------------------------------------------ HTML
def _panel(title: str, png: str, notes: str = "") -> str:
    return (f"<section><h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{png}'/>{notes}</section>")


def _drg(frame):
    """`FR13 急性心肌梗死，伴一般并发症或合并症`: the DRG code with its name (published beside it)."""
    frame = frame.copy()
    names = frame["drg_name"] if "drg_name" in frame else frame["drg"]
    frame["drg_label"] = [d if n in (None, d) or n != n else f"{d} {n}" for d, n in zip(frame["drg"], names,
                                                                                       strict=True)]
    return frame


SEVERITY_ZH = {"error": "错误（不予支付）", "warning": "警告（仍参与测算）"}
FUND_ZH = {"employee": "职工医保", "resident": "居民医保"}


def _quality_rules_table(quality: dict) -> str:
    import pandas as pd

    texts = _rule_texts()
    rows = pd.DataFrame([{"rule": r, "text": texts.get(r, ("", ""))[0],
                          "severity": SEVERITY_ZH.get(texts.get(r, ("", ""))[1], ""), "n": n,
                          "share": n / quality["n_cases"] if quality["n_cases"] else None}
                         for r, n in quality["rules"]])
    return D.table(rows, [("规则 Rule", "rule", None), ("说明", "text", None), ("严重程度", "severity", None),
                          ("问题病例数", "n", D.count), ("占比", "share", D.percent)], 12)


def render(meta: dict, weights, stats, hospitals, rates, quality: dict | None, grouping: dict | None,
           extra: str = "") -> str:
    """The report page from pandas frames of the release's published (aggregate) tables; `extra` is
    more sections' HTML (DIP's), placed last and inside the page, so the embedded font covers it."""
    drg_stats = stats[stats["level"] == "drg"]
    overall = stats.loc[stats["level"] == "all", "cost_mean"]
    overall_mean = float(overall.iloc[0]) if len(overall) and overall.notna().all() else None
    moved = weights.dropna(subset=["rw_change"])
    moved = _drg(moved[moved["rw_change"].abs() > 0.05].sort_values("rw_change", key=abs, ascending=False))
    cv_high = _drg(drg_stats[drg_stats["cost_cv"] > 1].sort_values("cost_cv", ascending=False))
    if quality is None:
        quality_note = "<p class='muted'>本数据湖尚未运行编码质量校验（drg validate）。</p>"
    else:
        quality_note = (
            f"<p>共校验 {D.count(quality['n_cases'])} 例病例：可支付 {D.count(quality['priceable'])} 例；"
            f"有错误 {D.count(quality['errors'])} 例，仅有警告 {D.count(quality['warnings'])} 例。"
            f"<a href='{html.escape(QUALITY_LINK)}'>编码质量报告 Data Docs</a></p>"
            + _quality_rules_table(quality)
        )
    if grouping is None:
        riv = "<p class='muted'>gold.grouping_quality 中没有本次运行的记录。</p>"
    else:
        riv = "<dl>" + "".join(
            f"<dt>{label}</dt><dd>{D.number(grouping.get(key), 3)}</dd>"
            for key, label in (("riv_cost", "费用方差减少系数 RIV"), ("riv_cost_trimmed", "RIV（剔除异常值）"),
                               ("riv_los", "住院日 RIV"))
        ) + f"<dt>CV &gt; 1 的 DRG 组数</dt><dd>{D.count(grouping.get('n_drgs_cv_gt_1'))}</dd></dl>"
    facts = "".join(
        f"<dt>{html.escape(label)}</dt><dd>{html.escape('' if meta.get(key) is None else str(meta.get(key)))}</dd>"
        for key, label in (("release_id", "发布版本 Release"), ("release_date", "发布日期"), ("run_id", "运行编号 Run"),
                           ("pack_version", "分组方案版本"), ("policy_version", "付费政策版本"),
                           ("previous_release_id", "上一发布版本"), ("k", "最小单元病例数 k"))
    )
    n_hidden = int(hospitals["suppressed"].astype(bool).sum())
    panels = [
        _panel(PLOT_TITLES[0], plot_rw_distribution(weights), f"<p>本次发布 {D.count(len(weights))} 个 DRG 组。</p>"),
        _panel(PLOT_TITLES[1], plot_weight_change(weights),
               D.table(moved, [("DRG", "drg_label", None), ("上期权重", "previous_rw", _rw),
                               ("本期权重", "rw", _rw), ("变化", "rw_change", D.signed_percent)], 15,
                       "没有权重变化超过 5% 的 DRG。")),
        _panel(PLOT_TITLES[2], plot_cmi(hospitals),
               f"<p>病例数不足 k 的 {D.count(n_hidden)} 家医院未显示。</p>" + _hospital_table(hospitals)),
        _panel(PLOT_TITLES[3], plot_cost_vs_rw(drg_stats, overall_mean),
               f"<p>全部病例次均费用：{D.yuan(overall_mean)}</p>"),
        _panel(PLOT_TITLES[4], plot_coding_quality(quality), quality_note),
        _panel(PLOT_TITLES[5], plot_grouping_quality(drg_stats),
               riv + D.table(cv_high, [("DRG", "drg_label", None), ("病例数", "n_cases", D.count),
                                       ("次均费用（元）", "cost_mean", D.number), ("变异系数 CV", "cost_cv", _rw)],
                             15, "没有 CV 大于 1 的 DRG。")),
    ]
    rates = rates.copy()
    rates["fund_zh"] = [FUND_ZH.get(f, f) for f in rates["fund"]]
    if "region_name" not in rates:
        rates["region_name"] = rates["region_code"]
    title = f"DRG 权重与费率发布报告 {meta['release_id']}"
    body = (
        f"<h1>{html.escape(title)}</h1><dl>{facts}</dl>"
        f"<p>数据披露规则：病例数少于 k={html.escape(str(meta.get('k', '')))} 的单元不披露病例数和统计值"
        "（标记为已抑制）；同一 DRG 下病例数不足 k 的地区合并为“其他”行，无法通过相减反推。</p>"
        f"<p class='muted'>Disclosure rule: {html.escape(meta.get('suppression_rule') or '')}</p>"
        + "".join(panels)
        + "<section class='wide'><h2>基础费率与预算 Base rates</h2>"
        + D.table(rates, [("地区", "region_code", None), ("地区名称", "region_name", None), ("基金", "fund_zh", None),
                          ("基础费率（元）", "base_rate", D.number), ("预算（元）", "budget", D.number),
                          ("预计支付（元）", "expected_payment", D.number),
                          ("预算偏差", "budget_gap_pct", lambda v: D.percent(v, 2, ratio=False))])
        + "</section>"
        + extra
    )
    return D.page(title, body)


def _rw(value) -> str:
    return D.number(value, 4)


def _hospital_table(hospitals) -> str:
    shown = hospitals[~hospitals["suppressed"].astype(bool)].sort_values("cmi", ascending=False).copy()
    if shown.empty:
        return ""
    shown["label"] = hospital_labels(shown)
    if "hospital_name" not in shown:
        shown["hospital_name"] = shown["hospital_id"]
    return D.table(shown, [("图中标签", "label", None), ("医院", "hospital_name", None), ("病例数", "n_cases", D.count),
                           ("CMI", "cmi", _rw), ("费用消耗指数", "cost_efficiency_index", D.number),
                           ("时间消耗指数", "time_efficiency_index", D.number)], 15)


def write_report(spark: SparkSession, lake: str, release: dict) -> str:
    """Render the report of a (complete) release to <lake>/published/reports/<release_id>/index.html."""
    from jobs.dip.report import dip_section

    def pandas(table: str):
        return lambda: release_frame(spark, lake, table, release).toPandas()

    # small reads, each mostly driver-side latency: they run at once
    weights, stats, hospitals, rates, quality, grouping, dip = lk.concurrently([
        *(pandas(t) for t in ("drg_weights", "group_stats", "hospital_indices", "base_rates")),
        lambda: quality_summary(spark, lake), lambda: grouping_quality(spark, lake, release["run_id"]),
        lambda: dip_section(spark, lake, release),
    ])
    page = render(release, weights, stats, hospitals, rates, quality, grouping, dip)
    return lake_files.write_text(report_path(lake, release["release_id"]), page, spark)  # local or object storage
