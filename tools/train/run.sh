#!/bin/sh
# Reproduces Gesso's demo model data/models/gesso-emoji-64 from scratch on a CPU:
#   sh tools/train/run.sh [WORK_DIR]        (default /var/tmp/gesso-train; ~80 min on a busy 2-core machine)
# Every stage is seeded and resumable: rerun the same command after an interruption and it
# continues from the last checkpoint (WORK_DIR/ckpt). Needs Debian's python3-torch,
# python3-numpy, python3-pil, python3-regex (installed here with apt-get when missing) and
# npm (to fetch the emoji-datasource-google package). Nothing comes from PyPI or model hubs.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${1:-/var/tmp/gesso-train}
PY=/usr/bin/python3
PKG=emoji-datasource-google@16.0.0
VAE_STEPS=${VAE_STEPS:-300}
DECODER_STEPS=${DECODER_STEPS:-600}
UNET_STEPS=${UNET_STEPS:-1000}
SHORT_STEPS=$((UNET_STEPS / 10))
export OMP_WAIT_POLICY=PASSIVE   # OpenMP threads must not spin on a shared 2-core machine

if ! $PY -c 'import torch, numpy, PIL, regex' 2>/dev/null; then
  apt-get install -y python3-torch python3-numpy python3-pil python3-regex
fi
mkdir -p "$WORK/npm"
if [ ! -f "$WORK/npm/package/emoji.json" ]; then
  (cd "$WORK/npm" && npm pack "$PKG" && tar xzf emoji-datasource-google-*.tgz)
fi
[ -f "$WORK/data.npz" ] || $PY "$HERE/prepare_data.py" "$WORK/npm/package" "$WORK/data.npz"
if [ ! -f "$WORK/tokenizer/vocab.json" ]; then
  $PY -c "import numpy as np, json, sys; d = np.load(sys.argv[1]); \
open(sys.argv[2], 'w').write('\n'.join(c for cs in json.loads(str(d['captions'])) for c in cs) + '\n')" \
    "$WORK/data.npz" "$WORK/corpus.txt"
  $PY "$HERE/bpe.py" train "$WORK/corpus.txt" "$WORK/tokenizer" --vocab-size 2048
fi
$PY "$HERE/train.py" vae --work "$WORK" --steps "$VAE_STEPS" --batch 16
[ -f "$WORK/latents.pt" ] || $PY "$HERE/train.py" latents --work "$WORK"
# (the shipped model ran this stage alongside the UNet stage, on one thread)
$PY "$HERE/train.py" decoder --work "$WORK" --steps "$DECODER_STEPS" --batch 16 --threads 1
$PY "$HERE/train.py" unet --work "$WORK" --steps "$UNET_STEPS" --batch 64 --keep "$SHORT_STEPS"
$PY "$HERE/evaluate.py" --work "$WORK" --json "$WORK/eval.json" \
  unet-0.pt:raw "unet-$SHORT_STEPS.pt:ema" "unet-$SHORT_STEPS.pt:raw" unet.pt:ema unet.pt:raw
$PY "$HERE/export.py" --work "$WORK" --out "$ROOT/data/models/gesso-emoji-64" \
  --refs "$ROOT/tests/demo-model/reference.safetensors"
$PY "$HERE/plot_loss.py" "$WORK" "$ROOT/data/models/gesso-emoji-64/loss.png" "$UNET_STEPS"
$PY "$HERE/sample.py" --work "$WORK" --out "$ROOT/data/models/gesso-emoji-64/samples.png" --seeds 2
# the check Gesso must pass on the exported folder: meson test demo-model (tests/demo-model)
