#!/bin/sh
# Runs the four edits through the gesso CLI on data/samples/ with the bundled demo model and
# writes each result plus a captioned contact sheet (contact-sheet.png) to OUT_DIR.
#   tools/demo.sh [BUILD_DIR [OUT_DIR]]      defaults: build, out
# Needs python3-pil for the contact sheet (tools/install-deps.sh --demo installs it).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
OUT=${2:-$ROOT/out}
G=$BUILD/cli/gesso
M=$ROOT/data/models/gesso-emoji-64
S=$ROOT/data/samples
mkdir -p "$OUT"

step() { printf '\n[%s] %s\n' "$1" "$2" >&2; }
step "1/4" "generate: six prompts"
for p in "grinning face" "red apple" "cat face" "red heart" "sun" "christmas tree"; do
  $G generate --model "$M" --prompt "$p" --width 64 --height 64 --steps 25 --guidance 4 \
    --sampler ddim --seed 1 --out "$OUT/generate-$(echo "$p" | tr ' ' -).png"
done
step "2/4" "inpaint: remove the star"
$G inpaint --model "$M" --image "$S/remove-object.png" --mask "$S/remove-object-mask.png" \
  --prompt "" --seed 1 --out "$OUT/inpaint.png"
step "3/4" "sdedit: realize the sketch"
$G sdedit --model "$M" --image "$S/sketch.png" --prompt "grinning face" --strength 0.6 \
  --seed 1 --out "$OUT/sdedit.png"
step "4/4" "restyle: red apple to green apple"
$G restyle --model "$M" --image "$S/restyle.png" --source-prompt "red apple" \
  --prompt "green apple" --seed 1 --out "$OUT/restyle.png"

# Debian's interpreter, where python3-pil lives (not a python3 earlier on PATH)
/usr/bin/python3 - "$OUT" "$S" <<'PY'
import sys
from PIL import Image, ImageDraw, ImageFont
out, s = sys.argv[1:]
prompts = ["grinning face", "red apple", "cat face", "red heart", "sun", "christmas tree"]
rows = [
    [(f"{out}/generate-{p.replace(' ', '-')}.png", p) for p in prompts],
    [(f"{s}/remove-object.png", "remove-object"), (f"{out}/inpaint.png", 'inpaint ""'),
     (f"{s}/sketch.png", "sketch"), (f"{out}/sdedit.png", "sdedit 0.6"),
     (f"{s}/restyle.png", "restyle"), (f"{out}/restyle.png", "-> green apple")],
]
cell, pad = 128, 6
sheet = Image.new("RGB", (6 * (cell + pad) + pad, 2 * (cell + 16 + pad) + pad), "white")
draw = ImageDraw.Draw(sheet)
font = ImageFont.load_default()
for r, row in enumerate(rows):
    for c, (path, label) in enumerate(row):
        x, y = pad + c * (cell + pad), pad + r * (cell + 16 + pad)
        draw.text((x, y), label, fill=(0, 0, 0), font=font)
        tile = Image.open(path).convert("RGB").resize((cell, cell), Image.NEAREST)
        sheet.paste(tile, (x, y + 14))
sheet.save(f"{out}/contact-sheet.png")
print(f"results and contact sheet in {out}/")
PY
