# shellcheck shell=bash
# Common helpers for the layerfs integration tests.  Sourced by every test:
#
#   . "$(dirname "$0")/lib.sh"
#
# Environment (set by tests/meson.build; sensible defaults otherwise):
#   LAYERFS   path of the layerfs binary
#   SRCDIR    project source root
#
# Gives: $T (a fresh temp dir, removed at exit), mount helpers that register
# cleanup (everything mounted is unmounted at exit, even on failure, and
# leftover daemons are killed), assertions, and tree_snapshot.

# Mount in a mount namespace of our own: one that another program makes
# meanwhile (unshare -m, podman) would hold copies of our mounts and keep
# their FUSE daemons alive after the unmount; and what we mount goes with us.
if [ -z "${LAYERFS_TEST_NS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
    export LAYERFS_TEST_NS=1
    exec unshare --mount --propagation private bash "$0" "$@"
fi

set -E -e -u -o pipefail

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$LIB_DIR/../.." && pwd)}
LAYERFS=${LAYERFS:-$SRCDIR/build/tools/layerfs}
TEST_NAME=$(basename "$0" .sh)
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
SNAPSHOT_PY="$LIB_DIR/snapshot.py"
OSCALL_PY="$LIB_DIR/oscall.py"
# Bounds for commands that touch a mount (a hung daemon must not hang the test).
OP_TIMEOUT=${OP_TIMEOUT:-60}
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-30}
SNAP_TIMEOUT=${SNAP_TIMEOUT:-600}

export LC_ALL=C

_MOUNTS=()      # "kind:path" entries, unmounted in reverse order at exit
_PIDS=()        # daemon pids to kill at exit if still alive
_CHECKS=0
_IN_CLEANUP=0

# ---------------------------------------------------------------- reporting

fail() {
    echo "FAIL: $*"
    exit 1
}

skip() {
    echo "SKIP: $*"
    exit 77
}

check() {
    _CHECKS=$((_CHECKS + 1))
    echo "-- check: $*"
}

note() {
    echo "   $*"
}

# soft_fail MSG: report a failure and go on with independent checks; the test
# still fails at pass_test.
_SOFT_FAILS=0
soft_fail() {
    echo "FAIL: $*"
    _SOFT_FAILS=$((_SOFT_FAILS + 1))
}

pass_test() {
    if [ "$_SOFT_FAILS" != 0 ]; then
        echo "FAILED: $TEST_NAME ($_SOFT_FAILS failures in $_CHECKS checks)"
        exit 1
    fi
    echo "PASS: $TEST_NAME ($_CHECKS checks)"
    exit 0
}

_on_err() {
    local rc=$? line=$1 cmd=$2
    [ "$_IN_CLEANUP" = 1 ] && return 0
    echo "FAIL: unexpected error (exit $rc) at ${BASH_SOURCE[1]##*/}:$line: $cmd"
    exit 1
}
trap '_on_err "$LINENO" "$BASH_COMMAND"' ERR

# ---------------------------------------------------------------- basics

require_root() {
    [ "$(id -u)" = 0 ] || skip "needs root"
}

require_layerfs() {
    [ -x "$LAYERFS" ] || fail "layerfs binary not found at '$LAYERFS' (build it first)"
}

# t CMD...: run a command that touches a mount, bounded in time.
t() {
    timeout -k 5 "$OP_TIMEOUT" "$@"
}

# The mountpoints in /proc/self/mountinfo, unescaped, one a line.
mounted_paths() {
    awk '{ m = $5; gsub(/\\040/, " ", m); gsub(/\\011/, "\t", m); gsub(/\\012/, "\n", m);
           gsub(/\\134/, "\\", m); print m }' /proc/self/mountinfo
}

# is_mounted DIR: true when something is mounted exactly on DIR.
is_mounted() {
    local p
    p=$(realpath -m -- "$1")
    mounted_paths | grep -qxF -- "$p"
}

# fstype_of DIR: the fs type mounted on DIR (last mount wins), empty if none.
fstype_of() {
    local p
    p=$(realpath -m -- "$1")
    awk -v p="$p" '{ m = $5; gsub(/\\040/, " ", m); gsub(/\\134/, "\\", m);
        for (i = 6; i <= NF; i++) if ($i == "-") { t = $(i + 1); break }
        if (m == p) r = t } END { print r }' /proc/self/mountinfo
}

wait_mounted() {
    local m=$1 secs=${2:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        is_mounted "$m" && return 0
        sleep 0.1
    done
    return 1
}

wait_unmounted() {
    local m=$1 secs=${2:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        is_mounted "$m" || return 0
        sleep 0.1
    done
    return 1
}

# daemon_pids MERGED: pids of layerfs processes whose argv holds MERGED.
daemon_pids() {
    local m=$1 want p a0 found
    want=$(basename -- "$LAYERFS")
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ -r "/proc/$p/cmdline" ] || continue
        found=0
        a0=""
        while IFS= read -r -d '' a; do
            if [ -z "$a0" ]; then a0=$a; continue; fi
            [ "$a" = "$m" ] && found=1
        done 2>/dev/null <"/proc/$p/cmdline" || true
        [ "$found" = 1 ] || continue
        [ "$(basename -- "$a0")" = "$want" ] || continue
        echo "$p"
    done
}

pid_alive() {
    [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

track_mount() { _MOUNTS+=("$1:$2"); }
track_pid() { _PIDS+=("$1"); }

_track_daemons() {
    local p
    for p in $(daemon_pids "$1"); do track_pid "$p"; done
}

_unmount_one() {
    local kind=$1 m=$2 i
    for ((i = 0; i < 5; i++)); do
        is_mounted "$m" || return 0
        case $kind in
        fuse) timeout 10 fusermount3 -u -z "$m" >/dev/null 2>&1 ||
            timeout 10 umount -l "$m" >/dev/null 2>&1 || true ;;
        *) timeout 10 umount -l "$m" >/dev/null 2>&1 || true ;;
        esac
    done
    is_mounted "$m" && echo "warning: could not unmount $m" >&2
    return 0
}

_cleanup() {
    local rc=$? i p m
    _IN_CLEANUP=1
    set +e
    trap - ERR
    for ((i = ${#_MOUNTS[@]} - 1; i >= 0; i--)); do
        _unmount_one "${_MOUNTS[i]%%:*}" "${_MOUNTS[i]#*:}"
    done
    # Anything else still mounted below our temp dir (mounted by a helper).
    if [ -n "${T:-}" ]; then
        for m in $(mounted_paths | grep -F -- "$T/" | tac); do
            timeout 10 umount -l "$m" >/dev/null 2>&1
        done
        # Daemons we started carry our unique temp dir in their argv.
        for p in /proc/[0-9]*; do
            p=${p#/proc/}
            [ "$p" = $$ ] && continue
            if tr '\0' '\n' 2>/dev/null <"/proc/$p/cmdline" | grep -q -F -- "$T/"; then
                case "$(cat "/proc/$p/comm" 2>/dev/null)" in
                layerfs*) _PIDS+=("$p") ;;
                esac
            fi
        done
    fi
    for p in "${_PIDS[@]}"; do
        pid_alive "$p" && kill -TERM "$p" 2>/dev/null
    done
    for p in "${_PIDS[@]}"; do
        for ((i = 0; i < 30; i++)); do pid_alive "$p" || break; sleep 0.1; done
        pid_alive "$p" && kill -KILL "$p" 2>/dev/null
    done
    if [ -n "${T:-}" ] && [ -d "$T" ]; then
        chattr -R -i "$T" >/dev/null 2>&1
        rm -rf --one-file-system "$T" 2>/dev/null ||
            echo "warning: could not remove $T entirely" >&2
    fi
    exit "$rc"
}
trap _cleanup EXIT

T=$(mktemp -d /tmp/layerfs-test.XXXXXX)
chmod 0755 "$T"
# Unwritable by others, traversable: tests switch to nobody for access checks.

# ---------------------------------------------------------------- mounting

LF_RC=0
LF_OUT="$T/.layerfs.out"
LF_ERR="$T/.layerfs.err"

# run_layerfs ARGS...: run "$LAYERFS" ARGS, bounded, stdin closed; sets LF_RC,
# stdout in $LF_OUT, stderr in $LF_ERR.  Never fails by itself.  Registers
# the last argument as a possible mountpoint for cleanup.
run_layerfs() {
    local last=${!#}
    if [ -d "$last" ]; then track_mount fuse "$last"; fi
    LF_RC=0
    timeout -k 5 "$MOUNT_TIMEOUT" "$LAYERFS" "$@" </dev/null >"$LF_OUT" 2>"$LF_ERR" || LF_RC=$?
    if [ -d "$last" ] && is_mounted "$last"; then _track_daemons "$last"; fi
    return 0
}

_mount_check() {
    local m=$1 what=$2
    [ "${#what}" -le 300 ] || what="${what:0:300}..."
    if [ "$LF_RC" != 0 ]; then
        fail "$what exited $LF_RC: $(head -c 2000 "$LF_ERR")"
    fi
    is_mounted "$m" || fail "$what exited 0 but nothing is mounted on $m"
    # (LAYERFS_ALLOW_KERNEL: only to dry-run the suite with a kernel-overlay stand-in)
    case "$(fstype_of "$m")" in
    fuse*) ;;
    *) [ -n "${LAYERFS_ALLOW_KERNEL:-}" ] || fail "$what: $m is a '$(fstype_of "$m")' mount, not FUSE" ;;
    esac
}

# mount_layerfs LOWERS UPPER MERGED [ARGS...]
mount_layerfs() {
    local lowers=$1 upper=$2 merged=$3
    shift 3
    run_layerfs mount "$lowers" "$upper" "$merged" "$@"
    _mount_check "$merged" "layerfs mount $lowers $upper $merged $*"
}

# mount_layerfs_ro LOWERS MERGED [ARGS...]
mount_layerfs_ro() {
    local lowers=$1 merged=$2
    shift 2
    run_layerfs mount "$lowers" "$merged" --read-only "$@"
    _mount_check "$merged" "layerfs mount $lowers $merged --read-only $*"
}

# mount_layerfs_o OPTS MERGED: the mount(8)/containers-storage form.
mount_layerfs_o() {
    run_layerfs -o "$1" "$2"
    _mount_check "$2" "layerfs -o $1 $2"
}

# umount_layerfs MERGED: `layerfs umount`, checked.
umount_layerfs() {
    local m=$1 rc=0
    timeout -k 5 "$MOUNT_TIMEOUT" "$LAYERFS" umount "$m" </dev/null >"$LF_OUT" 2>"$LF_ERR" || rc=$?
    [ "$rc" = 0 ] || fail "layerfs umount $m exited $rc: $(cat "$LF_ERR")"
    wait_unmounted "$m" 10 || fail "layerfs umount $m exited 0 but $m is still mounted"
}

# mount_kovl LOWERS UPPER WORK MERGED [EXTRA_OPTS]: kernel overlay, the oracle.
# UPPER and WORK empty: read-only lowerdir-only mount.
mount_kovl() {
    local lowers=$1 upper=$2 work=$3 merged=$4 extra=${5:-} o
    o="lowerdir=$lowers"
    if [ -n "$upper" ]; then o="$o,upperdir=$upper,workdir=$work"; fi
    if [ -n "$extra" ]; then o="$o,$extra"; fi
    track_mount kovl "$merged"
    mount -t overlay overlay -o "$o" "$merged" || fail "kernel overlay mount -o $o $merged failed"
}

# mount_tmpfs DIR [OPTS]
mount_tmpfs() {
    track_mount tmpfs "$1"
    mount -t tmpfs -o "${2:-size=64m}" tmpfs "$1"
}

umount_any() {
    local m=$1
    timeout 30 umount "$m" 2>/dev/null || timeout 30 fusermount3 -u "$m" 2>/dev/null ||
        timeout 30 umount -l "$m"
    wait_unmounted "$m" 10 || fail "could not unmount $m"
}

# ---------------------------------------------------------------- layers

whiteout() { mkdir -p -- "$(dirname -- "$1")"; mknod "$1" c 0 0; }

# mkfile PATH CONTENT: file with exactly CONTENT (no newline), parents made.
mkfile() {
    mkdir -p -- "$(dirname -- "$1")"
    printf '%s' "$2" >"$1"
}

drop_caches() {
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

# ---------------------------------------------------------------- assertions

assert_eq() {
    local actual=$1 expected=$2 msg=${3:-values differ}
    [ "$actual" = "$expected" ] ||
        fail "$msg: expected '$expected', got '$actual'"
}

assert_ne() {
    local actual=$1 unexpected=$2 msg=${3:-values equal}
    [ "$actual" != "$unexpected" ] || fail "$msg: got '$actual'"
}

# assert_file_content PATH EXPECTED [MSG]
assert_file_content() {
    local p=$1 expected=$2 msg=${3:-content of $1} got rc=0
    got=$(t cat -- "$p" 2>&1) || rc=$?
    [ "$rc" = 0 ] || fail "$msg: cannot read $p: $got"
    [ "$got" = "$expected" ] || fail "$msg: expected '$expected', got '$got'"
}

# oscall OP PATH [ARGS]: prints OK[ result] or the errno name.
oscall() {
    t "$PY" "$OSCALL_PY" "$@"
}

# assert_errno OP PATH [ARGS...] EXPECTED: e.g. assert_errno stat "$M/x" ENOENT;
# EXPECTED "OK" means the call must succeed.
assert_errno() {
    local n=$# expected=${!#} got
    local args=("${@:1:n-1}")
    got=$(oscall "${args[@]}") || fail "oscall ${args[*]} did not run"
    got=${got%% *}
    [ "$got" = "$expected" ] || fail "${args[*]}: expected $expected, got $got"
}

# errno_of OP PATH [ARGS]: just the errno name (or OK).
errno_of() {
    local got
    got=$(oscall "$@")
    echo "${got%% *}"
}

# as_user USER CMD...: run CMD with USER's uid/gid/groups.
as_user() {
    local u=$1
    shift
    setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --init-groups -- "$@"
}

# listing DIR: sorted names, one a line (no . and ..).
listing() {
    t "$PY" -c 'import os,sys; print("\n".join(sorted(os.listdir(sys.argv[1]))))' "$1"
}

assert_listing() {
    local d=$1 expected=$2 got
    got=$(listing "$d" | tr '\n' ' ' | sed 's/ $//')
    [ "$got" = "$expected" ] || fail "listing of $d: expected '$expected', got '$got'"
}

# tree_snapshot DIR [snapshot.py options]: canonical sorted listing of a tree.
tree_snapshot() {
    local d=$1
    shift
    timeout -k 5 "$SNAP_TIMEOUT" "$PY" "$SNAPSHOT_PY" "$@" "$d"
}

# compare_snapshots A B WHAT: diff -u two snapshot files, fail on difference.
compare_snapshots() {
    local a=$1 b=$2 what=$3
    if ! diff -u "$a" "$b" >"$T/.diff" 2>&1; then
        head -n 80 "$T/.diff"
        fail "$what: trees differ ($(grep -c '^[-+][^-+]' "$T/.diff") lines)"
    fi
}

# snap_compare DIR_A DIR_B WHAT [snapshot options]: snapshot both and diff.
snap_compare() {
    local a=$1 b=$2 what=$3 rc=0
    shift 3
    tree_snapshot "$a" "$@" >"$T/.snap.a" || rc=$?
    [ "$rc" -le 1 ] || fail "$what: snapshot of $a failed ($rc)"
    rc=0
    tree_snapshot "$b" "$@" >"$T/.snap.b" || rc=$?
    [ "$rc" -le 1 ] || fail "$what: snapshot of $b failed ($rc)"
    compare_snapshots "$T/.snap.a" "$T/.snap.b" "$what"
}

# ---------------------------------------------------------------- kernel vs layerfs

# setup_pair MODE LOWERS [LAYERFS_ARGS...]
# Mounts the same layers under the kernel overlay at $KM and under layerfs at
# $LM.  MODE: ro (lowers only) | empty (empty upper + work) | upper=DIR (DIR is
# copied, one copy per side: an upper is never shared).  Extra kernel options
# in $KOVL_OPTS (e.g. userxattr).  Sets KM, LM, KU, LU (uppers, empty for ro).
_PAIR=0
KOVL_OPTS=${KOVL_OPTS:-}
setup_pair() {
    local mode=$1 lowers=$2 d
    shift 2
    _PAIR=$((_PAIR + 1))
    d=$T/pair$_PAIR
    mkdir -p "$d/km" "$d/lm"
    KM=$d/km LM=$d/lm KU="" LU=""
    case $mode in
    ro)
        mount_kovl "$lowers" "" "" "$KM" "$KOVL_OPTS"
        mount_layerfs_ro "$lowers" "$LM" "$@"
        ;;
    empty | upper=*)
        KU=$d/ku LU=$d/lu
        if [ "$mode" = empty ]; then
            mkdir "$KU" "$LU"
        else
            cp -a -- "${mode#upper=}" "$KU"
            cp -a -- "${mode#upper=}" "$LU"
        fi
        mkdir "$d/kw"
        mount_kovl "$lowers" "$KU" "$d/kw" "$KM" "$KOVL_OPTS"
        mount_layerfs "$lowers" "$LU" "$LM" "$@"
        ;;
    *) fail "setup_pair: bad mode $mode" ;;
    esac
}

# pair_compare WHAT [snapshot options]: the layerfs view must equal the kernel's.
pair_compare() {
    local what=$1
    shift
    snap_compare "$KM" "$LM" "$what (kernel overlay '-' vs layerfs '+')" "$@"
}

# ---------------------------------------------------------------- fixture rootfs

# fixture_rootfs: unpacks shared/fixtures/debian-bookworm-minbase.tar.zst
# once into a cache under /tmp/layerfs-fixture-rootfs (keyed by the
# tarball's mtime and size; a whole root and a two-layer split of it) and
# sets C to the cache directory ($C/full, $C/bottom, $C/top).  Skips the
# test when the fixture is not there.
# fixture_tarball: sets FIX to the fixture rootfs tarball (skips without it).
fixture_tarball() {
    NAME=debian-bookworm-minbase.tar.zst
    FIX=""
    for c in "${LAYERFS_FIXTURE:-}" "$SRCDIR/../shared/fixtures/$NAME" "$SRCDIR/shared/fixtures/$NAME" \
        "$(dirname "$(realpath -m "$SRCDIR")")/shared/fixtures/$NAME" "/work/shared/fixtures/$NAME"; do
        if [ -n "$c" ] && [ -f "$c" ]; then FIX=$(realpath "$c"); break; fi
    done
    [ -n "$FIX" ] || skip "fixture $NAME not found (looked beside $SRCDIR)"
    note "fixture: $FIX"
}

fixture_rootfs() {
    fixture_tarball

    CACHE_ROOT=/tmp/layerfs-fixture-rootfs
    KEY=$(stat -c '%Y-%s' "$FIX")
    C=$CACHE_ROOT/$KEY
    mkdir -p "$CACHE_ROOT"
    exec 9>"$CACHE_ROOT/.lock"
    flock -w 900 9 || fail "cannot lock $CACHE_ROOT/.lock"
    # a cache from another version of the tarball is dropped
    for old in "$CACHE_ROOT"/*; do
        [ -d "$old" ] && [ "$old" != "$C" ] && rm -rf --one-file-system "$old"
    done
    unpack() { # unpack DEST TAR-ARGS...
        local dest=$1 tmp
        shift
        tmp=$(mktemp -d "$C/.tmp.XXXXXX")
        tar --numeric-owner -xpf "$FIX" -C "$tmp" "$@" || { rm -rf "$tmp"; fail "tar -x $* failed"; }
        mv "$tmp" "$dest"
    }
    mkdir -p "$C"
    rm -rf "$C"/.tmp.*
    if [ ! -e "$C/full.done" ]; then
        check "unpacking the fixture into the cache"
        rm -rf "$C/full" "$C/full.snap"
        unpack "$C/full"
        tree_snapshot "$C/full" >"$C/full.snap" || fail "snapshot of the unpacked fixture reports errors"
        touch "$C/full.done"
    fi
    if [ ! -e "$C/split.done" ]; then
        check "making the two-layer split in the cache"
        rm -rf "$C/bottom" "$C/top"
        unpack "$C/bottom" --exclude=./usr/share/doc ./usr
        unpack "$C/top" --exclude=./usr
        tar --numeric-owner -xpf "$FIX" -C "$C/top" --no-recursion ./usr ./usr/share
        tar --numeric-owner -xpf "$FIX" -C "$C/top" ./usr/share/doc
        touch "$C/split.done"
    fi
    flock -u 9
}
