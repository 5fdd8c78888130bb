#!/usr/bin/env bash
# Run any `drg` command through spark-submit, as on a cluster:
#   deploy/spark-submit.sh ingest --lake /data/lake --region 230100 --input /data/in/230100/2024-03
#   SPARK_MASTER=spark://host:7077 deploy/spark-submit.sh nightly --config nightly.yaml
#   SPARK_MASTER=yarn DRG_DEPLOY_MODE=cluster deploy/spark-submit.sh nightly --config nightly.yaml
# Works from a checkout (its jobs/schemas/quality are shipped) and with the project pip-installed (the
# installed packages are shipped; the script may then be copied anywhere). It zips the packages into
# $DRG_BUILD_DIR/drg.zip (shipped with --py-files), adds the Delta package and the Delta/ANSI/UTC settings
# from jobs/spark.py (`python -m jobs.submit conf`), and submits the package's driver, jobs/driver.py.
# Environment: SPARK_MASTER (default local[2]), DRG_DEPLOY_MODE (client), DRG_DRIVER_MEMORY (2g),
# DRG_EXECUTOR_MEMORY (unset: cluster default), DELTA_PACKAGE, SPARK_SUBMIT (default: the one on
# PATH, else pyspark's bin/), PYTHON (python3; it also runs the driver in client mode), DRG_BUILD_DIR
# (deploy/build in a checkout, else ~/.cache/drg-recal/build), DRG_PACKAGES (more Maven coordinates,
# comma-separated, e.g. org.apache.hadoop:hadoop-aws:3.4.2 for an s3a:// lake), DRG_SUBMIT_ARGS (extra
# spark-submit options, word-split, e.g. --conf spark.hadoop.fs.s3a.endpoint=...).
# The pseudonymisation key never goes on a command line (`ps` shows those): the driver reads
# DRG_PSEUDONYM_KEY or DRG_PSEUDONYM_KEY_FILE (else the per-user key file) from its environment; YARN
# cluster mode ships the key FILE to the driver with --files; on Kubernetes driver and executors read it
# from the Secret named by DRG_K8S_KEY_SECRET (default drg-pseudonym-key:key). See deploy/README.md,
# "Pseudonymisation key".
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PYTHON="${PYTHON:-python3}"
SPARK_MASTER="${SPARK_MASTER:-local[2]}"
DELTA_PACKAGE="${DELTA_PACKAGE:-io.delta:delta-spark_4.1_2.13:4.3.1}"

if [[ $# -eq 0 ]]; then
    echo "usage: deploy/spark-submit.sh <drg command and options>" >&2
    exit 2
fi

if [[ -f "$REPO/jobs/__init__.py" && -f "$REPO/pyproject.toml" ]]; then
    # A checkout: ship and run its code, whatever else is installed.
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    BUILD="${DRG_BUILD_DIR:-$REPO/deploy/build}"
else
    BUILD="${DRG_BUILD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/drg-recal/build}"
fi
if ! "$PYTHON" -c 'import jobs.submit' 2>/dev/null; then
    echo "deploy/spark-submit.sh: $PYTHON cannot import the drg-recal packages: pip install the project" \
         "(or run this script from a checkout), or set PYTHON to the interpreter that has it" >&2
    exit 2
fi
PYTHON_EXE="$("$PYTHON" -c 'import sys; print(sys.executable)')"

if [[ -z "${SPARK_SUBMIT:-}" ]]; then
    if command -v spark-submit >/dev/null 2>&1; then
        SPARK_SUBMIT="$(command -v spark-submit)"
    else
        SPARK_SUBMIT="$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')/bin/spark-submit"
    fi
fi

"$PYTHON" -m jobs.submit zip "$BUILD/drg.zip"
DRIVER="$("$PYTHON" -m jobs.submit driver)"

conf_args=()
while IFS= read -r pair; do
    conf_args+=(--conf "$pair")
done < <("$PYTHON" -m jobs.submit conf)

extra=()
if [[ "$SPARK_MASTER" == local* ]]; then
    # One machine: quiet Spark logging (the pipeline reports its own progress) and no UI port to clash.
    extra+=(--driver-java-options "$("$PYTHON" -m jobs.submit java-options)" --conf spark.ui.enabled=false)
fi
deploy_mode="${DRG_DEPLOY_MODE:-client}"
if [[ "$SPARK_MASTER" == k8s://* ]]; then
    secret="${DRG_K8S_KEY_SECRET:-drg-pseudonym-key:key}"
    extra+=(--conf "spark.kubernetes.driver.secretKeyRef.DRG_PSEUDONYM_KEY=$secret"
            --conf "spark.kubernetes.executor.secretKeyRef.DRG_PSEUDONYM_KEY=$secret")
elif [[ "$SPARK_MASTER" == yarn* && "$deploy_mode" == cluster ]]; then
    if [[ -z "${DRG_PSEUDONYM_KEY_FILE:-}" ]]; then
        echo "deploy/spark-submit.sh: YARN cluster mode needs DRG_PSEUDONYM_KEY_FILE (a file readable only by you holding the key; it is shipped to the driver with --files)" >&2
        exit 2
    fi
    extra+=(--files "$DRG_PSEUDONYM_KEY_FILE"
            --conf "spark.yarn.appMasterEnv.DRG_PSEUDONYM_KEY_FILE=$(basename "$DRG_PSEUDONYM_KEY_FILE")")
elif [[ "$SPARK_MASTER" != local* && -z "${DRG_PSEUDONYM_KEY:-}${DRG_PSEUDONYM_KEY_FILE:-}" \
        && ! -f "$HOME/.config/drg/pseudonym.key" ]]; then
    # a client-mode driver (standalone, YARN client) passes its key to the executors (jobs/driver.py);
    # it must not invent one for a cluster's lake
    echo "deploy/spark-submit.sh: set DRG_PSEUDONYM_KEY or DRG_PSEUDONYM_KEY_FILE from your secret store (deploy/README.md)" >&2
    exit 2
fi
if [[ -n "${DRG_EXECUTOR_MEMORY:-}" ]]; then extra+=(--executor-memory "$DRG_EXECUTOR_MEMORY"); fi
# shellcheck disable=SC2206  # deliberate word splitting of user-supplied options
if [[ -n "${DRG_SUBMIT_ARGS:-}" ]]; then extra+=($DRG_SUBMIT_ARGS); fi

# The driver runs (client mode) under the interpreter that has the project and its dependencies.
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PYTHON_EXE}"
exec "$SPARK_SUBMIT" \
    --master "$SPARK_MASTER" \
    --deploy-mode "$deploy_mode" \
    --name "drg-$1" \
    --driver-memory "${DRG_DRIVER_MEMORY:-2g}" \
    --packages "$DELTA_PACKAGE${DRG_PACKAGES:+,$DRG_PACKAGES}" \
    "${conf_args[@]}" \
    --conf spark.ui.showConsoleProgress=false \
    "${extra[@]}" \
    --py-files "$BUILD/drg.zip" \
    "$DRIVER" "$@"
