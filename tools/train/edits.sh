#!/bin/sh
# Runs Gesso's own CLI on the demo model: txt2img for a few prompts and the three edits on
# data/samples/, and puts the results side by side in data/models/gesso-emoji-64/gesso-edits.png.
#   sh tools/train/edits.sh [BUILD_DIR]     (default build; needs python3-pil for the montage)
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
G=${1:-$ROOT/build}/cli/gesso
M=$ROOT/data/models/gesso-emoji-64
S=$ROOT/data/samples
T=$(mktemp -d)
for p in "grinning face" "red apple" "cat face" "red heart" "sun" "christmas tree"; do
  $G generate --model "$M" --prompt "$p" --width 64 --height 64 --steps 25 --guidance 4 \
    --sampler ddim --seed 1 --threads 1 --out "$T/gen-$(echo "$p" | tr ' ' _).png"
done
$G inpaint --model "$M" --image "$S/remove-object.png" --mask "$S/remove-object-mask.png" \
  --prompt "" --seed 1 --threads 1 --out "$T/inpaint.png"
$G sdedit --model "$M" --image "$S/sketch.png" --prompt "grinning face" --strength 0.6 \
  --seed 1 --threads 1 --out "$T/sdedit.png"
$G restyle --model "$M" --image "$S/restyle.png" --source-prompt "red apple" \
  --prompt "green apple" --seed 1 --threads 1 --out "$T/restyle.png"
/usr/bin/python3 - "$T" "$S" "$M/gesso-edits.png" <<'PY'
import sys
from PIL import Image, ImageDraw, ImageFont
t, s, out = sys.argv[1:]
rows = [
    [(f"{t}/gen-{p.replace(' ', '_')}.png", p) for p in
     ["grinning face", "red apple", "cat face", "red heart", "sun", "christmas tree"]],
    [(f"{s}/remove-object.png", "remove-object"), (f"{t}/inpaint.png", 'inpaint ""'),
     (f"{s}/sketch.png", "sketch"), (f"{t}/sdedit.png", "sdedit 0.6"),
     (f"{s}/restyle.png", "restyle"), (f"{t}/restyle.png", "-> green apple")],
]
cell, pad = 128, 6
img = Image.new("RGB", (6 * (cell + pad) + pad, 2 * (cell + 16 + pad) + pad), "white")
d = ImageDraw.Draw(img)
font = ImageFont.load_default()
for r, row in enumerate(rows):
    for c, (path, label) in enumerate(row):
        x, y = pad + c * (cell + pad), pad + r * (cell + 16 + pad)
        d.text((x, y), label, fill=(0, 0, 0), font=font)
        img.paste(Image.open(path).convert("RGB").resize((cell, cell), Image.NEAREST), (x, y + 14))
img.save(out)
print("gesso results ->", out)
PY
rm -rf "$T"
