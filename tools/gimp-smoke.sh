#!/usr/bin/env bash
# Smoke test of the Debian 13 root (tools/debian13-root.sh): real GIMP 3 runs headless and
# Script-Fu batch works, and Gesso builds and passes its tests there (gcc 14, GIMP 3 headers).
#
#   tools/gimp-smoke.sh               everything (builds the root first if needed)
#   tools/gimp-smoke.sh --gimp-only   only the GIMP checks
#   tools/gimp-smoke.sh --build-only  only the meson build and tests (in build-debian13/)
#   tools/gimp-smoke.sh [--gimp-only|--build-only] -- ARGS   ARGS go to `meson test`
#                                     (e.g. -- --suite unit --suite cli: skip the slow suites)
#
# GIMP checks, each in `timeout` and with --quit (without --quit a failing batch command
# leaves GIMP running and the caller hangs):
#   1. a Script-Fu batch creates an image, adds a layer, fills it red and saves a PNG under
#      /tmp; the PNG must exist, be 64x48 and red (fresh GIMP profile: the cold start);
#   2. a failing batch command must make gimp-console exit non-zero promptly (warm start);
#   3. the same GIMP under Xvfb (xvfb-run), as GUI tests and screenshots will need.
# Environment: GESSO_GIMP_TIMEOUT (seconds per GIMP run, default 300),
# GESSO_DEBIAN13_BUILD_DIR (default build-debian13; use it only inside the root).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/.." && pwd -P)"

# On the host: run this same script inside the root.
if [ "${GESSO_IN_DEBIAN13:-}" != 1 ]; then
  exec "$here/in-debian13.sh" "$here/gimp-smoke.sh" "$@"
fi

do_gimp=1 do_build=1
test_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --gimp-only) do_build=0 ;;
    --build-only) do_gimp=0 ;;
    --) shift; test_args=("$@"); break ;;
    *) echo "usage: $0 [--gimp-only|--build-only] [-- MESON-TEST-ARGS...]" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '[gimp-smoke] %s\n' "$*"; }
failures=()
fail() { say "FAIL: $*"; failures+=("$*"); }

say "inside: $(. /etc/os-release && echo "$PRETTY_NAME")"
gimp_version=$(gimp-console-3.0 --version 2>/dev/null | sed -n 's/.*version //p')
say "GIMP: ${gimp_version:-?} ($(command -v gimp-console-3.0))"
say "gcc: $(gcc -dumpfullversion), meson: $(meson --version), ninja: $(ninja --version)"
if pc=$(pkg-config --modversion gimp-3.0 gimpui-3.0 2>&1); then
  say "pkg-config gimp-3.0 / gimpui-3.0: ${pc//$'\n'/ }"
else
  fail "pkg-config cannot find gimp-3.0/gimpui-3.0: $pc"
fi

# --- GIMP -------------------------------------------------------------------------------
timeout_s="${GESSO_GIMP_TIMEOUT:-300}"
work=$(mktemp -d /tmp/gesso-gimp-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
# A fresh, writable GIMP profile and cache for this run only: results never depend on what an
# earlier run left in /root/.config/GIMP.
export GIMP3_DIRECTORY="$work/profile" XDG_CACHE_HOME="$work/cache"

# gimp_batch NAME [xvfb-run -a] -- SCHEME: runs one batch; output in $work/NAME.log, status in
# $rc, seconds in $secs. -n new instance, -d no brushes/patterns/..., -f no fonts: faster start.
gimp_batch() {
  local name="$1"; shift
  local pre=()
  while [ "$1" != -- ]; do pre+=("$1"); shift; done
  shift
  local t0
  t0=$(date +%s.%N)
  set +e
  timeout -k 10 "$timeout_s" "${pre[@]}" gimp-console-3.0 -n -d -f --quit \
    --batch-interpreter=plug-in-script-fu-eval -b "$1" >"$work/$name.log" 2>&1
  rc=$?
  set -e
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  # -d leaves some resources out; the warnings about them are expected noise
  grep -v -e 'resource name is invalid' -e '^$' "$work/$name.log" | sed 's/^/    | /' || true
  [ "$rc" = 124 ] || [ "$rc" = 137 ] && say "$name: gimp-console timed out after ${timeout_s} s"
  return 0
}

if [ "$do_gimp" = 1 ]; then
  png="$work/smoke.png"
  # Script-Fu batch starts in the v2 dialect: procedures return lists, hence (car ...).
  scheme="
(let* ((img (car (gimp-image-new 64 48 RGB)))
       (layer (car (gimp-layer-new img \"gesso-smoke\" 64 48 RGBA-IMAGE 100 LAYER-MODE-NORMAL))))
  (gimp-image-insert-layer img layer 0 0)
  (gimp-context-set-foreground '(255 0 0))
  (gimp-drawable-fill layer FILL-FOREGROUND)
  (gimp-file-save RUN-NONINTERACTIVE img \"$png\" -1)
  (gimp-message (string-append \"gesso-smoke: layers \"
                  (number->string (vector-length (car (gimp-image-get-layers img))))))
  (gimp-image-delete img))"

  say "1/3 Script-Fu batch: new image, layer, fill, save $png (fresh profile: cold start)"
  gimp_batch create -- "$scheme"
  cold=$secs
  if [ "$rc" = 0 ] && grep -q 'batch command executed successfully' "$work/create.log" &&
     grep -q 'gesso-smoke: layers 1' "$work/create.log" && [ -s "$png" ]; then
    # check the file independently of GIMP: PNG signature, IHDR size, colour of a pixel
    size=$(python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read(24)
assert d[:8] == b"\x89PNG\r\n\x1a\n" and d[12:16] == b"IHDR", "not a PNG"
print("%dx%d" % struct.unpack(">II", d[16:24]))' "$png")
    pixel=$(magick "$png" -format '%[pixel:p{10,10}]' info: 2>/dev/null || echo '?')
    say "PNG written: $(stat -c %s "$png") bytes, ${size}, pixel (10,10) = $pixel, gimp-console took ${cold} s"
    [ "$size" = 64x48 ] || fail "smoke PNG is $size, expected 64x48"
    case "$pixel" in srgb*\(255,0,0*|red) ;; *) fail "smoke PNG pixel is '$pixel', expected red" ;; esac
  else
    fail "Script-Fu batch did not save the PNG (exit status $rc, ${cold} s)"
  fi

  say "2/3 failing batch command must exit non-zero, not hang (warm start)"
  gimp_batch failing -- '(gesso-smoke-no-such-procedure)'
  warm=$secs
  if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$rc" != 137 ]; then
    say "failing batch: exit status $rc after ${warm} s, as it should"
  else
    fail "failing batch command gave exit status $rc (expected non-zero without a timeout)"
  fi

  say "3/3 the same under Xvfb (xvfb-run -a)"
  gimp_batch xvfb xvfb-run -a -- '(gimp-message "gesso-smoke: under Xvfb")'
  if [ "$rc" = 0 ] && grep -q 'batch command executed successfully' "$work/xvfb.log"; then
    say "under Xvfb: ok (${secs} s)"
  else
    fail "gimp-console under xvfb-run failed (exit status $rc)"
  fi
fi

# --- meson build and tests ----------------------------------------------------------------
if [ "$do_build" = 1 ]; then
  cd "$repo"
  bd="${GESSO_DEBIAN13_BUILD_DIR:-build-debian13}"
  say "meson build in $repo/$bd (gcc $(gcc -dumpfullversion))"
  [ -d "$bd" ] && [ ! -f "$bd/build.ninja" ] && rm -rf "$bd"   # a half-configured leftover
  if { [ -f "$bd/build.ninja" ] || meson setup "$bd"; } && ninja -C "$bd"; then
    if grep -q '"gimp-3.0"' "$bd/meson-info/intro-dependencies.json" 2>/dev/null; then
      say "meson found gimp-3.0 and gimpui-3.0: plugin/ and ui/ are part of this build"
    fi
    if meson test -C "$bd" --print-errorlogs "${test_args[@]}"; then
      say "meson test inside Debian 13: passed"
    else
      fail "meson test inside Debian 13 (log: $repo/$bd/meson-logs/testlog.txt)"
    fi
  else
    fail "meson setup/ninja inside Debian 13"
  fi
fi

echo
if [ ${#failures[@]} -eq 0 ]; then
  say "all checks passed (GIMP ${gimp_version:-?})"
else
  say "${#failures[@]} check(s) failed:"
  printf '  - %s\n' "${failures[@]}"
  exit 1
fi
