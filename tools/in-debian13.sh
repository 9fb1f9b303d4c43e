#!/usr/bin/env bash
# Runs a command inside the Debian 13 (trixie) root built by tools/debian13-root.sh, where
# GIMP 3 and libgimp-3.0-dev are installed. Builds the root first if needed (once; cached).
#
#   tools/in-debian13.sh                                   interactive shell inside
#   tools/in-debian13.sh meson setup build-debian13        any command; exit status passes through
#   tools/in-debian13.sh bash -c 'ninja -C build-debian13 && meson test -C build-debian13'
#
# Inside, the clone is mounted at the same absolute path it has here (so build directories and
# their absolute paths work both ways), ../shared beside it read-only when it exists, and the
# host's /proc, /sys, /dev (with /dev/pts, /dev/shm) and /tmp. The command starts in the same
# directory as here when that is inside the clone or ../shared, else in /root.
# Environment inside: HOME=/root, LANG=C.UTF-8, a standard PATH, TERM, GESSO_IN_DEBIAN13=1, every
# GESSO_* variable, and the variables named in $GESSO_DEBIAN13_ENV (space-separated names).
#
# Mounts live in a private mount namespace (unshare -m): the host never sees them and the kernel
# drops them when the command ends, however it ends (error, Ctrl-C, kill -9), so concurrent
# and nested runs cannot leave stale mounts. Without unshare it falls back to mounting in the
# host's namespace with a trap that unmounts on exit, and runs one command at a time.
# Run from inside the root (GESSO_IN_DEBIAN13=1), it just runs the command.
# Needs root. Root location: $GESSO_DEBIAN13_ROOT (default /var/cache/gesso/debian13-root).
set -euo pipefail

ROOT="${GESSO_DEBIAN13_ROOT:-/var/cache/gesso/debian13-root}"
ROOT="${ROOT%/}"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"   # debootstrap, chroot, mount
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo="$(cd "$here/.." && pwd -P)"
shared=""
[ -d "$repo/../shared" ] && shared="$(cd "$repo/../shared" && pwd -P)"

say() { printf '[in-debian13] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ $# -gt 0 ] || set -- bash -l

# Already inside the root (a script calling us again): nothing to set up.
if [ "${GESSO_IN_DEBIAN13:-}" = 1 ]; then
  exec "$@"
fi

# --- stage 2: inside the private mount namespace ------------------------------------------
# Invoked as: in-debian13.sh --in-namespace CMD...  (by stage 1 through unshare, or directly
# in the fallback with the unmount trap set by stage 1).
mount_all() {
  local r="$ROOT"
  mount -t proc proc "$r/proc"
  # rslave right away: unmounting these copies later must never propagate to the host's own
  # /sys or /dev (matters in the fallback; harmless in a private namespace)
  mount --rbind /sys "$r/sys" && mount --make-rslave "$r/sys"
  mount --rbind /dev "$r/dev" && mount --make-rslave "$r/dev"
  # /dev/pts normally comes with /dev; mount a fresh one if the host's /dev has none.
  mountpoint -q "$r/dev/pts" || { mkdir -p "$r/dev/pts"; mount -t devpts devpts "$r/dev/pts"; }
  mount --bind /tmp "$r/tmp"
  mkdir -p "$r$repo"
  mount --bind "$repo" "$r$repo"
  if [ -n "$shared" ]; then
    mkdir -p "$r$shared"
    mount --bind "$shared" "$r$shared"
    mount -o remount,bind,ro "$r$shared"
  fi
}

run_chroot() {
  local cwd=/root v
  case "$PWD/" in "$repo"/*) cwd="$PWD" ;; esac
  [ -n "$shared" ] && case "$PWD/" in "$shared"/*) cwd="$PWD" ;; esac
  local envs=(
    HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    TERM="${TERM:-dumb}" GESSO_IN_DEBIAN13=1
  )
  for v in $(compgen -v GESSO_) ${GESSO_DEBIAN13_ENV:-}; do
    case "$v" in GESSO_IN_DEBIAN13|GESSO_DEBIAN13_ROOT|GESSO_DEBIAN13_RAW|GESSO_DEBIAN13_NO_UNSHARE) continue ;; esac
    [ -n "${!v+x}" ] && envs+=("$v=${!v}")
  done
  ${exec_chroot:+exec} chroot "$ROOT" /usr/bin/env -i "${envs[@]}" /bin/bash -c 'cd "$1" && shift && exec "$@"' \
    bash "$cwd" "$@"
}

if [ "${1:-}" = --in-namespace ]; then
  shift
  mount_all
  # exec: the command becomes this process, so signals and the exit status go straight through;
  # the namespace (and every mount in it) disappears with its last process.
  exec_chroot=1 run_chroot "$@"
fi

# --- stage 1: on the host -----------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "must run as root (chroot and mount need it); try: sudo $0 $*"

# Build or top up the root unless debian13-root.sh itself is calling us (it holds the lock).
if [ "${GESSO_DEBIAN13_RAW:-}" != 1 ]; then
  "$here/debian13-root.sh"
fi
[ -x "$ROOT/bin/bash" ] || die "no Debian 13 root at $ROOT (tools/debian13-root.sh builds it)"

lock=()
[ "${GESSO_DEBIAN13_RAW:-}" = 1 ] || lock=(flock -o)

# GESSO_DEBIAN13_NO_UNSHARE=1 forces the fallback below (to test it).
if [ "${GESSO_DEBIAN13_NO_UNSHARE:-}" != 1 ] && unshare -m --propagation private true 2>/dev/null; then
  # Shared lock: any number of commands at once; debian13-root.sh waits for them before it
  # changes the root. -o: the lock is not inherited by daemons the command may leave behind.
  [ ${#lock[@]} -gt 0 ] && lock+=(-s "$ROOT.lock")
  exec "${lock[@]}" unshare -m --propagation private -- "$here/in-debian13.sh" --in-namespace "$@"
fi

# Fallback: no mount namespaces (unusual; e.g. a container without CAP_SYS_ADMIN for unshare).
# Mount in the host's namespace, unmount on every exit; one command at a time (exclusive lock),
# since two runs would unmount each other's mounts.
say "unshare -m unavailable; mounting in the host namespace (cleanup by trap)"
if [ ${#lock[@]} -gt 0 ]; then
  exec 8>"$ROOT.lock"
  flock -x 8
fi
cleanup() {
  local m
  # deepest first; -l detaches even if a straggler still uses it
  for m in $(awk -v d="$ROOT" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount -R -l "$m" 2>/dev/null || true
  done
}
cleanup   # whatever a killed (-9) earlier fallback run left behind
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mount_all
set +e
run_chroot "$@"
rc=$?
exit $rc
