#!/usr/bin/env bash
# The main job, from a fresh clone on Debian 12 or 13: installs the dependencies from Debian's
# archive, builds, installs the GIMP plug-in for this user when a GIMP 3 is present, and runs
# the four edits on data/samples/ with the bundled demo model, writing PNGs and a contact
# sheet to out/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out}"
start=$(date +%s)
tools/install-deps.sh --demo
[ -d build ] || meson setup build
ninja -C build
if pkg-config --exists gimp-3.0 2>/dev/null; then
  # a per-user install: the plug-in where GIMP 3 looks, the rest under ~/.local
  meson configure build -Dprefix="$HOME/.local" \
    -Dgimp_plugin_dir="$HOME/.config/GIMP/3.0/plug-ins" >/dev/null
  meson install -C build >/dev/null \
    && echo "GIMP plug-in installed in ~/.config/GIMP/3.0/plug-ins/gesso"
else
  echo "no GIMP 3 here (Debian 12 has none): skipping the plug-in install;" \
       "tools/in-debian13.sh tests/gimp/run-e2e.sh runs it in a real GIMP 3"
fi
build/cli/gesso info data/models/gesso-emoji-64
infer_start=$(date +%s)
tools/demo.sh build "$out"
end=$(date +%s)
echo "done in $((end - start)) s (edits: $((end - infer_start)) s); open $out/contact-sheet.png"
