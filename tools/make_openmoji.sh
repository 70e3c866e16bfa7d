#!/usr/bin/env bash
# Build the OpenMoji skin-tone set (Twemoji's format; sketches are OpenMoji's own black line art):
#
#     tools/make_openmoji.sh OUT_DIR [SIZE]      # SIZE in pixels, default 64
#
# Needs python3 (with venv), npm and libcairo2. build_emoji_set.sh makes or reuses the venv
# (/tmp/twemoji-venv: cairosvg, pillow), fetches
# openmoji@17.0.0 with `npm pack`, and runs make_openmoji.py.
exec "$(dirname "${BASH_SOURCE[0]}")/build_emoji_set.sh" "openmoji@17.0.0" make_openmoji.py "$@"
