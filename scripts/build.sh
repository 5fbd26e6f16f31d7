#!/usr/bin/env bash
# Build layerfs: install missing dependencies, configure with meson, build
# with ninja.
#
#   LAYERFS_SANITIZE=1  build with AddressSanitizer + UBSan in build-asan/
#                       (the normal build lives in build/)
#
# Prints nothing special on success; the binary is <builddir>/tools/layerfs.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)

"$SCRIPT_DIR/deps.sh"

MESON_OPTS=(--buildtype=debugoptimized)
if [[ "${LAYERFS_SANITIZE:-0}" == 1 ]]; then
    BUILDDIR="$ROOT/build-asan"
    MESON_OPTS+=("-Db_sanitize=address,undefined" -Db_lundef=false)
else
    BUILDDIR="$ROOT/build"
fi

cd "$ROOT"
if [[ -f "$BUILDDIR/meson-private/coredata.dat" ]]; then
    meson setup --reconfigure "${MESON_OPTS[@]}" "$BUILDDIR"
else
    # A build dir left behind by a failed first setup is not reusable.
    if [[ -e "$BUILDDIR" ]]; then
        rm -rf -- "$BUILDDIR"
    fi
    meson setup "${MESON_OPTS[@]}" "$BUILDDIR"
fi
ninja -C "$BUILDDIR"
