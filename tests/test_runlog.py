"""ops.runs rows, the lake lock and the progress display."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from py4j.protocol import Py4JJavaError

from jobs import lake as lk
from jobs.errors import PipelineError
from jobs.progress import PlainDisplay, RichDisplay, open_display
from jobs.runlog import LOCK_FILE, StepRecord, acquire, lake_lock, release, step


def _runs(spark, lake):
    return {r.step: r for r in lk.read(spark, lake, "ops", "runs").collect()}


def test_step_records_counts_failures_and_rerun_replaces(spark, lake):
    out = io.StringIO()
    with open_display("drg nightly", ["ingest", "group", "price"], out) as display:
        with step(spark, lake, "R1", "ingest", display) as s:
            s.rows(in_=10, out=8, quarantined=2)
            s.rows(in_=5, out=5, quarantined=0)  # a second batch adds
        with step(spark, lake, "R1", "group", display) as s:
            s.skip("no new batch")
        with pytest.raises(PipelineError, match="pack missing"):
            with step(spark, lake, "R1", "price", display):
                raise PipelineError("pack missing: /x/manifest.yaml\nsecond line is dropped")

    rows = _runs(spark, lake)
    ingest, group, price = rows["ingest"], rows["group"], rows["price"]
    assert (ingest.rows_in, ingest.rows_out, ingest.rows_quarantined, ingest.status, ingest.error) == (
        15, 13, 2, "ok", None)
    assert ingest.ended_at >= ingest.started_at
    assert (group.status, group.rows_in) == ("skipped", None)
    assert (price.status, price.error) == ("failed", "pack missing: /x/manifest.yaml")

    # Resuming the same run replaces the step's row rather than adding one.
    with step(spark, lake, "R1", "price") as s:
        s.rows(out=3)
    rows = _runs(spark, lake)
    assert len(rows) == 3 and (rows["price"].status, rows["price"].rows_out, rows["price"].error) == ("ok", 3, None)
    assert lk.read(spark, lake, "ops", "runs").count() == 3

    log = out.getvalue()
    assert "[1/3] ingest ok in" in log and "15 in, 13 out, 2 quarantined" in log
    assert "[2/3] group skipped" in log and "(no new batch)" in log
    assert "[3/3] price failed" in log and "pack missing" in log


def test_steps_recording_at_the_same_moment_are_all_kept(spark, lake):
    """The nightly records grouping and validation from two threads; a lost commit race is retried
    (Delta's conflict must reach Python as its exception class for that), never a failed night."""
    from concurrent.futures import ThreadPoolExecutor

    from jobs.runlog import record

    with step(spark, lake, "R0", "ingest"):
        pass  # the table exists, so every writer below commits against the same version
    records = [StepRecord("R0", f"s{i}", datetime.now(UTC)) for i in range(4)]
    for rec in records:
        rec.ended_at = datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda rec: record(spark, lake, rec), records))
    assert sorted(_runs(spark, lake)) == ["ingest", *[f"s{i}" for i in range(4)]]


def test_a_background_log_keeps_every_row_and_writes_a_failure_before_it_propagates(spark, lake, tmp_path):
    """The nightly records through one writer thread (jobs.runlog.RunLog) while its next step runs."""
    from jobs.runlog import background_log

    with background_log(spark, lake) as log:
        for name in ("ingest", "validate"):
            with step(spark, lake, "B1", name, log=log) as s:
                s.rows(in_=1, out=1)
        with pytest.raises(PipelineError):
            with step(spark, lake, "B1", "price", log=log):
                raise PipelineError("no cases")
        assert _runs(spark, lake)["price"].status == "failed"  # already written, before the block ends
    assert {n: r.status for n, r in _runs(spark, lake).items()} == {"ingest": "ok", "validate": "ok", "price": "failed"}

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(Py4JJavaError, match="DELTA_CANNOT_CREATE_LOG_PATH"):  # an unwritable row fails the block
        with background_log(spark, str(not_a_folder)) as log:
            with step(spark, str(not_a_folder), "B2", "ingest", log=log):
                pass


def test_non_pipeline_errors_are_one_line_with_type(spark, lake):
    with pytest.raises(ZeroDivisionError):
        with step(spark, lake, "R2", "boom"):
            1 / 0  # noqa: B018
    row = _runs(spark, lake)["boom"]
    assert row.status == "failed" and row.error == "ZeroDivisionError: division by zero"


def test_display_is_plain_off_terminal_and_rich_on_one():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(open_display("t", ["a"], io.StringIO()), PlainDisplay)
    tty = Tty()
    with open_display("drg nightly", ["ingest", "price"], tty) as display:
        assert isinstance(display, RichDisplay)
        rec = StepRecord("R", "ingest", datetime.now(UTC))
        rec.rows(in_=1200, out=1190, quarantined=10)
        rec.ended_at = datetime.now(UTC)
        display.finished(rec)
        failed = StepRecord("R", "price", datetime.now(UTC), status="failed", error="policy [base_rate] missing")
        display.finished(failed)
    text = tty.getvalue()
    assert "✓" in text and "1,200 in, 1,190 out, 10 quarantined" in text
    assert "✗" in text and "policy [base_rate] missing" in text  # brackets printed, not taken as markup


def test_second_lock_refuses_naming_the_holder_and_release_frees_it(tmp_path):
    lake = str(tmp_path / "lake")
    with lake_lock(lake, "RUN-A") as lock:
        assert json.loads(Path(lock.path).read_text())["run_id"] == "RUN-A"
        with pytest.raises(PipelineError) as err:
            acquire(lake, "RUN-B")
        message = str(err.value)
        assert f"lake {lake} is locked by run RUN-A since" in message
        assert f"(pid {os.getpid()} on host {socket.gethostname()})" in message
    assert not (tmp_path / "lake" / LOCK_FILE).exists()
    with lake_lock(lake, "RUN-B"):  # free again
        pass


def test_lock_released_when_the_block_fails(tmp_path):
    lake = str(tmp_path / "lake")
    with pytest.raises(RuntimeError):
        with lake_lock(lake, "RUN-A"):
            raise RuntimeError("step failed")
    assert not (tmp_path / "lake" / LOCK_FILE).exists()


def _write_lock(lake_dir, run_id, pid, host, since):
    lake_dir.mkdir(parents=True, exist_ok=True)
    (lake_dir / LOCK_FILE).write_text(json.dumps(
        {"run_id": run_id, "pid": pid, "host": host, "since": since.isoformat()}))


def test_stale_locks_are_broken_dead_pid_or_too_old(tmp_path):
    lake_dir = tmp_path / "lake"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_lock(lake_dir, "DEAD", dead.pid, socket.gethostname(), datetime.now(UTC))
    lock = acquire(str(lake_dir), "NEW")
    assert lock.broke is not None and lock.broke.run_id == "DEAD"
    release(lock)

    # A live pid on another host cannot be checked: only age breaks it.
    _write_lock(lake_dir, "REMOTE", 1, "other-host", datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(PipelineError, match="locked by run REMOTE"):
        acquire(str(lake_dir), "NEW")
    lock = acquire(str(lake_dir), "NEW", stale_after=timedelta(minutes=30))
    assert lock.broke.run_id == "REMOTE"
    release(lock)


def test_release_leaves_a_lock_taken_over_by_another_run(tmp_path):
    lake_dir = tmp_path / "lake"
    lock = acquire(str(lake_dir), "OLD")
    _write_lock(lake_dir, "NEWER", os.getpid(), socket.gethostname(), datetime.now(UTC))
    release(lock)
    assert json.loads((lake_dir / LOCK_FILE).read_text())["run_id"] == "NEWER"

