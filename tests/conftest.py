"""One SparkSession for the whole test run (starting Spark costs seconds; tests must not pay it twice)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.small_data import SMALL_DATA

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "chs-drg-1.1"
# The session writes an (uncompressed) event log, so tests can check what reaches it (test_pseudonym.py).
EVENT_LOG = Path(tempfile.mkdtemp(prefix="drg-test-eventlog-"))


@pytest.fixture(scope="session")
def spark():
    from jobs.spark import get_spark

    os.environ.setdefault("DRG_SPARK_MASTER", "local[2]")
    session = get_spark("drg-tests", {
        **SMALL_DATA, "spark.driver.memory": "3g",
        "spark.eventLog.enabled": "true", "spark.eventLog.dir": EVENT_LOG.as_uri(), "spark.eventLog.compress": "false",
    })
    yield session
    session.stop()
    shutil.rmtree(EVENT_LOG, ignore_errors=True)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The public CHS-DRG 1.1 tables from ../shared; tests needing them skip clearly when absent."""
    if not (REFERENCE / "codes.csv").exists():
        pytest.skip(f"CHS-DRG 1.1 reference tables not found at {REFERENCE} (provided beside the repo)")
    return REFERENCE


@pytest.fixture()
def lake(tmp_path) -> str:
    return str(tmp_path / "lake")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built once per test run (non-editable, as users install it)."""
    import subprocess
    import sys

    dist = tmp_path_factory.mktemp("dist")
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(repo)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built,) = dist.glob("drg_recal-*.whl")
    return built


NIGHTLY_KEY = "two-nights-test-key"


@pytest.fixture()
def nightly_key(monkeypatch):
    """The pseudonymisation key of the shared nights: a test that runs another night on their lake needs it
    (modules in between set keys of their own, and a lake refuses a changed key)."""
    monkeypatch.setenv("DRG_PSEUDONYM_KEY", NIGHTLY_KEY)


@pytest.fixture(scope="session")
def two_nights(spark, tmp_path_factory):
    """`drg demo`'s two nights on the national CHS-DRG 2.0 pack with DRG and DIP (k=10), weights re-estimated
    every night (the shipped policy settles a second night of the same year instead), run once per test
    run: a night costs about a minute here, and test_nightly.py (the night's machinery), test_dip_nightly.py
    (DIP in the release) and test_night_chs20.py (the 2.0 pack end to end) each check their part of the
    same lake (under `nightly_key`). Returns the demo folder and the nights' results; a test that writes
    more than a skipped run to the lake works on a copy."""
    from jobs.demo import demo
    from jobs.pricing.policy import with_schedule

    out = tmp_path_factory.mktemp("nightly")
    nightly_weights = with_schedule(out, "night")  # each night a release: the tests compare two
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DRG_PSEUDONYM_KEY", NIGHTLY_KEY)
        return out, demo(spark, out, cases=3000, hospitals=6, nights=2, seed=5, definitions="chs-2.0",
                         policy=nightly_weights)
