"""One SparkSession for the whole test run (starting Spark costs seconds; tests must not pay it twice)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "chs-drg-1.1"
# The session writes an (uncompressed) event log, so tests can check what reaches it (test_pseudonym.py).
EVENT_LOG = Path(tempfile.mkdtemp(prefix="drg-test-eventlog-"))


@pytest.fixture(scope="session")
def spark():
    from jobs.spark import get_spark

    os.environ.setdefault("DRG_SPARK_MASTER", "local[2]")
    session = get_spark("drg-tests", {
        "spark.sql.shuffle.partitions": "2", "spark.driver.memory": "3g",
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
