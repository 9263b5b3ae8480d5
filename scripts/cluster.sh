#!/usr/bin/env bash
# A Spark standalone cluster on 127.0.0.1 from the scripts shipped inside pyspark:
# one Master and $SML_CLUSTER_WORKERS one-core Workers, with their own pid, log and work dirs.
#   scripts/cluster.sh up | down | status | worker-opts
# GPUS_PER_WORKER=N makes each Worker advertise N GPUs to the Master (the SPARK_WORKER_OPTS that
# `worker-opts` prints: spark.worker.resource.gpu.amount and the discovery script scripts/get_gpus_resources.sh,
# which fails when no GPU is visible). Spark does not split one host's GPUs between Workers, so with GPUs
# start one Worker per host (SML_CLUSTER_WORKERS=1). Unset: no GPU options, as before.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
python="$PWD/$venv/bin/python"
state=${SML_CLUSTER_DIR:-$PWD/.cluster}
port=${SML_CLUSTER_PORT:-7077}
ui_port=${SML_CLUSTER_UI_PORT:-8080}
workers=${SML_CLUSTER_WORKERS:-2}
worker_memory=${SML_CLUSTER_WORKER_MEMORY:-3g}

worker_opts() {  # SPARK_WORKER_OPTS advertising $GPUS_PER_WORKER GPUs (nothing when it is unset or empty)
  [ -z "${GPUS_PER_WORKER:-}" ] && return 0
  if ! [[ $GPUS_PER_WORKER =~ ^[1-9][0-9]*$ ]]; then
    echo "cluster.sh: GPUS_PER_WORKER must be a positive integer, got '$GPUS_PER_WORKER'" >&2
    return 2
  fi
  echo "-Dspark.worker.resource.gpu.amount=$GPUS_PER_WORKER" \
    "-Dspark.worker.resource.gpu.discoveryScript=$PWD/scripts/get_gpus_resources.sh"
}

if [ "${1:-}" = worker-opts ]; then worker_opts; exit; fi

SPARK_HOME=$("$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
export SPARK_HOME SPARK_LOCAL_IP=127.0.0.1 SPARK_MASTER_HOST=127.0.0.1 PYSPARK_PYTHON="$python"
export SPARK_PID_DIR="$state/pid" SPARK_LOG_DIR="$state/logs" SPARK_WORKER_DIR="$state/work"
export SPARK_IDENT_STRING=sml-$port
daemon="$SPARK_HOME/sbin/spark-daemon.sh"
master_url="spark://127.0.0.1:$port"

alive_workers() {
  "$python" - "$ui_port" <<'PY' 2>/dev/null || echo 0
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2) as response:
    print(sum(1 for w in json.load(response).get("workers", []) if w.get("state") == "ALIVE"))
PY
}

up() {
  local gpu_opts
  gpu_opts=$(worker_opts) || return 2
  if [ -n "$gpu_opts" ]; then
    if [ "$workers" -gt 1 ]; then
      echo "cluster.sh: GPUS_PER_WORKER is set: start one Worker per host (SML_CLUSTER_WORKERS=1), Spark would" \
        "give the same GPUs to each of the $workers Workers of this host" >&2
      return 2
    fi
    export SPARK_WORKER_OPTS="${SPARK_WORKER_OPTS:+$SPARK_WORKER_OPTS }$gpu_opts"
  fi
  mkdir -p "$SPARK_PID_DIR" "$SPARK_LOG_DIR" "$SPARK_WORKER_DIR"
  "$daemon" start org.apache.spark.deploy.master.Master 1 --host 127.0.0.1 --port "$port" --webui-port "$ui_port" >/dev/null
  for i in $(seq 1 "$workers"); do
    "$daemon" start org.apache.spark.deploy.worker.Worker "$i" --host 127.0.0.1 --cores 1 \
      --memory "$worker_memory" --webui-port $((ui_port + i)) --work-dir "$SPARK_WORKER_DIR" "$master_url" >/dev/null
  done
  for _ in $(seq 1 90); do
    if [ "$(alive_workers)" -ge "$workers" ]; then
      echo "cluster up: $master_url with $workers workers (UI http://127.0.0.1:$ui_port, logs $SPARK_LOG_DIR)"
      return 0
    fi
    sleep 1
  done
  echo "cluster did not come up; see $SPARK_LOG_DIR" >&2
  tail -n 20 "$SPARK_LOG_DIR"/*.out >&2 || true
  return 1
}

down() {
  for i in $(seq 1 "$workers"); do "$daemon" stop org.apache.spark.deploy.worker.Worker "$i" >/dev/null || true; done
  "$daemon" stop org.apache.spark.deploy.master.Master 1 >/dev/null || true
  echo "cluster down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) echo "$(alive_workers) alive workers at $master_url" ;;
  *) echo "usage: $0 up|down|status|worker-opts" >&2; exit 2 ;;
esac
