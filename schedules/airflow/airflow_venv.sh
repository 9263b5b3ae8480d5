#!/usr/bin/env bash
# Print the path of a virtual environment with Airflow and the Spark provider, building it once.
#
# Airflow lives in its OWN venv, never the project's: it conflicts with the project's TensorFlow/protobuf
# pins, and apache-airflow-providers-apache-spark pulls pyspark-client, which would overwrite pyspark.
# Cached under ~/.cache/spark-ml-pipeline/airflow-venv/<versions>; a venv is used only once its build
# finished (the .complete marker), so an interrupted build is redone.
set -euo pipefail

AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
SPARK_PROVIDER_VERSION="${SPARK_PROVIDER_VERSION:-6.3.4}"
PYTHON="${AIRFLOW_PYTHON:-python3.11}"
PY_TAG="$("$PYTHON" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')"
CACHE="${SML_CACHE_DIR:-$HOME/.cache/spark-ml-pipeline}/airflow-venv"
VENV="$CACHE/airflow-$AIRFLOW_VERSION-spark-$SPARK_PROVIDER_VERSION-$PY_TAG"

mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9  # one build at a time; a waiting caller then finds the finished venv
if [[ ! -f "$VENV/.complete" ]]; then
    rm -rf "$VENV"
    echo "building $VENV (apache-airflow==$AIRFLOW_VERSION, apache-airflow-providers-apache-spark==$SPARK_PROVIDER_VERSION)" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "apache-airflow==$AIRFLOW_VERSION" "apache-airflow-providers-apache-spark==$SPARK_PROVIDER_VERSION" >&2
    touch "$VENV/.complete"
fi
echo "$VENV"
