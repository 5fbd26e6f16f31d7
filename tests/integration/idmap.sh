#!/bin/bash
# idmap: the id options containers-storage hands its mount program,
# uidmapping=/gidmapping= (with the leading ':' it writes), squash_to_uid/gid,
# squash_to_root and xattr_permissions=1|2, and lower layers unpacked with
# force_mask (user.containers.override_stat).  fuse-overlayfs is the oracle:
# the same layers and the same steps on both give the same owners and modes,
# shown in the mount and stored in the upper.  Then what layerfs does on its
# own: a chown to an id no range shows is EOVERFLOW; the caller's groups are
# mapped too.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs
command -v fuse-overlayfs >/dev/null || skip "fuse-overlayfs missing (the oracle)"

MAP=":0:100000:65536"  # as containers-storage writes it
B=$T/base
mkfile "$B/rootfile" "r"
mkfile "$B/owned" "o"; chown 5:7 "$B/owned"
mkfile "$B/far" "f"; chown 70000:70001 "$B/far"           # no range holds it
mkfile "$B/etc/conf" "c"; chmod 0640 "$B/etc/conf"; chown 0:42 "$B/etc/conf"
mkdir -p "$B/tmp"; chmod 1777 "$B/tmp"
mkdir -p "$B/home/u"; chown 1000:1000 "$B/home/u"
ln -s rootfile "$B/link"; chown -h 3:3 "$B/link"

# shown TREE: owner, group and mode of everything under TREE, by relative name.
shown() {
    (cd "$1" && t find . -mindepth 0 -printf '%p %U:%G %m %y\n' | sort)
}
# stored UPPER: what the upper records for each object, by relative name:
# the owner and mode of its override xattr when it has one (fuse-overlayfs
# writes the whole st_mode there, layerfs the permission bits), else its
# real owner and mode.  The real owner behind an override differs (the
# daemon's with fuse-overlayfs, the copied one with layerfs) and is not
# compared.
stored() {
    local up=$1 p v x rec
    (cd "$up" && t find . -mindepth 1 ! -name '.wh.*' -printf '%p\n' | sort) | while read -r p; do
        rec="$(stat -c '%u:%g' "$up/$p"):$(stat -c '%a' "$up/$p")"
        for x in user.fuseoverlayfs.override_stat security.fuseoverlayfs.override_stat; do
            v=$(getfattr --only-values -h -n "$x" "$up/$p" 2>/dev/null) || continue
            IFS=: read -r xu xg xm <<<"$v"
            rec=$(printf '%s:%s:%o' "$xu" "$xg" $((8#$xm & 07777)))
        done
        echo "$p $rec"
    done
}

n=0
# both OPTS STEPS: mount layerfs and fuse-overlayfs over copies of $B with
# OPTS, run STEPS (a shell snippet using $M) on each, compare what both show
# and store.
both() {
    local opts=$1 steps=$2 side
    n=$((n + 1))
    for side in lf fo; do
        local d=$T/c$n-$side
        mkdir -p "$d/u" "$d/w" "$d/m"
        cp -a "$B" "$d/l"
        if [ -n "${LOWER_SETUP:-}" ]; then (cd "$d/l" && eval "$LOWER_SETUP"); fi
        track_mount fuse "$d/m"
        local o="lowerdir=$d/l,upperdir=$d/u,workdir=$d/w${opts:+,$opts}"
        if [ $side = lf ]; then
            mount_layerfs_o "$o" "$d/m"
        else
            t fuse-overlayfs -o "$o" "$d/m" 2>/dev/null || fail "fuse-overlayfs -o $o failed"
        fi
        (M=$d/m; cd /; eval "$steps") || fail "steps failed on $side: $steps"
        shown "$d/m" >"$d/shown"
        t fusermount3 -u "$d/m"
        stored "$d/u" >"$d/stored"
    done
    compare_snapshots "$T/c$n-fo/shown" "$T/c$n-lf/shown" "shown by the mount ($opts)"
    compare_snapshots "$T/c$n-fo/stored" "$T/c$n-lf/stored" "stored in the upper ($opts)"
}

mapped() { setpriv --reuid="$1" --regid="$2" --clear-groups -- "${@:3}"; }

STEPS='
    mapped 101000 101000 sh -c "echo hi >$M/home/u/new; mkdir $M/home/u/d; ln -s new $M/home/u/sl"
    mapped 100007 100007 sh -c "umask 077; echo t >$M/tmp/t"
    chown 100010:100011 $M/owned
    chown -h 100004:100004 $M/link
    chmod 0600 $M/rootfile
    chgrp 100042 $M/etc
    echo x >>$M/etc/conf
    rm $M/far
    touch $M/hostroot
'

check "uidmapping/gidmapping: shown and stored ids equal fuse-overlayfs's"
both "uidmapping=$MAP,gidmapping=$MAP" "$STEPS"
grep -qx './rootfile 100000:100000 600 f' "$T/c1-lf/shown" || fail "stored 0:0 not shown as 100000"
grep -qx './owned 10:11:644' "$T/c1-lf/stored" || fail "chown to 100010:100011 not stored as 10:11"
grep -qx './home/u/new 1000:1000:644' "$T/c1-lf/stored" || fail "a mapped caller's file is not stored as 1000:1000"
grep -qx './hostroot 65534:65534:644' "$T/c1-lf/stored" || fail "an unmapped creator is not stored as the overflow id"

check "two ranges, gids mapped on their own"
both "uidmapping=0:100000:1:1:200000:65535,gidmapping=0:300000:65536" '
    mapped 200004 300004 sh -c "echo x >$M/tmp/y"
    chown 200000:300001 $M/owned'

check "squash_to_uid / squash_to_gid: everything shows as them"
both "squash_to_uid=1000,squash_to_gid=1001" '
    echo n >$M/tmp/new
    chown 5:5 $M/owned'
grep -v ' 1000:1001 ' "$T/c$n-lf/shown" && fail "an entry does not show 1000:1001"

check "squash_to_root, with a mapping underneath"
both "squash_to_root,uidmapping=$MAP,gidmapping=$MAP" '
    mapped 100003 100003 sh -c "echo n >$M/tmp/new"'
grep -v ' 0:0 ' "$T/c$n-lf/shown" && fail "an entry does not show 0:0"

# fuse-overlayfs 1.10 records a new file's mode as created | 0755 (fixed in
# 1.14, "honor umask with xattr_permissions"), and its chmod records the
# real owner instead of the recorded one ("fix file owner retrieval for
# chmod", 1.14): layerfs keeps the mode asked for and the recorded owner.
# The steps make new objects 0755 and chmod only what is owned by 0:0 so
# that both agree.
XSTEPS='
    chmod 0600 $M/rootfile
    chown 100003:100004 $M/owned
    mapped 100009 100009 sh -c "umask 022; mkdir $M/tmp/nd"
    mapped 100009 100009 $PY -c "import os; os.umask(0); os.close(os.open(\"$M/tmp/nf\", os.O_CREAT|os.O_WRONLY, 0o755))"
    mkdir -m 0755 $M/newdir
'
check "xattr_permissions=2: owner and mode in user.fuseoverlayfs.override_stat"
both "xattr_permissions=2,uidmapping=$MAP,gidmapping=$MAP" "$XSTEPS"
grep -qx './owned 3:4:644' "$T/c$n-lf/stored" ||
    { cat "$T/c$n-lf/stored"; fail "chown did not go to the xattr"; }

check "xattr_permissions=2: chmod keeps the recorded owner, a new file the mode asked for"
d=$T/c$n-lf
track_mount fuse "$d/m"
mount_layerfs_o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w,xattr_permissions=2,uidmapping=$MAP,gidmapping=$MAP" "$d/m"
chmod 0640 "$d/m/tmp/nf"
mapped 100009 100009 sh -c "umask 027; echo y >'$d/m/tmp/nf2'"
assert_eq "$(stat -c '%u:%g %a' "$d/m/tmp/nf" "$d/m/tmp/nf2" | tr '\n' ' ')" "100009:100009 640 100009:100009 640 "
shown "$d/m" >"$d/shown"
t fusermount3 -u "$d/m"
[ "$(stat -c %a "$T/c$n-lf/u/rootfile")" = 644 ] || fail "chmod changed the real mode under xattr_permissions"

check "xattr_permissions=2 across a remount: the upper root is marked, the next mount reads it"
d=$T/c$n-lf
track_mount fuse "$d/m"
mount_layerfs_o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w,uidmapping=$MAP,gidmapping=$MAP" "$d/m"
shown "$d/m" >"$d/shown2"
t fusermount3 -u "$d/m"
compare_snapshots "$d/shown" "$d/shown2" "after a remount without xattr_permissions="

check "xattr_permissions=1: security.fuseoverlayfs.override_stat"
both "xattr_permissions=1" "$XSTEPS"
v=$(getfattr --only-values -n security.fuseoverlayfs.override_stat "$T/c$n-lf/u/owned") ||
    fail "no security.fuseoverlayfs.override_stat written"
assert_eq "$v" "100003:100004:0644"
[ "$(stat -c %u:%g "$T/c$n-lf/u/owned")" = 5:7 ] || fail "chown changed the real owner under xattr_permissions=1"

check "a force_mask layer (user.containers.override_stat on its root and files) shows the recorded owners"
# as containers-storage unpacks with force_mask: every object but symlinks
# carries one (fuse-overlayfs 1.10 fails the stat of one that has none)
LOWER_SETUP='
    find . ! -type l -exec sh -c "setfattr -n user.containers.override_stat -v \$(stat -c %u:%g:0%a \"\$1\") \"\$1\"" sh {} \;
    setfattr -n user.containers.override_stat -v 0:0:0755 .
    setfattr -n user.containers.override_stat -v 0:0:4755 rootfile
    setfattr -n user.containers.override_stat -v 33:33:0700 home/u
    chmod 0700 etc/conf'
# (a directory's copy-up is left out: fuse-overlayfs 1.10 drops the recorded
# owner there, layerfs keeps it)
both "uidmapping=$MAP,gidmapping=$MAP" 'echo w >>$M/rootfile; chmod 0750 $M/etc/conf'
grep -qx './home/u 100033:100033 700 d' "$T/c$n-lf/shown" || fail "override owner of home/u not shown"
grep -qx './rootfile 100000:100000 4755 f' "$T/c$n-lf/shown" ||
    { cat "$T/c$n-lf/shown"; fail "override_stat of a force_mask layer not shown"; }
unset LOWER_SETUP

# ---- layerfs on its own
d=$T/own
mkdir -p "$d/u" "$d/w" "$d/m"
cp -a "$B" "$d/l"
chmod 0770 "$d/l/home/u"; chown 0:100 "$d/l/home/u"
mount_layerfs_o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w,uidmapping=$MAP,gidmapping=$MAP" "$d/m"

check "chown to an id no range shows: EOVERFLOW, nothing changed"
rc=0; out=$(t chown 5:5 "$d/m/owned" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "chown to an unmapped id succeeded"
case "$out" in *"Value too large"*) ;; *) fail "chown: expected EOVERFLOW, got: $out" ;; esac
assert_eq "$(stat -c %u:%g "$d/l/owned")" "5:7"

check "a mapped caller's supplementary group (shown 100100, stored 100) opens a group-only directory"
mapped_g() { setpriv --reuid=100555 --regid=100555 --groups=100100 -- "$@"; }
mapped_g sh -c "echo g >'$d/m/home/u/byg'" || fail "group member refused"
assert_eq "$(stat -c %u:%g "$d/u/home/u/byg")" "555:555"
rc=0; setpriv --reuid=100555 --regid=100555 --clear-groups -- sh -c "echo g >'$d/m/home/u/nog'" 2>/dev/null || rc=$?
[ "$rc" != 0 ] || fail "a caller without the group wrote into the 0770 directory"

check "override xattrs cannot be set or read through the mount (no file records itself as root)"
for x in user.containers.override_stat user.fuseoverlayfs.override_stat security.fuseoverlayfs.override_stat; do
    rc=0; setfattr -n "$x" -v 0:0:04755 "$d/m/rootfile" 2>/dev/null || rc=$?
    [ "$rc" != 0 ] || fail "setting $x through the mount succeeded"
done
setfattr -n user.containers.override_stat -v 0:0:04755 "$d/l/owned"
[ "$(errno_of getxattr "$d/m/owned" user.containers.override_stat)" = ENODATA ] ||
    fail "a lower's user.containers.override_stat is readable through the mount"
case " $(oscall listxattr "$d/m/owned") " in *override_stat*) fail "override_stat listed" ;; esac

check "POSIX ACL entries are mapped like owners, both ways, and enforced on the shown ids"
printf secret >"$d/l/acl"
chmod 0600 "$d/l/acl"
setfacl -m u:5:r "$d/l/acl"
got=$(getfacl -n -p "$d/m/acl" 2>/dev/null | grep '^user:[0-9]')
assert_eq "$got" "user:100005:r--"
assert_eq "$(setpriv --reuid=100005 --regid=100005 --clear-groups -- cat "$d/m/acl" 2>&1)" "secret"
rc=0; setpriv --reuid=100006 --regid=100006 --clear-groups -- cat "$d/m/acl" >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a user outside the ACL read the 0600 file"
t setfacl -m u:100042:rw,g:100043:r "$d/m/acl"
assert_eq "$(getfacl -n -p "$d/u/acl" 2>/dev/null | grep -E '^(user|group):[0-9]' | tr '\n' ' ')" \
    "user:5:r-- user:42:rw- group:43:r-- "
rc=0; setfacl -m u:42:r "$d/m/acl" 2>/dev/null || rc=$?
[ "$rc" != 0 ] || fail "an ACL entry for an unmapped id was stored"

check "bad mapping values: one-line error, exit 2, nothing mounted"
for bad in "uidmapping=0:1" "uidmapping=0:x:1" "gidmapping=0:1:1:0:5:1" "squash_to_uid=-3" "xattr_permissions=7"; do
    run_layerfs -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w,$bad" "$T/c1-lf/m"
    assert_eq "$LF_RC" 2 "exit status for $bad"
    [ "$(wc -l <"$LF_ERR")" = 1 ] || fail "$bad: not one line: $(cat "$LF_ERR")"
    grep -q '^layerfs: ' "$LF_ERR" || fail "$bad: message lacks 'layerfs: '"
    is_mounted "$T/c1-lf/m" && fail "$bad: something got mounted"
done

pass_test
