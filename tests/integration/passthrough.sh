#!/bin/bash
# passthrough: files of the upper are read and written by the kernel
# itself (FUSE passthrough, Linux >= 6.9, as root); lower files stay on
# the daemon's path.  Checks, each against kernel overlay doing the same:
# a read-only fd of a lower file follows its copy-up; a copied-up file
# opened fresh; sizes while open, ftruncate, O_APPEND, mmap both ways, hard
# links, an open unlinked file, rename over an open file (pt_steps.py);
# the set-user-ID bit is cleared when another user writes; mtime after
# writes is the upper file's.  That the data bypassed the daemon is seen
# in its /proc/PID/io (wchar); -o nopassthrough takes it through again.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

L1=$T/l1
mkdir -p "$L1"
printf 'lower line\n' >"$L1/lower"
printf 'old version' >"$L1/repl"
printf 'setuid\n' >"$L1/suid"
chmod 4777 "$L1/suid"

steps() { t "$PY" "$LIB_DIR/pt_steps.py" "$1"; }

setup_pair empty "$L1"
steps "$KM" >"$T/k.out"
steps "$LM" >"$T/l.out"
diff -u "$T/k.out" "$T/l.out" || fail "pt_steps: kernel overlay (-) and layerfs (+) differ"
check

# a write by another user clears set-user-ID (the file is copied up first)
for m in "$KM" "$LM"; do
    as_user nobody sh -c "printf more >>'$m/suid'"
done
assert_eq "$(stat -c %a "$KM/suid")" "$(stat -c %a "$LM/suid")" "mode after a write by nobody"
assert_eq "$(stat -c %a "$LM/suid")" 777 "set-user-ID cleared by the write"
# mtime after data writes: what the upper file has
sleep 0.01
printf more >>"$KM/new"
printf more >>"$LM/new"
assert_eq "$(stat -c %Y.%y "$LM/new")" "$(stat -c %Y.%y "$LU/new")" "mtime after append (merged vs upper)"
pair_compare "after the steps"

# the data of big writes did not pass through the daemon
wchar() { awk '/^wchar/ {print $2}' "/proc/$1/io"; }
big_write() {   # MERGED -> bytes the daemon wrote meanwhile
    local m=$1 pid before after
    pid=$(daemon_pids "$m" | head -1)
    [ -n "$pid" ] || fail "no daemon for $m"
    before=$(wchar "$pid")
    t dd if=/dev/zero of="$m/big" bs=1M count=64 conv=fsync status=none
    after=$(wchar "$pid")
    echo $((after - before))
}
mkdir -p "$T/u2" "$T/m2" "$T/u3" "$T/m3"
mount_layerfs "$L1" "$T/u2" "$T/m2"
got=$(big_write "$T/m2")
# FUSE passthrough came with Linux 6.9
kv=$(uname -r | awk -F. '{print $1 * 100 + $2}')
if [ "$kv" -ge 609 ]; then
    [ "$got" -lt $((4 << 20)) ] || fail "64 MiB written through passthrough, but the daemon wrote $got bytes"
    note "passthrough: the daemon wrote $got bytes for a 64 MiB file"
else
    note "Linux $(uname -r) has no FUSE passthrough: only the data checks ran"
fi
assert_eq "$(stat -c %s "$T/u2/big")" $((64 << 20)) "size in the upper"
cmp -s "$T/u2/big" "$T/m2/big" || fail "upper and merged content differ"
mount_layerfs "$L1" "$T/u3" "$T/m3" -o nopassthrough
got=$(big_write "$T/m3")
[ "$got" -ge $((64 << 20)) ] || fail "-o nopassthrough: the daemon wrote only $got bytes of 64 MiB"
umount_layerfs "$T/m2"
umount_layerfs "$T/m3"
pass_test
