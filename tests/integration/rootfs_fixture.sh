#!/bin/bash
# rootfs_fixture: a real Debian root filesystem (shared/fixtures/
# debian-bookworm-minbase.tar.zst) as the only lower (read-only, and with an
# empty upper): the merged tree equals the source (names, types, modes,
# owners, sizes, content hashes, symlink targets, xattrs); find/du/tar agree;
# `chroot MERGED dpkg -l` works.  Then the rootfs split in two layers (usr/
# below, the rest and usr/share/doc on top) equals the kernel overlay's view.
# The unpacked tree is cached under /tmp/layerfs-fixture-rootfs, keyed by the
# tarball's mtime and size.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

fixture_rootfs
FULL=$C/full
note "unpacked root: $(stat -c '%A %u/%g' "$FULL")"
nsrc=$(grep -c '' "$C/full.snap")
note "source entries (with the root): $nsrc"
[ "$nsrc" -gt 6000 ] || fail "the unpacked fixture looks incomplete ($nsrc entries)"

stats() { # find count, du -s, tar size and exit status
    local d=$1 sz
    sz=$({ timeout 300 tar cf - -C "$d" . 2>"$T/tar.err"; echo $? >"$T/tar.rc"; } | wc -c)
    printf 'find=%s du=%s tar=%s tar_rc=%s' "$(t find "$d" | wc -l)" "$(t du -s "$d" | cut -f1)" \
        "$sz" "$(cat "$T/tar.rc")"
    [ -s "$T/tar.err" ] && printf ' tar_err=%s' "$(head -c 200 "$T/tar.err" | tr '\n' '|')"
    return 0
}
SRC_STATS=$(stats "$FULL")
note "source: $SRC_STATS"

check "read-only mount of the rootfs: tree equals the source"
M=$T/ro
mkdir -p "$M"
mount_layerfs_ro "$FULL" "$M"
rc=0
tree_snapshot "$M" >"$T/ro.snap" || rc=$?
compare_snapshots "$C/full.snap" "$T/ro.snap" "rootfs read-only (source '-' vs layerfs '+')"
check "read-only: find | wc -l, du -s, tar | wc -c equal the source's"
assert_eq "$(stats "$M")" "$SRC_STATS" "find/du/tar"
check "read-only: chroot MERGED /bin/sh -c 'dpkg -l | wc -l'"
n=$(timeout 120 chroot "$M" /bin/sh -c 'dpkg -l | wc -l' 2>"$T/chroot.err") || fail "chroot dpkg -l failed: $(cat "$T/chroot.err")"
note "dpkg -l lines: $n"
[ "$n" -gt 50 ] || fail "dpkg -l printed $n lines (expected > 50)"
assert_eq "$(timeout 60 chroot "$M" /usr/bin/env -i /bin/sh -c 'cat /etc/debian_version')" "$(cat "$FULL/etc/debian_version")" "debian_version via chroot"

check "empty upper: tree equals the source (the root aside) and the kernel overlay's"
mkdir -p "$T/e/up" "$T/e/m" "$T/k/up" "$T/k/work" "$T/k/m"
chmod --reference="$FULL" "$T/e/up" "$T/k/up"
chown --reference="$FULL" "$T/e/up" "$T/k/up"
mount_layerfs "$FULL" "$T/e/up" "$T/e/m"
tree_snapshot "$T/e/m" >"$T/e.snap" || true
compare_snapshots <(grep -v '^\.	' "$C/full.snap") <(grep -v '^\.	' "$T/e.snap") "rootfs with an empty upper (source '-' vs layerfs '+')"
mount_kovl "$FULL" "$T/k/up" "$T/k/work" "$T/k/m"
tree_snapshot "$T/k/m" >"$T/k.snap" || true
compare_snapshots "$T/k.snap" "$T/e.snap" "rootfs with an empty upper (kernel '-' vs layerfs '+')"
check "empty upper: find/du/tar equal the kernel overlay's"
kst=$(stats "$T/k/m")
note "kernel: $kst"
assert_eq "$(stats "$T/e/m")" "$kst" "find/du/tar"
check "empty upper: chroot dpkg -l"
n=$(timeout 120 chroot "$T/e/m" /bin/sh -c 'dpkg -l | wc -l' 2>"$T/chroot.err") || fail "chroot dpkg -l failed: $(cat "$T/chroot.err")"
[ "$n" -gt 50 ] || fail "dpkg -l printed $n lines"
assert_eq "$(ls -A "$T/e/up")" "" "upper after reads only"

check "two-layer split (usr/ below, the rest on top): equals the source and the kernel overlay"
mkdir -p "$T/s/m" "$T/s/km"
mount_layerfs_ro "$C/top:$C/bottom" "$T/s/m"
mount_kovl "$C/top:$C/bottom" "" "" "$T/s/km"
tree_snapshot "$T/s/m" >"$T/s.snap" || true
tree_snapshot "$T/s/km" >"$T/sk.snap" || true
compare_snapshots "$T/sk.snap" "$T/s.snap" "split rootfs (kernel '-' vs layerfs '+')"
compare_snapshots "$C/full.snap" "$T/s.snap" "split rootfs (source '-' vs layerfs '+')"
check "split: st_ino and st_nlink equal the kernel overlay's"
tree_snapshot "$T/s/m" --no-hash --no-xattrs --ino --nlink >"$T/s.isnap" || true
tree_snapshot "$T/s/km" --no-hash --no-xattrs --ino --nlink >"$T/sk.isnap" || true
compare_snapshots "$T/sk.isnap" "$T/s.isnap" "split rootfs inodes (kernel '-' vs layerfs '+')"
check "split: find/du/tar equal the kernel overlay's and chroot dpkg -l works"
kst=$(stats "$T/s/km")
note "kernel split: $kst"
assert_eq "$(stats "$T/s/m")" "$kst" "find/du/tar on the split"
n=$(timeout 120 chroot "$T/s/m" /bin/sh -c 'dpkg -l | wc -l' 2>"$T/chroot.err") || fail "chroot dpkg -l failed: $(cat "$T/chroot.err")"
[ "$n" -gt 50 ] || fail "dpkg -l printed $n lines"

pass_test
