"""The project as users get it: a wheel installed into a fresh virtual environment, run from a folder
outside the repository, and the same night through deploy/spark-submit.sh on a Spark standalone cluster
with its lake on object storage.

Why these are tests: every other test imports the checkout, so they pass even when the wheel lacks a
shipped file or a code path reads one relative to the checkout; and only a real cluster ships the code
to executors through --py-files. Slow (a wheel build, the demo's JVM, and one night on a cluster with its
lake on an S3 server, about 7 minutes on 2 cores), so the module runs once, its steps sharing one install
(`-m "not install"` skips it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pyarrow import fs

from tests.published import differences, published
from tests.seaweedfs import seaweedfs, weed_binary
from tests.small_data import submit_args
from tests.standalone import standalone_cluster

pytestmark = pytest.mark.install

REPO = Path(__file__).resolve().parents[1]
CASES = 3000
KEY = "install-test-pseudonym-key"


def _env(**extra: str) -> dict[str, str]:
    """A user's environment: no PYTHONPATH pointing at the checkout, modest driver memory."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DRG_SPARK_MASTER")}
    return {**env, "DRG_DRIVER_MEMORY": "2g", "DRG_PSEUDONYM_KEY": KEY, **extra}


def _run(args: list[str], cwd: Path, env: dict, timeout: int = 1500) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args[:3]} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel) -> dict:
    """Build the wheel, install it (non-editable) into a fresh venv and run `drg demo` outside the repo.

    The venv sees the system site-packages so pyspark and the other dependencies are not downloaded
    again; the project itself comes only from the wheel (checked below).
    """
    root = tmp_path_factory.mktemp("install")
    venv = root / "venv"
    # no pip of its own: the system's pip (visible through the system site) installs into the venv
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], root, _env())
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)], root, _env())
    user = root / "somewhere"  # a user's folder: no checkout in sight
    user.mkdir()
    where = _run([str(python), "-c", "import jobs, quality, schemas; print(jobs.__file__)"], user, _env()).stdout
    assert where.strip().startswith(str(venv)), where

    out = user / "demo"
    proc = _run([str(venv / "bin" / "drg"), "demo", "--out", str(out), "--cases", str(CASES), "--nights", "1"],
                user, _env())
    return {"venv": venv, "python": python, "wheel": wheel, "user": user, "demo": out, "stdout": proc.stdout}


def test_installed_wheel_runs_the_demo_outside_the_repository(installed):
    demo = installed["demo"]
    assert "release" in installed["stdout"]
    config = yaml.safe_load((demo / "nightly.yaml").read_text())
    assert config["definitions"] == "chs-2.0" and "policy" not in config  # shipped national pack, default policy
    weights = published(str(demo / "lake"), "drg_weights")
    assert len(weights) > 10 and all(r["rw"] > 0 for r in weights.values() if r["rw"] == r["rw"])
    reports = list((demo / "lake" / "published" / "reports").glob("*/index.html"))
    assert reports and (demo / "lake" / "quality" / "data_docs" / "index.html").is_file()


def _task_executors(event_logs: Path) -> dict[str, int]:
    """Tasks per executor id, from the application's (uncompressed) Spark event log: one file, or Spark 4's
    rolling `eventlog_v2_<app>/events_<n>_<app>` files."""
    logs = sorted(p for p in event_logs.rglob("*") if p.is_file() and not p.name.startswith((".", "appstatus")))
    assert logs, f"no event log under {event_logs}"
    counts: dict[str, int] = {}
    for log in logs:
        for line in log.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            if event.get("Event") == "SparkListenerTaskEnd":
                executor = event["Task Info"]["Executor ID"]
                counts[executor] = counts.get(executor, 0) + 1
    return counts


def _holder(run_id: str, pid: int) -> bytes:
    return json.dumps({"run_id": run_id, "pid": pid, "host": socket.gethostname(),
                       "since": datetime.now(UTC).isoformat()}).encode()


def test_nightly_on_a_standalone_cluster_with_its_lake_on_s3(installed, tmp_path):
    """Production's shape in one night: the demo's night again (its DRG part), through spark-submit.sh of
    the *installed* project (the script copied out of the checkout) on a master and two 1-core workers, with
    `lake: s3a://drg/lake` on a SeaweedFS server on loopback (hadoop-aws from Maven Central). The lock
    refuses a live holder and breaks a dead one on the object store, reports and Data Docs land there,
    read_release reads it with delta-rs options, and the published tables equal the local run's.

    One night serves the cluster and the object store because each is a fresh pipeline JVM (minutes on
    2 cores). Without a SeaweedFS binary (no Go toolchain to build one) the night keeps a local lake and
    only the object-store checks are skipped."""
    binary = weed_binary()
    demo = installed["demo"]
    config = yaml.safe_load((demo / "nightly.yaml").read_text())
    config["lake"] = "s3a://drg/lake" if binary else "cluster_lake"
    # DRG only: DIP ran from the wheel in the demo's night, and on 2 one-core workers it would add minutes
    # of fresh-JVM work to the suite for no path of its own (it ships in the same --py-files zip)
    config["methods"] = ["drg"]
    cluster_config = demo / "cluster.yaml"
    cluster_config.write_text(yaml.safe_dump(config, sort_keys=False))
    script = tmp_path / "bin" / "spark-submit.sh"
    script.parent.mkdir()
    shutil.copy2(REPO / "deploy" / "spark-submit.sh", script)
    python = str(installed["python"])
    events = tmp_path / "events"
    events.mkdir()
    logged = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file://{events}",
              "spark.eventLog.compress": "false", "spark.ui.enabled": "false"}
    nightly = [str(script), "nightly", "--config", str(cluster_config)]

    with contextlib.ExitStack() as stack:
        s3 = stack.enter_context(seaweedfs(binary, tmp_path / "weed")) if binary else None
        cluster = stack.enter_context(standalone_cluster(tmp_path / "cluster", workers=2, cores=1, memory="1g"))
        env = _env(PYTHON=python, DRG_EXECUTOR_MEMORY="768m", DRG_BUILD_DIR=str(tmp_path / "build"),
                   DRG_SUBMIT_ARGS=submit_args({**logged, **(s3.hadoop_conf() if s3 else {})}))
        if s3:
            store = s3.filesystem()
            store.create_dir("drg")
            aws = _run([python, "-m", "jobs.submit", "hadoop-aws"], installed["user"], _env())
            env["DRG_PACKAGES"] = aws.stdout.strip()
            lock = "drg/lake/_nightly.lock"
            with store.open_output_stream(lock) as out:  # a live run holds the lake (this very process)
                out.write(_holder("HOLDER", os.getpid()))
            refusing = {**env, "SPARK_MASTER": "local[2]", "DRG_SUBMIT_ARGS": submit_args(s3.hadoop_conf())}
            refused = subprocess.run(nightly, cwd=installed["user"], env=refusing,  # (no event log: not the night's)
                                     capture_output=True, text=True, timeout=900)
            said = refused.stdout + refused.stderr  # spark-submit passes the Python driver's stderr to its stdout
            assert refused.returncode == 2 and "is locked by run HOLDER" in said, said[-3000:]
            written = [i.path for i in store.get_file_info(fs.FileSelector("drg/lake", recursive=True))]
            assert written == [lock]  # refused before writing anything
            dead = subprocess.Popen([sys.executable, "-c", "pass"])
            dead.wait()
            with store.open_output_stream(lock) as out:  # its holder died: the night breaks it
                out.write(_holder("DEAD", dead.pid))

        _run(nightly, installed["user"], {**env, "SPARK_MASTER": cluster.url})
        apps = cluster.state()["completedapps"] + cluster.state()["activeapps"]
        if s3:
            assert store.get_file_info(lock).type == fs.FileType.NotFound  # released
            docs = store.get_file_info("drg/lake/quality/data_docs/index.html")
            reports = store.get_file_info(fs.FileSelector("drg/lake/published/reports", recursive=True))
            assert docs.type == fs.FileType.File and docs.size > 0
            assert [r for r in reports if r.base_name == "index.html" and r.size > 0]
        remote = {table: published(config["lake"] if s3 else str(demo / "cluster_lake"), table,
                                   s3.storage_options() if s3 else None)
                  for table in ("drg_weights", "group_stats")}

    assert len(apps) == 1, apps  # the nightly ran as one application on this cluster
    tasks = _task_executors(events)
    assert set(tasks) >= {"0", "1"} and "driver" not in tasks, tasks  # both workers' executors ran tasks
    for table, theirs in remote.items():
        local = published(str(demo / "lake"), table)
        # the local run had 8 shuffle partitions, this one 2 (tests/small_data.py): the same numbers
        assert local and not differences(local, theirs), differences(local, theirs)[:10]


