"""Driver entry point for spark-submit, Kubernetes and Databricks: `driver.py <drg arguments>`.

Why it creates the session first: under spark-submit no SparkSession exists until the driver script
asks for one, and `jobs.spark.get_spark` would otherwise build a *local* session (its own master and
jar resolution), ignoring the cluster. `getOrCreate()` without settings takes everything spark-submit
passed (master, packages, --conf), and get_spark then reuses that active session.

Why inside the package: spark-submit needs the driver script as a file, and an installed project (a
wheel, the Databricks library, a cluster image) has no checkout to take `deploy/main.py` from;
`python -m jobs.submit driver` prints this file's path wherever the package is installed.
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession


def main(argv: list[str]) -> int:
    SparkSession.builder.appName("drg").getOrCreate()
    from jobs.cli import main as drg_main

    return drg_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
