"""Airflow DAG: the DRG nightly job once a night, through deploy/spark-submit.sh.

Why a BashOperator around the wrapper rather than SparkSubmitOperator: the wrapper already knows how to
package the code and which Delta package and settings the job needs, so Airflow only schedules it and
the same command works from a terminal, cron or Airflow. Point SPARK_MASTER at the cluster (yarn,
k8s://..., spark://...) in the environment below. The nightly job is idempotent and resumes, so a
retry after a failure is safe; max_active_runs=1 keeps Airflow from starting a second night while the
first still holds the lake lock.

Settings are Airflow Variables read when the task runs (templates, so parsing the DAG never touches the
metadata database): drg_repo (the checkout on the worker, default /opt/drg-recal), drg_config (the
nightly YAML, default /etc/drg/nightly.yaml), drg_spark_master (default local[2]). The schedule comes
from $DRG_SCHEDULE on the scheduler (cron, default 02:00 UTC).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow import DAG

try:  # Airflow 3: operators live in the standard provider
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

REPO = "{{ var.value.get('drg_repo', '/opt/drg-recal') }}"
CONFIG = "{{ var.value.get('drg_config', '/etc/drg/nightly.yaml') }}"
SPARK_MASTER = "{{ var.value.get('drg_spark_master', 'local[2]') }}"
SCHEDULE = os.environ.get("DRG_SCHEDULE", "0 2 * * *")

with DAG(
    dag_id="drg_nightly",
    description="DRG recalibration: ingest -> validate -> group -> price -> publish",
    schedule=SCHEDULE,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=30), "owner": "drg"},
    tags=["drg"],
) as dag:
    BashOperator(
        task_id="nightly",
        bash_command=f"{REPO}/deploy/spark-submit.sh nightly --config {CONFIG}",
        env={"SPARK_MASTER": SPARK_MASTER},
        append_env=True,
        execution_timeout=timedelta(hours=6),
    )
