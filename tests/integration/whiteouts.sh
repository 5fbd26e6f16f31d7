#!/bin/bash
# whiteouts: char 0/0 whiteouts in every layer position, the xattr whiteout
# form (trusted.overlay.whiteout + parent trusted.overlay.opaque=x), the
# user.overlay.* form with -o userxattr, OCI `.wh.NAME` files (layerfs only).
# A whited-out name is absent from listings and lookups (ENOENT), and the
# whiteout itself never shows.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

U=$T/upper L1=$T/l1 L2=$T/l2 L3=$T/l3
mkdir -p "$U" "$L1" "$L2" "$L3"
# the same set of names in all layers' root so that it is a merged dir
mkfile "$L3/a" "L3-a"; whiteout "$L2/a"                       # whiteout in a middle lower
mkfile "$L2/b" "L2-b"; whiteout "$L1/b"                       # whiteout in the top lower
mkfile "$L1/c" "L1-c"; whiteout "$U/c"                        # whiteout in the upper
whiteout "$L3/wb"                                             # bottom layer, nothing below
mkfile "$L2/wd/inner" "L2-wd-inner"; mkdir -p "$L3/wd/deeper"; whiteout "$L1/wd"   # whiteout over a dir
mkfile "$L3/re" "L3-re"; whiteout "$L2/re"; mkfile "$L1/re" "L1-re"  # file above a whiteout
mkfile "$L3/redir/old" "old"; whiteout "$L2/redir"; mkfile "$L1/redir/new" "new"  # dir above a whiteout
mkfile "$L2/d/x" "L2-d-x"; mkfile "$L2/d/keep" "keep"; mkdir -p "$L1/d"; whiteout "$L1/d/x"
mkfile "$L3/d/y" "L3-d-y"; whiteout "$U/d/y"; mkfile "$U/d/u" "U-d-u"
mkfile "$L3/vis" "L3-vis"
# xattr whiteouts: a zero-size file with trusted.overlay.whiteout, the parent
# marked trusted.overlay.opaque=x (which does not make it opaque).
mkfile "$L2/xw/f" "L2-xw-f"; mkfile "$L2/xw/g" "L2-xw-g"
mkdir -p "$L1/xw"; : >"$L1/xw/f"
setfattr -n trusted.overlay.whiteout "$L1/xw/f"
setfattr -n trusted.overlay.opaque -v x "$L1/xw"
mkfile "$L3/xw/h" "L3-xw-h"; : >"$L2/xw/h"; setfattr -n trusted.overlay.whiteout "$L2/xw/h"
setfattr -n trusted.overlay.opaque -v x "$L2/xw"

LOWERS="$L1:$L2:$L3"

for mode in ro empty "upper=$U"; do
    label=${mode%%=*}
    check "[$label] tree equals kernel overlay's"
    setup_pair "$mode" "$LOWERS"
    pair_compare "[$label] merged tree"

    check "[$label] whited-out names are ENOENT and not listed"
    for n in a b wb wd redir/old d/x xw/f xw/h; do
        assert_errno lstat "$LM/$n" ENOENT
    done
    assert_errno stat "$LM/wd/inner" ENOENT
    check "[$label] a name above a whiteout is visible; a dir above a whiteout is not merged with below"
    assert_file_content "$LM/re" "L1-re"
    assert_listing "$LM/redir" "new"
    assert_file_content "$LM/xw/g" "L2-xw-g"
    assert_listing "$LM/xw" "g"
    if [ "$label" = upper ]; then
        assert_errno lstat "$LM/c" ENOENT
        assert_errno lstat "$LM/d/y" ENOENT
        assert_listing "$LM" "d re redir vis xw"
        assert_listing "$LM/d" "keep u"
    else
        assert_file_content "$LM/c" "L1-c"
        assert_file_content "$LM/d/y" "L3-d-y"
        assert_listing "$LM" "c d re redir vis xw"
        assert_listing "$LM/d" "keep y"
    fi
    check "[$label] no character device 0/0 and no whiteout xattr file anywhere in the tree"
    leaks=$(t find "$LM" \( -type c -o -type f -size 0 \) -print)
    assert_eq "$leaks" "" "whiteouts leaked into the merged view"
done

# Whiteouts in directories that exist in one layer only: the kernel lists them
# (and then cannot stat them); layerfs must hide them like any whiteout.
check "whiteouts in a directory found in one layer only (char and xattr forms, upper and bottom lower)"
S=$T/solo
mkdir -p "$S/u" "$S/l1" "$S/l2" "$S/m"
mkfile "$S/l1/solo/real" "real"; whiteout "$S/l1/solo/ghost"
mkfile "$S/l2/bottom/real" "real"; whiteout "$S/l2/bottom/ghost"
mkdir -p "$S/l2/xb"; : >"$S/l2/xb/z"; setfattr -n trusted.overlay.whiteout "$S/l2/xb/z"
setfattr -n trusted.overlay.opaque -v x "$S/l2/xb"; mkfile "$S/l2/xb/keep" "keep"
mkdir -p "$S/u/usolo"; whiteout "$S/u/usolo/g"; mkfile "$S/u/usolo/real" "real"
mkfile "$S/l1/xu/h" "L1-xu-h"; mkdir -p "$S/u/xu"; : >"$S/u/xu/h"
setfattr -n trusted.overlay.whiteout "$S/u/xu/h"; setfattr -n trusted.overlay.opaque -v x "$S/u/xu"
mount_layerfs "$S/l1:$S/l2" "$S/u" "$S/m"
assert_listing "$S/m/solo" "real"
assert_errno lstat "$S/m/solo/ghost" ENOENT
assert_listing "$S/m/bottom" "real"
assert_errno lstat "$S/m/bottom/ghost" ENOENT
assert_listing "$S/m/xb" "keep"
assert_errno lstat "$S/m/xb/z" ENOENT
assert_listing "$S/m/usolo" "real"
assert_errno lstat "$S/m/usolo/g" ENOENT
check "xattr whiteout in the upper layer hides the lower file"
assert_listing "$S/m/xu" ""
assert_errno lstat "$S/m/xu/h" ENOENT

# A lookup takes an xattr whiteout for one wherever it is; so a listing of
# a merged directory with any copy marked opaque=x must not show one that
# sits in an unmarked copy (it could not be stat'ed).  The kernel lists it
# or not depending on which directories it looked up before.
check "xattr whiteout in an unmarked copy of a merged dir marked opaque=x elsewhere: not listed"
X2=$T/xmerged
mkdir -p "$X2/l1/d" "$X2/l2/d" "$X2/u" "$X2/m"
: >"$X2/l1/d/zz"; setfattr -n trusted.overlay.whiteout "$X2/l1/d/zz"; mkfile "$X2/l1/d/f" "f"
mkfile "$X2/l2/d/g" "g"; mkfile "$X2/l2/d/zz" "hidden"; setfattr -n trusted.overlay.opaque -v x "$X2/l2/d"
mount_layerfs "$X2/l1:$X2/l2" "$X2/u" "$X2/m"
assert_listing "$X2/m/d" "f g"
assert_errno lstat "$X2/m/d/zz" ENOENT

# user.overlay.* whiteouts with -o userxattr (kernel: same option)
check "user.overlay.whiteout form with -o userxattr equals kernel overlay with userxattr"
X=$T/ux
mkdir -p "$X/l1/xw" "$X/l2"
mkfile "$X/l2/xw/f" "L2-f"; mkfile "$X/l2/xw/g" "L2-g"; mkfile "$X/l2/t" "L2-t"
: >"$X/l1/xw/f"; setfattr -n user.overlay.whiteout "$X/l1/xw/f"
setfattr -n user.overlay.opaque -v x "$X/l1/xw"
whiteout "$X/l1/t"
for mode in ro empty; do
    KOVL_OPTS=userxattr setup_pair "$mode" "$X/l1:$X/l2" -o userxattr
    pair_compare "[userxattr $mode] merged tree"
    assert_listing "$LM/xw" "g"
    assert_errno lstat "$LM/xw/f" ENOENT
    assert_errno lstat "$LM/t" ENOENT
done

# OCI image-layer whiteouts: `.wh.NAME` (the kernel has no such form).
check "OCI .wh.NAME whiteouts (layerfs only): target hidden, marker never listed, both ENOENT"
O=$T/oci
mkdir -p "$O/l1/sub" "$O/l2" "$O/m" "$O/mu" "$O/u"
mkfile "$O/l2/foo" "L2-foo"; : >"$O/l1/.wh.foo"
mkfile "$O/l2/dir/inside" "inside"; : >"$O/l1/.wh.dir"
mkfile "$O/l2/sub/gone" "gone"; mkfile "$O/l2/sub/stays" "stays"; : >"$O/l1/sub/.wh.gone"
mkfile "$O/l2/kept" "L2-kept"
: >"$O/l2/.wh.nothing"          # bottom layer: hides nothing, still not shown
mount_layerfs_ro "$O/l1:$O/l2" "$O/m"
mount_layerfs "$O/l1:$O/l2" "$O/u" "$O/mu"
for M in "$O/m" "$O/mu"; do
    assert_listing "$M" "kept sub"
    assert_listing "$M/sub" "stays"
    for n in foo .wh.foo dir .wh.dir dir/inside sub/gone sub/.wh.gone .wh.nothing nothing; do
        assert_errno lstat "$M/$n" ENOENT
    done
    assert_file_content "$M/kept" "L2-kept"
done

pass_test
