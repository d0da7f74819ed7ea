#!/usr/bin/env bash
# The baseline for `cargo xtask bench --tier docker`'s full flow: Airflow on containers the way a
# person would bring it up with `docker run`, one step after another, from the same images the
# harness uses. The Kerberos stack as naive-docker-stack.sh brings it up, then the broker,
# `airflow db migrate` through PgBouncer, a container per component (CeleryExecutor, as the
# platform runs it), and `curl` on the published health endpoint until every component in it is
# healthy. No cached schema, no start-up tuning.
# Usage: naive-docker-airflow.sh KDC_IMAGE POSTGRES_IMAGE PGBOUNCER_IMAGE REDIS_IMAGE AIRFLOW_IMAGE 3|2 WORKDIR
# (run as root; prints nothing on success; removes its containers and network on exit)
set -euo pipefail
REDIS_IMAGE=$4; AIRFLOW_IMAGE=$5; MAJOR=$6; WORKDIR=$7
# Brings the stack up (KDC, PostgreSQL, PgBouncer, first GSS query through PgBouncer) and defines
# `cleanup`, `poll`, $N, $L, $T, $REALM and $PASSWORD.
# shellcheck source=naive-docker-stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/naive-docker-stack.sh" "$1" "$2" "$3" "$WORKDIR"

COMPONENTS=(redis migrate web scheduler dag-processor triggerer worker)
cleanup_airflow() {
  for c in "${COMPONENTS[@]}"; do docker rm -f "$N-$c" >/dev/null 2>&1 || true; done
  cleanup
}
trap cleanup_airflow EXIT

BROKER_PASSWORD=naive-$RANDOM$RANDOM
docker run -d "${L[@]}" --name "$N-redis" --network "$N" --hostname redis.example.test --init \
  "$REDIS_IMAGE" redis-server --bind 0.0.0.0 --save "" --appendonly no \
  --requirepass "$BROKER_PASSWORD" >/dev/null
poll docker exec "$N-redis" bash -c 'exec 3<>/dev/tcp/127.0.0.1/6379'

DB="postgresql://astro_user%40$REALM:$PASSWORD@pgbouncer.example.test:6543/app"
E=(-e AIRFLOW__CORE__LOAD_EXAMPLES=False -e AIRFLOW__CORE__EXECUTOR=CeleryExecutor
   -e AIRFLOW__CORE__PARALLELISM=2
   -e "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$DB"
   -e "AIRFLOW__CELERY__RESULT_BACKEND=db+$DB"
   -e "AIRFLOW__CELERY__BROKER_URL=redis://:$BROKER_PASSWORD@redis.example.test:6379/0")
if [[ $MAJOR == 3 ]]; then
  E+=(-e AIRFLOW__API__HOST=0.0.0.0 -e AIRFLOW__API__PORT=8080 -e AIRFLOW__API__WORKERS=1
      -e AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://web.example.test:8080/execution/
      -e "AIRFLOW__API_AUTH__JWT_SECRET=naive-$RANDOM$RANDOM$RANDOM")
  WEB=(airflow api-server)
  HEALTH=/api/v2/monitor/health
  WANT="metadatabase scheduler triggerer dag_processor"
  OTHERS=(scheduler dag-processor triggerer)
else
  E+=(-e AIRFLOW__WEBSERVER__WEB_SERVER_HOST=0.0.0.0 -e AIRFLOW__WEBSERVER__WEB_SERVER_PORT=8080
      -e AIRFLOW__WEBSERVER__WORKERS=1 -e "AIRFLOW__WEBSERVER__SECRET_KEY=naive-$RANDOM$RANDOM$RANDOM")
  WEB=(airflow webserver)
  HEALTH=/health
  WANT="metadatabase scheduler triggerer"
  OTHERS=(scheduler triggerer)
fi
run() { local name=$1; shift; docker run -d "${L[@]}" --name "$N-$name" --network "$N" \
  --hostname "$name.example.test" --init "${E[@]}" "$@" >/dev/null; }

docker run --rm "${L[@]}" --name "$N-migrate" --network "$N" --init "${E[@]}" \
  "$AIRFLOW_IMAGE" airflow db migrate >"$T/migrate.log" 2>&1
run web -p 127.0.0.1::8080 "$AIRFLOW_IMAGE" "${WEB[@]}"
for c in "${OTHERS[@]}"; do run "$c" "$AIRFLOW_IMAGE" airflow "$c"; done
run worker "$AIRFLOW_IMAGE" airflow celery worker --concurrency 1
WEB_PORT=$(docker port "$N-web" 8080/tcp | head -1 | sed 's/.*://')
# shellcheck source=await-airflow-healthy.sh
source "$(dirname "${BASH_SOURCE[0]}")/await-airflow-healthy.sh"
await_airflow_healthy "http://127.0.0.1:$WEB_PORT$HEALTH" "$WANT" "naive docker Airflow flow (logs: docker logs $N-<component>)"
