#!/usr/bin/env bash
# Builds, once, a Debian 13 (trixie) root in which Gesso's GIMP 3 plug-in can be built and real
# GIMP 3 run headless (Debian 12 has no GIMP 3). Later runs only check a stamp and return.
#
#   tools/debian13-root.sh            build or top up the root, then exit
#   tools/debian13-root.sh --rebuild  throw the root away and build it from scratch
#
# Where: $GESSO_DEBIAN13_ROOT, default /var/cache/gesso/debian13-root (outside the clone, so
# every clone and `rm -rf build*` keeps it). Needs root. Network: Debian's archive only, through
# the mirror the host's apt already uses ($GESSO_DEBIAN_MIRROR overrides it).
#
# How it stays correct:
# - A fresh root is built in "$ROOT.new" and renamed into place only after debootstrap, every
#   package and the locales succeeded, so a half-built root never sits at "$ROOT". A leftover
#   "$ROOT.new" (crash, Ctrl-C, full disk) is wiped and built again.
# - "$ROOT/etc/gesso-debian13-root.stamp" holds STAMP_VERSION and the package list. When either
#   changes (someone edits this file), the existing root is topped up: missing packages are
#   installed, locales regenerated. If the top-up fails, the root is rebuilt from scratch.
# - "$ROOT.lock" (flock) serialises builders; tools/in-debian13.sh holds it shared while it runs,
#   so a root is never rebuilt under a running command.
# Use tools/in-debian13.sh to run commands inside; it calls this script first.
set -euo pipefail

# Bump when anything below changes what a finished root contains (not only the package list:
# that is compared by itself).
STAMP_VERSION=1

packages=(
  # GIMP 3 itself and its development files (gimp-3.0.pc, gimpui-3.0.pc)
  gimp libgimp-3.0-dev
  # Gesso's build: compiler (libc6-dev is only a Recommends of gcc), meson, its dependencies
  gcc libc6-dev meson ninja-build pkg-config gettext
  libopenblas-dev libjson-glib-dev libyaml-dev libglib2.0-dev libgdk-pixbuf-2.0-dev
  # headless runs, screenshots, fonts, translations, scripts
  xvfb xauth dbus fonts-dejavu-core imagemagick locales python3
  ca-certificates
)
locales_wanted=(en_US.UTF-8 de_DE.UTF-8 fr_FR.UTF-8)

ROOT="${GESSO_DEBIAN13_ROOT:-/var/cache/gesso/debian13-root}"
ROOT="${ROOT%/}"
SUITE=trixie
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"   # debootstrap, chroot, mount
STAMP_REL=etc/gesso-debian13-root.stamp
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { printf '[debian13-root] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Full output of debootstrap/apt goes to $LOG; the terminal gets the milestones, warnings and
# errors (GESSO_DEBIAN13_VERBOSE=1: everything).
LOG="$ROOT.log"
show() {
  tee -a "$LOG" | awk -v all="${GESSO_DEBIAN13_VERBOSE:-0}" '
    all == 1 ||
    /^I: (Retrieving (InRelease|Release|Packages)|Checking|Valid Release|Resolving|Found|Installing|Unpacking required|Configuring required|Base system)/ ||
    /^(E|W|Err):|^dpkg: (error|warning)|^Errors were encountered|: [Ff]ailed/ ||
    /^Need to get|^[0-9]+ upgraded|^After this/ ||
    /^Setting up (gimp|libgimp-3\.0-dev|meson|gcc-14|imagemagick|xvfb|python3|locales) / ||
    /^Generat|^  [a-z][a-z]_[A-Z][A-Z]/ { print "    " $0; fflush() }'
}

rebuild=0
case "${1:-}" in
  --rebuild) rebuild=1 ;;
  "") ;;
  -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it); try: sudo $0"
case "$ROOT" in
  /|/usr|/var|/var/cache|/home|/root|/tmp|"") die "refusing to use '$ROOT' as the root" ;;
  /*) ;;
  *) die "GESSO_DEBIAN13_ROOT must be an absolute path, got '$ROOT'" ;;
esac

# What the stamp must say. Anything else (missing, other version, other list) means work to do.
want_stamp="gesso-debian13-root version=$STAMP_VERSION
suite=$SUITE
packages=${packages[*]}
locales=${locales_wanted[*]}"

stamp_ok() { [ -f "$1/$STAMP_REL" ] && [ "$(sed -n '1,4p' "$1/$STAMP_REL")" = "$want_stamp" ]; }

# Fast path without taking the lock: nothing to do.
if [ "$rebuild" = 0 ] && stamp_ok "$ROOT"; then
  say "up to date: $ROOT"
  exit 0
fi

mkdir -p "$(dirname "$ROOT")"
exec 9>"$ROOT.lock"
if ! flock -x -n 9; then
  say "waiting for $ROOT.lock (another build, or a command running inside the root)..."
  flock -x 9
fi
# Someone else may have finished the job while we waited.
if [ "$rebuild" = 0 ] && stamp_ok "$ROOT"; then
  say "up to date: $ROOT"
  exit 0
fi

: >"$LOG"
say "full log of this run: $LOG"

# --- helpers -------------------------------------------------------------------------------

# Removes a root directory safely: first detach anything still mounted below it in this mount
# namespace (a crashed run without a private namespace could leave the repo bind-mounted there,
# and rm -rf would then delete the repo), then delete without crossing file systems.
remove_tree() {
  local dir="$1" m
  [ -e "$dir" ] || return 0
  while read -r m; do
    say "unmounting stale mount $m"
    umount -R -l "$m" 2>/dev/null || true
  done < <(awk -v d="$dir" '{ gsub(/\\040/, " ", $5); if ($5 == d || index($5, d "/") == 1) print $5 }' \
             /proc/self/mountinfo | sort -r)
  if awk -v d="$dir" '{ if ($5 == d || index($5, d "/") == 1) found = 1 } END { exit !found }' \
       /proc/self/mountinfo; then
    die "something is still mounted under $dir; unmount it and run again"
  fi
  rm -rf --one-file-system "$dir"
}

# The deb.debian.org (or other) mirror the host's apt uses, for the main archive.
host_mirror() {
  local uri
  if [ -n "${GESSO_DEBIAN_MIRROR:-}" ]; then echo "${GESSO_DEBIAN_MIRROR%/}"; return; fi
  uri=$(
    {
      # deb822 .sources files: "URIs: http://deb.debian.org/debian"
      cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }'
      # one-line format: "deb [opts] http://deb.debian.org/debian bookworm main"
      cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' | awk '$1 == "deb" { print $2 }'
    } | grep -E '^https?://' | grep -v -- '-security' | grep -E '/debian/?$' | head -n1
  )
  echo "${uri:-http://deb.debian.org/debian}" | sed 's:/*$::'
}

# Runs a command inside the root being built (mounts /proc, /dev, ... in a private namespace).
in_root() {
  GESSO_DEBIAN13_ROOT="$1" GESSO_DEBIAN13_RAW=1 "$here/in-debian13.sh" "${@:2}"
}

apt_opts=(-y -q -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 --no-install-recommends)

# Installs the package list, generates locales and writes the stamp. Idempotent: on a finished
# root it only installs what is missing.
provision() {
  local r="$1" t0=$SECONDS
  say "installing packages in $r (${#packages[@]} packages and their dependencies)..."
  cp -L /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
  rm -f "$r/$STAMP_REL"
  in_root "$r" bash -c '
    set -euo pipefail
    export DEBIAN_FRONTEND=noninteractive
    opts=(-y -q -o Acquire::Retries=3 -o Dpkg::Use-Pty=0 --no-install-recommends)
    dpkg --configure -a                 # repairs an interrupted earlier dpkg run, if any
    apt-get update -q -o Acquire::Retries=3
    apt-get "${opts[@]}" -f install     # ... and broken dependencies left by it
    apt-get "${opts[@]}" upgrade        # trixie-updates/-security over the debootstrapped base
    apt-get "${opts[@]}" install "$@"
    apt-get clean
  ' bash "${packages[@]}" 2>&1 | show || { tail -n 40 "$LOG" | sed 's/^/    | /' >&2; return 1; }
  say "packages installed ($((SECONDS - t0)) s)"

  say "generating locales: ${locales_wanted[*]}"
  local l
  for l in "${locales_wanted[@]}"; do
    grep -q "^$l UTF-8" "$r/etc/locale.gen" 2>/dev/null || echo "$l UTF-8" >>"$r/etc/locale.gen"
  done
  in_root "$r" locale-gen 2>&1 | show || return 1
  # verify: every wanted locale is now available
  local have
  have=$(in_root "$r" locale -a)
  for l in "${locales_wanted[@]}"; do
    grep -qix "${l/UTF-8/utf8}" <<<"$have" || { say "locale $l missing after locale-gen"; return 1; }
  done

  { echo "$want_stamp"; echo "built=$(date -u +%FT%TZ)"; } >"$r/$STAMP_REL"
}

# --- fresh build ---------------------------------------------------------------------------

fresh_build() {
  local new="$ROOT.new" mirror sec t0=$SECONDS
  # Never delete a directory this script did not make (GESSO_DEBIAN13_ROOT set by mistake).
  if [ -e "$ROOT" ] && [ -n "$(ls -A "$ROOT")" ] &&
     ! grep -qs gesso-debian13 "$ROOT/etc/debian_chroot"; then
    die "$ROOT exists and is not a root built by this script; move it away or set GESSO_DEBIAN13_ROOT"
  fi
  mirror=$(host_mirror)
  sec="${mirror%/debian}/debian-security"

  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap on the host (apt-get)"
    { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" debootstrap; } 2>&1 | show ||
      die "could not install debootstrap (full log: $LOG)"
  fi

  [ -e "$new" ] && { say "removing unfinished build $new"; remove_tree "$new"; }
  mkdir -p "$new"

  # Leave out documentation (saves space; nothing here reads it). Must be in place before
  # packages are unpacked by apt; debootstrap's own base packages keep theirs.
  mkdir -p "$new/etc/dpkg/dpkg.cfg.d"
  cat >"$new/etc/dpkg/dpkg.cfg.d/01-gesso-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
EOF

  say "debootstrap $SUITE (minbase) from $mirror into $new ..."
  keyring=()
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
    keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
  if ! debootstrap --variant=minbase "${keyring[@]}" "$SUITE" "$new" "$mirror" 2>&1 |
         show; then
    [ -f "$new/debootstrap/debootstrap.log" ] && tail -n 30 "$new/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (full log: $LOG); run again to retry from scratch"
  fi
  say "debootstrap done ($((SECONDS - t0)) s)"

  cat >"$new/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $sec $SUITE-security main
EOF
  # No service may start inside the root while packages are installed (dbus, ...).
  printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
  chmod 755 "$new/usr/sbin/policy-rc.d"
  # Recommends stay off for anyone who runs apt-get inside the root later, too.
  echo 'APT::Install-Recommends "false";' >"$new/etc/apt/apt.conf.d/90gesso"
  echo gesso-debian13 >"$new/etc/debian_chroot"

  provision "$new" || die "installing packages into $new failed (full log: $LOG); run again to retry"

  if [ -e "$ROOT" ]; then
    say "replacing old root $ROOT"
    remove_tree "$ROOT"
  fi
  mv "$new" "$ROOT"
  say "fresh root ready in $((SECONDS - t0)) s: $ROOT ($(du -sh --one-file-system "$ROOT" | cut -f1))"
}

# --- main ----------------------------------------------------------------------------------

if [ "$rebuild" = 0 ] && [ -x "$ROOT/usr/bin/apt-get" ] &&
   grep -qs gesso-debian13 "$ROOT/etc/debian_chroot"; then
  # A finished root whose stamp is out of date (or whose top-up was interrupted): top it up.
  t0=$SECONDS
  say "topping up $ROOT (stamp missing or out of date)"
  if provision "$ROOT"; then
    say "top-up done in $((SECONDS - t0)) s ($(du -sh --one-file-system "$ROOT" | cut -f1))"
    exit 0
  fi
  say "top-up failed; rebuilding the root from scratch"
fi

fresh_build
