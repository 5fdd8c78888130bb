"""The pseudonymisation key reaches no plan, event log, log, output or lake file; a changed key is refused.

The leak test runs a real ingest through the CLI with a key used nowhere else, then searches everything
an operator, a UI user or a lake reader could see for the key in every form it could be printed in.
Each search also checks it could have found something (a pseudonym in the parquet bytes, the hashing
expression in the plans, this ingest in the event log), so an empty haystack cannot pass it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pyspark.sql import functions as F

from jobs import lake as lk
from jobs import pseudonym
from jobs.cli import main
from jobs.errors import PipelineError
from jobs.ingest import ingest

FIXTURE = Path(__file__).parent / "fixtures" / "canonical_sample.csv"
KEY = "Leak-Probe-Key-7f3a9c"  # used by no other test, so any hit comes from this one
MODES = ("simple", "extended", "codegen", "cost", "formatted")


def key_forms(key: str) -> dict[str, bytes]:
    """The key as it could be printed: raw, hex and base64, and the same for HMAC's padded blocks
    (key ^ ipad, key ^ opad: the constants the old plan held). For the blocks the raw and hex forms are
    their key-long prefix (the rest is padding), base64 the whole block as it would be encoded."""
    raw = key.encode()
    forms = {"raw": raw, "raw hex": raw.hex().encode(), "raw base64": base64.b64encode(raw)}
    for name, pad in (("ipad", 0x36), ("opad", 0x5C)):
        block = bytes(b ^ pad for b in raw.ljust(64, b"\0"))
        forms[f"{name}-padded"] = block[: len(raw)]
        forms[f"{name}-padded hex"] = block[: len(raw)].hex().encode()
        forms[f"{name}-padded base64"] = base64.b64encode(block)
    return forms


def hits(haystack: bytes, forms: dict[str, bytes]) -> list[str]:
    lowered = haystack.lower()
    return [name for name, form in forms.items()
            if (form in haystack) or (not name.endswith("base64") and form.lower() in lowered)]


@contextmanager
def jvm_log(spark, path: Path):
    """Everything Spark, Delta and Hadoop log at INFO, into `path`, for the duration of the block (the
    console keeps showing errors only)."""
    log4j = spark._jvm.org.apache.logging.log4j
    context = log4j.LogManager.getContext(False)
    root = context.getConfiguration().getRootLogger()
    others = dict(root.getAppenders())
    for name, appender in others.items():  # keep them at the level they had
        root.removeAppender(name)
        root.addAppender(appender, log4j.Level.ERROR, None)
    probe = (log4j.core.appender.FileAppender.newBuilder().withFileName(str(path)).setName("drg-leak-probe")
             .setLayout(log4j.core.layout.PatternLayout.createDefaultLayout()).build())
    probe.start()
    root.addAppender(probe, log4j.Level.INFO, None)
    log4j.core.config.Configurator.setAllLevels(log4j.LogManager.ROOT_LOGGER_NAME, log4j.Level.INFO)
    try:
        yield
    finally:
        log4j.core.config.Configurator.setAllLevels(log4j.LogManager.ROOT_LOGGER_NAME, log4j.Level.ERROR)
        root.removeAppender("drg-leak-probe")
        for name, appender in others.items():
            root.removeAppender(name)
            root.addAppender(appender, None, None)
        context.updateLoggers()
        probe.stop()


def event_log_text(spark, marker: str, timeout: float = 60.0) -> bytes:
    """This session's event log (tests/conftest.py enables it) once `marker` has reached it: the listener
    bus writes asynchronously."""
    folder = Path(urlparse(spark.conf.get("spark.eventLog.dir")).path)
    deadline = time.monotonic() + timeout
    while True:
        text = b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())
        if marker.encode() in text or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_the_key_reaches_no_plan_log_output_event_log_or_lake_file(spark, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("DRG_PSEUDONYM_KEY", KEY)
    forms = key_forms(KEY)
    recorded = []  # every DataFrame the ingest writes, to explain afterwards
    write = lk.replace_where
    monkeypatch.setattr(lk, "replace_where", lambda df, *a, **k: (recorded.append(df), write(df, *a, **k))[1])
    codec = spark.conf.get("spark.sql.parquet.compression.codec")
    spark.conf.set("spark.sql.parquet.compression.codec", "uncompressed")  # so the file bytes can be searched
    lake = tmp_path / "lake"
    try:
        with jvm_log(spark, tmp_path / "jvm.log"):
            code = main(["ingest", "--lake", str(lake), "--region", "230100", "--input", str(FIXTURE),
                         "--batch-id", "leakprobe"])
            # an environment update lists the JVM's system properties, where the local key lives
            (tmp_path / "probe.txt").write_text("x")
            spark.sparkContext.addFile(str(tmp_path / "probe.txt"))
            spark.range(1).count()  # a job end flushes the event log
    finally:
        spark.conf.set("spark.sql.parquet.compression.codec", codec)
    output = capfd.readouterr()
    for df in recorded:
        for mode in MODES:
            df.explain(mode)
    plans = capfd.readouterr().out
    events = event_log_text(spark, '"drg.pseudonym.secret"')
    jvm_text = (tmp_path / "jvm.log").read_bytes()
    lake_files = {p: p.read_bytes() for p in lake.rglob("*") if p.is_file()}
    found = {
        "process output": hits((output.out + output.err).encode(), forms),
        "plans": hits(plans.encode(), forms),
        "event log": hits(events, forms),
        "JVM log": hits(jvm_text, forms),
        **{f"lake file {p.relative_to(lake)}": hits(data, forms) for p, data in lake_files.items()},
    }
    assert {where: forms_hit for where, forms_hit in found.items() if forms_hit} == {}

    # ... and each search could have found it
    assert code == 0, output.err
    assert "batch 230100/leakprobe ingested" in output.out
    assert plans.count("== Physical Plan ==") >= 3 * len(recorded) >= 9
    assert "hmacSha256Hex" in plans and "WholeStageCodegen subtrees" in plans
    assert b"leakprobe" in events and b"SparkListenerSQLExecutionStart" in events
    assert b'"drg.pseudonym.secret":"*********(redacted)"' in events  # the local key's JVM property
    assert b"leakprobe" in jvm_text  # Delta logs the batch's files and statistics at INFO
    pseudonym_c001 = hmac.new(KEY.encode(), b"230102199001011234", hashlib.sha256).hexdigest().encode()
    assert any(pseudonym_c001 in data for data in lake_files.values())  # parquet strings are searchable


def test_a_changed_key_never_mixes_two_pseudonym_spaces(spark, tmp_path, monkeypatch):
    lake = str(tmp_path / "lake")
    monkeypatch.setenv("DRG_PSEUDONYM_KEY", "first-key")
    ingest(spark, lake, "230100", str(FIXTURE), batch_id="n1")
    batches_path = lk.table_path(lake, "bronze", "batches")
    first_id = pseudonym.key_id(b"first-key")
    assert [r.key_id for r in lk.read(spark, lake, "bronze", "batches").collect()] == [first_id]

    monkeypatch.setenv("DRG_PSEUDONYM_KEY", "rotated-key")
    rotated_id = pseudonym.key_id(b"rotated-key")
    expected = (rf"^pseudonymisation key changed: lake .* holds 1 batch\(es\) \(e.g. n1\) hashed with key id "
                rf"{first_id}, this run's key has id {rotated_id}; ingesting would mix two pseudonym spaces")
    with pytest.raises(PipelineError, match=expected):
        ingest(spark, lake, "230100", str(FIXTURE), batch_id="n2")
    assert lk.read(spark, lake, "bronze", "discharges_raw").where("batch_id = 'n2'").count() == 0

    # A lake from before key ids: its batches cannot be checked, the next batch adds the column.
    lk.overwrite(lk.read(spark, lake, "bronze", "batches").drop("key_id"), batches_path)
    ingest(spark, lake, "230100", str(FIXTURE), batch_id="n3")
    ids = {r.batch_id: r.key_id for r in lk.read(spark, lake, "bronze", "batches").collect()}
    assert ids == {"n1": None, "n3": rotated_id}
    monkeypatch.setenv("DRG_PSEUDONYM_KEY", "first-key")
    with pytest.raises(PipelineError, match="pseudonymisation key changed"):
        ingest(spark, lake, "230100", str(FIXTURE), batch_id="n4")


class _RemoteDriver:
    """A driver whose executors are other JVMs (a cluster, Spark Connect): it cannot hand them the key."""

    def __init__(self, spark):
        self.range, self.sparkContext = spark.range, spark.sparkContext


def test_executors_without_the_drivers_key_stop_the_run(spark, monkeypatch):
    monkeypatch.setattr(pseudonym, "KEY_PROPERTY", "drg.test.absent.secret")
    monkeypatch.setattr(pseudonym, "KEY_ENV", "DRG_TEST_ABSENT_KEY")
    driver = _RemoteDriver(spark)
    with pytest.raises(PipelineError, match="^pseudonymisation key not available on a Spark executor: set DRG_"):
        pseudonym.publish_key(driver, b"drivers-key")
    with pytest.raises(Exception, match="pseudonymisation key not available"):  # the per-row path, too
        spark.range(3).select(pseudonym.hmac_sha256(F.col("id").cast("string"))).collect()

    spark._jvm.java.lang.System.setProperty("drg.test.absent.secret", "executors-key")
    try:
        other = pseudonym.key_id(b"executors-key")
        with pytest.raises(PipelineError, match=rf"different pseudonymisation key \(key id {other}\)"):
            pseudonym.publish_key(driver, b"drivers-key")
    finally:
        spark._jvm.java.lang.System.clearProperty("drg.test.absent.secret")


def test_keys_the_jvm_would_hash_differently_are_refused(monkeypatch, tmp_path):
    monkeypatch.delenv("DRG_PSEUDONYM_KEY", raising=False)
    key_file = tmp_path / "key"
    key_file.write_bytes(b"\xff\xfe not utf-8")
    monkeypatch.setenv("DRG_PSEUDONYM_KEY_FILE", str(key_file))
    with pytest.raises(PipelineError, match="is not UTF-8 text"):
        pseudonym.load_key()
    key_file.write_bytes(b"  \n")
    with pytest.raises(PipelineError, match="is empty"):
        pseudonym.load_key()
