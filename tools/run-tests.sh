#!/usr/bin/env bash
# The test command: installs dependencies if needed, builds into build/ and runs every suite.
# The conformance suite reads ../shared/conformance (or $GESSO_CONFORMANCE_DIR) and is
# skipped, not failed, when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
[ -d build ] || meson setup build
ninja -C build
meson test -C build --print-errorlogs "$@"
