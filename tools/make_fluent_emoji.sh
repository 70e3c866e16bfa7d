#!/usr/bin/env bash
# Build the Fluent Emoji (flat) skin-tone set, Twemoji's format in another art style:
#
#     tools/make_fluent_emoji.sh OUT_DIR [SIZE]      # SIZE in pixels, default 64
#
# Needs python3 (with venv), npm and libcairo2. build_emoji_set.sh makes or reuses the venv
# (/tmp/twemoji-venv: cairosvg, pillow), fetches
# @iconify-json/fluent-emoji-flat@1.2.6 with `npm pack`, and runs make_fluent_emoji.py.
exec "$(dirname "${BASH_SOURCE[0]}")/build_emoji_set.sh" "@iconify-json/fluent-emoji-flat@1.2.6" make_fluent_emoji.py "$@"
