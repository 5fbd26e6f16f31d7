# shellcheck shell=bash
# Helpers for the layerfs write-path tests (tests/write/).  Sourced by every
# script:   . "$(dirname "$0")/lib.sh"
#
# Environment (set by tests/write/meson.build; defaults otherwise):
#   LAYERFS  the layerfs binary      SRCDIR  the project source root
#
# Gives: $T, a fresh temp dir (0755, so other uids can traverse it), removed
# at exit; an EXIT trap that unmounts everything mounted below $T (layerfs
# umount, then fusermount3 -u -z, then umount -l), kills layerfs daemons
# still serving it, and removes $T, even on failure; run_py to run
# the python side bounded in time; skip/fail.

# Mount in a mount namespace of our own: one that another program makes
# meanwhile (unshare -m, podman) would hold copies of our mounts and keep
# their FUSE daemons alive after the unmount; and what we mount goes with us.
if [ -z "${LAYERFS_TEST_NS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
    export LAYERFS_TEST_NS=1
    exec unshare --mount --propagation private bash "$0" "$@"
fi

set -u -o pipefail

W_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$W_DIR/../.." && pwd)}
LAYERFS=${LAYERFS:-$SRCDIR/build/tools/layerfs}
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
export LAYERFS SRCDIR LC_ALL=C PYTHONDONTWRITEBYTECODE=1
# Bound for the whole python run of a script (meson's own limit is 180 s).
SCRIPT_TIMEOUT=${SCRIPT_TIMEOUT:-170}

fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

# The mountpoints below $T, deepest (latest) first.
_mounts_below_t() {
    awk -v t="$T/" '{ m = $5; gsub(/\\040/, " ", m); gsub(/\\134/, "\\", m);
        if (index(m, t) == 1) print m }' /proc/self/mountinfo | tac
}

_daemons_of_t() {
    local p
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = $$ ] && continue
        case "$(cat "/proc/$p/comm" 2>/dev/null)" in layerfs*) ;; *) continue ;; esac
        tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | grep -q -F -- "$T/" && echo "$p"
    done
}

_cleanup() {
    local rc=$? m p i
    trap - EXIT
    set +e
    if [ -n "${T:-}" ] && [ -d "$T" ]; then
        for m in $(_mounts_below_t); do
            if grep -q " $m fuse" /proc/mounts 2>/dev/null; then
                timeout -k 2 10 "$LAYERFS" umount "$m" >/dev/null 2>&1 ||
                    timeout -k 2 10 fusermount3 -u -z "$m" >/dev/null 2>&1
            fi
            _mounts_below_t | grep -qxF -- "$m" && timeout -k 2 10 umount "$m" >/dev/null 2>&1
            _mounts_below_t | grep -qxF -- "$m" && timeout -k 2 10 umount -l "$m" >/dev/null 2>&1
        done
        for p in $(_daemons_of_t); do kill -TERM "$p" 2>/dev/null; done
        for ((i = 0; i < 30; i++)); do
            [ -z "$(_daemons_of_t)" ] && break
            sleep 0.1
        done
        for p in $(_daemons_of_t); do kill -KILL "$p" 2>/dev/null; done
        [ -n "$(_mounts_below_t)" ] && echo "warning: still mounted below $T" >&2
        rm -rf --one-file-system "$T" 2>/dev/null || echo "warning: could not remove $T" >&2
    fi
    exit "$rc"
}

[ "$(id -u)" = 0 ] || skip "needs root (kernel overlay is the oracle)"
[ -x "$LAYERFS" ] || fail "layerfs binary not found at '$LAYERFS' (build it first)"
[ -n "$PY" ] || skip "no python3"
[ -e /dev/fuse ] || skip "no /dev/fuse"
grep -qw overlay /proc/filesystems || skip "kernel overlay not available"

T=$(mktemp -d /tmp/layerfs-wtest.XXXXXX) || fail "mktemp"
trap _cleanup EXIT
trap 'exit 1' INT TERM HUP
chmod 0755 "$T"

# run_py ARGS...: run python bounded in time; its status is ours.
run_py() {
    timeout -k 5 "$SCRIPT_TIMEOUT" "$PY" "$@"
    local rc=$?
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && echo "FAIL: timed out after ${SCRIPT_TIMEOUT}s"
    return "$rc"
}

# run_cases FILE [NAMES...]: the differential runner over tests/write/FILE.
run_cases() {
    local f=$1
    shift
    run_py "$W_DIR/scenario.py" --tmp "$T" "$W_DIR/$f" "$@"
    local rc=$?
    case $rc in 0 | 77) exit "$rc" ;; *) exit 1 ;; esac
}
