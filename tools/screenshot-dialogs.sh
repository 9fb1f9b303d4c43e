#!/usr/bin/env bash
# Screenshots of Gesso's four dialogs, taken in real GIMP 3 (gimp-3.0, the GUI) on a 1366x768
# Xvfb screen inside the Debian 13 root (tools/debian13-root.sh), written to
# data/screenshots/<method>.png, each in its tallest state: opened on a layer that carries a
# recipe (the "Use recipe" row), ControlNet and Advanced unfolded (GESSO_UI_UNFOLD=1). Fails
# when a window is taller than GESSO_SCREENSHOT_MAX_HEIGHT (default 700 px: what a 768-px
# screen leaves below a desktop panel and a title bar).
#
#   tools/screenshot-dialogs.sh                 English, into data/screenshots/
#   tools/screenshot-dialogs.sh --lang de       German (de_DE.UTF-8), into data/screenshots/de/
#   tools/screenshot-dialogs.sh --out DIR       somewhere else
#   tools/screenshot-dialogs.sh generate        only some methods (generate inpaint strokes restyle)
#
# One GIMP (gimp-3.0 -n -d -f) with a fresh profile (no first-start dialogs, no last values)
# and the plug-in built here copied into it with its catalogs runs a Script-Fu batch that, for
# each method, makes a small picture, opens it in a display, sets up what the method needs (a
# selection, a strokes layer) and calls the procedure with RUN-INTERACTIVE. The dialog renders
# a preview at once (GESSO_UI_AUTOPREVIEW=1) and logs "preview finished" and its window size;
# this script then checks the height and captures the dialog window by its title with ImageMagick's `import`, and the dialog cancels
# itself ten seconds later (GESSO_UI_AUTOCLOSE) so that the batch moves on. GIMP is killed at
# the end; every wait has a timeout. Models come from $GESSO_MODEL_PATH, by default data/models
# alone, so that the dialogs show the bundled demo model as the default, as an installed
# Gesso does, and its previews (the conformance models have random weights: noise).
#
# Environment: GESSO_SCREENSHOT_BUILD_DIR (default build-screenshots), GESSO_GIMP_TIMEOUT
# (seconds for GIMP to start and show the first dialog, default 400), GESSO_PREVIEW_TIMEOUT
# (seconds one preview may take, default 300), GESSO_SCREENSHOT_KEEP (a folder: keep GIMP's log
# and full-screen captures there).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/.." && pwd -P)"

if [ "${GESSO_IN_DEBIAN13:-}" != 1 ]; then
  exec "$here/in-debian13.sh" "$here/screenshot-dialogs.sh" "$@"
fi

say() { printf '[screenshots] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

lang=en out="" methods=()
while [ $# -gt 0 ]; do
  case "$1" in
    --lang) lang="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    generate|inpaint|strokes|restyle) methods+=("$1"); shift ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
[ ${#methods[@]} -gt 0 ] || methods=(generate inpaint strokes restyle)
case "$lang" in
  en) locale=en_US.UTF-8; out="${out:-$repo/data/screenshots}" ;;
  de) locale=de_DE.UTF-8; out="${out:-$repo/data/screenshots/de}" ;;
  fr) locale=fr_FR.UTF-8; out="${out:-$repo/data/screenshots/fr}" ;;
  *) die "--lang must be en, de or fr" ;;
esac
mkdir -p "$out"
gimp_timeout="${GESSO_GIMP_TIMEOUT:-400}"
preview_timeout="${GESSO_PREVIEW_TIMEOUT:-300}"
keep="${GESSO_SCREENSHOT_KEEP:-}"
max_height="${GESSO_SCREENSHOT_MAX_HEIGHT:-700}"

# --- build ------------------------------------------------------------------------------------
cd "$repo"
bd="${GESSO_SCREENSHOT_BUILD_DIR:-build-screenshots}"
[ -d "$bd" ] && [ ! -f "$bd/build.ninja" ] && rm -rf "$bd"
[ -f "$bd/build.ninja" ] || meson setup "$bd" -Dplugin=enabled >/dev/null ||
  die "meson setup $bd failed"
if ! ninja -C "$bd" plugin/gesso po/de/LC_MESSAGES/gesso.mo po/fr/LC_MESSAGES/gesso.mo \
     >"$bd/screenshots-build.log" 2>&1; then
  tail -n 30 "$bd/screenshots-build.log" >&2
  die "building the plug-in failed (ninja -C $bd plugin/gesso)"
fi

# --- a throw-away GIMP profile with the plug-in in it -----------------------------------------
work=$(mktemp -d /tmp/gesso-screenshots.XXXXXX)
xvfb_pid="" gimp_pid=""
cleanup() {
  if [ -n "$gimp_pid" ]; then kill -KILL -- "-$gimp_pid" 2>/dev/null || true; fi
  if [ -n "$xvfb_pid" ]; then kill "$xvfb_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export GIMP3_DIRECTORY="$work/profile" XDG_CONFIG_HOME="$work/config"
export XDG_CACHE_HOME="$work/cache" XDG_DATA_HOME="$work/data" XDG_RUNTIME_DIR="$work/run"
mkdir -p "$GIMP3_DIRECTORY/plug-ins/gesso" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" \
  "$XDG_DATA_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
plugdir="$GIMP3_DIRECTORY/plug-ins/gesso"
cp "$bd/plugin/gesso" "$plugdir/gesso"
for l in de fr; do
  mkdir -p "$plugdir/locale/$l/LC_MESSAGES"
  cp "$bd/po/$l/LC_MESSAGES/gesso.mo" "$plugdir/locale/$l/LC_MESSAGES/gesso.mo"
done
# no welcome dialog, no tips: the dialogs must be the only thing in front
cat >"$GIMP3_DIRECTORY/gimprc" <<'EOF'
(show-welcome-dialog no)
(show-tips no)
(save-session-info no)
(restore-session no)
EOF

export GESSO_MODEL_PATH="${GESSO_MODEL_PATH:-$repo/data/models}"
export GESSO_UI_AUTOPREVIEW=1 GESSO_UI_AUTOCLOSE="${GESSO_UI_AUTOCLOSE:-10}" G_MESSAGES_DEBUG=Gesso
export GESSO_UI_UNFOLD=1
export LANG="$locale" LC_ALL="$locale" LANGUAGE="$lang" NO_AT_BRIDGE=1
say "models: ${GESSO_MODEL_PATH:-none}; language: $lang ($locale); output: $out"

# --- the X server -----------------------------------------------------------------------------
exec 5>"$work/display"
Xvfb -displayfd 5 -screen 0 1366x768x24 -nolisten tcp -noreset >"$work/xvfb.log" 2>&1 &
xvfb_pid=$!
for _ in $(seq 100); do [ -s "$work/display" ] && break; sleep 0.1; done
[ -s "$work/display" ] || die "Xvfb did not start: $(cat "$work/xvfb.log")"
export DISPLAY=":$(head -n1 "$work/display")"
say "Xvfb on $DISPLAY"
# The pointer starts in the middle of the screen, over the dialog, where a tooltip would show
# up in the capture: move it to the bottom right corner, which no dialog reaches.
python3 -c '
import gi
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk
Gdk.init([])
display = Gdk.Display.get_default()
screen = display.get_default_screen()
display.get_default_seat().get_pointer().warp(screen, 1365, 767)
display.flush()
' || say "could not move the pointer out of the way: a tooltip may show in the pictures"

# --- the batch --------------------------------------------------------------------------------
title_of() {
  local en
  case "$1" in
    generate) en="Generate from Prompt" ;;
    inpaint) en="Inpaint Selection" ;;
    strokes) en="Realize Strokes" ;;
    restyle) en="Restyle" ;;
  esac
  TEXTDOMAINDIR="$plugdir/locale" gettext -d gesso "$en"
}

scheme_of() {
  local method="$1" proc setup drawable="bg" args made_by="$1"
  case "$method" in
    generate)
      proc=plug-in-gesso-generate
      setup='(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 96 48 320 256)'
      args='#:prompt "a red apple with a green leaf"
            #:negative-prompt "blurry, text"' ;;
    inpaint)
      proc=plug-in-gesso-inpaint
      setup='(gimp-image-select-ellipse img CHANNEL-OP-REPLACE 300 60 120 110)'
      args='#:prompt "a smiling sun"
            #:negative-prompt "text"' ;;
    strokes)
      proc=plug-in-gesso-realize-strokes
      drawable="strokes"
      setup='(gimp-image-insert-layer img strokes 0 0)
             (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 200 170 120 120)
             (gimp-context-set-foreground (quote (200 40 40)))
             (gimp-drawable-edit-fill strokes FILL-FOREGROUND)
             (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 252 250 16 90)
             (gimp-context-set-foreground (quote (60 120 40)))
             (gimp-drawable-edit-fill strokes FILL-FOREGROUND)
             (gimp-selection-none img)
             (gimp-image-set-selected-layers img (vector strokes))'
      args='#:prompt "a red rose"' ;;
    restyle)
      proc=plug-in-gesso-restyle
      setup=""
      # a Generate result: the recipe row says what another edit's recipe fills in
      made_by=generate
      args='#:source-prompt "a landscape with a yellow sun"
            #:prompt "a night landscape with a crescent moon"' ;;
  esac
  # The dialog cancels itself after its capture; catch keeps the batch going past the
  # "cancelled" error that the call then raises.
  printf '%s\n' \
    "(let* ((img (car (gimp-image-new 512 384 RGB)))" \
    "       (bg (car (gimp-layer-new img \"Background\" 512 384 RGB-IMAGE 100" \
    "                                LAYER-MODE-NORMAL)))" \
    "       (strokes (car (gimp-layer-new img \"Strokes\" 512 384 RGBA-IMAGE 100" \
    "                                     LAYER-MODE-NORMAL))))" \
    "  (gimp-image-insert-layer img bg 0 0)" \
    "  (gimp-context-set-foreground (quote (120 170 220)))" \
    "  (gimp-drawable-fill bg FILL-FOREGROUND)" \
    "  (gimp-image-select-rectangle img CHANNEL-OP-REPLACE 0 250 512 134)" \
    "  (gimp-context-set-foreground (quote (80 140 70)))" \
    "  (gimp-drawable-edit-fill bg FILL-FOREGROUND)" \
    "  (gimp-image-select-ellipse img CHANNEL-OP-REPLACE 380 40 70 70)" \
    "  (gimp-context-set-foreground (quote (250 210 60)))" \
    "  (gimp-drawable-edit-fill bg FILL-FOREGROUND)" \
    "  (gimp-selection-none img)" \
    "  (gimp-display-new img)" \
    "  $setup" \
    "  (gimp-item-attach-parasite $drawable (list \"gesso-recipe\" 1" \
    "    \"[recipe]\\nmethod=$made_by\\nprompt=a landscape with a yellow sun\\nseed=42\\n\"))" \
    "  (catch #t ($proc #:run-mode RUN-INTERACTIVE #:image img #:drawables (vector $drawable)" \
    "                   $args)))"
}

batch=()
for method in "${methods[@]}"; do batch+=(-b "$(scheme_of "$method")"); done
log="$work/gimp.log"
say "starting GIMP (a cold start with a fresh profile takes minutes on a busy machine)"
setsid timeout -k 5 $((gimp_timeout + ${#methods[@]} * (preview_timeout + 60))) \
  gimp-3.0 -n -d -f --batch-interpreter=plug-in-script-fu-eval "${batch[@]}" >"$log" 2>&1 &
gimp_pid=$!

# wait_for_log PATTERN N SECONDS: until the log holds N lines with PATTERN; FALSE on timeout
wait_for_log() {
  local pattern="$1" n="$2" seconds="$3" t0=$SECONDS found
  while [ $((SECONDS - t0)) -lt "$seconds" ]; do
    found=$(grep -c -- "$pattern" "$log" 2>/dev/null || true)
    [ "${found:-0}" -ge "$n" ] && return 0
    kill -0 "$gimp_pid" 2>/dev/null || return 1
    sleep 0.5
  done
  return 1
}

failures=0 k=0 t_start=$SECONDS
for method in "${methods[@]}"; do
  k=$((k + 1))
  title=$(title_of "$method")
  # import matches the raw WM_NAME, which GTK writes in ISO-8859-1 when the title fits in it
  # ("Générer depuis un prompt"), so a UTF-8 title with accents would match nothing
  wm_name=$(printf '%s' "$title" | iconv -f UTF-8 -t ISO-8859-1 2>/dev/null) || wm_name=$title
  png="$out/$method.png"
  limit=$preview_timeout
  [ "$k" = 1 ] && limit=$((gimp_timeout + preview_timeout))
  if ! wait_for_log 'dialog window' "$k" "$limit"; then
    say "$method: no finished preview within ${limit} s; GIMP's output:"
    sed 's/^/    | /' "$log" | tail -n 40 >&2
    failures=$((failures + 1))
    break
  fi
  result=$(grep -o 'preview finished.*' "$log" | sed -n "${k}p")
  say "$method: $result (after $((SECONDS - t_start)) s)"
  height=$(grep -o 'dialog window [0-9]* x [0-9]*' "$log" | sed -n "${k}p" | awk '{print $5}')
  if [ -z "$height" ] || [ "$height" -gt "$max_height" ]; then
    say "$method: the window is ${height:-?} px high, more than $max_height px"
    failures=$((failures + 1))
  fi
  if timeout 20 import -window "$wm_name" "$png"; then
    say "$method: wrote $png ($(magick identify -format '%wx%h' "$png"); window height $height px)"
  else
    say "$method: no window named \"$title\"; capture failed"
    failures=$((failures + 1))
  fi
  if [ -n "$keep" ]; then
    timeout 20 import -window root "$keep/$method-root.png" 2>/dev/null || true
  fi
  t_start=$SECONDS
done

kill -TERM -- "-$gimp_pid" 2>/dev/null || true
sleep 2
kill -KILL -- "-$gimp_pid" 2>/dev/null || true
wait "$gimp_pid" 2>/dev/null || true
gimp_pid=""
# GIMP reports clashing or missing mnemonics of a dialog's labels on stderr, unprefixed
grep -iE 'critical|warning|error|mnemonic' "$log" | grep -v 'resource name is invalid' |
  sed 's/^/    | /' | head -n 30 >&2 || true
if [ -n "$keep" ]; then cp "$log" "$keep/"; fi

[ "$failures" = 0 ] || die "$failures screenshot(s) missing"
say "done: ${methods[*]}"
