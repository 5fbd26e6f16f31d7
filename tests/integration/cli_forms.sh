#!/bin/bash
# cli_forms: the accepted command lines and the daemon's life cycle.
#   layerfs mount L1:L2 UPPER MERGED          (default workdir next to the upper)
#   layerfs mount L1:L2 UPPER MERGED --workdir DIR
#   layerfs mount L1:L2 MERGED --read-only    (and -o ro; writes give EROFS)
#   layerfs -o lowerdir=L1:L2 MERGED          (read-only)
#   layerfs -o lowerdir=..,upperdir=..,workdir=..,volatile MERGED
#       (containers-storage: exit 0 only once mounted, stderr closed)
#   layerfs umount MERGED; SIGTERM/SIGINT to the daemon; -f stays in the
#   foreground; --version; --help.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

L1=$T/l1 L2=$T/l2
mkfile "$L1/f" "L1-f"
mkfile "$L2/g" "L2-g"
mkfile "$L2/d/x" "L2-d-x"
M=$T/m
mkdir -p "$M"
LOWER_SNAP=$(tree_snapshot "$L1" --mtime; tree_snapshot "$L2" --mtime)

reads_ok() {
    assert_file_content "$1/f" "L1-f"
    assert_file_content "$1/g" "L2-g"
    assert_listing "$1" "d f g"
}

assert_erofs() {
    local m=$1
    assert_errno creat "$m/new" EROFS
    assert_errno mkdir "$m/newdir" EROFS
    assert_errno unlink "$m/f" EROFS
    assert_errno openw "$m/g" EROFS
    assert_errno rename "$m/f" "$m/f2" EROFS
    assert_errno symlink "$m/sl" f EROFS
}

check "mount L1:L2 UPPER MERGED: the default workdir is UPPER/../.layerfs-work.<name>"
mkdir -p "$T/p/up"
mount_layerfs "$L1:$L2" "$T/p/up" "$M"
reads_ok "$M"
[ -d "$T/p/.layerfs-work.up" ] || fail "no $T/p/.layerfs-work.up after the mount (parent has: $(ls -A "$T/p" | tr '\n' ' '))"
assert_eq "$(ls -A "$T/p" | tr '\n' ' ')" ".layerfs-work.up up " "entries next to the upper"
assert_eq "$(ls -A "$T/p/up")" "" "upper after reads only"
note "/proc/mounts: $(grep -F " $M " /proc/mounts)"
check "layerfs umount MERGED unmounts, and the daemon exits"
pids=$(daemon_pids "$M")
[ -n "$pids" ] || fail "no daemon process found for $M"
umount_layerfs "$M"
for p in $pids; do
    for ((i = 0; i < 50; i++)); do pid_alive "$p" || break; sleep 0.1; done
    pid_alive "$p" && fail "daemon $p still running 5 s after layerfs umount"
done
check "a remount reuses the default workdir"
mount_layerfs "$L1:$L2" "$T/p/up" "$M"
reads_ok "$M"
umount_layerfs "$M"

check "--workdir DIR: used instead of the default"
mkdir -p "$T/q/up" "$T/q/wk"
mount_layerfs "$L1:$L2" "$T/q/up" "$M" --workdir "$T/q/wk"
reads_ok "$M"
assert_eq "$(ls -A "$T/q" | tr '\n' ' ')" "up wk " "entries next to the upper"
umount_layerfs "$M"
check "--workdir=DIR form"
mount_layerfs "$L1:$L2" "$T/q/up" "$M" --workdir="$T/q/wk"
reads_ok "$M"
assert_eq "$(ls -A "$T/q" | tr '\n' ' ')" "up wk " "entries next to the upper"
umount_layerfs "$M"

check "--read-only: reads work, writes give EROFS"
mount_layerfs_ro "$L1:$L2" "$M"
reads_ok "$M"
assert_erofs "$M"
umount_layerfs "$M"
check "-o ro without an upper: read-only"
run_layerfs mount "$L1:$L2" "$M" -o ro
_mount_check "$M" "layerfs mount L1:L2 M -o ro"
reads_ok "$M"
assert_erofs "$M"
umount_layerfs "$M"
check "-o lowerdir=L1:L2 MERGED (no upperdir): read-only"
mount_layerfs_o "lowerdir=$L1:$L2" "$M"
reads_ok "$M"
assert_erofs "$M"
umount_layerfs "$M"
check "read-only mounts left the layers untouched"
assert_eq "$(tree_snapshot "$L1" --mtime; tree_snapshot "$L2" --mtime)" "$LOWER_SNAP" "layers after read-only mounts"

check "relative paths on the command line"
mkdir -p "$T/r/up"
LF_RC=0
(cd "$T" && timeout -k 5 "$MOUNT_TIMEOUT" "$LAYERFS" mount l1:l2 r/up m </dev/null >"$LF_OUT" 2>"$LF_ERR") || LF_RC=$?
_mount_check "$M" "(cd T; layerfs mount l1:l2 r/up m)"
reads_ok "$M"
[ -d "$T/r/.layerfs-work.up" ] || fail "relative upper: default workdir not at r/.layerfs-work.up"
umount_layerfs "$M"

check "containers-storage form: exits 0 only once mounted, closes stderr (2>&1 | cat returns)"
mkdir -p "$T/cs/up" "$T/cs/work"
opts="lowerdir=$L1:$L2,upperdir=$T/cs/up,workdir=$T/cs/work,volatile"
track_mount fuse "$M"
rc=0
timeout -k 2 10 bash -c '"$0" -o "$1" "$2" </dev/null 2>&1 | cat; exit "${PIPESTATUS[0]}"' \
    "$LAYERFS" "$opts" "$M" >"$T/cs.out" || rc=$?
mounted_now=no
is_mounted "$M" && mounted_now=yes
_track_daemons "$M"
[ "$rc" != 124 ] && [ "$rc" != 137 ] ||
    fail "'layerfs -o ... M 2>&1 | cat' did not finish within 10 s: the daemon keeps stdout/stderr open (mounted: $mounted_now)"
[ "$rc" = 0 ] || fail "containers-storage form exited $rc: $(cat "$T/cs.out")"
[ "$mounted_now" = yes ] || fail "exit 0 but $M not in /proc/mounts right after the command returned"
grep -q warning "$T/cs.out" && fail "volatile gave a warning: $(cat "$T/cs.out")"
reads_ok "$M"
check "SIGTERM to the daemon unmounts cleanly and the daemon exits"
pids=$(daemon_pids "$M")
[ -n "$pids" ] || fail "no daemon process found for $M"
note "daemon pid(s): $pids"
kill -TERM $pids
wait_unmounted "$M" 10 || fail "still mounted 10 s after SIGTERM"
for p in $pids; do
    for ((i = 0; i < 50; i++)); do pid_alive "$p" || break; sleep 0.1; done
    pid_alive "$p" && fail "daemon $p still running 5 s after SIGTERM"
done
assert_errno lstat "$M/f" ENOENT
check "SIGINT too"
mkdir -p "$T/fg/up" "$T/fg/work"
mount_layerfs "$L1:$L2" "$T/fg/up" "$M" --workdir "$T/fg/work"
pids=$(daemon_pids "$M")
[ -n "$pids" ] || fail "no daemon process found for $M"
kill -INT $pids
wait_unmounted "$M" 10 || fail "still mounted 10 s after SIGINT"

check "--version"
rc=0
out=$(timeout 10 "$LAYERFS" --version 2>&1) || rc=$?
note "$out"
assert_eq "$rc" 0 "exit status of --version"
echo "$out" | grep -Eq 'layerfs.*[0-9]+\.[0-9]+' || fail "--version does not print 'layerfs' and a version: $out"
check "--help mentions --workdir and where the default workdir goes"
rc=0
out=$(timeout 10 "$LAYERFS" --help 2>&1) || rc=$?
assert_eq "$rc" 0 "exit status of --help"
grep -q -- '--workdir' <<<"$out" || fail "--help does not mention --workdir"
grep -q -- '\.layerfs-work' <<<"$out" || fail "--help does not say where the default workdir goes (.layerfs-work.<name>)"
grep -q -- 'umount' <<<"$out" || fail "--help does not mention umount"
grep -q -- '--read-only' <<<"$out" || fail "--help does not mention --read-only"

for form in "-f -o" "mount --foreground" "mount -f"; do
    check "'$form': stays in the foreground; SIGTERM ends it with status 0"
    if [ "$form" = "-f -o" ]; then
        "$LAYERFS" -f -o "lowerdir=$L1:$L2,upperdir=$T/fg/up,workdir=$T/fg/work" "$M" </dev/null >"$T/fg.out" 2>&1 &
    else
        "$LAYERFS" mount "$L1:$L2" "$T/fg/up" "$M" --workdir "$T/fg/work" ${form#mount } </dev/null >"$T/fg.out" 2>&1 &
    fi
    fg=$!
    track_pid "$fg"
    track_mount fuse "$M"
    wait_mounted "$M" 10 || fail "'$form': not mounted within 10 s ($(cat "$T/fg.out"))"
    sleep 0.5
    pid_alive "$fg" || fail "'$form': the process exited after mounting (did not stay in the foreground)"
    reads_ok "$M"
    kill -TERM "$fg"
    for ((i = 0; i < 100; i++)); do pid_alive "$fg" || break; sleep 0.1; done
    pid_alive "$fg" && fail "'$form': still running 10 s after SIGTERM"
    rc=0
    wait "$fg" || rc=$?
    [ "$rc" = 0 ] || soft_fail "'$form': exit status $rc after SIGTERM (expected 0: a clean shutdown; output: $(head -c 300 "$T/fg.out"))"
    if is_mounted "$M"; then fail "'$form': still mounted after the daemon exited"; fi
done

pass_test
