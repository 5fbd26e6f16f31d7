#!/bin/bash
# dir_attrs_readdir: a merged directory takes mode/owner/times/xattrs from its
# top copy; st_nlink and st_ino of every entry equal the kernel overlay's
# (all layers on one filesystem: the kernel reports real inode numbers);
# readdir has no duplicates, d_ino == st_ino, d_type matches, one st_dev for the
# whole mount; a 5000-entry directory over two layers lists like the kernel's;
# telldir/seekdir are stable.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs
DIRCHECK="$LIB_DIR/dircheck.py"

U=$T/upper L1=$T/l1 L2=$T/l2
mkdir -p "$U" "$L1" "$L2"
# md: merged, attributes differ per layer
mkfile "$L1/md/a" a; mkdir -p "$L1/md/s1" "$L1/md/s3"
mkfile "$L2/md/b" b; mkdir -p "$L2/md/s2" "$L2/md/s3/inner"
chmod 0750 "$L1/md"; chown 1000:1001 "$L1/md"
setfattr -n user.who -v top "$L1/md"
chmod 0755 "$L2/md"; chown 0:0 "$L2/md"
setfattr -n user.who -v bottom "$L2/md"; setfattr -n user.bottomonly -v 1 "$L2/md"
touch -d '2001-02-03 04:05:06.123456789' "$L1/md"
touch -d '2005-01-01 00:00:00' "$L2/md"
mkfile "$U/md/u" u; chmod 0701 "$U/md"; chown 2000:2001 "$U/md"
setfattr -n user.who -v upper "$U/md"
touch -d '1999-12-31 23:59:59.5' "$U/md"
# sd: in one layer only, with subdirectories (real nlink)
mkdir -p "$L2/sd/x" "$L2/sd/y" "$L2/sd/z"
# big: 3000 names in L1, 2500 in L2, 500 shared, 10 whited out in L1
mkdir -p "$L1/big" "$L2/big"
(cd "$L1/big" && for i in $(seq -w 0 2999); do : >"f$i"; done)
(cd "$L2/big" && for i in $(seq 2500 4999); do echo "$i" >"f$i"; done)
for i in $(seq 4990 4999); do whiteout "$L1/big/f$i"; done
mkdir "$L1/big/subdir" "$L2/big/subdir"
for d in "$L1" "$L2" "$U" "$L1/big" "$L2/big"; do touch -d '2010-01-01' "$d"; done

for mode in ro empty "upper=$U"; do
    label=${mode%%=*}
    setup_pair "$mode" "$L1:$L2"
    if [ "$label" = upper ]; then
        check "[$label] tree with mode/owner/mtime/xattrs/nlink equals kernel overlay's (root excluded)"
        pair_compare "[$label] merged tree" --mtime --nlink --exclude-root
        check "[upper] merged dir attributes come from the upper copy"
        assert_eq "$(t stat -c '%a %u %g %Y' "$LM/md")" "$(stat -c '%a %u %g %Y' "$LU/md")" "mode/owner/mtime of md"
        assert_eq "$(t getfattr --absolute-names --only-values -n user.who "$LM/md")" "upper" "user.who of md"
    else
        check "[$label] tree with mode/owner/mtime/xattrs/nlink/ino equals kernel overlay's (root excluded)"
        pair_compare "[$label] merged tree" --mtime --nlink --ino --exclude-root
        check "[$label] merged dir attributes come from the top lower copy"
        assert_eq "$(t stat -c '%a %u %g %Y' "$LM/md")" "750 1000 1001 $(stat -c %Y "$L1/md")" "mode/owner/mtime of md"
        assert_eq "$(t stat -c '%y' "$LM/md")" "$(stat -c '%y' "$L1/md")" "mtime (ns) of md"
        assert_eq "$(t getfattr --absolute-names --only-values -n user.who "$LM/md")" "top" "user.who of md"
        assert_errno lgetxattr "$LM/md" user.bottomonly ENODATA
    fi
    check "[$label] root directory: mode/owner/mtime as the kernel shows them (from the upper's root, or the top lower's)"
    kroot=$(stat -c '%a %u %g' "$KM")
    lroot=$(t stat -c '%a %u %g' "$LM")
    assert_eq "$lroot" "$kroot" "mode/owner of the mount root"
    if [ -n "$LU" ]; then
        assert_eq "$(t stat -c '%Y %i' "$LM")" "$(stat -c '%Y %i' "$LU")" "mtime/ino of the root vs the upper's root"
        note "kernel: root st_ino $(stat -c %i "$KM") = upper root $(stat -c %i "$KU")"
    else
        assert_eq "$(t stat -c '%Y %i' "$LM")" "$(stat -c '%Y %i' "$KM")" "mtime/ino of the root vs kernel's"
        note "kernel: root st_ino $(stat -c %i "$KM") (top lower root $(stat -c %i "$L1"))"
    fi

    check "[$label] st_nlink of merged directories equals the kernel's"
    for d in . md md/s3 sd big; do
        kn=$(stat -c %h "$KM/$d")
        ln=$(t stat -c %h "$LM/$d")
        note "$d: kernel nlink=$kn layerfs nlink=$ln"
        assert_eq "$ln" "$kn" "st_nlink of $d"
    done
    check "[$label] st_ino of merged directories vs the kernel's"
    for d in md md/s3 sd big; do
        note "$d: kernel ino=$(stat -c %i "$KM/$d") layerfs ino=$(t stat -c %i "$LM/$d") (L1: $(stat -c %i "$L1/$d" 2>/dev/null || echo -), L2: $(stat -c %i "$L2/$d" 2>/dev/null || echo -), upper: $( [ -n "$LU" ] && stat -c %i "$LU/$d" 2>/dev/null || echo -))"
    done

    check "[$label] readdir: no duplicates, d_ino == st_ino, d_type ok, one st_dev; telldir/seekdir stable (kernel first)"
    t "$PY" "$DIRCHECK" --seek "$KM/big" "$KM" >"$T/dc.k" || { cat "$T/dc.k"; fail "dircheck fails on the kernel overlay (test bug)"; }
    t "$PY" "$DIRCHECK" --seek "$LM/big" --seek "$LM/md" "$LM" >"$T/dc.l" || { cat "$T/dc.l"; fail "[$label] readdir invariants broken"; }
    cat "$T/dc.l"
    ndev=$(t "$PY" -c 'import os,sys
devs=set()
for dp,dn,fn in os.walk(sys.argv[1]):
    for n in dn+fn+["."]:
        devs.add(os.lstat(os.path.join(dp,n)).st_dev)
print(len(devs))' "$LM")
    assert_eq "$ndev" 1 "number of distinct st_dev in the mount"

    check "[$label] 5000-entry directory: same names as the kernel, none twice"
    k=$(ls -f "$KM/big" | sort | md5sum)
    l=$(t ls -f "$LM/big" | sort | md5sum)
    assert_eq "$l" "$k" "sorted ls -f of big"
    assert_eq "$(t ls -f "$LM/big" | wc -l)" "$((3000 + 2000 - 10 + 1 + 2))" "entries in big (with . and ..)"
    assert_eq "$(t ls -f "$LM/big" | sort | uniq -d | wc -l)" 0 "duplicate names in big"
    assert_file_content "$LM/big/f2600" "" "f2600 comes from the top layer (empty)"
    assert_file_content "$LM/big/f4000" "4000"
    assert_errno lstat "$LM/big/f4995" ENOENT
done

pass_test
