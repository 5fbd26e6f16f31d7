#!/bin/bash
# mount_helper: layerfs where any filesystem is expected to fit, through
# mount(8) and mount.fuse3:
#   mount -t fuse.layerfs layerfs MERGED -o lowerdir=...,upperdir=...,workdir=...
#   mount -t fuse 'PROG#layerfs' MERGED -o ...      (program by absolute path)
#   an fstab line of each form, read from a temporary fstab (mount -T FILE),
#   read-only and read-write, then `umount MERGED`.
# Each mount shows the merge, writes land in the upper, umount ends the
# daemon.  The real /etc/fstab is never read or written.
#
# mount(8) runs helpers with no PATH of its own, so /bin/sh finds "layerfs"
# only in its default path: the fuse.layerfs forms need a layerfs there.  When
# none is installed, a symlink /usr/local/sbin/layerfs -> the build is made for
# the test and removed at exit; an unrelated one found there skips those forms.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs
command -v mount.fuse3 >/dev/null || skip "mount.fuse3 missing (fuse3)"

L1=$T/l1 L2=$T/l2
mkfile "$L1/top" "top-1"
mkfile "$L1/f" "f-1"
mkfile "$L2/f" "f-2"
mkfile "$L2/low" "low-2"
mkfile "$L2/gone" "gone"
whiteout "$L1/gone"

LINK=/usr/local/sbin/layerfs
MADE_LINK=0
helper_cleanup() {
    if [ "$MADE_LINK" = 1 ] && [ "$(readlink "$LINK" 2>/dev/null)" = "$LAYERFS" ]; then
        rm -f "$LINK"
    fi
}
# the test's exit status goes on to lib.sh's _cleanup, which exits with it
_keep_rc() { return "$1"; }
trap '_rc=$?; helper_cleanup; _keep_rc "$_rc"; _cleanup' EXIT

# The daemons mount.fuse3 started: layerfs processes naming MERGED.
daemons_of() { daemon_pids "$1"; }

# check_view MERGED UPPER: the merged view, then one write and one delete.
check_view() {
    local m=$1 up=$2
    assert_file_content "$m/top" "top-1"
    assert_file_content "$m/f" "f-1"
    assert_file_content "$m/low" "low-2"
    [ ! -e "$m/gone" ] || fail "whiteout ignored in $m"
    if [ -n "$up" ]; then
        t sh -c "echo new >'$m/new'"
        t rm "$m/low"
        assert_file_content "$up/new" "new"
        [ -c "$up/low" ] || fail "no whiteout for low in $up"
        [ ! -e "$m/low" ] || fail "$m/low still there after rm"
    fi
}

# umount_checked MERGED PIDS...: umount(8), then the daemon is gone.
umount_checked() {
    local m=$1 p i
    shift
    t umount "$m" || fail "umount $m failed"
    wait_unmounted "$m" 10 || fail "$m still mounted after umount"
    for p in "$@"; do
        for ((i = 0; i < 50; i++)); do pid_alive "$p" || break; sleep 0.1; done
        pid_alive "$p" && fail "daemon $p still running after umount $m"
    done
    return 0
}

n=0
fresh() { # fresh NAME: new upper, work, merged dirs; sets U W M
    n=$((n + 1))
    U=$T/u$n W=$T/w$n M=$T/m$n
    mkdir -p "$U" "$W" "$M"
    track_mount fuse "$M"
}

check "mount -t fuse 'PROG#layerfs' (absolute program path), then umount"
fresh
t mount -t fuse "$LAYERFS#layerfs" "$M" -o "lowerdir=$L1:$L2,upperdir=$U,workdir=$W" ||
    fail "mount -t fuse $LAYERFS#layerfs failed"
is_mounted "$M" || fail "nothing mounted on $M"
assert_eq "$(findmnt -n -o FSTYPE "$M")" "fuse.layerfs"
assert_eq "$(findmnt -n -o SOURCE "$M")" "layerfs"
pids=$(daemons_of "$M")
[ -n "$pids" ] || fail "no layerfs daemon for $M"
check_view "$M" "$U"
# as root the mount is shared and honours set-id bits and devices
opts=$(findmnt -n -o OPTIONS "$M")
case ",$opts," in *,allow_other,*) ;; *) fail "no allow_other in '$opts'" ;; esac
case ",$opts," in *,nosuid,*|*,nodev,*) fail "nosuid/nodev in '$opts'" ;; esac
umount_checked "$M" $pids

check "a bad lowerdir through the helper: mount fails, one message, nothing mounted"
fresh
rc=0
err=$(t mount -t fuse "$LAYERFS#layerfs" "$M" -o "lowerdir=$T/nonexistent,upperdir=$U,workdir=$W" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "mount with a missing lower succeeded"
is_mounted "$M" && fail "something is mounted on $M after a failed mount"
case "$err" in *"layerfs: "*nonexistent*) ;; *) fail "message does not name the lower: $err" ;; esac

check "fstab line, type fuse with PROG#layerfs, read-only (mount -T FILE MERGED)"
fresh
FSTAB=$T/fstab
printf '# test fstab\n%s#layerfs %s fuse ro,lowerdir=%s:%s,noauto 0 0\n' "$LAYERFS" "$M" "$L1" "$L2" >"$FSTAB"
t mount -T "$FSTAB" "$M" || fail "mount -T $FSTAB $M failed"
is_mounted "$M" || fail "fstab mount: nothing on $M"
check_view "$M" ""
rc=$(errno_of creat "$M/x")
assert_eq "$rc" "EROFS"
pids=$(daemons_of "$M")
umount_checked "$M" $pids

# ---- the fuse.layerfs type: the helper runs "layerfs SOURCE MERGED -o ..."
helper_found=$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v layerfs || true)
if [ -z "$helper_found" ]; then
    ln -s "$LAYERFS" "$LINK"
    MADE_LINK=1
    helper_found=$LINK
fi
if [ "$(realpath "$helper_found")" != "$(realpath "$LAYERFS")" ] &&
   ! cmp -s "$helper_found" "$LAYERFS"; then
    note "an unrelated layerfs is installed at $helper_found: fuse.layerfs forms not tested"
    skip "the fuse.layerfs type would run $helper_found, not this build"
fi

check "mount -t fuse.layerfs layerfs MERGED -o lowerdir=...,upperdir=...,workdir=..."
fresh
t mount -t fuse.layerfs layerfs "$M" -o "lowerdir=$L1:$L2,upperdir=$U,workdir=$W" ||
    fail "mount -t fuse.layerfs failed"
is_mounted "$M" || fail "nothing mounted on $M"
assert_eq "$(findmnt -n -o FSTYPE "$M")" "fuse.layerfs"
check_view "$M" "$U"
pids=$(daemons_of "$M")
umount_checked "$M" $pids

check "fstab line with type fuse.layerfs, read-write, mounted by its mountpoint"
fresh
printf '%s %s fuse.layerfs lowerdir=%s:%s,upperdir=%s,workdir=%s,noauto,volatile 0 0\n' \
    layerfs "$M" "$L1" "$L2" "$U" "$W" >"$FSTAB"
t mount -T "$FSTAB" "$M" || fail "mount -T $FSTAB $M failed"
check_view "$M" "$U"
pids=$(daemons_of "$M")
[ -n "$pids" ] || fail "no daemon for $M"
umount_checked "$M" $pids

check "the upper written through the helper mounts under kernel overlay alike"
KM=$T/km KW=$T/kw
mkdir -p "$KM" "$KW"
mount_kovl "$L1:$L2" "$U" "$KW" "$KM"
assert_file_content "$KM/new" "new"
[ ! -e "$KM/low" ] || fail "kernel overlay shows the deleted low"
umount_any "$KM"

pass_test
