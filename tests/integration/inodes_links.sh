#!/bin/bash
# inodes_links: hard-linked lower files are one inode with their real st_nlink
# (same st_ino through every name), as on the kernel overlay; st_ino is stable
# across repeated stats, cache eviction, open files (fstat) and a remount.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

U=$T/upper L1=$T/l1 L2=$T/l2
mkdir -p "$U" "$L1" "$L2"
mkfile "$L2/a" "three names"; mkdir -p "$L2/sub"; ln "$L2/a" "$L2/b"; ln "$L2/a" "$L2/sub/c"
mkfile "$L1/h1" "two names"; ln "$L1/h1" "$L1/h2"
mkfile "$L2/y" "one inode, two layers"; ln "$L2/y" "$L1/x"
mkfile "$L1/p1" "one name whited out"; ln "$L1/p1" "$L1/p2"; whiteout "$U/p2"
mkfile "$L1/single" "single"
mkdir -p "$L1/dir/d1" "$L2/dir/d2"
mkfile "$L2/dir/d2/f" "f"

count_samefile() { t find "$1" -samefile "$2" | wc -l; }

for mode in ro empty "upper=$U"; do
    label=${mode%%=*}
    setup_pair "$mode" "$L1:$L2"

    check "[$label] st_ino/st_nlink of every entry equal the kernel overlay's (root excluded)"
    pair_compare "[$label] inodes" --ino --nlink --exclude-root --no-xattrs

    check "[$label] three names of one lower file: one inode, st_nlink 3"
    ia=$(t stat -c '%i %h' "$LM/a")
    assert_eq "$(t stat -c '%i %h' "$LM/b")" "$ia" "b vs a"
    assert_eq "$(t stat -c '%i %h' "$LM/sub/c")" "$ia" "sub/c vs a"
    assert_eq "$ia" "$(stat -c '%i %h' "$KM/a")" "a vs kernel"
    assert_eq "${ia#* }" 3 "st_nlink of a"
    assert_eq "$(count_samefile "$LM" "$LM/a")" 3 "find -samefile a"
    check "[$label] two names in the top lower; a name shared by two layers"
    assert_eq "$(t stat -c '%i %h' "$LM/h2")" "$(t stat -c '%i %h' "$LM/h1")" "h1 vs h2"
    assert_eq "$(t stat -c %h "$LM/h1")" 2 "st_nlink of h1"
    assert_eq "$(t stat -c '%i %h' "$LM/x")" "$(t stat -c '%i %h' "$LM/y")" "x (L1) vs y (L2)"
    assert_eq "$(t stat -c '%i %h' "$LM/x")" "$(stat -c '%i %h' "$KM/x")" "x vs kernel"
    if [ "$label" = upper ]; then
        assert_errno lstat "$LM/p2" ENOENT
        note "p1 with its other name whited out: kernel nlink=$(stat -c %h "$KM/p1") layerfs nlink=$(t stat -c %h "$LM/p1")"
    fi

    check "[$label] st_ino stable: repeated stat, fstat of an open file, after dropping caches"
    s1=$(tree_snapshot "$LM" --ino --no-hash --no-xattrs)
    s2=$(tree_snapshot "$LM" --ino --no-hash --no-xattrs)
    [ "$s1" = "$s2" ] || fail "[$label] st_ino changed between two walks"
    fst=$(t "$PY" -c 'import os,sys
fd = os.open(sys.argv[1], os.O_RDONLY)
a = os.fstat(fd).st_ino
b = os.lstat(sys.argv[1]).st_ino
c = os.lstat(sys.argv[2]).st_ino
print(a == b == c, a, b, c)' "$LM/a" "$LM/sub/c")
    assert_eq "${fst%% *}" True "fstat/lstat inodes of a and sub/c ($fst)"
    drop_caches
    s3=$(tree_snapshot "$LM" --ino --no-hash --no-xattrs)
    [ "$s1" = "$s3" ] || { diff <(echo "$s1") <(echo "$s3") | head -20; fail "[$label] st_ino changed after dropping caches"; }

    check "[$label] st_ino stable across a remount"
    umount_any "$LM"
    case $label in
    ro) mount_layerfs_ro "$L1:$L2" "$LM" ;;
    *) mount_layerfs "$L1:$L2" "$LU" "$LM" ;;
    esac
    s4=$(tree_snapshot "$LM" --ino --no-hash --no-xattrs)
    [ "$s1" = "$s4" ] || { diff <(echo "$s1") <(echo "$s4") | head -20; fail "[$label] st_ino changed across a remount"; }
done

pass_test
