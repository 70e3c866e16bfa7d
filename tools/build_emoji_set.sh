#!/usr/bin/env bash
# What make_fluent_emoji.sh and make_openmoji.sh share: check the tools, make the venv that
# ../shared/datasets/make_twemoji.sh makes (/tmp/twemoji-venv: cairosvg, pillow) if it is missing,
# fetch the npm package with `npm pack`, and run the builder on it.
#
#     tools/build_emoji_set.sh NPM_PACKAGE@VERSION BUILDER.py OUT_DIR [SIZE]
set -euo pipefail
VENV=/tmp/twemoji-venv
PACKAGE=$1; BUILDER=$2; shift 2
NAME=$(basename "$BUILDER" .py).sh
die() { echo "$NAME: $*" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $NAME OUT_DIR [SIZE]" >&2; exit 2; }
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
"$VENV/bin/python" "$HERE/$BUILDER" "$OUT" --size "$SIZE" --package "$TMP/package"
