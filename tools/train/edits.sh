#!/bin/sh
# Refreshes the model card's picture of Gesso's own edits (gesso-edits.png) from tools/demo.sh.
#   sh tools/train/edits.sh [BUILD_DIR]
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
"$ROOT/tools/demo.sh" "${1:-$ROOT/build}" "$T"
cp "$T/contact-sheet.png" "$ROOT/data/models/gesso-emoji-64/gesso-edits.png"
rm -rf "$T"
