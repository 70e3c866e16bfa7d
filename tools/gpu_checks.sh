#!/usr/bin/env bash
# The GPU checks of issues 15 and 11 in two commands of under 10 minutes each (the `device` tool's
# limit a call), for a session lent a GPU machine, where every minute counts. Prepared on the CPU;
# each step has its own timeout, so one that hangs cannot spend the others' time, and each writes
# its result under OUT as it ends.
#
#   bash tools/gpu_checks.sh speed   [OUT]  # install, the gpu tests, colorgan's loop against the plain one (~8 min)
#   bash tools/gpu_checks.sh quality [OUT]  # the seed recipe as typed, scored; Twemoji rows (~6 min)
#
# OUT: $OUT on the device machine, else ./gpu-checks. The Twemoji rows need the set in
# data/twemoji64 (ignored by git: build it here with `bash ../shared/datasets/make_twemoji.sh
# data/twemoji64` and name it in `run`'s carry); without it they are skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
PART=${1:-}
case "$PART" in speed|quality) ;; *) echo "usage: bash tools/gpu_checks.sh speed|quality [OUT]" >&2; exit 2 ;; esac
OUT=${2:-${OUT:-gpu-checks}}
mkdir -p "$OUT"
log() { echo "== $(date +%T) $*" | tee -a "$OUT/summary.txt"; }
step() {  # step NAME SECONDS COMMAND...: run it, keep its output, note its exit status
  local name=$1 limit=$2; shift 2
  log "$name: $*"
  timeout "$limit" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
  log "$name: exit $?"
}

# The machine has torch, accelerate, timm, safetensors and the rest installed, wandb not: colorgan
# alone, without touching them.
step install 240 python3 -m pip install -q --no-deps --no-build-isolation -e .
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.csv" 2>&1
python3 -c "import torch, accelerate; print(torch.__version__, accelerate.__version__)" >"$OUT/versions.txt" 2>&1

if [ "$PART" = speed ]; then
  # Issue 15: the gpu-marked tests, then colorgan's loop against the plain loop at the four sizes.
  step gpu_tests 420 python3 -m pytest -q -m gpu tests/test_gpu.py
  step speed_seed_b1 240 colorgan bench speed --recipe recipes/seed-unet256.yaml --steps 300 --device cuda --json
  step speed_seed_b16 240 colorgan bench speed --recipe recipes/seed-unet256.yaml -o train.batch_size=16 --steps 60 \
    --device cuda --json
  step speed_quickstart_b8 240 colorgan bench speed --recipe recipes/quickstart.yaml --steps 300 --device cuda --json
  step speed_quickstart_b64 240 colorgan bench speed --recipe recipes/quickstart.yaml -o train.batch_size=64 \
    --steps 150 --device cuda --json
  exit 0
fi

# Issue 15: the seed recipe as typed (50 epochs with its validation: >= 35 dB within 90 s; the
# summary's times are its wall time), scored.
step seed_train 300 colorgan train recipes/seed-unet256.yaml --out "$OUT/seed" --overwrite
step seed_evaluate 120 colorgan evaluate "$OUT/seed/model.safetensors" --json

# Issue 11: the quickstart and real-icons on Twemoji's held-out characters, one after the other.
if [ -d data/twemoji64 ]; then
  for recipe in quickstart real-icons real-icons-gpu; do
    step "twemoji_$recipe" 150 colorgan bench quality --recipe "recipes/$recipe.yaml" --minutes 1.7 \
      -o data.path=data/twemoji64 -o data.holdout.kind=auto --device cuda --json
  done
else
  log "twemoji: skipped (no data/twemoji64)"
fi
# What comes back is the results, not the weights and optimizer state.
rm -rf "$OUT/seed/checkpoints" "$OUT/seed/model.safetensors"
