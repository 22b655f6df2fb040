#!/usr/bin/env bash
# Installs a released infergate binary, verified, into $INFERGATE_DEST/bin.
#
# Inputs (environment):
#   INFERGATE_VERSION      1.2.3, v1.2.3 or latest (latest asks the GitHub API)
#   INFERGATE_REPOSITORY   owner/name whose releases hold the archives
#   INFERGATE_DEST         install folder; the binary goes to DEST/bin/infergate
#   INFERGATE_INSTALL_URL  optional mirror: ${INFERGATE_INSTALL_URL}/v${VERSION}/${ASSET}
#   GITHUB_SERVER_URL, GITHUB_API_URL   (default https://github.com, https://api.github.com)
#   RUNNER_OS, RUNNER_ARCH (Actions' Linux, X64/ARM64), else uname -s / uname -m
#
# The archive's SHA-256 is checked against the release's checksums file before
# anything is extracted or run.
#
# Exit codes: 0 installed; 2 no release asset for this OS, architecture or
# version (the caller may build from source); 1 anything else (bad input,
# download error, checksum mismatch, a binary that does not run).
set -euo pipefail

readonly EXIT_NO_ASSET=2
readonly EXIT_FAILED=1

die() {
  echo "install.sh: error: $1" >&2
  exit "$EXIT_FAILED"
}

no_asset() {
  echo "install.sh: no release asset: $1" >&2
  exit "$EXIT_NO_ASSET"
}

# --- inputs ---------------------------------------------------------------

version=${INFERGATE_VERSION:-}
repository=${INFERGATE_REPOSITORY:-}
dest=${INFERGATE_DEST:-}
mirror=${INFERGATE_INSTALL_URL:-}
server=${GITHUB_SERVER_URL:-https://github.com}
api=${GITHUB_API_URL:-https://api.github.com}

[ -n "$version" ] || die "INFERGATE_VERSION is empty: set a version (1.2.3, v1.2.3) or latest"
[ -n "$dest" ] || die "INFERGATE_DEST is empty: set the install folder"
if [ -z "$mirror" ]; then
  [[ $repository =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] \
    || die "INFERGATE_REPOSITORY '$repository' is not owner/name"
fi
mirror=${mirror%/}
server=${server%/}
api=${api%/}

os=${RUNNER_OS:-$(uname -s)}
arch=${RUNNER_ARCH:-$(uname -m)}
case "$os" in
  Linux | linux) ;;
  *) no_asset "releases are built for Linux only, this is $os: build from source" ;;
esac
case "$arch" in
  X64 | x86_64 | amd64) cpu=x86_64 ;;
  ARM64 | aarch64 | arm64) cpu=aarch64 ;;
  *) no_asset "releases are built for x86_64 and aarch64 only, this is $arch: build from source" ;;
esac
# The glibc build loads NVML (GPU telemetry); a static musl binary cannot
# load any shared library, so it is only for systems without glibc (Alpine).
# INFERGATE_LIBC=gnu|musl overrides the guess.
libc=${INFERGATE_LIBC:-}
if [ -z "$libc" ]; then
  libc=gnu
  for loader in /lib/ld-musl-*; do
    if [ -e "$loader" ]; then libc=musl; fi
  done
fi
case "$libc" in
  gnu | musl) target="$cpu-unknown-linux-$libc" ;;
  *) die "INFERGATE_LIBC is '$libc': give gnu or musl" ;;
esac

# --- downloads ------------------------------------------------------------

# Only https leaves this machine; plain http is allowed to this machine's own
# loopback address (tests, a local mirror).
proto_for() {
  case "$1" in
    https://*) echo "=https" ;;
    http://127.0.0.1[:/]* | http://localhost[:/]* | http://\[::1\][:/]*) echo "=http" ;;
    *) die "refusing $1: only https URLs (or http to 127.0.0.1/localhost) are fetched" ;;
  esac
}

# fetch URL FILE: 0 downloaded, 2 not found (404), 1 any other failure (said on stderr).
fetch() {
  local url=$1 out=$2 proto status
  proto=$(proto_for "$url") || return 1
  if command -v curl > /dev/null 2>&1; then
    status=$(curl --fail --silent --show-error --location --proto "$proto" --proto-redir "$proto" --tlsv1.2 \
      --connect-timeout 10 --max-time 120 --retry 3 --retry-delay 2 \
      --output "$out" --write-out '%{http_code}' "$url" 2> "$work/fetch.err") || true
    case "$status" in
      200) return 0 ;;
      404) return 2 ;;
      *) echo "install.sh: $url: HTTP status ${status:-none}: $(cat "$work/fetch.err")" >&2; return 1 ;;
    esac
  elif command -v wget > /dev/null 2>&1; then
    local args=(--no-verbose --timeout=10 --tries=4 --waitretry=2)
    if [ "$proto" = "=https" ]; then args+=(--https-only --secure-protocol=TLSv1_2); fi
    if wget "${args[@]}" --output-document "$out" "$url" 2> "$work/fetch.err"; then
      return 0
    fi
    if grep -q 'ERROR 404' "$work/fetch.err"; then return 2; fi
    echo "install.sh: $url: $(cat "$work/fetch.err")" >&2
    return 1
  else
    die "neither curl nor wget is installed"
  fi
}

sha256_of() {
  if command -v sha256sum > /dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum > /dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    die "neither sha256sum nor shasum is installed"
  fi
}

work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/infergate-install.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- the version ----------------------------------------------------------

if [ "$version" = latest ]; then
  [ -z "$mirror" ] || die "version latest cannot be resolved on a mirror (install-url): name the version"
  url="$api/repos/$repository/releases/latest"
  rc=0
  fetch "$url" "$work/latest.json" || rc=$?
  case "$rc" in
    0) ;;
    2) no_asset "$repository has no published release ($url: 404)" ;;
    *) die "could not ask $url for the latest release" ;;
  esac
  version=$(sed -n 's/^[[:space:]]*"tag_name":[[:space:]]*"\([^"]*\)".*/\1/p' "$work/latest.json" | head -n 1)
  [ -n "$version" ] || die "$url has no tag_name"
fi
version=${version#v}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] \
  || die "version '$version' is not 1.2.3, v1.2.3 or latest"

asset="infergate-$version-$target.tar.gz"
sums="infergate-$version-checksums.txt"
if [ -n "$mirror" ]; then
  base="$mirror/v$version"
else
  base="$server/$repository/releases/download/v$version"
fi

rc=0
fetch "$base/$asset" "$work/$asset" || rc=$?
case "$rc" in
  0) ;;
  2) no_asset "$base/$asset not found (no release v$version for $target)" ;;
  *) die "could not download $base/$asset" ;;
esac
rc=0
fetch "$base/$sums" "$work/$sums" || rc=$?
[ "$rc" -eq 0 ] || die "could not download $base/$sums: the archive cannot be verified, so it is not installed"

# --- verify, before anything is extracted or run ---------------------------

# `HASH  NAME` or `HASH *NAME` (binary mode); the name compared as text, never as a pattern.
expected=$(awk -v name="$asset" '$2 == name || $2 == "*" name { print $1 }' "$work/$sums" | sort -u)
actual=$(sha256_of "$work/$asset")
if ! [[ $expected =~ ^[0-9a-fA-F]{64}$ ]]; then
  die "$sums has no single SHA-256 line for $asset (expected: '${expected//$'\n'/ }', archive: $actual): not installed"
fi
if [ "$(printf '%s' "$expected" | tr 'A-F' 'a-f')" != "$actual" ]; then
  die "checksum mismatch for $asset: $sums says $expected, the download is $actual: not installed, nothing run"
fi

# --- extract and install --------------------------------------------------

# Only the binary's own member, into a fresh folder: nothing else in the archive lands anywhere.
member="infergate-$version-$target/infergate"
mkdir "$work/x"
tar -xzf "$work/$asset" -C "$work/x" --no-same-owner "$member" \
  || die "$asset has no $member"
if [ ! -f "$work/x/$member" ] || [ -L "$work/x/$member" ]; then
  die "$member in $asset is not a regular file"
fi

mkdir -p "$dest/bin"
cp "$work/x/$member" "$dest/bin/.infergate.partial"
chmod 755 "$dest/bin/.infergate.partial"
mv -f "$dest/bin/.infergate.partial" "$dest/bin/infergate"

if ! reported=$("$dest/bin/infergate" --version 2>&1); then
  rm -f "$dest/bin/infergate"
  die "$dest/bin/infergate --version failed: $reported"
fi
echo "installed $reported ($target, SHA-256 $actual) from $base/$asset into $dest/bin/infergate"
