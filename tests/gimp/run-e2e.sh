#!/usr/bin/env bash
# End-to-end tests of Gesso's GIMP 3 plug-in in a real, headless GIMP 3.
#
#   tools/in-debian13.sh tests/gimp/run-e2e.sh    from a Debian 12 host (GIMP 3 lives in the root)
#   tests/gimp/run-e2e.sh                          where gimp-console-3.0 and libgimp-3.0-dev are
#                                                  (on a host without them it re-runs itself
#                                                  through tools/in-debian13.sh)
#
# 1. builds the plug-in with meson (build dir $GESSO_GIMP_BUILD_DIR, default build-gimp/);
# 2. installs it, and the translations compiled from po/*.po, into a throw-away
#    $XDG_CONFIG_HOME/GIMP/3.0/plug-ins/gesso/ (GIMP 3 loads a plug-in only from a folder
#    named like its executable), so nothing outside a temporary folder is touched; checks
#    that `meson install --destdir` puts the plug-in, its catalogs and the demo model where
#    GIMP and the plug-in look for them;
# 3. runs gimp-console-3.0 headless (-n -d -f, always with --quit and inside `timeout`) on the
#    cases in tests/gimp/e2e.scm, one GIMP per case, and the batch example
#    data/scripts/gesso-batch-inpaint.scm; tests/gimp/check.py judges what they leave behind;
# 4. asks GIMP for the procedures' labels and arguments (Python-Fu, the only batch
#    interpreter that can read a procedure's menu label) under LANG=C.UTF-8, de_DE.UTF-8 and
#    fr_FR.UTF-8, and checks that no two labels of a dialog share a mnemonic.
#
# Model: $GESSO_E2E_MODEL, else ../shared/conformance/models/tiny-sd1/diffusers, else the
# first model in data/models/; with none, every case is skipped (SKIP lines, exit 0).
# Prints PASS/FAIL/SKIP lines and "gimp: N passed, M failed, K skipped"; exits 1 on a FAIL.
# Environment: GESSO_GIMP_TIMEOUT (seconds per GIMP run, default 300), GESSO_E2E_KEEP=1 keeps
# the work folder (its path is printed) with every log, PNG and recipe, GESSO_E2E_SLOW=1 adds
# the Filters ▸ Repeat check (RUN-WITH-LAST-VALS at default settings: minutes).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"

if [ "${GESSO_IN_DEBIAN13:-}" != 1 ] && ! command -v gimp-console-3.0 >/dev/null &&
   [ -x "$repo/tools/in-debian13.sh" ]; then
  exec "$repo/tools/in-debian13.sh" "$here/run-e2e.sh" "$@"
fi

passed=0 failed=0 skipped=0
emit() {   # emit STATUS NAME [WHY]
  local line="$1 $2"
  [ -n "${3:-}" ] && line="$line: $3"
  echo "$line"
  case "$1" in PASS) passed=$((passed + 1)) ;; FAIL) failed=$((failed + 1)) ;;
    SKIP) skipped=$((skipped + 1)) ;; esac
}
# Runs check.py and counts the lines it prints.
judge() {
  local line
  while IFS= read -r line; do
    case "$line" in
      PASS\ *) emit PASS "${line#PASS }" ;;
      FAIL\ *) emit FAIL "${line#FAIL }" ;;
      SKIP\ *) emit SKIP "${line#SKIP }" ;;
      *) echo "$line" ;;
    esac
  done < <(python3 "$here/check.py" "$@" 2>&1)
}
finish() {
  echo "gimp: $passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
  exit $?
}

timeout_s="${GESSO_GIMP_TIMEOUT:-300}"
work=$(mktemp -d /tmp/gesso-gimp-e2e.XXXXXX)
if [ "${GESSO_E2E_KEEP:-0}" = 1 ]; then
  echo "work folder (kept): $work"
else
  trap 'rm -rf "$work"' EXIT
fi

# --- 1. build ----------------------------------------------------------------------------------
cd "$repo"
bd="${GESSO_GIMP_BUILD_DIR:-build-gimp}"
[ -d "$bd" ] && [ ! -f "$bd/build.ninja" ] && rm -rf "$bd"   # a half-configured leftover
if { [ -f "$bd/build.ninja" ] || meson setup "$bd" -Dplugin=enabled >"$work/setup.log" 2>&1; } &&
   ninja -C "$bd" plugin/gesso >"$work/build.log" 2>&1; then
  emit PASS build "meson + ninja built $bd/plugin/gesso"
else
  emit FAIL build "meson/ninja failed; last lines:"
  tail -n 25 "$work/setup.log" "$work/build.log" 2>/dev/null | sed 's/^/    | /'
  finish
fi

# --- 2. install into throw-away GIMP profiles --------------------------------------------------
unset GIMP3_DIRECTORY                     # it would override $XDG_CONFIG_HOME/GIMP/3.0
install_profile() {   # install_profile DIR: a GIMP config home with Gesso in it
  local plug="$1/GIMP/3.0/plug-ins/gesso" po lang
  install -D -m 755 "$bd/plugin/gesso" "$plug/gesso" || return 1
  for po in "$repo"/po/*.po; do
    [ -e "$po" ] || continue
    lang=$(basename "$po" .po)
    mkdir -p "$plug/locale/$lang/LC_MESSAGES"
    msgfmt -o "$plug/locale/$lang/LC_MESSAGES/gesso.mo" "$po" || return 1
  done
}
if install_profile "$work/config" && install_profile "$work/config-de" &&
   install_profile "$work/config-fr"; then
  n_mo=$(ls "$work/config/GIMP/3.0/plug-ins/gesso/locale" 2>/dev/null | wc -l)
  emit PASS install "plug-ins/gesso/gesso and $n_mo catalog(s) in a temporary XDG_CONFIG_HOME"
else
  emit FAIL install "could not install the plug-in into $work/config"
  finish
fi
# What `meson install` does for a user: files where GIMP 3 and the plug-in look for them.
mkdir -p "$work/install"
meson introspect "$bd" --installed >"$work/install/installed.json" &&
  meson introspect "$bd" --buildoptions >"$work/install/options.json" &&
  cp "$bd/gesso-config.h" "$work/install/config.h"
plugin_dir=$(python3 -c 'import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "gimp_plugin_dir"))' \
  <"$work/install/options.json")
[ -n "$plugin_dir" ] || plugin_dir="$(pkg-config --variable=gimplibdir gimp-3.0)/plug-ins"
echo "$plugin_dir" >"$work/install/plugin-dir.txt"
# only what is installed is built (not every test and benchmark)
install_targets=$(python3 -c 'import json, os, sys
bd = os.path.realpath(sys.argv[2])
for path in json.load(open(sys.argv[1])):
    if path.startswith(bd + "/"):
        print(os.path.relpath(path, bd))' "$work/install/installed.json" "$bd")
if ninja -C "$bd" $install_targets >"$work/install.log" 2>&1 &&
   meson install -C "$bd" --no-rebuild --destdir "$work/install/destdir" \
     >>"$work/install.log" 2>&1; then
  judge install "$work/install"
else
  emit FAIL install/meson "meson install --destdir failed; see $work/install.log"
fi
export XDG_CONFIG_HOME="$work/config" XDG_CACHE_HOME="$work/cache" XDG_DATA_HOME="$work/data"
unset GESSO_MODEL_PATH

# --- 3. the model ----------------------------------------------------------------------------
model="${GESSO_E2E_MODEL:-}"
if [ -z "$model" ] && [ -d "$repo/../shared/conformance/models/tiny-sd1/diffusers" ]; then
  model="$(cd "$repo/../shared/conformance/models/tiny-sd1/diffusers" && pwd -P)"
fi
if [ -z "$model" ] && [ -d "$repo/data/models" ]; then
  model=$(find "$repo/data/models" -mindepth 1 -maxdepth 1 \( -name '*.safetensors' -o -type d \) |
            sort | head -n 1)
fi
if [ -z "$model" ]; then
  for c in labels inpaint inpaint-empty generate strokes restyle lora batch; do
    emit SKIP "$c" "no model: neither ../shared/conformance/models/tiny-sd1 nor data/models/ exists"
  done
  finish
fi
echo "model: $model"
echo "GIMP: $(gimp-console-3.0 --version 2>/dev/null | sed -n 's/.*version //p')"

# gimp_run NAME INTERPRETER CODE [ENV=VALUE...]: one headless GIMP; log in $work/NAME.log,
# exit status in $rc.
gimp_run() {
  local name="$1" interp="$2" code="$3"
  shift 3
  local t0=$SECONDS
  env "$@" timeout -k 10 "$timeout_s" gimp-console-3.0 -n -d -f --quit \
    --batch-interpreter="$interp" -b "$code" >"$work/$name.log" 2>&1
  rc=$?
  echo "  ($name: gimp-console exit status $rc, $((SECONDS - t0)) s)"
}
# The error a failed run printed, on one line.
run_error() {
  local msg
  msg=$(grep -m 3 -E 'Error|error|failed|CRITICAL' "$work/$1.log" | grep -v 'g_object_unref' |
          tr '\n' ' ' | cut -c 1-400)
  [ "$rc" = 124 ] || [ "$rc" = 137 ] && msg="timed out after ${timeout_s} s. $msg"
  echo "gimp-console exit status $rc: ${msg:-see $work/$1.log}"
}
scm() {   # scm CASE ARGS...: Scheme that loads the cases and runs (e2e-CASE ARGS...)
  local c="$1"
  shift
  printf '(begin (load "%s") (e2e-%s %s))' "$here/e2e.scm" "$c" "$*"
}
q() { printf '"%s"' "$1"; }

# --- 4. labels and arguments (C, German, French) -----------------------------------------------
# GIMP keeps the labels a plug-in registered in the language it was queried in, so each
# language gets a profile of its own.
mkdir -p "$work/labels"
py="exec(open('$here/labels.py').read())"
gimp_run labels-C python-fu-eval "$py" LANG=C.UTF-8 "GESSO_E2E_OUT=$work/labels/labels-C.json"
[ "$rc" = 0 ] || emit FAIL labels/run "$(run_error labels-C)"
for lang in de fr; do
  gimp_run "labels-$lang" python-fu-eval "$py" "LANG=${lang}_${lang^^}.UTF-8" "LANGUAGE=$lang" \
    "XDG_CONFIG_HOME=$work/config-$lang" "GESSO_E2E_OUT=$work/labels/labels-$lang.json"
  [ "$rc" = 0 ] || emit FAIL "labels/run-$lang" "$(run_error "labels-$lang")"
done
judge labels "$work/labels" "$repo"

# --- 5. the procedures -------------------------------------------------------------------------
# Generate and Repeat (RUN-WITH-LAST-VALS) leave the model empty: the default model must be
# found through $GESSO_MODEL_PATH, a folder holding a link to the test model.
mkdir -p "$work/models"
ln -sfn "$model" "$work/models/tiny-test-model"
for c in inpaint generate strokes restyle; do
  mkdir -p "$work/$c"
  gimp_run "$c" plug-in-script-fu-eval "$(scm "$c" "$(q "$model")" "$(q "$work/$c")")" \
    "GESSO_MODEL_PATH=$work/models"
  if [ "$rc" = 0 ]; then
    judge "$c" "$work/$c"
  else
    emit FAIL "$c/run" "$(run_error "$c")"
  fi
done

# Realize Strokes following the strokes with a ControlNet: the tiny one made for tiny-sd1.
controlnet="$repo/../shared/conformance/models/tiny-controlnet/tiny-controlnet-fp16.safetensors"
if [ -f "$controlnet" ] && [ "$(basename "$(dirname "$model")")" = tiny-sd1 ]; then
  controlnet="$(cd "$(dirname "$controlnet")" && pwd -P)/$(basename "$controlnet")"
  mkdir -p "$work/strokes-control"
  gimp_run strokes-control plug-in-script-fu-eval \
    "$(scm strokes-control "$(q "$model")" "$(q "$controlnet")" "$(q "$work/strokes-control")")"
  if [ "$rc" = 0 ]; then
    judge strokes-control "$work/strokes-control"
  else
    emit FAIL strokes-control/run "$(run_error strokes-control)"
  fi
else
  emit SKIP strokes-control "needs ../shared/conformance's tiny-sd1 and its tiny-controlnet"
fi

# A LoRA called up in the prompt, <lora:e2e-style:1>, found in a model folder.
mkdir -p "$work/lora" "$work/lora-models"
if [ -d "$model/unet" ] && python3 "$here/make-lora.py" "$model" \
     "$work/lora-models/e2e-style.safetensors" >"$work/make-lora.log" 2>&1; then
  gimp_run lora plug-in-script-fu-eval "$(scm lora "$(q "$model")" "$(q "$work/lora")")" \
    "GESSO_MODEL_PATH=$work/lora-models"
  if [ "$rc" = 0 ]; then
    judge lora "$work/lora"
  else
    emit FAIL lora/run "$(run_error lora)"
  fi
else
  emit SKIP lora "needs a diffusers folder as the test model (make-lora.py reads its UNet)"
fi

# Filters ▸ Repeat (RUN-WITH-LAST-VALS) runs with the defaults of a fresh profile: minutes.
if [ "${GESSO_E2E_SLOW:-0}" = 1 ]; then
  mkdir -p "$work/last-vals"
  gimp_run last-vals plug-in-script-fu-eval \
    "$(scm last-vals "$(q "$model")" "$(q "$work/last-vals")")" "GESSO_MODEL_PATH=$work/models"
  if [ "$rc" = 0 ]; then
    judge last-vals "$work/last-vals"
  else
    emit FAIL restyle/with-last-vals "$(run_error last-vals)"
  fi
else
  emit SKIP restyle/with-last-vals "runs the default 30 steps at native size; GESSO_E2E_SLOW=1"
fi

# Inpaint with no selection must fail, promptly, with the message the user needs.
want="Inpaint Selection needs a selection: select the area to regenerate first"
gimp_run inpaint-empty plug-in-script-fu-eval \
  "$(scm inpaint-empty "$(q "$model")" "$(q "$work")")"
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  emit FAIL inpaint/empty-selection-error "$(run_error inpaint-empty)"
elif [ "$rc" != 0 ] && grep -qF "$want" "$work/inpaint-empty.log"; then
  emit PASS inpaint/empty-selection-error
else
  emit FAIL inpaint/empty-selection-error \
    "expected a failing call with \"$want\"; $(run_error inpaint-empty)"
fi

# --- 5b. models where A1111 and ComfyUI keep them ----------------------------------------------
# HOME holds A1111's and ComfyUI's model folders and an extra_model_paths.yaml naming one more;
# the choosers' list (plug-in-gesso-models) must offer the checkpoints, and a run naming "a"
# and the VAE "d" as the chooser shows them must record their A1111 hashes. "a" is the tiny
# SD 1.x single file with its configs in a folder named like it (no tokenizer: the bundled
# CLIP table), "d" that file's own VAE as a CompVis-layout VAE file.
conf="$repo/../shared/conformance/models"
if [ -f "$conf/tiny-sd1/tiny-sd1.safetensors" ] && [ -f "$conf/tiny-sd2/tiny-sd2-fp16.safetensors" ]
then
  h="$work/models-case/home"
  sd="$h/stable-diffusion-webui/models/Stable-diffusion"
  mkdir -p "$sd" "$h/stable-diffusion-webui/models/Lora" "$h/ComfyUI/models/checkpoints" \
    "$h/ComfyUI/models/vae" "$h/elsewhere/ckpt"
  cp "$conf/tiny-sd1/tiny-sd1.safetensors" "$sd/a.safetensors"
  for part in unet vae text_encoder scheduler; do
    mkdir -p "$sd/a/$part"
    cp "$conf/tiny-sd1/diffusers/$part/"*config.json "$sd/a/$part/"
  done
  cp "$conf/tiny-sd2/tiny-sd2-fp16.safetensors" "$h/ComfyUI/models/checkpoints/c.safetensors"
  cp "$conf/tiny-sd1/tiny-sd1.safetensors" "$h/elsewhere/ckpt/e.safetensors"
  python3 - "$sd/a.safetensors" "$h/ComfyUI/models/vae/d.safetensors" \
    "$h/stable-diffusion-webui/models/Lora/b.safetensors" <<'PY'
import json, struct, sys
def read(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]
def write(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
header, data = read(sys.argv[1])
prefix = "first_stage_model."
write(sys.argv[2], {k[len(prefix):]: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]])
                    for k, v in header.items() if k.startswith(prefix)})
write(sys.argv[3], {"lora_unet_x_attn2_to_k.lora_down.weight": ("F32", [4, 768], bytes(4 * 4 * 768))})
PY
  printf 'mine:\n  base_path: ~/elsewhere\n  checkpoints: ckpt\n' \
    >"$h/ComfyUI/extra_model_paths.yaml"
  gimp_run models plug-in-script-fu-eval "$(scm models "$(q "$model")" "$(q "$work/models-case")")" \
    "HOME=$h"
  if [ "$rc" = 0 ]; then
    judge models "$work/models-case"
  else
    emit FAIL models/run "$(run_error models)"
  fi
else
  emit SKIP models "no tiny-sd1/tiny-sd2 single files in ../shared/conformance"
fi

# --- 5c. failures the plug-in must survive (issue 11) ------------------------------------------
# One GIMP runs them all (tests/gimp/failures.py, Python-Fu: a failing call does not end the
# batch): the demo model with a NaN weight, the demo model in float32 cut in place while a
# run uses it and then used again, a 60000 x 60000 canvas. Each must end in GIMP's error
# message, never a crashed plug-in, with no new layer; a last ordinary run must still work.
demo="$repo/data/models/gesso-emoji-64"
if [ -d "$demo" ]; then
  fdir="$work/failures"
  mkdir -p "$fdir"
  if GESSO_SOURCE_DIR="$repo" python3 - "$fdir" <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ["GESSO_SOURCE_DIR"], "tests", "reliability"))
import common as c
def nan(component, tensors):
    for t in tensors:
        if component == "unet" and t[0] == "conv_in.weight":
            t[3] = b"\x00\x7e" + t[3][2:]          # the first value an F16 NaN
c.copy_model(os.path.join(sys.argv[1], "nan"), edit=nan)
c.copy_model(os.path.join(sys.argv[1], "f32"), f32=True)
c.copy_model(os.path.join(sys.argv[1], "ok"))
PY
  then
    gimp_run failures python-fu-eval "exec(open('$here/failures.py').read())" \
      "GESSO_E2E_FAILURES=$fdir"
    [ "$rc" = 0 ] || emit FAIL failures/run "$(run_error failures)"
    while IFS= read -r line; do
      case "$line" in
        PASS\ *) emit PASS "${line#PASS }" ;;
        FAIL\ *) emit FAIL "${line#FAIL }" ;;
        *) echo "$line" ;;
      esac
    done < <(python3 "$here/failures_check.py" "$fdir/failures.json" 2>&1)
  else
    emit FAIL failures/models "could not make the test models from $demo"
  fi
else
  emit SKIP failures "no demo model in data/models/gesso-emoji-64"
fi

# --- 6. the Script-Fu batch example -------------------------------------------------------------
mkdir -p "$work/batch/in" "$work/batch/out"
code="(begin (load \"$here/e2e.scm\") (load \"$repo/data/scripts/gesso-batch-inpaint.scm\")
  (e2e-batch-inputs \"$work/batch/in\")
  (gesso-batch-inpaint \"$work/batch/in/*.png\" \"$work/batch/out\" \"a small cat\"
                       \"$model\" 3 8 8 16 16))"
gimp_run batch plug-in-script-fu-eval "$code"
if [ "$rc" = 0 ]; then
  judge batch "$work/batch"
else
  emit FAIL batch/run "$(run_error batch)"
fi

finish
