#!/usr/bin/env bash
# Build the libFuzzer targets with ASan and UBSan, seed them with every file the io tests
# build, run each for a bounded time and print how many inputs it executed. Exits non-zero on
# any crash, leak, sanitizer report or build failure.
#
#   tools/fuzz-smoke.sh [SECONDS_PER_TARGET]      (default 60)
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), GESSO_FUZZ_CORPUS_DIR (where the seeds go;
# default FUZZ_BUILD_DIR/fuzz-seeds). Needs clang and libclang-rt (libFuzzer).
set -euo pipefail

seconds=${1:-60}
case $seconds in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
seeds=${GESSO_FUZZ_CORPUS_DIR:-$build/fuzz-seeds}

# -Wno-pass-failed: sanitizer instrumentation keeps clang from vectorising the kernels'
# `omp simd` loops, which it reports as a warning (an error under -Werror) in this build only
if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" "$top" -Dfuzzing=true -Db_sanitize=address,undefined \
    -Db_lundef=false -Dplugin=disabled -Dc_args=-Wno-pass-failed
fi
ninja -C "$build" tests/fuzz/fuzz-safetensors tests/fuzz/fuzz-config tests/fuzz/fuzz-ldm_yaml \
  tests/fuzz/fuzz-comfy_paths tests/fuzz/fuzz-header_scan tests/fuzz/fuzz-image \
  cli/gesso tests/test-safetensors tests/test-config tests/test-model-files tests/test-ldm-yaml \
  tests/cli/test-cli

# UBSan only reports by default; make every finding fatal, and keep leak checking on
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

# seeds: the io tests write every file they build when GESSO_FUZZ_CORPUS_DIR is set (they run
# sanitized here too, which is a check of its own)
rm -rf "$seeds"
mkdir -p "$seeds/safetensors" "$seeds/config" "$seeds/ldm_yaml" "$seeds/comfy_paths" \
  "$seeds/header_scan" \
  "$seeds/image"
# images: the samples (PNG with and without alpha), a progressive JPEG, and each of them cut
cp "$top"/data/samples/*.png "$top"/tests/reliability/data/*.jpg "$seeds/image/"
for f in "$seeds"/image/*; do head -c $(( $(stat -c %s "$f") / 2 )) "$f" >"$f.cut"; done
# ComfyUI's extra_model_paths.yaml: the example file's shape, and a few of its variations
printf 'a111:\n    base_path: ../webui/\n    checkpoints: models/Stable-diffusion\n    loras: |\n         models/Lora\n         models/LyCORIS\n    is_default: true\n' \
  >"$seeds/comfy_paths/a111.yaml"
printf 'comfy:\n  base_path: ~/models\n  vae: [a, b]\n  nested: {x: {y: z}}\n  embeddings: emb\n' \
  >"$seeds/comfy_paths/nested.yaml"
GESSO_FUZZ_CORPUS_DIR=$seeds meson test -C "$build" --no-rebuild --print-errorlogs \
  safetensors config model-files ldm-yaml cli

status=0
# the header pass reads what a safetensors header holds: the JSON of the safetensors seeds
for f in "$seeds"/safetensors/*; do
  [ -f "$f" ] && tail -c +9 "$f" | head -c 65536 >"$seeds/header_scan/$(basename "$f")"
done
for target in safetensors config ldm_yaml comfy_paths header_scan image; do
  exe=$build/tests/fuzz/fuzz-$target
  corpus=$build/fuzz-corpus/$target          # grows run over run; the seeds stay as they are
  log=$build/fuzz-$target.log
  artifacts=$build/fuzz-artifacts/$target/
  mkdir -p "$corpus" "$artifacts"
  echo "fuzz-$target: $(ls "$seeds/$target" | wc -l) seeds, ${seconds}s"
  set +e
  "$exe" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts" -dict="$top/tests/fuzz/$target.dict" \
    "$corpus" "$seeds/$target" > "$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  echo "fuzz-$target: exit $rc, ${execs:-?} executions, corpus $(ls "$corpus" | wc -l) files"
  findings='ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|deadly signal'
  if [ "$rc" -ne 0 ] || grep -qE "$findings" "$log"; then
    echo "fuzz-$target FAILED; see $log; the input is in $artifacts" >&2
    grep -E 'ERROR:|runtime error:|SUMMARY' "$log" | head -n 20 >&2 || true
    status=1
  fi
done
exit $status
