#!/usr/bin/env bash
# The baseline for `cargo xtask bench --tier docker`: the Kerberos stack on containers the way a
# person would bring it up with `docker run`, one step after another, from the same images the
# harness uses (a network; the KDC with its realm, principals and keytabs; PostgreSQL; PgBouncer),
# polling each until it answers, ending with the first GSS-authenticated query through PgBouncer.
# Usage: naive-docker-stack.sh KDC_IMAGE POSTGRES_IMAGE PGBOUNCER_IMAGE WORKDIR
# (run as root; prints nothing on success; removes its containers and network on exit)
set -euo pipefail
KDC_IMAGE=$1; PG_IMAGE=$2; PGB_IMAGE=$3; T=$4
REALM=EXAMPLE.TEST
N=naive-$$-$RANDOM
L=(--label "e2e-harness.run=$N" --label "e2e-harness.pid=$$")
cleanup() {
  docker rm -f "$N-kdc" "$N-pg" "$N-pgb" >/dev/null 2>&1 || true
  docker network rm "$N" >/dev/null 2>&1 || true
}
trap cleanup EXIT
poll() { for _ in $(seq 1 300); do if "$@" >/dev/null 2>&1; then return 0; fi; sleep 0.1; done; echo "gave up waiting for: $*" >&2; return 1; }

docker network create "${L[@]}" "$N" >/dev/null
mkdir -p "$T/kdc" "$T/pg" "$T/pgb"
cat > "$T/kdc/krb5.conf" <<CONF
[libdefaults]
 default_realm = $REALM
 dns_lookup_kdc = false
 rdns = false
 dns_canonicalize_hostname = false
 udp_preference_limit = 1
[realms]
 $REALM = {
  kdc = kdc.example.test:88
 }
CONF
cat > "$T/kdc/kdc.conf" <<CONF
[realms]
 $REALM = {
  database_name = /k/principal
  key_stash_file = /k/stash
  acl_file = /k/kadm5.acl
 }
CONF
touch "$T/kdc/kadm5.acl"
docker run -d "${L[@]}" --name "$N-kdc" --network "$N" --hostname kdc.example.test --init \
  -v "$T/kdc:/k" -e KRB5_CONFIG=/k/krb5.conf -e KRB5_KDC_PROFILE=/k/kdc.conf \
  --entrypoint sh "$KDC_IMAGE" -c "
    kdb5_util create -s -r $REALM -P naive-$RANDOM$RANDOM >/dev/null &&
    kadmin.local -q 'addprinc -randkey astro_user@$REALM' >/dev/null &&
    kadmin.local -q 'addprinc -randkey postgres/db.example.test@$REALM' >/dev/null &&
    kadmin.local -q 'ktadd -k /k/client.keytab astro_user@$REALM' >/dev/null &&
    kadmin.local -q 'ktadd -k /k/server.keytab postgres/db.example.test@$REALM' >/dev/null &&
    exec krb5kdc -n -r $REALM" >/dev/null
poll docker exec "$N-kdc" bash -c 'exec 3<>/dev/tcp/127.0.0.1/88'

cp "$T/kdc/krb5.conf" "$T/pg/krb5.conf"; cp "$T/kdc/server.keytab" "$T/pg/server.keytab"
cat > "$T/pg/extra.conf" <<CONF
listen_addresses = '*'
unix_socket_directories = '/tmp'
krb_server_keyfile = '/p/server.keytab'
CONF
cat > "$T/pg/pg_hba.conf" <<CONF
local all postgres trust
host all all samenet gss include_realm=1 krb_realm=$REALM
CONF
chown -R 999:999 "$T/pg"; chmod 600 "$T/pg/server.keytab"
docker run -d "${L[@]}" --name "$N-pg" --network "$N" --hostname db.example.test --init \
  -u 999 -v "$T/pg:/p" -e KRB5_CONFIG=/p/krb5.conf --entrypoint sh "$PG_IMAGE" -c "
    cp -a /var/lib/postgresql/data /p/data && cat /p/extra.conf >> /p/data/postgresql.conf &&
    cp /p/pg_hba.conf /p/data/pg_hba.conf && exec postgres -D /p/data" >/dev/null
poll docker exec "$N-pg" pg_isready -q -h /tmp
docker exec "$N-pg" psql -q -h /tmp -U postgres -c 'CREATE ROLE "astro_user@EXAMPLE.TEST" LOGIN' >/dev/null
docker exec "$N-pg" psql -q -h /tmp -U postgres -c 'CREATE DATABASE app OWNER "astro_user@EXAMPLE.TEST"' >/dev/null

PASSWORD=naive-$RANDOM$RANDOM
cp "$T/kdc/krb5.conf" "$T/pgb/krb5.conf"; cp "$T/kdc/client.keytab" "$T/pgb/client.keytab"
printf '"astro_user@EXAMPLE.TEST" "%s"\n' "$PASSWORD" > "$T/pgb/users.txt"
cat > "$T/pgb/pgbouncer.ini" <<CONF
[databases]
app = host=db.example.test port=5432 dbname=app
[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6543
unix_socket_dir =
auth_type = scram-sha-256
auth_file = /etc/pgbouncer/users.txt
server_gssauth_negotiate = allow
server_krb_spn = postgres/db.example.test@$REALM
CONF
chown -R 65534:65534 "$T/pgb"; chmod 600 "$T/pgb/client.keytab" "$T/pgb/users.txt"
docker run -d "${L[@]}" --name "$N-pgb" --network "$N" --hostname pgbouncer.example.test --init \
  -p 127.0.0.1::6543 -v "$T/pgb:/etc/pgbouncer" -e KRB5_CONFIG=/etc/pgbouncer/krb5.conf \
  -e KRB5_CLIENT_KTNAME=/etc/pgbouncer/client.keytab -e KRB5CCNAME=FILE:/tmp/krb5cc \
  "$PGB_IMAGE" >/dev/null
PORT=$(docker port "$N-pgb" 6543/tcp | head -1 | sed 's/.*://')
query() {
  PGPASSWORD=$PASSWORD psql -X -tA "host=127.0.0.1 port=$PORT dbname=app user=astro_user@EXAMPLE.TEST connect_timeout=2" \
    -c 'SELECT gss_authenticated FROM pg_stat_gssapi WHERE pid = pg_backend_pid()' 2>/dev/null | grep -qx t
}
poll query
