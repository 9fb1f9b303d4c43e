#!/usr/bin/env bash
# Makes the reference environment Gesso's own conformance cases are generated in: a copy of
# the Debian 13 root (tools/debian13-root.sh) with Debian's python3-torch, plus diffusers,
# huggingface_hub and transformers from their public source. Nothing here is part of a build
# or a test run; CI never needs it.
#
#   tools/reference/reference-root.sh DIFFUSERS_SRC HUB_SRC TRANSFORMERS_SRC
#
# The three arguments are checkouts (git clones) of huggingface/diffusers,
# huggingface/huggingface_hub and a transformers tree (TonyRHouston/huggingface-transformers:
# upstream's history is too large to fetch here). Root: $GESSO_REFERENCE_ROOT (default
# /var/cache/gesso/debian13-ref). Then run a generator inside it, e.g.
#
#   GESSO_DEBIAN13_ROOT=/var/cache/gesso/debian13-ref tools/in-debian13.sh sh -c \
#     'PYTHONPATH=/opt/ref:/opt/ref/stubs python3 tools/reference/controlnet-cases.py \
#        --shared ../shared/conformance --out tests/conformance/cases'
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,16p' "$0"; exit 2; }
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
base="${GESSO_DEBIAN13_ROOT:-/var/cache/gesso/debian13-root}"
root="${GESSO_REFERENCE_ROOT:-/var/cache/gesso/debian13-ref}"
diffusers_src=$(cd "$1" && pwd -P)
hub_src=$(cd "$2" && pwd -P)
transformers_src=$(cd "$3" && pwd -P)

[ -d "$base/usr" ] || "$here/../in-debian13.sh" true        # builds the base root once
[ -d "$root/usr" ] || cp -a "$base" "$root"
GESSO_DEBIAN13_ROOT="$root" "$here/../in-debian13.sh" sh -c '
  apt-get update -qq &&
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    python3-torch python3-safetensors python3-regex python3-requests python3-filelock \
    python3-pil python3-numpy python3-tqdm python3-fsspec python3-httpx python3-yaml \
    python3-packaging python3-typing-extensions'

ref="$root/opt/ref"
rm -rf "$ref"
mkdir -p "$ref/stubs/tokenizers"
cp -a "$diffusers_src/src/diffusers" "$hub_src/src/huggingface_hub" \
      "$transformers_src/src/transformers" "$ref/"

# Imported from source, the packages have no installed metadata, which transformers' and
# diffusers' version checks look for: give each the version its source declares.
dist_info() {  # NAME VERSION DIR
  mkdir -p "$3/$1-$2.dist-info"
  printf 'Metadata-Version: 2.1\nName: %s\nVersion: %s\n' "$1" "$2" > "$3/$1-$2.dist-info/METADATA"
}
version_of() { sed -n 's/^__version__ = "\([0-9]*\.[0-9]*\.[0-9]*\).*/\1/p' "$1" | head -1; }
dist_info huggingface_hub "$(version_of "$hub_src/src/huggingface_hub/__init__.py")" "$ref"
dist_info transformers "$(version_of "$transformers_src/src/transformers/__init__.py")" "$ref"

# transformers imports the Rust `tokenizers` at module level in places the reference never
# uses (the generators pass prompt embeddings, not text); Debian does not package it, so a
# stub that fails on any real use stands in.
cat > "$ref/stubs/tokenizers/__init__.py" <<'EOF'
class _Missing:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("tokenizers stub: the Rust tokenizers library is not installed")

    def __getattr__(self, name):
        return _Missing


def __getattr__(name):
    return _Missing
EOF
for m in decoders normalizers pre_tokenizers processors models trainers; do
  echo "from tokenizers import __getattr__  # noqa: F401" > "$ref/stubs/tokenizers/$m.py"
done
dist_info tokenizers 0.22.0 "$ref/stubs"
echo "reference root ready: $root (PYTHONPATH=/opt/ref:/opt/ref/stubs)"
