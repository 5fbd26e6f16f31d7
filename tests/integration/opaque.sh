#!/bin/bash
# opaque: directories marked opaque hide the same directory in the layers
# below them (and only below).  Forms: trusted.overlay.opaque=y,
# user.overlay.opaque=y with -o userxattr (both kernel-checked),
# user.fuseoverlayfs.opaque=y and a `.wh..wh..opq` file (layerfs only).
# trusted.overlay.opaque=x is not opaque.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

U=$T/upper L1=$T/l1 L2=$T/l2
mkdir -p "$U" "$L1" "$L2"
mkfile "$L1/ty/a" a; mkfile "$L2/ty/b" b
setfattr -n trusted.overlay.opaque -v y "$L1/ty"
mkfile "$L1/tx/a" a; mkfile "$L2/tx/b" b
setfattr -n trusted.overlay.opaque -v x "$L1/tx"
mkfile "$U/mid/u" u; mkfile "$L1/mid/a" a; mkfile "$L2/mid/b" b
setfattr -n trusted.overlay.opaque -v y "$L1/mid"
mkfile "$U/uo/u" u; mkfile "$L1/uo/a" a; mkfile "$L2/uo/b" b
setfattr -n trusted.overlay.opaque -v y "$U/uo"
mkfile "$L1/bot/a" a; mkfile "$L2/bot/b" b
setfattr -n trusted.overlay.opaque -v y "$L2/bot"
mkfile "$L1/n/s/s1" s1; mkfile "$L2/n/s/s2" s2; mkfile "$L2/n/t" t
setfattr -n trusted.overlay.opaque -v y "$L1/n/s"
mkfile "$L1/of/in" in; mkfile "$L2/of" "L2-of"
setfattr -n trusted.overlay.opaque -v y "$L1/of"

for mode in ro empty "upper=$U"; do
    label=${mode%%=*}
    check "[$label] tree equals kernel overlay's"
    setup_pair "$mode" "$L1:$L2"
    pair_compare "[$label] merged tree"

    check "[$label] opaque=y hides below, opaque=x does not, opaque in the bottom layer is harmless"
    assert_listing "$LM/ty" "a"
    assert_errno lstat "$LM/ty/b" ENOENT
    assert_listing "$LM/tx" "a b"
    assert_listing "$LM/bot" "a b"
    assert_listing "$LM/n" "s t"
    assert_listing "$LM/n/s" "s1"
    assert_listing "$LM/of" "in"
    check "[$label] opaque in a middle layer keeps what is above it"
    if [ "$label" = upper ]; then
        assert_listing "$LM/mid" "a u"
        check "[upper] opaque upper directory hides every lower"
        assert_listing "$LM/uo" "u"
        assert_errno lstat "$LM/uo/a" ENOENT
    else
        assert_listing "$LM/mid" "a"
        assert_listing "$LM/uo" "a b"
    fi
    check "[$label] the opaque xattr itself is not visible"
    assert_errno lgetxattr "$LM/ty" trusted.overlay.opaque ENODATA
done

check "user.overlay.opaque=y with -o userxattr equals kernel overlay with userxattr"
X=$T/ux
mkfile "$X/l1/d/a" a; mkfile "$X/l2/d/b" b
setfattr -n user.overlay.opaque -v y "$X/l1/d"
mkfile "$X/l1/e/a" a; mkfile "$X/l2/e/b" b
setfattr -n user.overlay.opaque -v x "$X/l1/e"
for mode in ro empty; do
    KOVL_OPTS=userxattr setup_pair "$mode" "$X/l1:$X/l2" -o userxattr
    pair_compare "[userxattr $mode] merged tree"
    assert_listing "$LM/d" "a"
    assert_listing "$LM/e" "a b"
    assert_errno lgetxattr "$LM/d" user.overlay.opaque ENODATA
done

check "user.fuseoverlayfs.opaque=y and .wh..wh..opq (layerfs only)"
F=$T/fo
mkfile "$F/l1/d/a" a; mkfile "$F/l2/d/b" b
setfattr -n user.fuseoverlayfs.opaque -v y "$F/l1/d"
mkfile "$F/l1/w/a" a; : >"$F/l1/w/.wh..wh..opq"; mkfile "$F/l2/w/b" b
mkfile "$F/l1/wn/sub/a" a; : >"$F/l1/wn/sub/.wh..wh..opq"; mkfile "$F/l2/wn/sub/b" b; mkfile "$F/l2/wn/c" c
mkdir -p "$F/m" "$F/mu" "$F/u"
mount_layerfs_ro "$F/l1:$F/l2" "$F/m"
mount_layerfs "$F/l1:$F/l2" "$F/u" "$F/mu"
for M in "$F/m" "$F/mu"; do
    assert_listing "$M/d" "a"
    assert_errno lstat "$M/d/b" ENOENT
    assert_listing "$M/w" "a"
    assert_errno lstat "$M/w/b" ENOENT
    assert_errno lstat "$M/w/.wh..wh..opq" ENOENT
    assert_listing "$M/wn" "c sub"
    assert_listing "$M/wn/sub" "a"
    assert_errno lgetxattr "$M/d" user.fuseoverlayfs.opaque ENODATA
done

pass_test
