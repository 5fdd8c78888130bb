"""The release report: one static HTML page with every plot embedded, rendering in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
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


def test_publish_writes_a_static_report_with_every_plot(report):
    lake, release = report
    path = Path(release["report"])
    assert path == Path(report_path(lake, release["release_id"])) and path.exists()
    page = path.read_text(encoding="utf-8")
    assert set(_plots(page)) == set(PLOT_TITLES)
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched: opens offline
    assert "The quality stage has not run" in page  # no silver.case_quality in this lake
    assert "0.620" in page  # RIV cost from gold.grouping_quality
    assert "k=10" in page


def test_render_reports_quality_and_moved_drgs():
    weights = pd.DataFrame({"drg": ["ES21", "ES23"], "rw": [1.2, 0.8], "previous_rw": [1.0, 0.8],
                            "rw_change": [0.2, 0.0]})
    stats = pd.DataFrame({"level": ["all", "drg", "drg"], "drg": [None, "ES21", "ES23"],
                          "rw": [1.0, 1.2, 0.8], "n_cases": [50, 30, 20],
                          "cost_mean": [10000.0, 12000.0, 8000.0], "cost_p10": [5000.0, 9000.0, 6000.0],
                          "cost_p90": [15000.0, 15000.0, 9000.0], "cost_cv": [0.5, 1.4, 0.3]})
    hospitals = pd.DataFrame({"region_code": ["230100", "230200"], "hospital_id": ["H1", "H9"],
                              "cmi": [1.1, None], "suppressed": [False, True]})
    rates = pd.DataFrame({"region_code": ["230100"], "fund": ["employee"], "base_rate": [10000.0],
                          "budget": [1e6], "budget_gap_pct": [0.0]})
    quality = {"n_cases": 50, "priceable": 45, "errors": 5, "warnings": 2, "rules": [("QC01", 5), ("QC07", 2)]}
    page = render({"release_id": "R1", "k": 10}, weights, stats, hospitals, rates, quality, None)
    assert set(_plots(page)) == set(PLOT_TITLES)
    assert "45 priceable" in page and "5 with errors" in page
    moved = page.split("Weight change vs previous release")[2]
    assert "ES21" in moved.split("</section>")[0] and "ES23" not in moved.split("</section>")[0]
    cv_section = page.split("Grouping quality: cost CV by DRG")[2].split("</section>")[0]
    assert "ES21" in cv_section and "ES23" not in cv_section  # only DRGs with CV > 1 listed
    assert "1 hospitals with fewer than k cases not shown" in page


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("chromium not installed: the rendering check needs a headless browser")
    release = report[1]
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}", "--window-size=1200,2400",
         f"--screenshot={shot}", Path(release["report"]).as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    assert shot.exists() and shot.stat().st_size > 50_000  # a page of drawn plots, not a blank one
