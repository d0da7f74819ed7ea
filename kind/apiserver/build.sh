#!/usr/bin/env bash
# Build kube-apiserver (Kubernetes v1.20.2) from Debian's `kubernetes` source package.
#
#   kind/apiserver/build.sh OUT_DIR
#
# Result: OUT_DIR/bin/kube-apiserver, full log in OUT_DIR/build.log.
# Env: APISERVER_SRC_CACHE  where the downloaded .dsc/.orig/.debian tarballs and the
#                           private apt lists are kept (default OUT_DIR/../src-cache).
#      APISERVER_GOCACHE    Go's build cache (default OUT_DIR/../go-cache); kept between
#                           builds so a script change recompiles only what changed.
#
# Why from Debian's source: no registry is reachable here, and no Debian package ships a
# Kubernetes server binary; bookworm's source package is the full upstream v1.20.2 tree with
# vendor/, and Debian's Go 1.19 builds it offline. Three things are needed (found the hard way):
#  - GOPATH mode (GO111MODULE=off, the tree at $GOPATH/src/k8s.io/kubernetes): module mode
#    fails with "updates to go.mod needed, disabled by -mod=vendor";
#  - the generated OpenAPI definitions (`make gen_openapi`): the tarball lacks them;
#  - Debian's reflect2 1.0.2 instead of the vendored 1.0.1, which crashes the server under
#    Go >= 1.18 (`fatal error: fault` in runtime.mapiternext) the first time a mutating
#    webhook returns a patch.
# The source is fetched with a private apt configuration whose deb-src lines are derived from
# the machine's own /etc/apt/sources.list.d/debian.sources (its mirrors, suites, keyrings);
# the machine's apt setup is not changed.
#
# The package version is pinned: it is part of the cache key (the script's hash), and a
# different Kubernetes would be a different proof.
KUBERNETES_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
KUBERNETES_GIT_VERSION=v1.20.2
# Debian packages needed (checked below with dpkg-query):
REQUIRED_PACKAGES=(
	golang-go golang-github-modern-go-reflect2-dev
	make jq rsync dpkg-dev apt debian-archive-keyring
)
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

set -Eeuo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
	echo "usage: $0 OUT_DIR" >&2
	exit 2
fi

mkdir -p "$1"
OUT_DIR=$(cd "$1" && pwd)
LOG="$OUT_DIR/build.log"
SRC_CACHE=${APISERVER_SRC_CACHE:-$OUT_DIR/../src-cache}
GO_CACHE=${APISERVER_GOCACHE:-$OUT_DIR/../go-cache}
mkdir -p "$SRC_CACHE" "$GO_CACHE"
SRC_CACHE=$(cd "$SRC_CACHE" && pwd)
GO_CACHE=$(cd "$GO_CACHE" && pwd)
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
[[ -d $REFLECT2_SRC ]] || { echo "build.sh: $REFLECT2_SRC missing (golang-github-modern-go-reflect2-dev)" >&2; exit 1; }

# ---------------------------------------------------------------- source
# One deb-src line per URI x suite of each stanza of the machine's deb822 sources (security
# and updates included: a +debNuN version may live in either), else the one-line format's
# `deb` lines turned into `deb-src`.
derive_sources() {
	if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
		awk '
			function flush(   i, j, nu, ns, nc, us, ss, opt) {
				if (u != "" && s != "" && t ~ /deb/) {
					nu = split(u, us, " "); ns = split(s, ss, " ")
					opt = (k != "") ? "[signed-by=" k "] " : ""
					for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
						print "deb-src " opt us[i] " " ss[j] " " (c != "" ? c : "main")
				}
				t = ""; u = ""; s = ""; c = ""; k = ""
			}
			/^[[:space:]]*#/ { next }
			/^[[:space:]]*$/ { flush(); next }
			/^Types:/      { sub(/^Types:[[:space:]]*/, "");      t = $0 }
			/^URIs:/       { sub(/^URIs:[[:space:]]*/, "");       u = $0 }
			/^Suites:/     { sub(/^Suites:[[:space:]]*/, "");     s = $0 }
			/^Components:/ { sub(/^Components:[[:space:]]*/, ""); c = $0 }
			/^Signed-By:/  { sub(/^Signed-By:[[:space:]]*/, "");  k = $0 }
			END { flush() }
		' /etc/apt/sources.list.d/debian.sources
	elif [[ -f /etc/apt/sources.list ]]; then
		awk '$1 == "deb" { $1 = "deb-src"; print }' /etc/apt/sources.list
	fi
}

PHASE=fetch-source
dsc="$SRC_CACHE/kubernetes_${KUBERNETES_DEB_VERSION#*:}.dsc"
if [[ -f "$dsc" ]]; then
	say "phase $PHASE: using cached $(basename "$dsc") from $SRC_CACHE"
else
	APTD="$SRC_CACHE/apt"
	mkdir -p "$APTD/lists/partial" "$APTD/cache/archives/partial"
	derive_sources >"$APTD/sources.list"
	if [[ ! -s "$APTD/sources.list" ]]; then
		echo "build.sh: no Debian sources found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list" >&2
		false
	fi
	say "phase $PHASE: downloading Debian source kubernetes $KUBERNETES_DEB_VERSION (~34 MB) into $SRC_CACHE"
	APT_OPTS=(
		-o "Dir::Etc::SourceList=$APTD/sources.list"
		-o "Dir::Etc::SourceParts=/dev/null"
		-o "Dir::State::Lists=$APTD/lists"
		-o "Dir::Cache=$APTD/cache"
		-o "APT::Sandbox::User=root"
	)
	run apt-get "${APT_OPTS[@]}" update
	cd "$SRC_CACHE"
	if ! run apt-get "${APT_OPTS[@]}" source --download-only "kubernetes=$KUBERNETES_DEB_VERSION"; then
		avail=$(apt-cache "${APT_OPTS[@]}" showsrc kubernetes 2>/dev/null | awk '/^Version:/ { print $2 }' | tr '\n' ' ')
		echo "build.sh: Debian source kubernetes=$KUBERNETES_DEB_VERSION is not on the machine's mirrors (they offer: ${avail:-none})." >&2
		echo "build.sh: set KUBERNETES_DEB_VERSION in $0 to one of them (and KUBERNETES_GIT_VERSION to its upstream tag)." >&2
		false
	fi
	cd "$OUT_DIR"
	[[ -f "$dsc" ]] || { echo "no $dsc after download" >>"$LOG"; false; }
fi

PHASE=unpack
say "phase $PHASE: dpkg-source -x $(basename "$dsc") (~400 MB unpacked)"
rm -rf "$WORK"
mkdir -p "$WORK/gopath/src/k8s.io"
run dpkg-source --no-check -x "$dsc" "$WORK/src"
ln -s "$WORK/src" "$WORK/gopath/src/k8s.io/kubernetes"

PHASE=reflect2
say "phase $PHASE: vendoring Debian's reflect2 (the vendored 1.0.1 crashes under Go >= 1.18)"
V="$WORK/src/vendor/github.com/modern-go/reflect2"
[[ -d $V ]] || { echo "no $V in the source tree" >>"$LOG"; false; }
run find "$V" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
run find "$REFLECT2_SRC" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$V/" \;

export GOPATH="$WORK/gopath" GOCACHE="$GO_CACHE" GO111MODULE=off GOPROXY=off GOFLAGS= \
	GOTOOLCHAIN=local CGO_ENABLED=0 HOME="$WORK"
cd "$GOPATH/src/k8s.io/kubernetes"

PHASE=gen-openapi
say "phase $PHASE: make gen_openapi (about 1 minute)"
run make gen_openapi
[[ -f pkg/generated/openapi/zz_generated.openapi.go ]] || { echo "gen_openapi produced nothing" >>"$LOG"; false; }

PHASE=compile
say "phase $PHASE: go build k8s.io/kubernetes/cmd/kube-apiserver (about 4 minutes on 2 cores)"
# The `vendor/` prefix is what GOPATH mode calls the package; without it the server says v0.0.0-master.
LDFLAGS="-s -w -X k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitVersion=$KUBERNETES_GIT_VERSION"
mkdir -p "$OUT_DIR/bin"
run go build -ldflags "$LDFLAGS" -o "$OUT_DIR/bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver

PHASE=check
say "phase $PHASE: kube-apiserver --version"
v=$("$OUT_DIR/bin/kube-apiserver" --version 2>&1)
echo "$v" >>"$LOG"
[[ "$v" == *"$KUBERNETES_GIT_VERSION"* ]] || { echo "unexpected version: $v" >>"$LOG"; false; }

PHASE=cleanup
say "phase $PHASE: removing the unpacked tree"
cd "$OUT_DIR"
rm -rf "$WORK"

trap - ERR
say "done in $(($(date +%s) - START)) s: $OUT_DIR/bin/kube-apiserver ($v)"
