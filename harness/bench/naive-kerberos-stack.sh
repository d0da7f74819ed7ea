#!/usr/bin/env bash
# The baseline for `cargo xtask bench`: the Kerberos stack brought up the way a person would by
# hand, one step after another with the stock tools (kdb5_util, kadmin.local -q per command,
# initdb, pg_ctl -w, psql), ending with the first GSS-authenticated query through PgBouncer.
# Usage: naive-kerberos-stack.sh PGBOUNCER_BINARY WORKDIR   (run as root; prints nothing on success)
set -euo pipefail
PGB=$1; T=$2
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
REALM=EXAMPLE.TEST
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KDC_PORT=$(free_port); PG_PORT=$(free_port); PGB_PORT=$(free_port)
mkdir -p "$T/kdc" "$T/pg" "$T/pgb"; chmod 755 "$T" "$T/pg" "$T/pgb"; chown postgres "$T/pg"
SOCK=$(mktemp -d /tmp/naive-pg.XXXXXX); chown postgres "$SOCK"
cleanup() {
  set +e
  [[ -f $T/pgb/pid ]] && kill "$(cat "$T/pgb/pid")" 2>/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg/data" -m immediate stop >/dev/null 2>&1
  [[ -n ${KDC_PID:-} ]] && kill "$KDC_PID" 2>/dev/null
  rm -rf "$SOCK"
}
trap cleanup EXIT
cat > "$T/kdc/krb5.conf" <<CONF
[libdefaults]
 default_realm = $REALM
 dns_lookup_kdc = false
 rdns = false
 dns_canonicalize_hostname = false
 udp_preference_limit = 1
[realms]
 $REALM = {
  kdc = 127.0.0.1:$KDC_PORT
 }
[domain_realm]
 db.example.test = $REALM
CONF
cat > "$T/kdc/kdc.conf" <<CONF
[kdcdefaults]
 kdc_listen = 127.0.0.1:$KDC_PORT
 kdc_tcp_listen = 127.0.0.1:$KDC_PORT
[realms]
 $REALM = {
  database_name = $T/kdc/principal
  key_stash_file = $T/kdc/stash
  acl_file = $T/kdc/kadm5.acl
 }
CONF
touch "$T/kdc/kadm5.acl"
export KRB5_CONFIG=$T/kdc/krb5.conf KRB5_KDC_PROFILE=$T/kdc/kdc.conf
kdb5_util create -s -r $REALM -P "naive-$RANDOM$RANDOM" >/dev/null
kadmin.local -q "addprinc -randkey astro_user@$REALM" >/dev/null
kadmin.local -q "addprinc -randkey postgres/db.example.test@$REALM" >/dev/null
kadmin.local -q "ktadd -k $T/client.keytab astro_user@$REALM" >/dev/null
kadmin.local -q "ktadd -k $T/pg/server.keytab postgres/db.example.test@$REALM" >/dev/null
krb5kdc -n -r $REALM 2>"$T/kdc/kdc.log" & KDC_PID=$!
chown postgres "$T/pg/server.keytab"; cp "$T/client.keytab" "$T/pgb/client.keytab"; chown -R postgres "$T/pgb"
runuser -u postgres -- "$PGBIN/initdb" -D "$T/pg/data" -U postgres -A trust >/dev/null
cat >> "$T/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$SOCK'
krb_server_keyfile = '$T/pg/server.keytab'
CONF
cat > "$T/pg/data/pg_hba.conf" <<CONF
local all postgres trust
host all all 127.0.0.1/32 gss include_realm=1 krb_realm=$REALM
CONF
runuser -u postgres -- env KRB5_CONFIG="$KRB5_CONFIG" "$PGBIN/pg_ctl" -D "$T/pg/data" -l "$T/pg/pg.log" -w start >/dev/null
psql -h "$SOCK" -p "$PG_PORT" -U postgres -q -c "CREATE ROLE \"astro_user@$REALM\" LOGIN" >/dev/null
psql -h "$SOCK" -p "$PG_PORT" -U postgres -q -c "CREATE DATABASE airflow OWNER \"astro_user@$REALM\"" >/dev/null
PW=naive$RANDOM$RANDOM
printf '"astro_user@%s" "%s"\n' "$REALM" "$PW" > "$T/pgb/users.txt"
cat > "$T/pgb/pgbouncer.ini" <<CONF
[databases]
airflow = host=127.0.0.1 port=$PG_PORT dbname=airflow user=astro_user@$REALM
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = plain
auth_file = $T/pgb/users.txt
pidfile = $T/pgb/pid
logfile = $T/pgb/pgbouncer.log
server_gssauth_negotiate = allow
server_krb_spn = postgres/db.example.test@$REALM
CONF
chown -R postgres "$T/pgb"
runuser -u postgres -- env KRB5_CONFIG="$KRB5_CONFIG" KRB5_CLIENT_KTNAME="$T/pgb/client.keytab" KRB5CCNAME="FILE:$T/pgb/cc" "$PGB" -d "$T/pgb/pgbouncer.ini"
# Wait for PgBouncer's port (bash's /dev/tcp: no client, no pipeline for pipefail to trip on).
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$PGB_PORT") 2>/dev/null && break; sleep 0.05; done
out=$(PGPASSWORD=$PW psql -h 127.0.0.1 -p "$PGB_PORT" -U "astro_user@$REALM" -d airflow -Atc "select gss_authenticated from pg_stat_gssapi where pid = pg_backend_pid()")
[[ $out == t ]] || { echo "naive stack: expected a GSS-authenticated session, got: $out" >&2; exit 1; }
