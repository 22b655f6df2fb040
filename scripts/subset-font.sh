#!/usr/bin/env bash
# Rebuilds assets/fonts/NotoSansCJKkr-Subset.otf, the font the Korean
# report's plots are drawn with (src/report/plots.rs), from Debian's
# fonts-noto-cjk package with fonttools' subsetter.
#
# The subset keeps Noto Sans CJK KR Regular's glyphs for printable ASCII,
# Latin-1, a little punctuation the plots print (– — ‘ ’ “ ” … → ≤ ≥ −) and
# the 2,350 Hangul syllables of KS X 1001 (the syllables of EUC-KR, which
# covers everyday Korean), so that any Korean label draws, not only today's.
# Measured: 264,276 bytes; with only the 50 syllables of today's chart labels
# it would be 20,432 bytes, and every new label would need this script again.
# Layout features and vertical metrics are dropped: plotters draws glyph by
# glyph, horizontally, with no shaping.
#
# Usage: scripts/subset-font.sh [WORKDIR]   (needs apt-get, dpkg-deb, python3)
# The result is byte-for-byte the committed file when the pinned versions
# below are used; the script prints its SHA-256.
set -euo pipefail
cd "$(dirname "$0")/.."

deb_version="1:20220127+repack1-1"
fonttools_version="4.68.0"
work=${1:-$(mktemp -d)}
out=assets/fonts/NotoSansCJKkr-Subset.otf

mkdir -p "$work"
(cd "$work" && apt-get download "fonts-noto-cjk=$deb_version")
dpkg-deb -x "$work"/fonts-noto-cjk_*.deb "$work/deb"
ttc="$work/deb/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "fonttools==$fonttools_version"

# The KS X 1001 syllables: every two-byte EUC-KR code from 0xB0A1 to 0xC8FE.
"$work/venv/bin/python" - "$work/hangul.txt" <<'EOF'
import sys
chars = []
for hi in range(0xB0, 0xC9):
    for lo in range(0xA1, 0xFF):
        try:
            c = bytes([hi, lo]).decode("euc_kr")
        except UnicodeDecodeError:
            continue
        if "\uac00" <= c <= "\ud7a3":
            chars.append(c)
assert len(chars) == 2350, len(chars)
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write("".join(chars))
EOF

# The collection's font 1 is Noto Sans CJK KR (0 JP, 2 SC, 3 TC, 4 HK).
"$work/venv/bin/python" - "$ttc" <<'EOF'
import sys
from fontTools.ttLib import TTCollection
name = TTCollection(sys.argv[1]).fonts[1]["name"].getDebugName(4)
assert name == "Noto Sans CJK KR", name
EOF

"$work/venv/bin/pyftsubset" "$ttc" --font-number=1 \
  --unicodes="U+0020-007E,U+00A0-00FF,U+2013-2014,U+2018-2019,U+201C-201D,U+2026,U+2192,U+2212,U+2264-2265" \
  --text-file="$work/hangul.txt" \
  --layout-features='' --no-hinting --name-IDs='*' \
  --drop-tables+=VORG,vhea,vmtx,BASE \
  --output-file="$out"
ls -l "$out"
sha256sum "$out"
