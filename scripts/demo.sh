#!/usr/bin/env bash
# The main job: install, build, import the ImageNet weights, fine-tune MobileNetV2 on ../shared's brain MRI
# dataset (or reuse the model of a previous run), evaluate it, then serve it with the web UI.
#   MRISCAN_RUN      run directory (default runs/main)
#   MRISCAN_QUICK=1  quick mode: frozen prefix + cached activations, a few minutes instead of the full schedule
#   MRISCAN_PORT     server port (default 8080)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
run="${MRISCAN_RUN:-runs/main}"
mkdir -p runs
if [ ! -f runs/imagenet_backbone.safetensors ]; then
  build/mriscan convert --out runs/imagenet_backbone.safetensors
fi
if [ ! -f "$run/model.safetensors" ]; then
  if [ -f "$run/resume/state.safetensors" ]; then
    build/mriscan train --resume "$run"
  elif [ "${MRISCAN_QUICK:-0}" = 1 ]; then
    build/mriscan train --weights runs/imagenet_backbone.safetensors --out "$run" \
      --frozen-blocks 14 --cache-frozen --no-augment --low-res-epochs 0 --epochs 8 --lr 1e-3
  else
    # the default recipe, chosen on validation (docs/results/2026-11-27-recipe-selection.md): features.0-3
    # frozen, warm-up + cosine decay, the first epochs at 160 px
    build/mriscan train --weights runs/imagenet_backbone.safetensors --out "$run"
  fi
fi
build/mriscan eval --model "$run/model.safetensors"
echo "plots and metrics: $run/*.png $run/metrics.json"
exec build/mriscan serve --model "$run/model.safetensors" --state-dir runs/server --port "${MRISCAN_PORT:-8080}"
