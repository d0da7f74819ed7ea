#!/usr/bin/env bash
# Manual proof that the patched PgBouncer logs in to PostgreSQL with GSSAPI.
#
#   pgbouncer/test-gss-login.sh [PGBOUNCER_BINARY]
#
# Default binary: $PGBOUNCER_BIN, else ./out/bin/pgbouncer next to this script.
# Needs (Debian): krb5-kdc krb5-admin-server krb5-user postgresql-15
# postgresql-client python3; run as root (PostgreSQL and PgBouncer are
# started as the "postgres" user, both refuse to run as root).
#
# Everything lives in a temporary directory: a throwaway MIT realm
# EXAMPLE.TEST (krb5kdc on 127.0.0.1:<free port>), a private PostgreSQL 15
# cluster whose pg_hba.conf demands "gss" on 127.0.0.1, and PgBouncer
# instances started once per case.  Set KEEP_ARTIFACTS=<dir> to copy all
# logs (KDC, PostgreSQL, PgBouncer, KRB5_TRACE) there before cleanup.
#
# Cases:
#   1  positive: keytab via KRB5_CLIENT_KTNAME, global server_krb_spn
#   2  positive: per-database server_krb_spn wins over a wrong global one
#   3  positive: empty server_krb_spn -> host-based postgres@127.0.0.1
#   4  negative: no credentials (no keytab, KRB5CCNAME = empty cache)
#   5  negative: SPN unknown to the KDC
#   6  negative: server_gssauth_negotiate = disable
#   7  negative: SPN known to the KDC but not in the server keytab
#   8  negative: invalid server_gssauth_negotiate value -> config error
#   9  negative: principal does not match the role (server-side rejection)
#  10  negative: stale server keytab (kvno bumped in the KDC)
# Exit status 0 only if every case behaves as expected.

set -uo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGBOUNCER=${1:-${PGBOUNCER_BIN:-$SCRIPT_DIR/out/bin/pgbouncer}}
PGBIN=/usr/lib/postgresql/15/bin
REALM=EXAMPLE.TEST
SPN=postgres/db.example.test@$REALM
CLIENT_PRINC=astro_user@$REALM
CLIENT_LOGIN_TIMEOUT=20
FAIL_FAST_LIMIT=5   # seconds within which a failing login must be reported

die() { echo "FATAL: $*" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "run as root (postgres/pgbouncer are started as user postgres)"
[[ -x $PGBOUNCER ]] || die "pgbouncer binary not found: $PGBOUNCER (build it with pgbouncer/build.sh OUT_DIR)"
PGBOUNCER=$(readlink -f "$PGBOUNCER")
for t in krb5kdc kdb5_util kadmin.local psql python3 runuser "$PGBIN/initdb" "$PGBIN/pg_ctl"; do
	command -v "$t" >/dev/null || die "missing tool: $t"
done

T=$(mktemp -d /tmp/gss-pgb-test.XXXXXX)
chmod 0755 "$T"
KDC_PID=""
PG_STARTED=""
PGB_PIDFILE=""

stop_pgbouncer() {
	[[ -n $PGB_PIDFILE && -f $PGB_PIDFILE ]] || return 0
	local pid
	pid=$(cat "$PGB_PIDFILE" 2>/dev/null)
	if [[ -n $pid ]] && kill "$pid" 2>/dev/null; then
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
	fi
	rm -f "$PGB_PIDFILE"
	PGB_PIDFILE=""
}

cleanup() {
	set +e
	stop_pgbouncer
	if [[ -n $PG_STARTED ]]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$T/pg/data" -m immediate -w stop >/dev/null 2>&1
	fi
	if [[ -n $KDC_PID ]]; then
		kill "$KDC_PID" 2>/dev/null
		wait "$KDC_PID" 2>/dev/null
	fi
	if [[ -n ${KEEP_ARTIFACTS:-} ]]; then
		mkdir -p "$KEEP_ARTIFACTS"
		cp -r "$T"/kdc/kdc.log "$T"/pg/pg.log "$T"/pgb "$KEEP_ARTIFACTS"/ 2>/dev/null
		echo "artifacts copied to $KEEP_ARTIFACTS"
	fi
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # port timeout_s
	python3 - "$1" "$2" <<'EOF'
import socket, sys, time
port, deadline = int(sys.argv[1]), time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close(); sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}

KDC_PORT=$(free_port)
PG_PORT=$(free_port)
PGB_PORT=$(free_port)
echo "== temp dir $T; ports: kdc=$KDC_PORT postgres=$PG_PORT pgbouncer=$PGB_PORT"
echo "== pgbouncer binary: $PGBOUNCER ($("$PGBOUNCER" --version | head -n 1))"

# ------------------------------------------------------------------ realm
mkdir -p "$T/kdc" "$T/keytabs" "$T/pg" "$T/pgb"
export KRB5_CONFIG=$T/krb5.conf
export KRB5_KDC_PROFILE=$T/kdc/kdc.conf
cat >"$KRB5_CONFIG" <<EOF
[libdefaults]
	default_realm = $REALM
	rdns = false
	dns_canonicalize_hostname = false
	dns_lookup_kdc = false
	dns_lookup_realm = false
	udp_preference_limit = 1
	default_ccache_name = FILE:$T/unused-default-ccache
	default_client_keytab_name = FILE:$T/unused-default-client.keytab

[realms]
	$REALM = {
		kdc = 127.0.0.1:$KDC_PORT
	}

[domain_realm]
	db.example.test = $REALM
	.example.test = $REALM
EOF
cat >"$KRB5_KDC_PROFILE" <<EOF
[kdcdefaults]
	kdc_listen = 127.0.0.1:$KDC_PORT
	kdc_tcp_listen = 127.0.0.1:$KDC_PORT

[realms]
	$REALM = {
		database_name = $T/kdc/principal
		key_stash_file = $T/kdc/stash
		acl_file = $T/kdc/kadm5.acl
		max_life = 10h
		max_renewable_life = 7d
	}

[logging]
	kdc = FILE:$T/kdc/kdc.log
EOF
touch "$T/kdc/kadm5.acl"
chmod 0644 "$KRB5_CONFIG"

kdb5_util create -s -r "$REALM" -P "master-$$-pw" >"$T/kdc/create.log" 2>&1 || die "kdb5_util create failed: $(cat "$T/kdc/create.log")"
kadm() { kadmin.local -r "$REALM" -q "$1" >>"$T/kdc/kadmin.log" 2>&1 || die "kadmin.local '$1' failed"; }
kadm "addprinc -randkey $CLIENT_PRINC"
kadm "addprinc -randkey $SPN"
kadm "addprinc -randkey postgres/127.0.0.1@$REALM"
kadm "addprinc -randkey postgres/other.example.test@$REALM"   # in the KDC, not in the server keytab
kadm "addprinc -randkey other_user@$REALM"                   # valid principal, no such role
kadm "ktadd -k $T/keytabs/client.keytab $CLIENT_PRINC"
kadm "ktadd -k $T/keytabs/other.keytab other_user@$REALM"
kadm "ktadd -k $T/keytabs/server.keytab $SPN"
kadm "ktadd -k $T/keytabs/server.keytab postgres/127.0.0.1@$REALM"
chown postgres: "$T"/keytabs/*.keytab
chmod 0600 "$T"/keytabs/*.keytab
chmod 0755 "$T/keytabs"

krb5kdc -n -r "$REALM" >"$T/kdc/krb5kdc.out" 2>&1 &
KDC_PID=$!
wait_port "$KDC_PORT" 10 || die "krb5kdc did not start: $(cat "$T/kdc/krb5kdc.out" "$T/kdc/kdc.log" 2>/dev/null)"
echo "== KDC for $REALM up (pid $KDC_PID); principals: $CLIENT_PRINC $SPN postgres/127.0.0.1@$REALM postgres/other.example.test@$REALM"

# ------------------------------------------------------------- postgresql
chown postgres: "$T/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$T/pg/data" -U postgres -A trust --no-sync >"$T/pg/initdb.log" 2>&1 \
	|| die "initdb failed: $(tail -5 "$T/pg/initdb.log")"
mkdir -p "$T/pg/sock" && chown postgres: "$T/pg/sock"
cat >>"$T/pg/data/postgresql.conf" <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$T/pg/sock'
krb_server_keyfile = '$T/keytabs/server.keytab'
log_connections = on
lc_messages = 'C'
fsync = off
EOF
cat >"$T/pg/data/pg_hba.conf" <<EOF
local all postgres trust
host all all 127.0.0.1/32 gss include_realm=1 krb_realm=$REALM
EOF
runuser -u postgres -- env KRB5_CONFIG="$KRB5_CONFIG" "$PGBIN/pg_ctl" -D "$T/pg/data" -l "$T/pg/pg.log" -w start >/dev/null 2>&1 \
	|| die "postgres did not start: $(tail -5 "$T/pg/pg.log")"
PG_STARTED=1
psql_super() { runuser -u postgres -- psql -X -q -h "$T/pg/sock" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
psql_super -c "CREATE ROLE \"$CLIENT_PRINC\" LOGIN" || die "create role failed"
psql_super -c "CREATE DATABASE airflow_db OWNER \"$CLIENT_PRINC\"" || die "create database failed"
echo "== PostgreSQL 15 up on 127.0.0.1:$PG_PORT (pg_hba: host all all 127.0.0.1/32 gss include_realm=1 krb_realm=$REALM)"

# ---------------------------------------------------------------- pgbouncer
APP_USER=app
APP_PASS="app-secret-$$"
# SCRAM-SHA-256 verifier for the client login (RFC 5802 / PostgreSQL format)
SCRAM=$(python3 - "$APP_PASS" <<'EOF'
import base64, hashlib, hmac, os, sys
pw, salt, it = sys.argv[1].encode(), os.urandom(16), 4096
salted = hashlib.pbkdf2_hmac("sha256", pw, salt, it)
ck = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
sk = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
b = lambda x: base64.b64encode(x).decode()
print(f"SCRAM-SHA-256${it}:{b(salt)}${b(hashlib.sha256(ck).digest())}:{b(sk)}")
EOF
)
printf '"%s" "%s"\n' "$APP_USER" "$SCRAM" >"$T/pgb/users.txt"

# an initialised credential cache holding no tickets at all
python3 - "$T/pgb/empty.ccache" <<'EOF'
import struct, sys
def counted(s):
    b = s.encode(); return struct.pack(">I", len(b)) + b
princ = struct.pack(">II", 1, 1) + counted("EXAMPLE.TEST") + counted("astro_user")
open(sys.argv[1], "wb").write(b"\x05\x04" + struct.pack(">H", 0) + princ)
EOF
chown -R postgres: "$T/pgb"

# start_pgbouncer CASE NEGOTIATE GLOBAL_SPN DB_EXTRA ENV...
# ENV entries are VAR=value for pgbouncer's environment.
start_pgbouncer() {
	local case=$1 negotiate=$2 gspn=$3 dbextra=$4
	shift 4
	local d="$T/pgb/$case"
	mkdir -p "$d" && chown postgres: "$d"
	cat >"$d/pgbouncer.ini" <<EOF
[databases]
db = host=127.0.0.1 port=$PG_PORT dbname=airflow_db user=$CLIENT_PRINC $dbextra

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $T/pgb/users.txt
logfile = $d/pgbouncer.log
pidfile = $d/pgbouncer.pid
pool_mode = transaction
ignore_startup_parameters = extra_float_digits
client_login_timeout = $CLIENT_LOGIN_TIMEOUT
server_login_retry = 1
server_gssauth_negotiate = $negotiate
server_krb_spn = $gspn
EOF
	PGB_PIDFILE=$d/pgbouncer.pid
	runuser -u postgres -- env -i PATH=/usr/bin:/bin KRB5_CONFIG="$KRB5_CONFIG" \
		KRB5_TRACE="$d/krb5_trace.log" "$@" \
		"$PGBOUNCER" -d "$d/pgbouncer.ini" >"$d/start.out" 2>&1
	local rc=$?
	if [[ $rc -ne 0 ]]; then
		PGB_PIDFILE=""
		return $rc
	fi
	wait_port "$PGB_PORT" 10 || { echo "pgbouncer did not listen: $(cat "$d/start.out" "$d/pgbouncer.log")"; return 1; }
}

QUERY="select principal, gss_authenticated, encrypted from pg_stat_gssapi where pid = pg_backend_pid()"
OUT=""; RC=0; ELAPSED=0
run_psql() {
	local t0 t1
	t0=$(date +%s%N)
	OUT=$(env -u KRB5CCNAME -u KRB5_CLIENT_KTNAME PGPASSWORD="$APP_PASS" psql -X -A -t -F ' | ' \
		"host=127.0.0.1 port=$PGB_PORT dbname=db user=$APP_USER sslmode=disable gssencmode=disable connect_timeout=60" \
		-c "$QUERY" 2>&1)
	RC=$?
	t1=$(date +%s%N)
	ELAPSED=$(( (t1 - t0) / 1000000 ))
}

PASS=0; FAILED=0; FAILED_NAMES=()
ok()  { echo "   PASS: $*"; PASS=$((PASS + 1)); }
bad() { echo "   FAIL: $*"; FAILED=$((FAILED + 1)); FAILED_NAMES+=("$CUR"); }

show_logs() { # case
	echo "   pgbouncer log (GSSAPI / login lines):"
	grep -E 'GSSAPI|server login failed|failed to answer authreq|unknown/unsupported|S: login failed' "$T/pgb/$1/pgbouncer.log" \
		| sed 's/^/     | /' | head -n 12
}

expect_success() { # case
	run_psql
	echo "   psql rc=$RC in ${ELAPSED} ms, output: $OUT"
	show_logs "$1"
	if [[ $RC -eq 0 && $OUT == "$CLIENT_PRINC | t | "* ]]; then
		ok "pg_stat_gssapi shows principal=$CLIENT_PRINC gss_authenticated=t"
	else
		bad "expected '$CLIENT_PRINC | t | ...'"
	fi
	if grep -q "GSSAPI login to server succeeded" "$T/pgb/$1/pgbouncer.log"; then
		ok "success line logged"
	else
		bad "no 'GSSAPI login to server succeeded' line"
	fi
}

expect_failure() { # case client-text-regex log-text-regex
	run_psql
	echo "   psql rc=$RC in ${ELAPSED} ms, output: $OUT"
	show_logs "$1"
	if [[ $RC -ne 0 ]] && grep -Eq -- "$2" <<<"$OUT"; then
		ok "client got: /$2/"
	else
		bad "client output does not match /$2/"
	fi
	if (( ELAPSED < FAIL_FAST_LIMIT * 1000 )); then
		ok "failed fast (${ELAPSED} ms < ${FAIL_FAST_LIMIT} s; client_login_timeout=${CLIENT_LOGIN_TIMEOUT}s)"
	else
		bad "took ${ELAPSED} ms (client_login_timeout=${CLIENT_LOGIN_TIMEOUT}s)"
	fi
	if grep -Eq -- "$3" "$T/pgb/$1/pgbouncer.log"; then
		ok "pgbouncer log matches /$3/"
	else
		bad "pgbouncer log does not match /$3/"
	fi
}

KT_ENV=(KRB5_CLIENT_KTNAME="$T/keytabs/client.keytab")

CUR=1; echo; echo "== case 1: keytab via KRB5_CLIENT_KTNAME, server_krb_spn = $SPN"
start_pgbouncer c1 allow "$SPN" "" "${KT_ENV[@]}" KRB5CCNAME="FILE:$T/pgb/c1/ccache" || bad "pgbouncer did not start"
expect_success c1
echo "   PostgreSQL log:"; grep -E 'connection authorized: user=astro_user' "$T/pg/pg.log" | tail -n 1 | sed 's/^/     | /'
# several clients at once: the pool opens more server connections, each with its own GSSAPI login
pids=()
for i in 1 2 3 4; do
	env -u KRB5CCNAME -u KRB5_CLIENT_KTNAME PGPASSWORD="$APP_PASS" psql -X -A -t -F ' | ' \
		"host=127.0.0.1 port=$PGB_PORT dbname=db user=$APP_USER sslmode=disable gssencmode=disable" \
		-c "select principal, gss_authenticated, pg_sleep(1) from pg_stat_gssapi where pid = pg_backend_pid()" \
		>"$T/pgb/c1/par$i.out" 2>&1 &
	pids+=($!)
done
par_ok=0
for i in 1 2 3 4; do
	wait "${pids[$((i - 1))]}" && grep -q "^$CLIENT_PRINC | t" "$T/pgb/c1/par$i.out" && par_ok=$((par_ok + 1))
done
n_logins=$(grep -c "GSSAPI login to server succeeded" "$T/pgb/c1/pgbouncer.log")
echo "   4 concurrent clients: $par_ok succeeded; GSSAPI server logins so far: $n_logins"
if (( par_ok == 4 && n_logins >= 2 )); then ok "concurrent clients over several GSSAPI server connections"; else bad "concurrent clients"; fi
stop_pgbouncer

CUR=2; echo; echo "== case 2: per-database server_krb_spn wins over a wrong global one"
start_pgbouncer c2 allow "postgres/wrong.example.test@$REALM" "server_krb_spn=$SPN" "${KT_ENV[@]}" KRB5CCNAME="FILE:$T/pgb/c2/ccache" || bad "pgbouncer did not start"
expect_success c2
stop_pgbouncer

CUR=3; echo; echo "== case 3: empty server_krb_spn -> host-based postgres@127.0.0.1 (postgres/127.0.0.1@$REALM)"
start_pgbouncer c3 allow "" "" "${KT_ENV[@]}" KRB5CCNAME="FILE:$T/pgb/c3/ccache" || bad "pgbouncer did not start"
expect_success c3
stop_pgbouncer

CUR=4; echo; echo "== case 4: no credentials (KRB5_CLIENT_KTNAME unset, KRB5CCNAME = empty cache)"
start_pgbouncer c4 allow "$SPN" "" KRB5CCNAME="FILE:$T/pgb/empty.ccache" || bad "pgbouncer did not start"
expect_failure c4 'GSSAPI login to server failed \(spn=postgres/db\.example\.test@EXAMPLE\.TEST\): .*(credentials|Credentials)' \
	'GSSAPI login to server failed \(spn=postgres/db\.example\.test@EXAMPLE\.TEST\)'
stop_pgbouncer

CUR=5; echo; echo "== case 5: SPN unknown to the KDC"
start_pgbouncer c5 allow "postgres/nosuch.example.test@$REALM" "" "${KT_ENV[@]}" KRB5CCNAME="FILE:$T/pgb/c5/ccache" || bad "pgbouncer did not start"
expect_failure c5 'GSSAPI login to server failed \(spn=postgres/nosuch\.example\.test@EXAMPLE\.TEST\): .*Server .*not found in Kerberos database' \
	'GSSAPI login to server failed \(spn=postgres/nosuch\.example\.test@EXAMPLE\.TEST\): .*Server .*not found in Kerberos database'
stop_pgbouncer

CUR=6; echo; echo "== case 6: server_gssauth_negotiate = disable"
start_pgbouncer c6 disable "$SPN" "" "${KT_ENV[@]}" KRB5CCNAME="FILE:$T/pgb/c6/ccache" || bad "pgbouncer did not start"
expect_failure c6 'server requested GSSAPI authentication but server_gssauth_negotiate = disable' \
	'server requested GSSAPI authentication but server_gssauth_negotiate = disable'
stop_pgbouncer

CUR=7; echo; echo "== case 7: SPN in the KDC but not in the server keytab (postgres/other.example.test)"
start_pgbouncer c7 allow "postgres/other.example.test@$REALM" "" "${KT_ENV[@]}" KRB5CCNAME="FILE:$T/pgb/c7/ccache" || bad "pgbouncer did not start"
expect_failure c7 "GSSAPI login to server failed \\(spn=postgres/other\\.example\\.test@EXAMPLE\\.TEST\\): .*The ticket isn't for us" \
	"GSSAPI login to server failed \\(spn=postgres/other\\.example\\.test@EXAMPLE\\.TEST\\): .*The ticket isn't for us"
echo "   PostgreSQL log:"; grep -E 'GSSAPI|not found in keytab|ticket' "$T/pg/pg.log" | tail -n 3 | sed 's/^/     | /'
stop_pgbouncer

CUR=8; echo; echo "== case 8: server_gssauth_negotiate = maybe (invalid value)"
if start_pgbouncer c8 maybe "$SPN" "" "${KT_ENV[@]}"; then
	bad "pgbouncer started with an invalid server_gssauth_negotiate"
	stop_pgbouncer
else
	msg=$(cat "$T/pgb/c8/start.out" "$T/pgb/c8/pgbouncer.log" 2>/dev/null | grep -m1 -i 'server_gssauth_negotiate')
	echo "   pgbouncer refused to start: $msg"
	if [[ -n $msg ]]; then ok "config error names the option"; else bad "no config error naming the option"; fi
fi

CUR=9; echo; echo "== case 9: principal does not match the role (keytab of other_user@$REALM, role $CLIENT_PRINC)"
start_pgbouncer c9 allow "$SPN" "" KRB5_CLIENT_KTNAME="$T/keytabs/other.keytab" KRB5CCNAME="FILE:$T/pgb/c9/ccache" || bad "pgbouncer did not start"
expect_failure c9 'GSSAPI authentication failed for user "astro_user@EXAMPLE.TEST"' \
	'GSSAPI login to server rejected by server \(spn=postgres/db\.example\.test@EXAMPLE\.TEST\)'
stop_pgbouncer

CUR=10; echo; echo "== case 10: stale server keytab (key of $SPN re-randomised in the KDC, kvno bumped)"
kadm "cpw -randkey $SPN"
start_pgbouncer c10 allow "$SPN" "" "${KT_ENV[@]}" KRB5CCNAME="FILE:$T/pgb/c10/ccache" || bad "pgbouncer did not start"
expect_failure c10 'GSSAPI login to server failed \(spn=postgres/db\.example\.test@EXAMPLE\.TEST\): .*Key version is not available' \
	'GSSAPI login to server failed \(spn=postgres/db\.example\.test@EXAMPLE\.TEST\): .*Key version is not available'
echo "   PostgreSQL log:"; grep -E 'GSSAPI|keytab|kvno' "$T/pg/pg.log" | tail -n 2 | sed 's/^/     | /'
stop_pgbouncer

echo
if (( FAILED == 0 )); then
	echo "== ALL OK: $PASS checks passed"
	exit 0
fi
echo "== $FAILED check(s) FAILED (cases: ${FAILED_NAMES[*]}), $PASS passed"
exit 1
