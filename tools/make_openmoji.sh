#!/usr/bin/env bash
# Build the OpenMoji skin-tone set (Twemoji's format; sketches are OpenMoji's own black line art):
#
#     tools/make_openmoji.sh OUT_DIR [SIZE]      # SIZE in pixels, default 64
#
# Needs python3 (with venv), npm and libcairo2. Uses the venv that ../shared/datasets/make_twemoji.sh
# makes (/tmp/twemoji-venv: cairosvg, pillow), creating it the same way if missing, fetches
# openmoji@17.0.0 with `npm pack`, and runs make_openmoji.py.
set -euo pipefail
PACKAGE="openmoji@17.0.0"
VENV=/tmp/twemoji-venv
die() { echo "make_openmoji.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 OUT_DIR [SIZE]" >&2; exit 2; }
OUT=$1; SIZE=${2:-64}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -e "$OUT/Metadata.csv" ] && { echo "$OUT/Metadata.csv exists: nothing to do (delete $OUT to rebuild)"; exit 0; }
command -v npm >/dev/null || die "npm not found; on Debian: sudo apt-get install npm"
if ! "$VENV/bin/python" -c "import cairosvg, PIL" 2>/dev/null; then
    python3 -m venv "$VENV" || die "python3 -m venv failed; on Debian: sudo apt-get install python3-venv"
    "$VENV/bin/pip" install --quiet cairosvg==2.9.1 pillow==12.3.0 || die "pip install cairosvg pillow failed"
fi
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "$PACKAGE" >/dev/null) || die "npm pack $PACKAGE failed (see above)"
tar -xzf "$TMP"/*.tgz -C "$TMP"
"$VENV/bin/python" "$HERE/make_openmoji.py" "$OUT" --size "$SIZE" --package "$TMP/package"
