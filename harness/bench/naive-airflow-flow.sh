#!/usr/bin/env bash
# The baseline for `cargo xtask bench`'s full flow: what a person does by hand, one step after
# another. The Kerberos stack as naive-kerberos-stack.sh brings it up, then a Redis broker,
# `airflow db migrate` through PgBouncer, every component started with `airflow <component> &`
# (CeleryExecutor, as the platform runs it), and `curl` on the health endpoint until every
# component in it is healthy. No template, no fork server, no start-up tuning.
# Usage: naive-airflow-flow.sh PGBOUNCER_BINARY WORKDIR AIRFLOW_VENV 3|2   (run as root)
set -euo pipefail
VENV=$3; MAJOR=$4
# Brings the stack up (KDC, PostgreSQL, PgBouncer, first GSS query) and defines `cleanup`,
# `free_port`, $T, $REALM, $PW and $PGB_PORT.
# shellcheck source=naive-kerberos-stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/naive-kerberos-stack.sh" "$1" "$2"

GROUPS_STARTED=()
stop_airflow() {
  set +e
  for g in "${GROUPS_STARTED[@]}"; do kill -TERM -- "-$g" 2>/dev/null; done
  for _ in $(seq 50); do
    alive=0
    for g in "${GROUPS_STARTED[@]}"; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for g in "${GROUPS_STARTED[@]}"; do kill -KILL -- "-$g" 2>/dev/null; done
}
trap 'stop_airflow; cleanup' EXIT
# Each in its own session, so stopping it stops what it forked (executors, DAG parsers).
start() { local name=$1; shift; setsid "$@" >"$T/$name.log" 2>&1 & GROUPS_STARTED+=($!); }

REDIS_PORT=$(free_port); API_PORT=$(free_port)
start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no
export AIRFLOW_HOME=$T/airflow
export AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__EXECUTOR=CeleryExecutor AIRFLOW__CORE__PARALLELISM=2
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql://astro_user%40$REALM:$PW@127.0.0.1:$PGB_PORT/airflow"
export AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql://astro_user%40$REALM:$PW@127.0.0.1:$PGB_PORT/airflow"
export AIRFLOW__CELERY__BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$(free_port) AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$(free_port)
AF=$VENV/bin/airflow
"$AF" db migrate >"$T/migrate.log" 2>&1
if [[ $MAJOR == 3 ]]; then
  export AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$API_PORT AIRFLOW__API__WORKERS=1
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$API_PORT/execution/"
  export AIRFLOW__API_AUTH__JWT_SECRET="naive-$RANDOM$RANDOM$RANDOM"
  start api-server "$AF" api-server
  start dag-processor "$AF" dag-processor
  URL="http://127.0.0.1:$API_PORT/api/v2/monitor/health"
  WANT="metadatabase scheduler triggerer dag_processor"
else
  export AIRFLOW__WEBSERVER__WEB_SERVER_HOST=127.0.0.1 AIRFLOW__WEBSERVER__WEB_SERVER_PORT=$API_PORT
  export AIRFLOW__WEBSERVER__WORKERS=1 AIRFLOW__WEBSERVER__SECRET_KEY="naive-$RANDOM$RANDOM$RANDOM"
  start webserver "$AF" webserver
  URL="http://127.0.0.1:$API_PORT/health"
  WANT="metadatabase scheduler triggerer"
fi
start scheduler "$AF" scheduler
start triggerer "$AF" triggerer
start celery-worker "$AF" celery worker --concurrency 1
# shellcheck source=await-airflow-healthy.sh
source "$(dirname "${BASH_SOURCE[0]}")/await-airflow-healthy.sh"
await_airflow_healthy "$URL" "$WANT" "naive Airflow flow (logs in $T)"
