"""The coding-quality page a person opens after `drg validate`: `<lake>/quality/index.html`, in Chinese.

Why a page of our own in front of the Great Expectations Data Docs: GX renders its docs in English with
expectation names (`expect_column_values_to_be_in_set`) and raw counts; the data teams who act on them
read Chinese and think in rules. This page lists each rule of the batch contract by id and Chinese
description, its severity and what that means for payment, how many cases fail and the share allowed,
and links to the GX Data Docs for the detail. Self-contained (jobs.display embeds the font it needs).
"""

from __future__ import annotations

import html
from pathlib import Path

from jobs import display as D
from quality.catalogue import Catalogue

SEVERITY_ZH = {"error": "错误：不予支付，不参与测算", "warning": "警告：仍支付并参与测算"}
SUITE_ZH = {"silver_discharges": "病案首页字段", "silver_case_quality": "编码质量规则",
            "gold_hospital_quality": "医院编码质量评分"}


def render(result, catalogue: Catalogue, docs_link: str = "data_docs/index.html") -> str:
    """The page for a ValidateResult (jobs.validate): its counts, each expectation and the rules."""
    import pandas as pd

    rules = {r.id: r for r in catalogue.rules}
    rows = []
    for o in result.outcomes:
        rule = rules.get(o.rule_id) if o.rule_id else None
        rows.append({
            "suite": SUITE_ZH.get(o.suite, o.suite),
            "rule": o.rule_id or (o.column or ""),
            "text": rule.description_zh if rule else o.expectation,
            "severity": SEVERITY_ZH.get(rule.severity, "") if rule else "",
            "failed": o.unexpected_count,
            "share": None if o.unexpected_percent is None else o.unexpected_percent / 100,
            "allowed": None if o.mostly is None else 1 - o.mostly,
            "verdict": "通过" if o.success else "未通过",
        })
    frame = pd.DataFrame(rows)
    failed = sum(not o.success for o in result.outcomes)
    verdict = ("<p class='ok'>批次质量合同：全部通过，可进入测算。</p>" if not failed else
               f"<p class='bad'>批次质量合同：{D.count(failed)} 项未通过，本批次不进入测算。</p>")
    reasons = pd.DataFrame([{"rule": r.id, "severity": SEVERITY_ZH[r.severity], "reason": r.severity_reason}
                            for r in catalogue.rules])
    title = f"编码质量报告 Coding quality — {result.scope}"
    body = (
        f"<h1>{html.escape(title)}</h1>"
        f"<dl><dt>批次 Batch</dt><dd>{html.escape(str(result.scope))}</dd>"
        f"<dt>运行编号 Run</dt><dd>{html.escape(str(result.run_id))}</dd>"
        f"<dt>校验病例数</dt><dd>{D.count(result.n_cases)}</dd>"
        f"<dt>有问题病例数</dt><dd>{D.count(result.n_flagged)}（{D.percent(_share(result.n_flagged, result))}）</dd>"
        f"<dt>不予支付病例数</dt><dd>{D.count(result.n_unpriceable)}"
        f"（{D.percent(_share(result.n_unpriceable, result))}）</dd>"
        f"<dt>疑似高套编码医院</dt><dd>{html.escape('、'.join(result.upcoding_hospitals) or '无')}</dd></dl>"
        + verdict
        + "<section class='wide'><h2>质量合同逐项结果 Expectations</h2>"
        + D.table(frame, [("类别", "suite", None), ("规则/字段", "rule", None), ("说明", "text", None),
                          ("严重程度", "severity", None), ("问题病例数", "failed", D.count),
                          ("占比", "share", D.percent), ("允许占比", "allowed", D.percent),
                          ("结果", "verdict", None)], 200)
        + f"<p>逐项明细见 <a href='{html.escape(docs_link)}'>Great Expectations Data Docs（英文）</a>。</p></section>"
        + "<section class='wide'><h2>规则严重程度及理由 Severity and why</h2>"
        + D.table(reasons, [("规则", "rule", None), ("严重程度", "severity", None), ("理由 (reason)", "reason", None)],
                  200)
        + "</section>"
    )
    return D.page(title, body)


def _share(n: int, result) -> float | None:
    return n / result.n_cases if result.n_cases else None


def write(result, catalogue: Catalogue, quality_dir: str) -> str | None:
    """Write <quality_dir>/index.html (a local lake only; object stores keep the GX docs alone)."""
    folder = Path(quality_dir)
    if "://" in quality_dir:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "index.html"
    path.write_text(render(result, catalogue), encoding="utf-8")
    return str(path)
