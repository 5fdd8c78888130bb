"""Driver entry point for spark-submit, Kubernetes and Databricks: `driver.py <drg arguments>`.

Why it creates the session first: under spark-submit no SparkSession exists until the driver script
asks for one, and `jobs.spark.get_spark` would otherwise build a *local* session (its own master and
jar resolution), ignoring the cluster. `getOrCreate()` without settings takes everything spark-submit
passed (master, packages, --conf), and get_spark then reuses that active session.

Why it may add the pseudonymisation key to the executors' environment: on YARN and Spark standalone the
executors have no secret store of their own, so the driver passes its key (DRG_PSEUDONYM_KEY or the file
named by DRG_PSEUDONYM_KEY_FILE) as `spark.executorEnv.DRG_PSEUDONYM_KEY`, set here in-process (never on
a command line, where `ps` would show it) and redacted in the UI and event log by `spark.redaction.regex`.
Kubernetes and Databricks give every executor the key from their own secret store (deploy/README.md).

Why inside the package: spark-submit needs the driver script as a file, and an installed project (a
wheel, the Databricks library, a cluster image) has no checkout to take `deploy/main.py` from;
`python -m jobs.submit driver` prints this file's path wherever the package is installed.
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession

EXECUTOR_KEY = "spark.executorEnv.DRG_PSEUDONYM_KEY"


def executor_key_conf() -> dict[str, str]:
    """The executors' key setting when this driver starts a YARN or standalone application without one."""
    from pyspark import SparkConf, SparkContext

    if SparkContext._active_spark_context is not None:  # Databricks, notebooks: the cluster is configured
        return {}
    SparkContext._ensure_initialized()  # so SparkConf() reads what the launcher passed
    conf = SparkConf()
    if not conf.get("spark.master", "").startswith(("yarn", "spark://")) or conf.contains(EXECUTOR_KEY):
        return {}
    from jobs.pseudonym import load_key

    return {EXECUTOR_KEY: load_key().decode("utf-8")}


def main(argv: list[str]) -> int:
    from jobs.errors import PipelineError

    try:
        extra = executor_key_conf()
    except PipelineError as exc:  # no key: one line, as the drg command would say it
        print(f"drg: error: {exc}", file=sys.stderr)
        return 2
    builder = SparkSession.builder.appName("drg")
    for key, value in extra.items():
        builder = builder.config(key, value)
    builder.getOrCreate()
    from jobs.cli import main as drg_main

    return drg_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
