"""The release report: one static HTML page with every plot embedded, rendering in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from browser import assert_not_blank, browser, screenshot
from publish_fixtures import RUN_1, RW_1, write_run

from jobs import publish as pub
from jobs.report import PLOT_TITLES, render, report_path

PNG = re.compile(r"<img alt='([^']+)' src='data:image/png;base64,([A-Za-z0-9+/=]{200,})'/>")


def _plots(page: str) -> dict[str, str]:
    return {title: data for title, data in PNG.findall(page)}


@pytest.fixture(scope="module")
def report(spark, tmp_path_factory):
    lake = str(tmp_path_factory.mktemp("report") / "lake")
    write_run(spark, lake, RUN_1, RW_1)
    release = pub.publish(spark, lake, RUN_1)
    return lake, release


def _text(page: str) -> str:
    """The page without its embedded images and font (base64 can hold any letters)."""
    return re.sub(r"base64,[A-Za-z0-9+/=]+", "", page)


def test_publish_writes_a_static_report_with_every_plot(report):
    lake, release = report
    path = Path(release["report"])
    assert path == Path(report_path(lake, release["release_id"])) and path.exists()
    page = path.read_text(encoding="utf-8")
    assert set(_plots(page)) == set(PLOT_TITLES)
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched: opens offline
    assert "@font-face" in page and "data:font/otf;base64," in page  # the Chinese font travels with the page
    text = _text(page)
    assert "本数据湖尚未运行编码质量校验" in text  # no silver.case_quality in this lake
    assert "0.620" in text  # RIV cost from gold.grouping_quality
    assert "k=10" in text and "<html lang='zh-CN'>" in text
    assert "10,000.00" in text  # the base rate, formatted for people
    assert not re.search(r"\d[eE][+-]\d", text)  # never scientific notation


def test_render_is_chinese_with_numbers_for_people():
    weights = pd.DataFrame({"drg": ["ES21", "ES23"], "drg_name": ["呼吸系统结核，伴严重并发症或合并症", None],
                            "rw": [1.2, 0.8], "previous_rw": [1.0, 0.8], "rw_change": [0.2, 0.0]})
    stats = pd.DataFrame({"level": ["all", "drg", "drg"], "drg": [None, "ES21", "ES23"],
                          "drg_name": ["全部", "呼吸系统结核，伴严重并发症或合并症", "ES23"],
                          "rw": [1.0, 1.2, 0.8], "n_cases": [50, 30, 20],
                          "cost_mean": [26550.0, 12000.0, 8000.0], "cost_p10": [5000.0, 9000.0, 6000.0],
                          "cost_p90": [15000.0, 15000.0, 9000.0], "cost_cv": [0.5, 1.4, 0.3]})
    hospitals = pd.DataFrame({"region_code": ["230100", "230200", "230100"],
                              "hospital_id": ["12230100000000000042", "12230200000000000077", "H3"],
                              "hospital_name": ["12230100000000000042", "12230200000000000077", "第三医院"],
                              "hospital_short_name": [None, None, "三院"],
                              "cmi": [1.1, None, 0.9], "n_cases": [1234, None, 40], "suppressed": [False, True, False]})
    rates = pd.DataFrame({"region_code": ["230100"], "region_name": ["哈尔滨市"], "fund": ["employee"],
                          "base_rate": [12252.7], "budget": [1e6], "expected_payment": [1e6],
                          "budget_gap_pct": [-1.442e-08]})
    quality = {"n_cases": 5000, "priceable": 4500, "errors": 500, "warnings": 2,
               "rules": [("Q-PDX-SYM", 400), ("Q-DUP", 100)]}
    page = render({"release_id": "R1", "k": 10}, weights, stats, hospitals, rates, quality, None)
    assert set(_plots(page)) == set(PLOT_TITLES)
    text = _text(page)
    assert "共校验 5,000 例病例：可支付 4,500 例；有错误 500 例" in text
    assert "以症状体征编码" in text and "警告（仍参与测算）" in text  # rules with Chinese text and severity
    moved = text.split(PLOT_TITLES[1])[2].split("</section>")[0]
    assert "ES21 呼吸系统结核，伴严重并发症或合并症" in moved and "+20.0%" in moved and "ES23" not in moved
    cv_section = text.split(PLOT_TITLES[5])[2].split("</section>")[0]
    assert "ES21" in cv_section and "ES23" not in cv_section  # only DRGs with CV > 1 listed
    assert "病例数不足 k 的 1 家医院未显示" in text
    assert "1,000,000.00" in text and "12,252.70" in text and "26,550.00 元" in text
    assert ">0.00%<" in text and "e-08" not in text  # a budget gap of -1.442e-08 % is 0.00 %
    assert "…0042" in text and "三院" in text  # hospitals: a short code or their short name
    assert "1,234" in text and "哈尔滨市" in text and "职工医保" in text


def test_number_formats():
    from jobs import display as D

    assert D.number(-1.442e-08) == "0.00" and D.number(2.655e4) == "26,550.00" and D.number(None) == "—"
    assert D.yuan(1234567.891) == "1,234,567.89 元" and D.count(1234567) == "1,234,567"
    assert D.percent(0.0523) == "5.23%" and D.percent(-1.442e-08, ratio=False) == "0.00%"
    assert D.signed_percent(0.2) == "+20.0%" and D.signed_percent(-0.05) == "-5.0%"
    assert D.short_labels(["12230100000000000042", "12230100000000000043", "H1"], [None, " ", "一院"]) == [
        "…0042", "…0043", "一院"]
    assert D.short_labels(["12230100000000000042", "12230200000000000042", "H2"]) == [
        "…100000000000042", "…200000000000042", "H2"]  # tails grow until the ids differ


def test_report_renders_in_headless_chromium(report, tmp_path):
    if browser() is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium): the rendering check needs a browser")
    shot = screenshot(Path(report[1]["report"]), tmp_path / "report.png")
    assert shot.stat().st_size > 50_000  # a page of drawn plots, not a blank one
    assert_not_blank(shot)
