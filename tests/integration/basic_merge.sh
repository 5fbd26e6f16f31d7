#!/bin/bash
# basic_merge: lookup order (upper, then lowers from the leftmost down), a file
# in several layers shows the top one, directories in several layers merge, a
# non-directory hides a directory below it and a directory hides a non-directory
# below it (and stops the merge: nothing further down is merged into it).
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

U=$T/upper L1=$T/l1 L2=$T/l2 L3=$T/l3
mkdir -p "$U" "$L1" "$L2" "$L3"

# f: everywhere; g: lowers; h: L2+L3; i: L3 only
for l in U L1 L2 L3; do mkfile "${!l}/f" "$l-f"; done
for l in L1 L2 L3; do mkfile "${!l}/g" "$l-g"; done
for l in L2 L3; do mkfile "${!l}/h" "$l-h"; done
mkfile "$L3/i" "L3-i"
# d: a directory in every layer, merged
mkfile "$U/d/u" "U-d-u"
mkfile "$L1/d/1" "L1-d-1"
mkfile "$L2/d/2" "L2-d-2"
mkfile "$L3/d/3" "L3-d-3"
mkfile "$L1/d/common" "L1-common"
mkfile "$L3/d/common" "L3-common"
mkfile "$L2/d/sub/s2" "L2-s2"
mkfile "$L3/d/sub/s3" "L3-s3"
mkfile "$L3/d/sub/deep/d3" "L3-d3"
mkdir -p "$L1/e" "$L2/e"
# x: file on top of a directory
mkfile "$L1/x" "L1-x"
mkfile "$L2/x/child" "L2-x-child"
# y: directory over a file over a directory: the lowest one must not show
mkfile "$L1/y/a" "L1-y-a"
mkfile "$L2/y" "L2-y"
mkfile "$L3/y/b" "L3-y-b"
# z: upper directory over a lower file; w: upper file over a lower directory
mkfile "$U/z/u" "U-z-u"
mkfile "$L1/z" "L1-z"
mkfile "$U/w" "U-w"
mkfile "$L1/w/c" "L1-w-c"
# s: symlink over a directory; n: directory over a symlink
ln -s g "$L1/s"
mkfile "$L2/s/inner" "L2-s-inner"
mkfile "$L1/n/top" "L1-n-top"
ln -s /etc "$L2/n"
# a fifo over a file
mkfifo "$L1/p"
mkfile "$L2/p" "L2-p"

LOWERS="$L1:$L2:$L3"

for mode in ro empty "upper=$U"; do
    label=${mode%%=*}
    check "[$label] tree equals kernel overlay's"
    setup_pair "$mode" "$LOWERS"
    pair_compare "[$label] merged tree"

    check "[$label] lookup order: top copy of each file"
    if [ "$label" = upper ]; then
        assert_file_content "$LM/f" "U-f"
    else
        assert_file_content "$LM/f" "L1-f"
    fi
    assert_file_content "$LM/g" "L1-g"
    assert_file_content "$LM/h" "L2-h"
    assert_file_content "$LM/i" "L3-i"
    assert_file_content "$LM/d/common" "L1-common"

    check "[$label] directories present in several layers are merged"
    if [ "$label" = upper ]; then
        assert_listing "$LM/d" "1 2 3 common sub u"
    else
        assert_listing "$LM/d" "1 2 3 common sub"
    fi
    assert_listing "$LM/d/sub" "deep s2 s3"
    assert_file_content "$LM/d/sub/deep/d3" "L3-d3"
    assert_listing "$LM/e" ""

    check "[$label] a file hides a directory below it"
    assert_file_content "$LM/x" "L1-x"
    assert_errno stat "$LM/x/child" ENOTDIR
    check "[$label] a directory hides a file below it and stops the merge"
    assert_listing "$LM/y" "a"
    assert_errno stat "$LM/y/b" ENOENT
    check "[$label] symlink over a directory is a symlink; directory over a symlink is a directory"
    assert_eq "$(t stat -c %F "$LM/s")" "symbolic link" "type of s"
    assert_eq "$(t readlink "$LM/s")" "g" "target of s"
    assert_errno lstat "$LM/s/inner" ENOTDIR
    assert_eq "$(t stat -c %F "$LM/n")" "directory" "type of n"
    assert_listing "$LM/n" "top"
    assert_eq "$(t stat -c %F "$LM/p")" "fifo" "type of p"

    if [ "$label" = upper ]; then
        check "[upper] upper directory hides a lower file; upper file hides a lower directory"
        assert_listing "$LM/z" "u"
        assert_file_content "$LM/w" "U-w"
        assert_errno stat "$LM/w/c" ENOTDIR
        check "[upper] top-level listing"
        assert_listing "$LM" "d e f g h i n p s w x y z"
    else
        check "[$label] lower file z, lower directory w (no upper copies)"
        assert_file_content "$LM/z" "L1-z"
        assert_listing "$LM/w" "c"
        check "[$label] top-level listing"
        assert_listing "$LM" "d e f g h i n p s w x y z"
    fi
done

check "single lower, read-only: the lower itself"
mkdir "$T/m1"
mount_layerfs_ro "$L3" "$T/m1"
snap_compare "$L3" "$T/m1" "single lower vs the lower directory"

pass_test
