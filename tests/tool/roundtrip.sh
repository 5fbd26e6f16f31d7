#!/usr/bin/env bash
# layer-tool round trips: the same changes made through kernel overlay and
# through layerfs; each upper -> commit -> apply beside the lowers -> the
# stack (under kernel overlay and under layerfs) is the merged view the
# upper gave.  Covers every whiteout, opaque, redirect and hard-link case
# and `diff --lower` on both uppers.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || skip "no kernel overlay"

L1=$T/l1 L2=$T/l2
mkfile "$L2/etc/conf" base
mkfile "$L2/etc/conf2" two
mkfile "$L2/dir1/a" a
mkfile "$L2/dir1/b" b
mkfile "$L2/dir1/sub/c" c
mkfile "$L2/dir2/x" x
mkfile "$L2/dir2/y/z" z
mkfile "$L2/rmme" gone
mkfile "$L2/keep" keep
mkfile "$L2/same" same
mkfile "$L2/olddir/p" p
mkfile "$L2/olddir/q/r" r
mkfile "$L2/src/inner/f" inner
mkfile "$L2/src/inner/deep/g" g
mkfile "$L2/src/stay" stay
mkfile "$L2/hl/one" linked
ln "$L2/hl/one" "$L2/hl/two"
head -c 300000 /dev/urandom >"$L2/big"
mkfile "$L1/dir1/b" b1
mkfile "$L1/top-only" top
mkfile "$L1/wh-in-l1" w
chmod 0755 "$L1" "$L2"

# The changes, made the same way on a merged view M.
changes() {
    local M=$1
    set -e
    echo new >"$M/new"
    mkdir -p "$M/newdir/deep"
    echo deepf >"$M/newdir/deep/f"
    echo changed >>"$M/etc/conf"
    chmod 0600 "$M/keep"
    chown 0:0 "$M/same"            # copied up, nothing changed
    rm "$M/rmme"
    rm "$M/wh-in-l1"
    rm -rf "$M/dir2"
    rm -rf "$M/dir1"
    mkdir "$M/dir1"
    echo fresh >"$M/dir1/fresh"
    mv "$M/olddir" "$M/moved"      # redirect
    echo added >"$M/moved/added"
    rm "$M/moved/p"
    mv "$M/src/inner" "$M/newdir/inner"   # across directories: an absolute redirect
    echo more >"$M/newdir/inner/deep/h"
    ln "$M/new" "$M/newlink"       # hard link made in the upper
    ln "$M/new" "$M/newdir/link2"
    setfattr -n user.k -v v "$M/etc/conf2"
    mv "$M/etc/conf2" "$M/etc/conf3"
    ln -s ../etc/conf "$M/newdir/sym"
    mkfifo "$M/fifo"
    echo x >>"$M/hl/one"          # copy-up of one name of a lower hard link
    : # /top-only and /big are only read
    cat "$M/top-only" "$M/big" >/dev/null
}

check "changes through kernel overlay (redirect_dir=on)"
mkdir -p "$T/ku" "$T/kw" "$T/km"
mount_kovl "$L1:$L2" "$T/ku" "$T/kw" "$T/km" redirect_dir=on
changes "$T/km" || fail "changes on kernel overlay failed"
umount_any "$T/km"
[ "$(getfattr --absolute-names --only-values -n trusted.overlay.redirect "$T/ku/newdir/inner" 2>/dev/null)" = /src/inner ] ||
    fail "the kernel wrote no absolute redirect for the moved directory"

check "changes through kernel overlay with userxattr (user.overlay.* markers)"
mkdir -p "$T/uu" "$T/uw" "$T/um"
mount_kovl "$L1:$L2" "$T/uu" "$T/uw" "$T/um" userxattr
changes "$T/um" || fail "changes on kernel overlay (userxattr) failed"
umount_any "$T/um"
getfattr --absolute-names -n user.overlay.opaque "$T/uu/dir1" >/dev/null 2>&1 || fail "userxattr upper has no user.overlay.opaque"

check "changes through layerfs"
mkdir -p "$T/lu" "$T/lm"
mount_layerfs "$L1:$L2" "$T/lu" "$T/lm"
t bash -c "$(declare -f changes); changes '$T/lm'" || fail "changes on layerfs failed"
umount_layerfs "$T/lm"
[ "$(getfattr --absolute-names --only-values -n trusted.overlay.redirect "$T/lu/newdir/inner" 2>/dev/null)" = /src/inner ] ||
    fail "layerfs wrote no absolute redirect for the moved directory"

EXPECTED_DIFF="A /dir1/fresh
A /fifo
A /moved
A /moved/added
A /moved/q
A /moved/q/r
A /new
A /newdir
A /newdir/deep
A /newdir/deep/f
A /newdir/inner
A /newdir/inner/deep
A /newdir/inner/deep/g
A /newdir/inner/deep/h
A /newdir/inner/f
A /newdir/link2
A /newdir/sym
A /newlink
C /dir1
C /etc
C /etc/conf
A /etc/conf3
C /hl
C /hl/one
C /keep
D /dir1/a
D /dir1/b
D /dir1/sub
D /dir2
D /etc/conf2
D /olddir
D /rmme
C /src
D /src/inner
D /wh-in-l1"
EXPECTED_DIFF=$(sort -k2 <<<"$EXPECTED_DIFF")

for side in k u l; do
    U=$T/${side}u
    case $side in k) name="kernel upper" ;; u) name="kernel userxattr upper" ;; *) name="layerfs upper" ;; esac
    vopt=redirect_dir=follow
    [ $side = u ] && vopt=userxattr
    V=$T/view-$side
    mkdir -p "$V"
    check "$name: the merged view (upper as a lower of a read-only kernel mount)"
    mount_kovl "$U:$L1:$L2" "" "" "$V" "$vopt"
    tree_snapshot "$V" --exclude-root >"$T/want-$side.snap"
    umount_any "$V"
    grep -q '^moved/q/r	f' "$T/want-$side.snap" && ! grep -q '^dir1/a	' "$T/want-$side.snap" &&
        ! grep -q '^olddir' "$T/want-$side.snap" || fail "$name: the merged view is not what the changes made"

    check "$name: diff --lower"
    lt_ok diff "$U" --lower "$L1:$L2"
    got=$(sort -k2 "$LT_OUT")
    [ "$got" = "$EXPECTED_DIFF" ] || fail "$name: diff --lower: got
$got
expected
$EXPECTED_DIFF"

    if [ $side != u ]; then # (userxattr: no redirects, mv copies)
        check "$name: commit without --lower refuses the redirect"
        lt_fails "redirect without --lower" commit "$U" -o "$T/x.tar"
        [ ! -e "$T/x.tar" ] || fail "a failed commit left $T/x.tar"
    fi

    check "$name: commit --lower, apply, stack: the same tree"
    lt_ok commit "$U" --lower "$L1:$L2" -o "$T/$side.tar.gz"
    [ -n "$(field diff_id)" ] && [ -n "$(field digest)" ] || fail "no digests printed: $(cat "$LT_OUT")"
    tar_listing "$T/$side.tar.gz" >"$T/$side.list"
    [ $side = u ] || grep -q '^moved/.wh..wh..opq ' "$T/$side.list" || fail "$name: the renamed dir is not opaque in the layer"
    grep -q '^moved/q/r ' "$T/$side.list" || fail "$name: the renamed dir is not written in full"
    grep -q '^.wh.olddir ' "$T/$side.list" || fail "$name: no whiteout at the old place of the renamed dir"
    grep -q '^newdir/inner/deep/g ' "$T/$side.list" && grep -q '^src/.wh.inner ' "$T/$side.list" ||
        fail "$name: the dir moved across directories is not written in full with a whiteout"
    grep -q '^dir1/.wh..wh..opq ' "$T/$side.list" || fail "$name: opaque dir1 has no marker"
    grep -q '^newlink 1 .* new ' "$T/$side.list" || fail "$name: newlink is not a link to new: $(grep newlink "$T/$side.list")"
    grep -q '^newdir/link2 1 .* new ' "$T/$side.list" || fail "$name: newdir/link2 is not a link to new"
    grep -q '^etc/conf3 0 .* user.k=v$' "$T/$side.list" || fail "$name: the user xattr is missing"
    if grep -q 'overlay' "$T/$side.list"; then fail "$name: overlay-private xattrs in the layer"; fi
    # whiteouts before their siblings in each directory
    "$PY" - "$T/$side.list" <<'PY' || fail "$name: a whiteout comes after a sibling"
import sys, os
seen = {}
for line in open(sys.argv[1]):
    n = line.split(" ")[0].rstrip("/")
    d, b = os.path.split(n)
    if b.startswith(".wh.") and b != ".wh..wh..opq" and seen.get(d):
        sys.exit(1)
    if not b.startswith(".wh."):
        seen[d] = True
PY
    A=$T/applied-$side
    lt_ok apply "$T/$side.tar.gz" "$A"
    [ "$(stat -c %i "$A/new")" = "$(stat -c %i "$A/newlink")" ] || fail "$name: hard link not kept by apply"
    [ "$(stat -c %t,%T,%F "$A/rmme")" = "0,0,character special file" ] || fail "$name: whiteout not a 0/0 device"
    [ "$(getfattr --absolute-names --only-values -n trusted.overlay.opaque "$A/dir1" 2>/dev/null)" = y ] ||
        fail "$name: dir1 not opaque after apply"
    mount_kovl "$A:$L1:$L2" "" "" "$V"
    tree_snapshot "$V" --exclude-root >"$T/got-$side.snap"
    umount_any "$V"
    compare_snapshots "$T/want-$side.snap" "$T/got-$side.snap" "$name: applied layer under kernel overlay"
    mount_layerfs_ro "$A:$L1:$L2" "$V"
    tree_snapshot "$V" --exclude-root >"$T/got-$side-l.snap"
    umount_layerfs "$V"
    compare_snapshots "$T/want-$side.snap" "$T/got-$side-l.snap" "$name: applied layer under layerfs"

    check "$name: apply --aufs keeps .wh. files, which layerfs reads"
    lt_ok apply --aufs "$T/$side.tar.gz" "$T/aufs-$side"
    [ -f "$T/aufs-$side/.wh.rmme" ] && [ -f "$T/aufs-$side/dir1/.wh..wh..opq" ] || fail "$name: --aufs markers missing"
    mount_layerfs_ro "$T/aufs-$side:$L1:$L2" "$V"
    tree_snapshot "$V" --exclude-root >"$T/got-$side-a.snap"
    umount_layerfs "$V"
    compare_snapshots "$T/want-$side.snap" "$T/got-$side-a.snap" "$name: aufs-form layer under layerfs"
done

check "the uppers give the same layer content (opaque markers of new dirs aside: kernel modes differ)"
for side in l u; do
    diff <(grep -v '/.wh..wh..opq ' "$T/k.list" | cut -d' ' -f1-6) <(grep -v '/.wh..wh..opq ' "$T/$side.list" | cut -d' ' -f1-6) >"$T/kl.diff" ||
        { cat "$T/kl.diff"; fail "kernel and $side uppers give different layers"; }
done

check "diff without --lower: whiteouts D, copy-ups C, new A"
lt_ok diff "$T/ku"
grep -qx 'D /rmme' "$LT_OUT" || fail "no 'D /rmme': $(cat "$LT_OUT")"
grep -qx 'C /etc/conf' "$LT_OUT" || fail "no 'C /etc/conf': $(cat "$LT_OUT")"
grep -qx 'A /new' "$LT_OUT" || fail "no 'A /new': $(cat "$LT_OUT")"
grep -qx 'A /moved' "$LT_OUT" || fail "no 'A /moved' (renamed dir): $(cat "$LT_OUT")"
grep -qx 'D /olddir' "$LT_OUT" || fail "no 'D /olddir': $(cat "$LT_OUT")"
sort -c -k2 "$LT_OUT" 2>/dev/null || LC_ALL=C sort -c -k2,2 "$LT_OUT" || fail "diff output not sorted"
lt_ok diff "$T/ku" --json
"$PY" -c 'import json,sys; a=json.load(open(sys.argv[1])); assert {"path":"/rmme","kind":"D"} in a' "$LT_OUT" ||
    fail "--json output: $(head -c 500 "$LT_OUT")"

pass_test
