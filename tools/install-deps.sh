#!/usr/bin/env bash
# Installs what Gesso needs to build and test on Debian 12 or 13 (run as root, or it uses sudo).
# Everything comes from Debian's archive; nothing else is downloaded.
set -euo pipefail

# clang's sanitizer and fuzzer runtimes are packaged per LLVM version: 14 in Debian 12,
# 19 in Debian 13
. /etc/os-release
case "${VERSION_ID:-}" in
  12) clang_rt=libclang-rt-14-dev ;;
  *) clang_rt=libclang-rt-19-dev ;;
esac

packages=(
  build-essential clang "$clang_rt" lld pkg-config meson ninja-build gettext
  libglib2.0-dev libjson-glib-dev libyaml-dev libopenblas-dev libgdk-pixbuf-2.0-dev time python3
)

# --demo: also what tools/demo.sh needs for its contact sheet
[ "${1:-}" = "--demo" ] && packages+=(python3-pil)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
