#!/usr/bin/env bash
# Submit a pipeline to a Spark standalone cluster with spark-submit: the one command used both by the
# compose `submit` service and, outside Docker, against `make cluster-up` (spark://127.0.0.1:7077).
#   scripts/submit.sh [key=value ...]          extra arguments are configuration overrides
# Environment (all optional):
#   MASTER        spark://host:port                 default spark://127.0.0.1:7077 (conf/env/cluster.yaml)
#   PIPELINE      named pipeline                    default taxi_fare
#   SML_ENV       environment layer(s)              default cluster (e.g. cluster,gpu)
#   STORE_ROOT    store.root override               default: none (cluster.yaml's root, relative to here)
#   TRACKING_URI  store.tracking_uri override       default: none (an sqlite database under the store root)
#   DRIVER_HOST   spark.driver.host: an address executors can reach; `auto` = the address on the route
#                 to the master (in a container: its address on the compose network).
#                 default: 127.0.0.1 when MASTER is on the loopback interface, else Spark's default
#   PY_FILES      --py-files                        default dist/spark_ml_pipeline.zip when it exists
#   SUBMIT_OPTS   more spark-submit options, split on spaces (e.g. "--executor-memory 2g")
#   PYSPARK_PYTHON interpreter of driver and executors (same path everywhere)
#                 default .venv/bin/python of this checkout, else python3
#   DRY_RUN=1     print the command (shell-quoted) instead of running it
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

MASTER=${MASTER:-spark://127.0.0.1:7077}
PIPELINE=${PIPELINE:-taxi_fare}
SML_ENV=${SML_ENV:-cluster}
if [ -z "${PYSPARK_PYTHON:-}" ]; then
  if [ -x "$root/.venv/bin/python" ]; then PYSPARK_PYTHON="$root/.venv/bin/python"; else PYSPARK_PYTHON=$(command -v python3); fi
fi
export PYSPARK_PYTHON PYSPARK_DRIVER_PYTHON="$PYSPARK_PYTHON"
# spark-submit of the pyspark installed for this interpreter: the same Spark version as the cluster.
SPARK_HOME=${SPARK_HOME:-$("$PYSPARK_PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}
export SPARK_HOME
# The JVM options a local session gets (runtime/session.py java_options): Spark's log configuration, huge
# methods compiled, and the class archive make setup records (runtime/class_archive.py), when there is one.
mapfile -t java_conf < <("$PYSPARK_PYTHON" -c '
from spark_ml_pipeline.runtime.class_archive import class_archive_options
from spark_ml_pipeline.runtime.session import java_options
for key, value in java_options(class_archive_options()).items():
    print(f"{key}={value}")')

master_host=${MASTER#spark://}
master_host=${master_host%:*}
case "${DRIVER_HOST:-}" in
  auto)  # the local address on the route to the master (a UDP connect sends nothing)
    DRIVER_HOST=$("$PYSPARK_PYTHON" - "$master_host" <<'PY'
import socket, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.connect((sys.argv[1], 7077))
    print(s.getsockname()[0])
PY
) ;;
  "") case "$master_host" in 127.*|localhost) DRIVER_HOST=127.0.0.1 ;; esac ;;
esac
if [ -z "${PY_FILES+set}" ] && [ -f "$root/dist/spark_ml_pipeline.zip" ]; then
  PY_FILES="$root/dist/spark_ml_pipeline.zip"
fi

cmd=("$SPARK_HOME/bin/spark-submit" --master "$MASTER")
for option in "${java_conf[@]}"; do cmd+=(--conf "$option"); done
if [ -n "${DRIVER_HOST:-}" ]; then
  cmd+=(--conf "spark.driver.host=$DRIVER_HOST" --conf "spark.driver.bindAddress=$DRIVER_HOST")
  case "$DRIVER_HOST" in 127.*) export SPARK_LOCAL_IP=$DRIVER_HOST ;; esac
fi
[ -n "${PY_FILES:-}" ] && cmd+=(--py-files "$PY_FILES")
# shellcheck disable=SC2206  # SUBMIT_OPTS is split on purpose
[ -n "${SUBMIT_OPTS:-}" ] && cmd+=(${SUBMIT_OPTS})
cmd+=("$root/jobs/run_pipeline.py" "$PIPELINE" --env "$SML_ENV"
      # GPU discovery script by absolute path (used only by --env ...,gpu): the same in every container.
      "spark.gpu.discovery_script=$root/scripts/get_gpus_resources.sh")
[ -n "${STORE_ROOT:-}" ] && cmd+=("store.root=$STORE_ROOT")
[ -n "${TRACKING_URI:-}" ] && cmd+=("store.tracking_uri=$TRACKING_URI")
cmd+=("$@")

if [ -n "${DRY_RUN:-}" ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
exec "${cmd[@]}"
