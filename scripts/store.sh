#!/usr/bin/env bash
# The shared store on a real database: PostgreSQL (MLflow's backend store + Optuna studies) and an MLflow
# tracking server that proxies artifacts, all on 127.0.0.1, with state under a directory of the project's own.
#   scripts/store.sh up | down | status | env
#
# Environment (defaults are for local development only; do not reuse these credentials anywhere):
#   STORE_DB_DIR       state directory (PostgreSQL data, socket, logs, MLflow pid/log)  [.store-db]
#   STORE_ROOT         the store root; the server keeps proxied artifacts in <root>/artifacts   [store]
#   STORE_PG_PORT      PostgreSQL TCP port (listens on 127.0.0.1 only)                   [5433]
#   STORE_MLFLOW_PORT  MLflow tracking server port (127.0.0.1 only)                      [5055]
#   STORE_PG_USER / STORE_PG_PASSWORD   the database role both databases belong to       [mlflow / mlflow]
#   STORE_MLFLOW_WORKERS  server worker processes                                        [1]
#   MLFLOW_SERVER_ENABLE_JOB_EXECUTION  MLflow's background job runner (GenAI judges, trace rollups) [false]
# PostgreSQL refuses to run as root: as root, its commands run as the `postgres` OS user (runuser).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
python="$PWD/$venv/bin/python"
mlflow_bin="$PWD/$venv/bin/mlflow"
pg_bin=${STORE_PG_BIN:-/usr/lib/postgresql/15/bin}
dir=$(realpath -m "${STORE_DB_DIR:-$PWD/.store-db}")
root=$(realpath -m "${STORE_ROOT:-$PWD/store}")
pg_port=${STORE_PG_PORT:-5433}
mlflow_port=${STORE_MLFLOW_PORT:-5055}
user=${STORE_PG_USER:-mlflow}
password=${STORE_PG_PASSWORD:-mlflow}
workers=${STORE_MLFLOW_WORKERS:-1}
pgdata="$dir/pgdata"
sockets="$dir/run"
pg_log="$dir/log/postgres.log"
mlflow_pid="$dir/mlflow.pid"
mlflow_log="$dir/mlflow.log"

if [ "$(id -u)" = 0 ]; then
  as_pg() { runuser -u postgres -- "$@"; }
  pg_owner=postgres
else
  as_pg() { "$@"; }
  pg_owner=$(id -un)
fi

quoted_password() { "$python" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
db_url() { echo "postgresql+psycopg2://$user:$(quoted_password "$password")@127.0.0.1:$pg_port/$1"; }
tracking_uri="http://127.0.0.1:$mlflow_port"

pg_running() { as_pg "$pg_bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; }
mlflow_alive() { [ -f "$mlflow_pid" ] && kill -0 "$(cat "$mlflow_pid")" 2>/dev/null; }
mlflow_healthy() {
  "$python" - "$tracking_uri/health" <<'PY' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as response:
    sys.exit(0 if response.status == 200 else 1)
PY
}
psql_admin() { as_pg "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sockets" -p "$pg_port" -d postgres "$@"; }

init_db() {
  mkdir -p "$dir"
  chmod 0755 "$dir"  # the postgres user must reach pgdata/, run/ and log/ inside it
  if ! as_pg test -x "$dir"; then
    echo "store: the $pg_owner user cannot reach $dir (a parent directory is not searchable);" \
         "choose STORE_DB_DIR elsewhere or chmod o+x its parents" >&2
    return 1
  fi
  if [ ${#sockets} -gt 90 ]; then
    echo "store: $sockets is too long for a Unix socket path; choose a shorter STORE_DB_DIR" >&2
    return 1
  fi
  for sub in run log; do
    mkdir -p "$dir/$sub"
    chown "$pg_owner" "$dir/$sub"
    chmod 0700 "$dir/$sub"
  done
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    mkdir -p "$pgdata"
    chown "$pg_owner" "$pgdata"
    chmod 0700 "$pgdata"
    # Local (Unix socket, in run/, 0700) connections: the postgres OS user only (peer); TCP: passwords.
    as_pg "$pg_bin/initdb" -D "$pgdata" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >"$dir/log/initdb.log" 2>&1 \
      || { cat "$dir/log/initdb.log" >&2; return 1; }
  fi
}

start_pg() {
  if pg_running; then
    return 0
  fi
  as_pg "$pg_bin/pg_ctl" -D "$pgdata" -l "$pg_log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories='$sockets' -c password_encryption=scram-sha-256" \
    start >/dev/null || { tail -n 20 "$pg_log" >&2; return 1; }
}

ensure_databases() {
  # Idempotent: the role (its password follows STORE_PG_PASSWORD) and the two databases it owns.
  psql_admin -v user="$user" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user')
\gexec
ALTER ROLE :"user" WITH LOGIN PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', db, :'user') FROM unnest(ARRAY['mlflow', 'optuna']) AS db
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = db)
\gexec
SQL
}

start_mlflow() {
  if mlflow_alive && mlflow_healthy; then
    return 0
  fi
  if mlflow_alive; then  # started but not answering yet (e.g. an `up` still migrating): wait for it below
    :
  else
    mkdir -p "$root/artifacts"
    # MLflow's job runner starts eight worker processes beside the server (2 GB, and `up` took 28.7 s instead of
    # 10.7 s here) for GenAI judges and trace rollups, which nothing in this project uses.
    export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
    # Its own session (setsid): the pid is the process group of the server and its workers, for `down`.
    setsid "$mlflow_bin" server --backend-store-uri "$(db_url mlflow)" \
      --serve-artifacts --artifacts-destination "$root/artifacts" \
      --host 127.0.0.1 --port "$mlflow_port" --workers "$workers" \
      </dev/null >>"$mlflow_log" 2>&1 &
    echo $! >"$mlflow_pid"
  fi
  for _ in $(seq 1 180); do
    if mlflow_healthy; then
      return 0
    fi
    if ! mlflow_alive; then
      echo "store: the MLflow server exited; see $mlflow_log" >&2
      tail -n 30 "$mlflow_log" >&2 || true
      return 1
    fi
    sleep 1
  done
  echo "store: the MLflow server did not answer $tracking_uri/health within 180 s; see $mlflow_log" >&2
  return 1
}

stop_mlflow() {
  if mlflow_alive; then
    local pid
    pid=$(cat "$mlflow_pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$mlflow_pid"
}

up() {
  if [ ! -x "$pg_bin/pg_ctl" ]; then
    echo "store: PostgreSQL not found in $pg_bin (set STORE_PG_BIN)" >&2
    return 1
  fi
  init_db
  start_pg
  ensure_databases
  start_mlflow
  echo "store up: PostgreSQL 127.0.0.1:$pg_port (databases mlflow, optuna) · MLflow $tracking_uri" \
       "(artifacts $root/artifacts) · state $dir"
  print_env
}

postmaster_pid() {  # the running server's pid (first line of postmaster.pid), if any
  local pid
  pid=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

down() {
  stop_mlflow
  if [ -f "$pgdata/PG_VERSION" ] && pg_running; then
    as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null
  elif pid=$(postmaster_pid); then
    # pg_ctl cannot reach the data directory as the postgres user (a parent lost its search permission):
    # SIGINT is PostgreSQL's fast shutdown, sent to the postmaster by its pid.
    kill -INT "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
  fi
  echo "store down"
}

status() {
  local pg=stopped server=stopped
  if pg_running || postmaster_pid >/dev/null; then pg="running on 127.0.0.1:$pg_port"; fi
  if mlflow_alive; then
    server="process $(cat "$mlflow_pid")"
    if mlflow_healthy; then server="$server, healthy at $tracking_uri"; else server="$server, not answering"; fi
  fi
  echo "PostgreSQL: $pg · MLflow server: $server"
  [ "$pg" != stopped ] && mlflow_healthy
}

print_env() {
  echo "store.tracking_uri=$tracking_uri"
  echo "tune.storage=$(db_url optuna)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
