"""SparkSession factory: Delta on `local[*]` by default, the cluster's session when there is one.

Why a factory: every stage must run the same way under pytest, the `drg` command and `spark-submit`.
Under spark-submit (YARN, Kubernetes, Databricks) a session already exists and carries the cluster's
configuration, so we reuse it. Locally we build one with Delta's jars resolved from Maven Central the
standard way (`configure_spark_with_delta_pip`, cached by Ivy), or from `spark.jars` files named in
DRG_SPARK_JARS for machines that cannot reach a Maven repository.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.errors import PipelineError

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

# Spark generates one Java method per query stage; wide projections (25 typed fields, 19 quality rules)
# exceed HotSpot's 8,000-byte limit for JIT compilation and would run interpreted, 2-4x slower.
#
# The parallel (throughput) collector: a nightly batch has no pause-time goal, and on 2 cores G1's
# concurrent work competes with the tasks (about 9% of a 1M-case nightly run, bench/bench_nightly.py).
#
# Metaspace: every query loads generated classes (about 210 MB of class metadata by the end of a night).
# The JVM collects whenever metaspace crosses its threshold, which starts at about 21 MB and rises a step
# each time; starting it at 512 MB removes those collections (4 full and 4 young in a 1M-case night,
# which has 14 full collections in all).
JVM_OPTIONS = "-XX:-DontCompileHugeMethods -XX:+UseParallelGC -XX:MetaspaceSize=512m"

# Engine settings every deployment carries too (deploy/package.py passes them to clusters).
ENGINE_CONF = {
    # Bound how much of a plan explain(), errors and event logs print. A grouping plan holds the pack's
    # code tables: here as short binary constants, but as a few MB of JSON text under Spark Connect
    # (jobs/hashed.py).
    "spark.sql.maxPlanStringLength": "100000",
    # Spark caches the 100 most recently generated classes by their source. A 1M-case night generates
    # about 570 distinct ones and, with that default, compiled about 130 of them a second time after
    # eviction (and HotSpot compiled those again); 1000 keeps a night's classes (bench/, README).
    "spark.sql.codegen.cache.maxEntries": "1000",
    # The pseudonymisation key never enters a plan or a conf shown to anyone (jobs/pseudonym.py); these
    # redact it should a deployment put it there anyway. Property names matching spark.redaction.regex
    # have their values hidden in the UI's environment tab and the event log: Spark's default list plus
    # "pseudonym", which covers spark.executorEnv.DRG_PSEUDONYM_KEY (YARN/standalone, deploy/main.py).
    "spark.redaction.regex": "(?i)secret|password|token|access[.]?key|pseudonym",
    # Plan text (EXPLAIN, the SQL tab's plan description, the event log's): a run of 64+ hex digits is
    # a 32-byte secret or SHA-256 digest in hex, or a binary literal of one (an HMAC key padded to 64
    # bytes prints as 0x + 128 digits); no plan of ours needs to show one. Spark does not apply it to the
    # per-node strings of the SQL tab's graph, so it is a second layer, never the protection.
    "spark.sql.redaction.string.regex": "(?i)(0x)?[0-9a-f]{64,}",
}

# Sized for one machine of 2-8 cores; a cluster's own session keeps its settings.
LOCAL_DEFAULTS = {
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": os.environ.get("DRG_DRIVER_MEMORY", "6g"),
    "spark.sql.ansi.enabled": "true",
    # Delta's log replay defaults to 50 partitions, which dominates small local commits.
    "spark.databricks.delta.snapshotPartitions": "2",
    # VACUUM lists a table's files in a job of this many tasks (default 10,000): minutes per table locally.
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "8",
    **ENGINE_CONF,
}


def parse_conf(pairs: list[str] | None) -> dict[str, str]:
    """Turn repeated `--conf key=value` options into a dict, rejecting malformed ones clearly."""
    conf: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise PipelineError(f"--conf expects key=value, got {pair!r}")
        conf[key.strip()] = value.strip()
    return conf


def _require_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.exists(os.path.join(java_home, "bin", "java")):
        return
    if shutil.which("java") is None:
        raise PipelineError(
            "Java not found: Spark needs a JDK 17 or 21 on PATH or in JAVA_HOME "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
        )


def driver_java_options() -> str:
    """JVM_OPTIONS plus our quiet log4j2 configuration when it is a real file (an installed package or a
    checkout; not inside a zip, where Spark keeps its own logging configuration)."""
    log_conf = resources.files("jobs").joinpath("log4j2.properties")
    return f"{JVM_OPTIONS} -Dlog4j2.configurationFile=file:{log_conf}" if isinstance(log_conf, Path) else JVM_OPTIONS


def _launcher_session(app_name: str) -> SparkSession | None:
    """The session of the JVM that launched this interpreter, when one did: spark-submit (its PythonRunner
    sets PYSPARK_GATEWAY_PORT) or a Databricks cluster. Its master, packages and --conf are the truth;
    building our local session there would replace the cluster's --master with local[*]."""
    if "PYSPARK_GATEWAY_PORT" in os.environ or "DATABRICKS_RUNTIME_VERSION" in os.environ:
        return SparkSession.builder.appName(app_name).getOrCreate()
    return None


def get_spark(app_name: str = "drg", conf: dict[str, str] | None = None) -> SparkSession:
    """Return the active session (spark-submit, notebooks, tests) or build a local Delta one.

    `conf` overrides apply to a new local session; on an existing session only runtime-settable SQL
    options are applied (static ones such as spark.driver.memory belong to the launcher).
    """
    conf = conf or {}
    active = SparkSession.getActiveSession() or _launcher_session(app_name)
    if active is not None:
        for key, value in conf.items():
            if key.startswith("spark.sql."):
                active.conf.set(key, value)
        return active

    _require_java()
    builder = SparkSession.builder.appName(app_name).master(os.environ.get("DRG_SPARK_MASTER", "local[*]"))
    settings = {**DELTA_CONF, **LOCAL_DEFAULTS}
    settings["spark.driver.extraJavaOptions"] = driver_java_options()
    settings.update(conf)
    for key, value in settings.items():
        builder = builder.config(key, value)

    local_jars = os.environ.get("DRG_SPARK_JARS")
    try:
        if local_jars:
            spark = builder.config("spark.jars", local_jars).getOrCreate()
        else:
            from delta import configure_spark_with_delta_pip

            spark = configure_spark_with_delta_pip(builder).getOrCreate()
    except Exception as exc:  # the JVM failed to start: say why in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineError(f"could not start Spark: {first}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark
