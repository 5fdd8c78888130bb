"""The DIP section of the release report: Chinese like the DRG sections, inside the page, and every
character the page prints is in the Noto Sans SC subset embedded in it (no Spark: pandas frames)."""

from __future__ import annotations

import base64
import html
import io
import re

import pandas as pd
import pytest

from jobs import display as D
from jobs.dip.report import TITLE, dip_html
from jobs.report import render

CATALOGUE = pd.DataFrame({
    "packet_code": ["K35.8:47.0100", "E11.4", "I21:ZLXCZ", "J18:BSZL"],
    "kind": ["core", "core", "comprehensive", "comprehensive"], "attribute": ["SS", None, "ZLXCZ", "BSZL"],
    "n_cases": [40, 25, None, 12], "mean_cost": [8123.4, 5000.0, None, 4000.0],
    "cv": [0.31, 0.52, None, 0.2], "score": [1530.25, 941.9, 5800.0, 753.5], "suppressed": [False, False, True, False],
})
POINTS = pd.DataFrame({
    "fund": ["all", "employee", "resident"], "settlement_year": [2024] * 3, "n_cases": [77, 50, 27],
    "year_start_point_value": [5.3087] * 3, "settlement_point_value": [5.41, 5.52, 5.21],
    "budget": [412345.6, 300000.0, 112345.6], "payment_ratio": [1.0, 1.0, 1.0], "dip_run_id": ["R-dip"] * 3,
})


def _page() -> str:
    weights = pd.DataFrame({"drg": ["ES21"], "drg_name": ["呼吸系统结核"], "rw": [1.2], "previous_rw": [1.0],
                            "rw_change": [0.2]})
    stats = pd.DataFrame({"level": ["all", "drg"], "drg": [None, "ES21"], "drg_name": ["全部", "呼吸系统结核"],
                          "rw": [1.0, 1.2], "n_cases": [50, 30], "cost_mean": [26550.0, 12000.0],
                          "cost_p10": [5000.0, 9000.0], "cost_p90": [15000.0, 15000.0], "cost_cv": [0.5, 1.4]})
    hospitals = pd.DataFrame({"region_code": ["230100"], "hospital_id": ["H3"], "hospital_name": ["第三医院"],
                              "hospital_short_name": ["三院"], "cmi": [0.9], "n_cases": [40], "suppressed": [False]})
    rates = pd.DataFrame({"region_code": ["230100"], "region_name": ["哈尔滨市"], "fund": ["employee"],
                          "base_rate": [12252.7], "budget": [1e6], "expected_payment": [1e6], "budget_gap_pct": [0.0]})
    return render({"release_id": "R1", "k": 10}, weights, stats, hospitals, rates, None, None,
                  dip_html(CATALOGUE, POINTS))


def test_dip_section_is_chinese_with_numbers_for_people():
    text = re.sub(r"base64,[A-Za-z0-9+/=]+", "", _page())
    section = text.split(TITLE)[1].split("</section>")[0]
    assert "核心病种 2 个，综合病种 2 个" in section and "DIP 运行编号 R-dip" in section
    assert "年初点值（元/分）" in section and "职工医保" in section and "居民医保" in section and "5.3087" in section
    assert "相关手术" in section and "保守治疗" in section and "1,530.25" in section and "8,123.40" in section
    assert "I21:ZLXCZ" not in section  # a suppressed packet is not listed
    assert "Packets" not in section and "fund" not in section  # no English labels left


def test_every_character_of_the_report_page_is_in_the_embedded_font():
    if D.font_path() is None:
        pytest.skip("pylopdf-fonts-zh-cn is not installed: the page carries no font")
    from fontTools.ttLib import TTFont

    page = _page()
    font = re.search(r"url\(data:font/otf;base64,([A-Za-z0-9+/=]+)\)", page)
    assert font, "the page embeds no font"
    covered = set(TTFont(io.BytesIO(base64.b64decode(font.group(1)))).getBestCmap())
    visible = html.unescape(re.sub(r"<style>.*?</style>|<[^>]+>", "", page, flags=re.S))
    missing = sorted({ch for ch in visible if ord(ch) > 127 and ord(ch) not in covered})
    assert not missing, f"characters printed but not in the embedded font: {''.join(missing)}"
    assert "按病种分值付费" in visible and "诊断性操作" not in visible  # only what the page prints
