#!/usr/bin/env bash
# Tests scripts/install.sh and the action's install step against a fake
# release served on a free loopback port (python3 -m http.server): nothing
# leaves this machine. The fake release's binary is target/debug/infergate
# (or $INFERGATE_BIN), packed as the release workflow packs it.
#
#   bash scripts/test-install.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root=$PWD

bin=${INFERGATE_BIN:-$repo_root/target/debug/infergate}
[ -x "$bin" ] || { echo "test-install: no binary at $bin (cargo build, or set INFERGATE_BIN)" >&2; exit 1; }
command -v python3 > /dev/null || { echo "test-install: python3 is needed for the fake release server" >&2; exit 1; }

tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2> /dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
pass() { echo "ok: $1"; }
fail() { echo "FAIL: $1" >&2; failures=$((failures + 1)); }

# --- the fake release -------------------------------------------------------

www=$tmp/www
targets=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl)

# release VERSION BINARY: the archives of both targets and the checksums file,
# as scripts/package-release.sh lays them out.
release() {
  local version=$1 binary=$2 dir=$www/o/r/releases/download/v$1 target name
  mkdir -p "$dir"
  for target in "${targets[@]}"; do
    name=infergate-$version-$target
    mkdir -p "$tmp/pack/$name"
    cp "$binary" "$tmp/pack/$name/infergate"
    echo "docs" > "$tmp/pack/$name/README.md"
    tar -czf "$dir/$name.tar.gz" -C "$tmp/pack" "$name"
    (cd "$dir" && sha256sum "$name.tar.gz" > "$name.tar.gz.sha256")
  done
  (cd "$dir" && cat ./*.sha256 > "infergate-$version-checksums.txt")
}

# A binary that would leave a marker if it were ever run.
marker=$tmp/the-tampered-binary-ran
evil=$tmp/evil
printf '#!/bin/sh\ntouch %q\necho infergate 6.6.6\n' "$marker" > "$evil"
chmod 755 "$evil"

# The real binary only where it is run; a small stand-in where the test stops
# before extraction (packing the debug binary is most of this test's time).
small=$tmp/small
printf '#!/bin/sh\necho infergate 0.0.0\n' > "$small"
chmod 755 "$small"

# Stripped, as a release binary is (and 6x smaller than a debug build), when strip is here.
if command -v strip > /dev/null && strip -o "$tmp/infergate" "$bin" 2> /dev/null; then bin=$tmp/infergate; fi
release 0.1.0 "$bin"
# 0.2.0: the x86_64 archive replaced after its checksum was published.
release 0.2.0 "$small"
evil_dir=$www/o/r/releases/download/v0.2.0
mkdir -p "$tmp/pack/evil/infergate-0.2.0-x86_64-unknown-linux-gnu"
cp "$evil" "$tmp/pack/evil/infergate-0.2.0-x86_64-unknown-linux-gnu/infergate"
tar -czf "$evil_dir/infergate-0.2.0-x86_64-unknown-linux-gnu.tar.gz" -C "$tmp/pack/evil" \
  infergate-0.2.0-x86_64-unknown-linux-gnu
# 0.3.0: the checksums file has no line for the x86_64 archive.
release 0.3.0 "$small"
sed -i '/x86_64/d' "$www/o/r/releases/download/v0.3.0/infergate-0.3.0-checksums.txt"
# 0.4.0: the same marker binary, correctly summed: proves the marker would appear if it ran.
release 0.4.0 "$evil"
# latest, as the API answers it.
mkdir -p "$www/repos/o/r/releases"
printf '{\n  "url": "x",\n  "tag_name": "v0.1.0",\n  "name": "infergate 0.1.0"\n}\n' > "$www/repos/o/r/releases/latest"
# A mirror: ${INSTALL_URL}/v${VERSION}/${ASSET}.
mkdir -p "$www/mirror"
ln -s "$www/o/r/releases/download/v0.1.0" "$www/mirror/v0.1.0"

python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$www" > "$tmp/server.out" 2> "$tmp/server.log" &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.* port \([0-9][0-9]*\).*/\1/p' "$tmp/server.out")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "test-install: the fake release server did not start" >&2; cat "$tmp/server.log" >&2; exit 1; }
url=http://127.0.0.1:$port

# install NAME VAR=VALUE...: runs install.sh with a fresh DEST and these inputs;
# sets $rc, $out (stdout+stderr), $dest.
install() {
  local name=$1
  shift
  dest=$tmp/dest-$name
  rc=0
  out=$(env -i PATH="$PATH" HOME="$HOME" \
    GITHUB_SERVER_URL="$url" GITHUB_API_URL="$url" INFERGATE_REPOSITORY=o/r \
    INFERGATE_DEST="$dest" RUNNER_OS=Linux RUNNER_ARCH=X64 RUNNER_TEMP="$tmp" \
    "$@" bash scripts/install.sh 2>&1) || rc=$?
}

requested() { grep -c "GET $1 " "$tmp/server.log" || true; }

# (a) X64: the x86_64 archive, verified, installed, and it runs.
start=$(date +%s%N)
install x64 INFERGATE_VERSION=0.1.0
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
if [ "$rc" -eq 0 ] && [ -x "$dest/bin/infergate" ] && "$dest/bin/infergate" --version | grep -q '^infergate ' \
  && [[ $out == *"infergate-0.1.0-x86_64-unknown-linux-gnu.tar.gz into $dest/bin/infergate"* ]]; then
  pass "X64 installs the x86_64 archive and runs it: $out"
else
  fail "X64 install (exit $rc): $out"
fi
if [ "$elapsed_ms" -lt 5000 ]; then
  echo "install time: download + verify + first --version in ${elapsed_ms} ms (budget 5000 ms)"
else
  # Not a failure: a busy machine is not a broken installer (benchmarks measure speed, tests correctness).
  echo "WARNING: install time ${elapsed_ms} ms is over the 5000 ms budget" >&2
fi

# (b) ARM64: the aarch64 archive (it holds the same binary, so it also runs here).
install arm64 INFERGATE_VERSION=v0.1.0 RUNNER_ARCH=ARM64
if [ "$rc" -eq 0 ] && [ "$(requested /o/r/releases/download/v0.1.0/infergate-0.1.0-aarch64-unknown-linux-gnu.tar.gz)" -eq 1 ] \
  && [[ $out == *"(aarch64-unknown-linux-gnu,"* ]]; then
  pass "ARM64 chooses the aarch64 archive"
else
  fail "ARM64 install (exit $rc): $out"
fi
# The static musl archive where asked (systems without glibc); the glibc one otherwise, since only it loads NVML.
install musl INFERGATE_VERSION=0.1.0 INFERGATE_LIBC=musl
if [ "$rc" -eq 0 ] && [ "$(requested /o/r/releases/download/v0.1.0/infergate-0.1.0-x86_64-unknown-linux-musl.tar.gz)" -eq 1 ]; then
  pass "INFERGATE_LIBC=musl chooses the static archive"
else
  fail "musl install (exit $rc): $out"
fi
install badlibc INFERGATE_VERSION=0.1.0 INFERGATE_LIBC=uclibc
if [ "$rc" -eq 1 ] && [[ $out == *"give gnu or musl"* ]]; then
  pass "an unknown INFERGATE_LIBC is refused"
else
  fail "INFERGATE_LIBC=uclibc (exit $rc): $out"
fi
install uname INFERGATE_VERSION=0.1.0 RUNNER_OS= RUNNER_ARCH=
if [ "$rc" -eq 0 ] && [[ $out == *"($(uname -m)-unknown-linux-gnu,"* ]]; then
  pass "without RUNNER_OS/RUNNER_ARCH, uname picks the target"
else
  fail "install by uname (exit $rc): $out"
fi

# (c) A tampered archive: refused before extraction, nothing run, nothing installed.
install tampered INFERGATE_VERSION=0.2.0
if [ "$rc" -eq 1 ] && [[ $out == *"checksum mismatch for infergate-0.2.0-x86_64-unknown-linux-gnu.tar.gz"* ]] \
  && [[ $out =~ says\ [0-9a-f]{64},\ the\ download\ is\ [0-9a-f]{64} ]] \
  && [ ! -e "$dest/bin/infergate" ] && [ ! -e "$marker" ]; then
  pass "a tampered archive is refused, exit 1, nothing installed or run: $out"
else
  fail "tampered archive (exit $rc, marker $([ -e "$marker" ] && echo present || echo absent)): $out"
fi
install unlisted INFERGATE_VERSION=0.3.0
if [ "$rc" -eq 1 ] && [[ $out == *"has no single SHA-256 line for infergate-0.3.0-x86_64-unknown-linux-gnu.tar.gz"* ]] \
  && [ ! -e "$dest/bin/infergate" ]; then
  pass "an archive missing from the checksums file is refused, exit 1"
else
  fail "unlisted archive (exit $rc): $out"
fi
install control INFERGATE_VERSION=0.4.0
if [ "$rc" -eq 0 ] && [ -e "$marker" ]; then
  pass "control: the marker binary, correctly summed, does run (so its absence above means it never ran)"
else
  fail "control (exit $rc, marker absent): $out"
fi
rm -f "$marker"

# (d) No asset for this version, OS or architecture: exit 2.
install missing INFERGATE_VERSION=9.9.9
if [ "$rc" -eq 2 ] && [ ! -e "$dest/bin/infergate" ]; then pass "a version without a release exits 2: $out"; else fail "missing version (exit $rc): $out"; fi
install macos INFERGATE_VERSION=0.1.0 RUNNER_OS=macOS RUNNER_ARCH=ARM64
if [ "$rc" -eq 2 ]; then pass "macOS exits 2: $out"; else fail "macOS (exit $rc): $out"; fi
install riscv INFERGATE_VERSION=0.1.0 RUNNER_ARCH=riscv64
if [ "$rc" -eq 2 ]; then pass "an unknown architecture exits 2"; else fail "riscv64 (exit $rc): $out"; fi

# (e) latest, through the API's releases/latest.
install latest INFERGATE_VERSION=latest
if [ "$rc" -eq 0 ] && [ "$(requested /repos/o/r/releases/latest)" -ge 1 ] && [[ $out == *"infergate-0.1.0-x86_64"* ]]; then
  pass "latest resolves to v0.1.0 through /repos/o/r/releases/latest"
else
  fail "latest (exit $rc): $out"
fi
install nolatest INFERGATE_VERSION=latest INFERGATE_REPOSITORY=o/none
if [ "$rc" -eq 2 ]; then pass "latest of a repository without releases exits 2"; else fail "latest without releases (exit $rc): $out"; fi

# A mirror (install-url), and inputs that are refused.
install mirror INFERGATE_VERSION=0.1.0 INFERGATE_INSTALL_URL="$url/mirror/" INFERGATE_REPOSITORY=
if [ "$rc" -eq 0 ] && [ "$(requested /mirror/v0.1.0/infergate-0.1.0-checksums.txt)" -eq 1 ]; then
  pass "install-url: the mirror's v0.1.0/ folder"
else
  fail "mirror (exit $rc): $out"
fi
for bad in 'INFERGATE_VERSION=1.0;touch x' 'INFERGATE_VERSION=../../etc' 'INFERGATE_VERSION=' \
  'INFERGATE_REPOSITORY=o/r/../x' 'GITHUB_SERVER_URL=http://example.com' 'INFERGATE_DEST='; do
  install bad INFERGATE_VERSION=0.1.0 "$bad"
  if [ "$rc" -eq 1 ] && [ ! -e "$dest/bin/infergate" ]; then pass "refused, exit 1: $bad"; else fail "$bad (exit $rc): $out"; fi
done

# --- the action's install step: 0 on PATH, 2 falls back to a source build, 1 fails ---

# The `run:` script of the step named "Install infergate", as GitHub runs it.
step=$tmp/install-step.sh
awk '
  /^    - name: / { in_step = ($0 == "    - name: Install infergate") }
  in_step && /^      run: / { in_run = 1; next }
  in_run && /^      [a-z-]+:/ { in_run = 0 }
  in_run && /^    - / { in_run = 0 }
  in_run { sub(/^        /, ""); print }
' action.yml > "$step"
[ -s "$step" ] || { echo "test-install: no 'Install infergate' step in action.yml" >&2; exit 1; }

# action_step NAME VAR=VALUE...: sets $rc, $out, $outputs (GITHUB_OUTPUT), $paths (GITHUB_PATH).
action_step() {
  local name=$1 dir=$tmp/step-$1
  shift
  mkdir -p "$dir/temp"
  rc=0
  out=$(env -i PATH="$PATH" HOME="$HOME" GITHUB_SERVER_URL="$url" GITHUB_API_URL="$url" \
    RUNNER_OS=Linux RUNNER_ARCH=X64 RUNNER_TEMP="$dir/temp" \
    GITHUB_OUTPUT="$dir/output" GITHUB_PATH="$dir/path" \
    ACTION_PATH="$repo_root" ACTION_REPOSITORY=o/r VERSION=0.1.0 INSTALL_URL= BUILD_FROM_SOURCE=false \
    "$@" bash -e -o pipefail "$step" 2>&1) || rc=$?
  outputs=$(cat "$dir/output" 2> /dev/null || true)
  paths=$(cat "$dir/path" 2> /dev/null || true)
}

action_step released
if [ "$rc" -eq 0 ] && [[ $outputs == *"build=false"* ]] && [[ $paths == "$tmp/step-released/temp/infergate/bin" ]]; then
  pass "action: a released version is installed and put on PATH, no build"
else
  fail "action, released (exit $rc, outputs '$outputs', path '$paths'): $out"
fi
action_step unreleased VERSION=9.9.9
if [ "$rc" -eq 0 ] && [[ $outputs == *"build=true"* ]] && [[ $out == *"::notice"*"9.9.9"* ]] && [ -z "$paths" ]; then
  pass "action: no release (exit 2) falls back to the source build with a notice"
else
  fail "action, unreleased (exit $rc, outputs '$outputs'): $out"
fi
action_step tampered VERSION=0.2.0
if [ "$rc" -ne 0 ] && [[ $outputs != *"build=true"* ]] && [[ $out == *"::error"*"checksum mismatch"* ]] && [ ! -e "$marker" ]; then
  pass "action: a checksum mismatch (exit 1) fails the job, no fallback build"
else
  fail "action, tampered (exit $rc, outputs '$outputs'): $out"
fi
requests=$(wc -l < "$tmp/server.log")
action_step source BUILD_FROM_SOURCE=true
if [ "$rc" -eq 0 ] && [[ $outputs == *"build=true"* ]] && [ "$(wc -l < "$tmp/server.log")" -eq "$requests" ]; then
  pass "action: build-from-source skips the download"
else
  fail "action, build-from-source (exit $rc, outputs '$outputs'): $out"
fi
action_step local ACTION_REPOSITORY=
if [ "$rc" -eq 0 ] && [[ $outputs == *"build=true"* ]]; then
  pass "action: a local action (uses: ./) is built from its own checkout"
else
  fail "action, local (exit $rc, outputs '$outputs'): $out"
fi
action_step default VERSION=
if [ "$rc" -eq 0 ] && [[ $out == *"infergate-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)-x86_64"* ]]; then
  pass "action: the default version is the action's own Cargo.toml version"
else
  fail "action, default version (exit $rc, outputs '$outputs'): $out"
fi

if [ "$failures" -gt 0 ]; then
  echo "test-install: $failures failed" >&2
  exit 1
fi
echo "test-install: all passed"
