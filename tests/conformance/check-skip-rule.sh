#!/bin/sh
# The harness's SKIP rule, checked on a conformance folder made here from the real one:
# a case of a model the engine runs fails when its numbers are off (here: a tolerance no
# result can meet), while a case of a model the engine does not run (an SDXL refiner, made
# here as a one-tensor file) and a case of a family without a handler are skipped with a
# reason, and the run fails overall.
# Usage: check-skip-rule.sh HARNESS CONFORMANCE_DIR
set -u
harness=$1
source_dir=$2
if [ ! -f "$source_dir/unet/unet-tiny-sdxl-00-t1.json" ]; then
  echo "no conformance data with an SDXL UNet case at $source_dir: skipped"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/unet" "$work/depth" "$work/models/tiny-refiner"
ln -s "$source_dir/models/tiny-sd1" "$work/models/tiny-sd1"
cp "$source_dir/unet/unet-tiny-sd1-00-t1.safetensors" "$work/unet/"
cp "$source_dir/unet/unet-tiny-sdxl-00-t1.safetensors" "$work/unet/unet-tiny-refiner-00-t1.safetensors"
python3 - "$source_dir/unet" "$work" <<'PY'
import json, struct, sys
src, work = sys.argv[1], sys.argv[2]
m = json.load(open(src + "/unet-tiny-sd1-00-t1.json"))
m["tolerance"]["max_abs"] = -1.0
json.dump(m, open(work + "/unet/unet-tiny-sd1-00-t1.json", "w"))
m = json.load(open(src + "/unet-tiny-sdxl-00-t1.json"))
m["model"] = "tiny-refiner"
m["tensor_file"] = "unet-tiny-refiner-00-t1.safetensors"
json.dump(m, open(work + "/unet/unet-tiny-refiner-00-t1.json", "w"))
# an SDXL refiner keeps OpenCLIP bigG alone, as conditioner embedder 0
header = json.dumps({"conditioner.embedders.0.model.ln_final.weight":
                     {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
with open(work + "/models/tiny-refiner/tiny-refiner.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, 1.0))
PY
printf '{"family": "depth", "model": "tiny-sd1"}\n' > "$work/depth/depth-tiny-sd1-00.json"

out=$(GESSO_CONFORMANCE_DIR="$work" "$harness" unet-tiny 2>&1; echo "exit=$?")
out="$out
$(GESSO_CONFORMANCE_DIR="$work" "$harness" depth 2>&1)"
# shown indented: the FAIL lines here are the expected ones, not results of this suite
printf '%s\n' "$out" | sed 's/^/  | /'
fail=0
expect() {
  if ! printf '%s\n' "$out" | grep -q -- "$1"; then
    echo "expected a line matching: $1"; fail=1
  fi
}
expect '^FAIL unet-tiny-sd1-00-t1 diffusers '
expect '^SKIP unet-tiny-refiner-00-t1 .*is an SDXL refiner'
expect '^SKIP depth-tiny-sd1-00 .*no handler for case family .depth.'
expect '^exit=1$'
if printf '%s\n' "$out" | grep -q '^FAIL unet-tiny-refiner\|^FAIL depth'; then
  echo "a case of an unsupported family failed instead of being skipped"; fail=1
fi
if [ $fail = 0 ]; then echo "skip rule: ok"; fi
exit $fail
