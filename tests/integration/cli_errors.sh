#!/bin/bash
# cli_errors: every bad mount command line fails with one line on stderr
# starting with `layerfs: `, exit status 1 (2 for usage errors), and leaves
# nothing mounted and no daemon behind.  Also: 500 lowers mount; a huge count
# either works or fails cleanly; unknown -o keys warn (one line) and mount;
# empty -o entries are accepted; `\:` and `\\` escapes in lower paths.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

L1=$T/l1 L2=$T/l2 U=$T/upper M=$T/m
mkdir -p "$L1" "$L2" "$U" "$M"
mkfile "$L1/f" "L1-f"
mkfile "$L2/g" "L2-g"
mkfile "$T/file" "a file"

no_daemon_left() {
    local m=$1 p
    sleep 0.2
    p=$(daemon_pids "$m")
    [ -z "$p" ] || fail "a layerfs process is left for $m: $(for x in $p; do tr '\0' ' ' <"/proc/$x/cmdline"; echo; done)"
}

# expect_error RC MOUNTPOINT DESCRIPTION ARGS...
expect_error() {
    local want=$1 m=$2 desc=$3 lines
    shift 3
    check "$desc -> exit $want"
    run_layerfs "$@"
    note "exit $LF_RC, stderr: $(head -c 300 "$LF_ERR" | tr '\n' '|')"
    [ "$LF_RC" = "$want" ] || fail "$desc: exit status $LF_RC, expected $want"
    if is_mounted "$m"; then fail "$desc: $m is mounted after a failed command"; fi
    no_daemon_left "$m"
    lines=$(wc -l <"$LF_ERR")
    if [ "$want" = 1 ]; then
        [ "$lines" = 1 ] || fail "$desc: expected exactly one line on stderr, got $lines"
    else
        [ -s "$LF_ERR" ] || fail "$desc: usage error with nothing on stderr"
    fi
    head -n 1 "$LF_ERR" | grep -q '^layerfs: ' || fail "$desc: stderr does not start with 'layerfs: '"
}

expect_error 1 "$M" "missing lower" mount "$T/nope:$L2" "$U" "$M"
expect_error 1 "$M" "missing second lower" mount "$L1:$T/nope" "$U" "$M"
expect_error 1 "$M" "missing upper" mount "$L1:$L2" "$T/nope" "$M"
expect_error 1 "$T/nomnt" "missing mountpoint" mount "$L1:$L2" "$U" "$T/nomnt"
expect_error 1 "$M" "missing lower, read-only" mount "$T/nope" "$M" --read-only
expect_error 1 "$M" "lower is a file" mount "$T/file:$L2" "$U" "$M"
expect_error 1 "$M" "upper is a file" mount "$L1:$L2" "$T/file" "$M"
expect_error 1 "$T/file" "mountpoint is a file" mount "$L1:$L2" "$U" "$T/file"
expect_error 1 "$M" "workdir is a file" mount "$L1:$L2" "$U" "$M" --workdir "$T/file"
expect_error 1 "$M" "the same lower twice" mount "$L1:$L1" "$U" "$M"
expect_error 1 "$M" "the same lower twice (via another spelling)" mount "$L1:$L2:$T/./l1/" "$U" "$M"
expect_error 1 "$M" "upper is a lower" mount "$L1:$L2" "$L2" "$M"
mkdir -p "$L1/up" "$U/low" "$L1/work" "$U/work" "$L1/mnt" "$U/mnt" "$L2/deep/mnt"
expect_error 1 "$M" "upper inside a lower" mount "$L1:$L2" "$L1/up" "$M"
expect_error 1 "$M" "lower inside the upper" mount "$U/low:$L2" "$U" "$M"
expect_error 1 "$M" "workdir inside a lower" mount "$L1:$L2" "$U" "$M" --workdir "$L1/work"
expect_error 1 "$M" "workdir inside the upper" mount "$L1:$L2" "$U" "$M" --workdir "$U/work"
expect_error 1 "$M" "workdir is the upper" mount "$L1:$L2" "$U" "$M" --workdir "$U"
expect_error 1 "$L1/mnt" "mountpoint inside the top lower" mount "$L1:$L2" "$U" "$L1/mnt"
expect_error 1 "$L2/deep/mnt" "mountpoint inside the bottom lower" mount "$L1:$L2" "$U" "$L2/deep/mnt"
expect_error 1 "$U/mnt" "mountpoint inside the upper" mount "$L1:$L2" "$U" "$U/mnt"
expect_error 1 "$L1/mnt" "mountpoint inside a lower, read-only" mount "$L1:$L2" "$L1/mnt" --read-only
mkdir -p "$T/tmpfs"
mount_tmpfs "$T/tmpfs"
mkdir -p "$T/tmpfs/work"
expect_error 1 "$M" "workdir on another filesystem than the upper" mount "$L1:$L2" "$U" "$M" --workdir "$T/tmpfs/work"
mkdir -p "$T/w1"
expect_error 1 "$M" "-o form: missing lower" -o "lowerdir=$T/nope:$L2,upperdir=$U,workdir=$T/w1" "$M"
expect_error 1 "$M" "-o form: upper inside a lower" -o "lowerdir=$L1:$L2,upperdir=$L1/up,workdir=$T/w1" "$M"
expect_error 1 "$M" "-o form: workdir on another filesystem" -o "lowerdir=$L1:$L2,upperdir=$U,workdir=$T/tmpfs/work" "$M"
expect_error 2 "$M" "bad redirect_dir value (a usage error)" mount "$L1:$L2" "$U" "$M" -o redirect_dir=sideways

expect_error 2 "$M" "no arguments"
expect_error 2 "$M" "mount without arguments" mount
expect_error 2 "$M" "mount with one argument" mount "$L1"
expect_error 2 "$M" "mount with too many arguments" mount "$L1:$L2" "$U" "$M" "$T/extra"
expect_error 2 "$M" "unknown subcommand" frobnicate "$M"
expect_error 2 "$M" "unknown long option" mount "$L1:$L2" "$U" "$M" --frobnicate
expect_error 2 "$M" "--workdir without its value" mount "$L1:$L2" "$U" "$M" --workdir
expect_error 2 "$M" "-o form without a mountpoint" -o "lowerdir=$L1:$L2"

check "the failed commands left the layers untouched"
assert_listing "$L1" "f mnt up work"
assert_listing "$L2" "deep g"
assert_eq "$(ls -A "$U")" "$(printf 'low\nmnt\nwork')" "upper content"

check "unknown -o key: one warning line on stderr, and it mounts"
run_layerfs mount "$L1:$L2" "$U" "$M" -o frobnicate
_mount_check "$M" "mount with -o frobnicate"
note "stderr: $(cat "$LF_ERR")"
assert_eq "$(cat "$LF_ERR")" "layerfs: warning: ignoring unknown option 'frobnicate'" "stderr"
assert_file_content "$M/f" "L1-f"
umount_layerfs "$M"
check "unknown key=value in the -o form"
W=$T/w-form
mkdir -p "$W"
run_layerfs -o "lowerdir=$L1:$L2,upperdir=$U,workdir=$W,frob=1" "$M"
_mount_check "$M" "-o ...,frob=1"
note "stderr: $(cat "$LF_ERR")"
[ "$(wc -l <"$LF_ERR")" = 1 ] || fail "expected one warning line, got: $(cat "$LF_ERR")"
grep -q "^layerfs: warning: ignoring unknown option 'frob" "$LF_ERR" || fail "warning text: $(cat "$LF_ERR")"
assert_file_content "$M/g" "L2-g"
umount_layerfs "$M"

check "empty -o entries are accepted silently"
run_layerfs -o ",,lowerdir=$L1:$L2,,upperdir=$U,,workdir=$W,," "$M"
_mount_check "$M" "-o with empty entries"
[ ! -s "$LF_ERR" ] || fail "stderr not empty: $(cat "$LF_ERR")"
assert_file_content "$M/f" "L1-f"
umount_layerfs "$M"
run_layerfs mount "$L1:$L2" "$U" "$M" -o ",,"
_mount_check "$M" "mount ... -o ,,"
[ ! -s "$LF_ERR" ] || fail "stderr not empty: $(cat "$LF_ERR")"
umount_layerfs "$M"

check "a colon (\\:) and a backslash (\\\\) in lower paths"
mkdir -p "$T/lo:wer" "$T/back\\slash"
mkfile "$T/lo:wer/colon" "colon"
mkfile "$T/back\\slash/bs" "backslash"
mount_layerfs_ro "$T/lo\\:wer:$T/back\\\\slash:$L2" "$M"
assert_file_content "$M/colon" "colon"
assert_file_content "$M/bs" "backslash"
assert_file_content "$M/g" "L2-g"
umount_layerfs "$M"
run_layerfs -o "lowerdir=$T/lo\\:wer:$L2" "$M"
_mount_check "$M" "-o lowerdir with \\:"
assert_file_content "$M/colon" "colon"
umount_layerfs "$M"

check "500 lowers mount; top and bottom layers visible"
MANY=$T/many
mkdir -p "$MANY"
lowers=""
for i in $(seq 0 499); do
    mkdir "$MANY/$i"
    echo "$i" >"$MANY/$i/n"
    : >"$MANY/$i/only$i"
    lowers="$lowers${lowers:+:}$MANY/$i"
done
mount_layerfs_ro "$lowers" "$M"
assert_file_content "$M/n" "0"
assert_file_content "$M/only499" ""
assert_eq "$(t ls "$M" | wc -l)" 501 "entries with 500 lowers"
umount_layerfs "$M"
mkdir -p "$T/u500"
mount_layerfs "$lowers" "$T/u500" "$M"
assert_file_content "$M/only250" ""
umount_layerfs "$M"

check "5000 lowers (relative paths, to stay under the argv limit): works, or fails cleanly"
for i in $(seq 500 4999); do
    mkdir "$MANY/$i"
    echo "$i" >"$MANY/$i/n"
done
: >"$MANY/4999/bottom"
rel=$(cd "$MANY" && seq -s: 0 4999)
LF_RC=0
(cd "$MANY" && timeout -k 5 60 "$LAYERFS" mount "$rel" "$M" --read-only </dev/null >"$LF_OUT" 2>"$LF_ERR") || LF_RC=$?
track_mount fuse "$M"
if [ "$LF_RC" = 0 ]; then
    is_mounted "$M" || fail "5000 lowers: exit 0 but nothing mounted"
    note "5000 lowers: mounted"
    assert_file_content "$M/n" "0"
    assert_eq "$(t stat -c %s "$M/bottom")" 0 "bottom layer's file with 5000 lowers"
    umount_layerfs "$M"
else
    note "5000 lowers: exit $LF_RC: $(cat "$LF_ERR")"
    # a limit on the layer count is an error on the command line: 1 or 2
    [ "$LF_RC" = 1 ] || [ "$LF_RC" = 2 ] || fail "5000 lowers: exit $LF_RC (expected 0, or 1/2 with a message)"
    [ "$(wc -l <"$LF_ERR")" = 1 ] && grep -q '^layerfs: ' "$LF_ERR" ||
        fail "5000 lowers: not one 'layerfs: ' line: $(cat "$LF_ERR")"
    if is_mounted "$M"; then fail "5000 lowers: failed but mounted"; fi
    no_daemon_left "$M"
fi

pass_test
