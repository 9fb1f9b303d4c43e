#!/usr/bin/env bash
# The main job, from a fresh clone: install dependencies, build, and show what the engine
# reads from the reference models (later milestones replace this with the four edits).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
[ -d build ] || meson setup build
ninja -C build
models="${GESSO_CONFORMANCE_DIR:-../shared/conformance}/models"
if [ ! -d "$models" ]; then
  echo "no models found at $models; pass a model: build/cli/gesso info MODEL" >&2
  exit 1
fi
for m in "$models"/*/diffusers "$models"/*/*.safetensors; do
  build/cli/gesso info "$m"
  echo
done
