"""The release report: one static HTML page per release, plots embedded as base64 PNG.

Why a single self-contained file: it is mailed, attached to tickets and opened years later, without a
server or network. It is built only from the release's published (already suppressed) aggregates plus
run-level aggregates of gold and quality tables computed in Spark, so it is as safe to share as the
release itself. A missing input (e.g. the quality stage never ran) still draws its panel, saying so.
"""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from jobs import lake as lk  # noqa: E402
from jobs import lake_files  # noqa: E402

# Typical CHS-style outlier thresholds drawn as bands (the policy file decides actual payment).
HIGH_BANDS = ((1.0, 3.0), (2.0, 2.0), (float("inf"), 1.5))  # (RW upper bound, multiple of expected cost)
LOW_MULTIPLE = 0.4
PLOT_TITLES = (
    "Relative weight distribution",
    "Weight change vs previous release",
    "CMI by hospital",
    "Mean cost vs relative weight with outlier bands",
    "Coding quality",
    "Grouping quality: cost CV by DRG",
)


def report_path(lake: str, release_id: str) -> str:
    return f"{str(lake).rstrip('/')}/published/reports/{release_id}/index.html"


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(title: str):
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.set_title(title)
    return fig, ax


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_rw_distribution(weights) -> str:
    fig, ax = _figure(PLOT_TITLES[0])
    ax.hist(weights["rw"].dropna(), bins=40, color="#3b6ea5")
    ax.set_xlabel("relative weight")
    ax.set_ylabel("DRGs")
    return _png(fig)


def plot_weight_change(weights) -> str:
    fig, ax = _figure(PLOT_TITLES[1])
    both = weights.dropna(subset=["rw", "previous_rw"])
    if both.empty:
        _empty(ax, "first release: no previous weights to compare with")
        return _png(fig)
    moved = (both["rw_change"].abs() > 0.05).to_numpy()
    ax.scatter(both["previous_rw"][~moved], both["rw"][~moved], s=12, color="#7a8a99", label="within 5%")
    ax.scatter(both["previous_rw"][moved], both["rw"][moved], s=16, color="#c0392b", label="moved > 5%")
    top = max(both["rw"].max(), both["previous_rw"].max()) * 1.05
    ax.plot([0, top], [0, top], color="black", linewidth=0.8)
    for _, row in both[moved].nlargest(8, "rw_change", keep="all").iterrows():
        ax.annotate(row["drg"], (row["previous_rw"], row["rw"]), fontsize=7)
    ax.set_xlabel("previous release RW")
    ax.set_ylabel("this release RW")
    ax.legend()
    return _png(fig)


def plot_cmi(hospitals) -> str:
    fig, ax = _figure(PLOT_TITLES[2])
    shown = hospitals[~hospitals["suppressed"]].sort_values("cmi", ascending=False).head(40)
    if shown.empty:
        _empty(ax, "no hospital with at least k cases")
        return _png(fig)
    labels = shown["region_code"].astype(str) + "/" + shown["hospital_id"].astype(str)
    ax.bar(range(len(shown)), shown["cmi"], color="#3b6ea5")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(shown)), labels, rotation=90, fontsize=7)
    ax.set_ylabel("CMI")
    return _png(fig)


def _high_multiple(rw: float) -> float:
    return next(multiple for bound, multiple in HIGH_BANDS if rw <= bound)


def plot_cost_vs_rw(drg_stats, overall_mean_cost: float | None) -> str:
    fig, ax = _figure(PLOT_TITLES[3])
    shown = drg_stats.dropna(subset=["rw", "cost_mean"])
    if shown.empty or not overall_mean_cost:
        _empty(ax, "no DRG with at least k cases")
        return _png(fig)
    ax.errorbar(
        shown["rw"], shown["cost_mean"],
        yerr=[(shown["cost_mean"] - shown["cost_p10"]).clip(lower=0),
              (shown["cost_p90"] - shown["cost_mean"]).clip(lower=0)],
        fmt="o", markersize=3, color="#3b6ea5", ecolor="#b8c7d9", label="DRG mean (p10-p90)",
    )
    grid = sorted({0.0, *shown["rw"], float(shown["rw"].max()) * 1.05})
    expected = [rw * overall_mean_cost for rw in grid]
    ax.plot(grid, expected, color="black", linewidth=0.8, label="RW x overall mean cost")
    high = [e * _high_multiple(rw) for e, rw in zip(expected, grid, strict=True)]
    ax.fill_between(grid, [e * LOW_MULTIPLE for e in expected], high,
                    color="#2e8b57", alpha=0.12, label="between low (0.4x) and high (3/2/1.5x) outlier bounds")
    ax.set_xlabel("relative weight")
    ax.set_ylabel("cost (yuan)")
    ax.legend(fontsize=7)
    return _png(fig)


def plot_coding_quality(quality: dict | None) -> str:
    fig, ax = _figure(PLOT_TITLES[4])
    if quality is None:
        _empty(ax, "quality stage has not run: silver.case_quality not found")
        return _png(fig)
    rules = quality["rules"]
    if not rules:
        _empty(ax, f"all {quality['n_cases']:,} cases passed every rule")
        return _png(fig)
    names = [r for r, _ in rules][::-1]
    ax.barh(names, [n for _, n in rules][::-1], color="#c0392b")
    ax.set_xlabel("cases failing the rule")
    return _png(fig)


def plot_grouping_quality(drg_stats) -> str:
    fig, ax = _figure(PLOT_TITLES[5])
    cv = drg_stats["cost_cv"].dropna()
    if cv.empty:
        _empty(ax, "no DRG with at least k cases")
        return _png(fig)
    top = max(float(cv.max()), 1.2) * 1.05
    ax.hist(cv, bins=[top * i / 30 for i in range(31)], color="#3b6ea5")
    ax.axvline(1.0, color="#c0392b", label="CV = 1")
    ax.set_xlabel("coefficient of variation of cost")
    ax.set_ylabel("DRGs")
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
def _table(frame, columns, limit=30) -> str:
    if frame is None or frame.empty:
        return "<p class='muted'>none</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for _, row in frame[list(columns)].head(limit).iterrows():
        cells = [f"{v:,.4g}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _panel(title: str, png: str, notes: str = "") -> str:
    return (f"<section><h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{png}'/>{notes}</section>")


STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
section{display:inline-block;vertical-align:top;width:530px;margin:0 10px 24px 0}
img{width:520px}h2{font-size:1.05em}table{border-collapse:collapse;font-size:.8em;margin-top:6px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}.muted{color:#777}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:bold}"""


def render(meta: dict, weights, stats, hospitals, rates, quality: dict | None, grouping: dict | None) -> str:
    """The report page from pandas frames of the release's published (aggregate) tables."""
    drg_stats = stats[stats["level"] == "drg"]
    overall = stats.loc[stats["level"] == "all", "cost_mean"]
    overall_mean = float(overall.iloc[0]) if len(overall) and overall.notna().all() else None
    moved = weights.dropna(subset=["rw_change"])
    moved = moved[moved["rw_change"].abs() > 0.05].sort_values("rw_change", key=abs, ascending=False)
    cv_high = drg_stats[drg_stats["cost_cv"] > 1].sort_values("cost_cv", ascending=False)
    if quality is None:
        quality_note = "<p class='muted'>The quality stage has not run for this lake.</p>"
    else:
        quality_note = (f"<p>{quality['n_cases']:,} cases checked; {quality['priceable']:,} priceable; "
                        f"{quality['errors']:,} with errors, {quality['warnings']:,} with warnings only.</p>")
    if grouping is None:
        riv = "<p class='muted'>gold.grouping_quality has no row for this run.</p>"
    else:
        riv = "<dl>" + "".join(
            f"<dt>{label}</dt><dd>{'' if grouping.get(key) is None else f'{grouping[key]:.3f}'}</dd>"
            for key, label in (("riv_cost", "RIV cost"), ("riv_cost_trimmed", "RIV cost (trimmed)"),
                               ("riv_los", "RIV LOS"))
        ) + f"<dt>DRGs with CV &gt; 1</dt><dd>{grouping.get('n_drgs_cv_gt_1', '')}</dd></dl>"
    facts = "".join(
        f"<dt>{html.escape(label)}</dt><dd>{html.escape(str(meta.get(key, '')))}</dd>"
        for key, label in (("release_id", "release"), ("release_date", "date"), ("run_id", "run"),
                           ("pack_version", "definitions"), ("policy_version", "policy"),
                           ("previous_release_id", "previous release"), ("k", "k (minimum cases per cell)"))
    )
    panels = [
        _panel(PLOT_TITLES[0], plot_rw_distribution(weights), f"<p>{len(weights):,} DRGs published.</p>"),
        _panel(PLOT_TITLES[1], plot_weight_change(weights),
               _table(moved, ("drg", "previous_rw", "rw", "rw_change"), 15)),
        _panel(PLOT_TITLES[2], plot_cmi(hospitals),
               f"<p>{int(hospitals['suppressed'].sum())} hospitals with fewer than k cases not shown.</p>"),
        _panel(PLOT_TITLES[3], plot_cost_vs_rw(drg_stats, overall_mean)),
        _panel(PLOT_TITLES[4], plot_coding_quality(quality), quality_note),
        _panel(PLOT_TITLES[5], plot_grouping_quality(drg_stats),
               riv + _table(cv_high, ("drg", "n_cases", "cost_mean", "cost_cv"), 15)),
    ]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>DRG release {html.escape(meta['release_id'])}</title><style>{STYLE}</style></head><body>"
        f"<h1>DRG release {html.escape(meta['release_id'])}</h1><dl>{facts}</dl>"
        f"<p class='muted'>Disclosure rule: {html.escape(meta.get('suppression_rule') or '')}</p>"
        + "".join(panels)
        + "<section><h2>Base rates</h2>"
        + _table(rates, ("region_code", "fund", "base_rate", "budget", "budget_gap_pct"))
        + "</section></body></html>"
    )


def write_report(spark: SparkSession, lake: str, release: dict) -> str:
    """Render the report of a (complete) release to <lake>/published/reports/<release_id>/index.html."""
    from jobs.publish import release_frame

    frames = {
        table: release_frame(spark, lake, table, release).toPandas()
        for table in ("drg_weights", "group_stats", "hospital_indices", "base_rates")
    }
    page = render(
        release, frames["drg_weights"], frames["group_stats"], frames["hospital_indices"], frames["base_rates"],
        quality_summary(spark, lake), grouping_quality(spark, lake, release["run_id"]),
    )
    return lake_files.write_text(report_path(lake, release["release_id"]), page, spark)  # local or object storage
