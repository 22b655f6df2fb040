#!/usr/bin/env bash
# Pack one release archive: scripts/package-release.sh VERSION TARGET BINARY OUTDIR
#
# Writes OUTDIR/infergate-VERSION-TARGET.tar.gz holding one folder,
# infergate-VERSION-TARGET/, with the binary (named infergate), README.md,
# CHANGELOG.md, the LICENSE* files present and the embedded font's licence;
# and OUTDIR/infergate-VERSION-TARGET.tar.gz.sha256 in sha256sum format
# (check it with `sha256sum -c` from OUTDIR). cargo binstall finds the binary
# at the same path (Cargo.toml's [package.metadata.binstall]).
#
# The archive is reproducible: entries sorted, owned by 0:0, dated
# SOURCE_DATE_EPOCH (else the commit's date, else 0), gzip without a name or
# time. Run from anywhere; files are taken from the repository root.
set -euo pipefail

if [ "$#" -ne 4 ]; then
  echo "usage: $0 VERSION TARGET BINARY OUTDIR   (VERSION without the v: 1.2.3)" >&2
  exit 2
fi
version=$1 target=$2 binary=$3 outdir=$4

if ! [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "error: VERSION '$version' is not MAJOR.MINOR.PATCH[-PRE] (give 1.2.3, not v1.2.3)" >&2
  exit 2
fi
if ! [[ $target =~ ^[a-z0-9_]+(-[a-z0-9_.]+)+$ ]]; then
  echo "error: TARGET '$target' is not a target triple such as x86_64-unknown-linux-musl" >&2
  exit 2
fi
if ! [ -f "$binary" ] || ! [ -x "$binary" ]; then
  echo "error: BINARY '$binary' is not an executable file (build it first: cargo build --release --target $target)" >&2
  exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
for required in README.md CHANGELOG.md; do
  if ! [ -f "$root/$required" ]; then
    echo "error: $root/$required is missing: every archive ships it" >&2
    exit 2
  fi
done

name="infergate-$version-$target"
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

dir="$stage/$name"
mkdir "$dir"
install -m 0755 "$binary" "$dir/infergate"
install -m 0644 "$root/README.md" "$root/CHANGELOG.md" "$dir/"
shopt -s nullglob
for licence in "$root"/LICENSE*; do
  install -m 0644 "$licence" "$dir/"
done
shopt -u nullglob
# The binary embeds DejaVu Sans for the report's plots: its licence travels with it.
install -m 0644 "$root/assets/fonts/DejaVuSans-LICENSE.txt" "$dir/"

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
archive="$name.tar.gz"
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
  --format=gnu -cf - "$name" | gzip -9 -n >"$outdir/$archive"
(cd "$outdir" && sha256sum "$archive" >"$archive.sha256")
echo "$outdir/$archive"
