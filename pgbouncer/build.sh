#!/usr/bin/env bash
# Build Debian's PgBouncer (bookworm: 1.18) with gssapi-server-login.patch.
#
#   pgbouncer/build.sh [--unpatched] OUT_DIR
#
# Result: OUT_DIR/bin/pgbouncer, full log in OUT_DIR/build.log, and the
# configured source tree in OUT_DIR/work/src (for `make check`).
# --unpatched builds Debian's source as Debian ships it (no GSSAPI): the
# "generic image" and the baseline of `cargo xtask pgbouncer-check`.
# Env: PGBOUNCER_SRC_CACHE  where the downloaded .dsc/.orig/.debian tarballs
#                           (and the private apt lists) are kept
#                           (default OUT_DIR/../src-cache).
#
# The Debian source is fetched with a private apt configuration (own
# sources.list with a deb-src line for the mirror/suite of the machine's
# apt sources, own lists and cache directories); the machine's apt setup
# is not changed.  No mirror is assumed: without a Debian entry in the
# machine's apt sources the script stops and names the files it read.  Re-running is safe: the source tree is unpacked afresh
# each time; downloads are reused from the cache.
#
# Debian packages needed (checked below with dpkg-query):
REQUIRED_PACKAGES=(
	gcc make pkg-config patch xz-utils
	autoconf automake libtool
	dpkg-dev apt
	libevent-dev libssl-dev libc-ares-dev libkrb5-dev
)

set -Eeuo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PATCH_FILE="$SCRIPT_DIR/gssapi-server-login.patch"

UNPATCHED=0
if [[ "${1:-}" == --unpatched ]]; then
	UNPATCHED=1
	shift
fi
if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 [--unpatched] OUT_DIR" >&2
	exit 2
fi

mkdir -p "$1"
OUT_DIR=$(cd "$1" && pwd)
LOG="$OUT_DIR/build.log"
SRC_CACHE=${PGBOUNCER_SRC_CACHE:-$OUT_DIR/../src-cache}
mkdir -p "$SRC_CACHE"
SRC_CACHE=$(cd "$SRC_CACHE" && pwd)
WORK="$OUT_DIR/work"

: >"$LOG"
START=$(date +%s)
PHASE=init

say() { echo "build.sh: $*"; echo "=== $(date '+%F %T') $*" >>"$LOG"; }

fail() {
	echo "build.sh: FAILED in phase '$PHASE' (full log: $LOG)" >&2
	echo "--- last lines of $LOG:" >&2
	tail -n 25 "$LOG" >&2 || true
	exit 1
}
trap 'fail' ERR

# run a command with all its output going to the log
run() { echo "+ $*" >>"$LOG"; "$@" >>"$LOG" 2>&1; }

# ---------------------------------------------------------------- deps
PHASE=check-deps
say "phase $PHASE: checking Debian packages"
missing=()
for p in "${REQUIRED_PACKAGES[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[[ "$st" == ii* ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "build.sh: missing Debian packages: ${missing[*]}" >&2
	echo "build.sh: install them with: apt-get install -y ${missing[*]}" >&2
	echo "missing packages: ${missing[*]}" >>"$LOG"
	exit 1
fi
[[ -f "$PATCH_FILE" ]] || { echo "build.sh: patch not found: $PATCH_FILE" >&2; exit 1; }

# ---------------------------------------------------------------- source
# The mirror and suite of the machine's own Debian sources (deb822 first,
# then one-line format); nothing when neither has a Debian entry.
APT_SOURCE_FILES="/etc/apt/sources.list.d/debian.sources /etc/apt/sources.list"
detect_mirror() {
	local uri="" suite=""
	if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
		read -r uri suite < <(awk '
			/^[[:space:]]*$/ { if (u != "" && s != "" && u !~ /security/) { print u, s; found=1; exit } u=""; s=""; next }
			/^URIs:/   { u=$2 }
			/^Suites:/ { s=$2 }
			END { if (!found && u != "" && s != "" && u !~ /security/) print u, s }
		' /etc/apt/sources.list.d/debian.sources) || true
	fi
	if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
		read -r uri suite < <(awk '$1=="deb" && $0 !~ /security/ {
			i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i, $(i+1); exit }' /etc/apt/sources.list) || true
	fi
	[[ -n "$uri" && -n "$suite" ]] && echo "$uri $suite"
	return 0
}

PHASE=fetch-source
dsc=$(ls -1 "$SRC_CACHE"/pgbouncer_*.dsc 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -n "$dsc" ]]; then
	say "phase $PHASE: using cached $(basename "$dsc") from $SRC_CACHE"
else
	read -r MIRROR SUITE < <(detect_mirror) || true
	if [[ -z "${MIRROR:-}" || -z "${SUITE:-}" ]]; then
		trap - ERR
		echo "build.sh: no Debian mirror found in the machine's apt sources ($APT_SOURCE_FILES):" >&2
		echo "build.sh: add a 'URIs:'/'Suites:' stanza to /etc/apt/sources.list.d/debian.sources (or a 'deb <mirror> <suite> main' line to /etc/apt/sources.list), or put pgbouncer_*.dsc and its tarballs into $SRC_CACHE" >&2
		echo "no Debian mirror in $APT_SOURCE_FILES" >>"$LOG"
		exit 1
	fi
	say "phase $PHASE: downloading Debian source of pgbouncer ($MIRROR $SUITE) into $SRC_CACHE"
	APTD="$SRC_CACHE/apt"
	mkdir -p "$APTD/lists/partial" "$APTD/cache/archives/partial"
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	if [[ -f $keyring ]]; then
		echo "deb-src [signed-by=$keyring] $MIRROR $SUITE main" >"$APTD/sources.list"
	else
		echo "deb-src $MIRROR $SUITE main" >"$APTD/sources.list"
	fi
	APT_OPTS=(
		-o "Dir::Etc::SourceList=$APTD/sources.list"
		-o "Dir::Etc::SourceParts=/dev/null"
		-o "Dir::State::Lists=$APTD/lists"
		-o "Dir::Cache=$APTD/cache"
		-o "APT::Sandbox::User=root"
	)
	run apt-get "${APT_OPTS[@]}" update
	cd "$SRC_CACHE"
	run apt-get "${APT_OPTS[@]}" source --download-only pgbouncer
	cd "$OUT_DIR"
	dsc=$(ls -1 "$SRC_CACHE"/pgbouncer_*.dsc 2>/dev/null | sort -V | tail -n 1 || true)
	[[ -n "$dsc" ]] || { echo "no .dsc after download" >>"$LOG"; false; }
fi

PHASE=unpack
say "phase $PHASE: dpkg-source -x $(basename "$dsc") (Debian patches applied)"
rm -rf "$WORK"
mkdir -p "$WORK"
run dpkg-source --no-check -x "$dsc" "$WORK/src"
cd "$WORK/src"

if ((UNPATCHED)); then
	say "phase patch: skipped (--unpatched: Debian's source as shipped)"
	GSS_ARG=()
else
	PHASE=patch
	say "phase $PHASE: applying $(basename "$PATCH_FILE")"
	run patch -p1 --forward --batch -i "$PATCH_FILE"
	GSS_ARG=(--with-gssapi)
fi

PHASE=autogen
say "phase $PHASE: regenerating configure (./autogen.sh)"
run ./autogen.sh

PHASE=configure
say "phase $PHASE: ./configure ${GSS_ARG[*]} --with-cares=yes --with-systemd=no"
# The autoconf cache in OUT_DIR makes rebuilds faster; drop it if it no
# longer matches the environment.
CONF_ARGS=(--prefix=/usr/local "${GSS_ARG[@]}" --with-cares=yes --with-systemd=no CFLAGS="-O2")
if ! run ./configure --cache-file="$OUT_DIR/config.cache" "${CONF_ARGS[@]}"; then
	echo "configure with cache failed, retrying without it" >>"$LOG"
	rm -f "$OUT_DIR/config.cache"
	run ./configure --cache-file="$OUT_DIR/config.cache" "${CONF_ARGS[@]}"
fi
if ! ((UNPATCHED)); then
	grep -q '^#define HAVE_GSSAPI 1' lib/usual/config.h || { echo "HAVE_GSSAPI not set by configure" >>"$LOG"; false; }
fi

PHASE=make
say "phase $PHASE: make -j2"
run make -j2

PHASE=install
say "phase $PHASE: installing to $OUT_DIR/bin/pgbouncer"
run install -D -m 0755 pgbouncer "$OUT_DIR/bin/pgbouncer"
run "$OUT_DIR/bin/pgbouncer" --version
# Not `ldd | grep -q`: under pipefail, grep quitting early can fail ldd with SIGPIPE.
if ! ((UNPATCHED)) && [[ "$(ldd "$OUT_DIR/bin/pgbouncer")" != *libgssapi_krb5* ]]; then
	echo "binary is not linked against libgssapi_krb5" >>"$LOG"
	false
fi

trap - ERR
say "done in $(($(date +%s) - START)) s: $OUT_DIR/bin/pgbouncer ($("$OUT_DIR/bin/pgbouncer" --version | head -n 1))"
