#!/bin/bash
# containment: symlinks in a lower that point outside (absolute /etc,
# relative ../../..) are shown as symlinks with their stored targets; resolving
# them is the caller's business (inside a chroot on the mount they stay
# inside).  The daemon itself never follows them: a lower whose copy of a
# directory is a symlink to somewhere outside does not merge that place in;
# `..` at the mount root is the mount's parent.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

L1=$T/l1 L2=$T/l2 OUT=$T/outside
mkdir -p "$L1" "$L2" "$OUT"
mkfile "$OUT/secret" "outside"
mkfile "$OUT/f/secret2" "outside2"
mkfile "$L1/etc/marker" "inside"
ln -s /etc "$L1/abs"
mkdir -p "$L1/sub/a"
ln -s ../../.. "$L1/sub/a/rel"
ln -s "$OUT" "$L1/outabs"
# d: directory on top, a symlink to outside below: nothing from outside merges in
mkfile "$L1/d/a" "a"
ln -s "$OUT" "$L2/d"
# e/f: the same one level down
mkfile "$L1/e/f/x" "x"
ln -s "$OUT" "$L2/e"
# lnk: a symlink to outside on top of a directory
ln -s "$OUT" "$L1/lnk"
mkfile "$L2/lnk/below" "below"
# only: a directory that exists only as a symlink (L2)
ln -s "$OUT" "$L2/only"

CHROOT=$T/chroot.py
cat >"$CHROOT" <<'EOF'
import os, sys
root = sys.argv[1]
os.chroot(root)
os.chdir("/")
r = []
r.append(open("/abs/marker").read())
st_root = os.stat("/")
st = os.stat("/sub/a/rel")
r.append("rel->root" if (st.st_ino, st.st_dev) == (st_root.st_ino, st_root.st_dev) else "rel->elsewhere")
r.append(",".join(sorted(os.listdir("/sub/a/rel"))))
up = os.stat("/..")
r.append("dotdot-root" if (up.st_ino, up.st_dev) == (st_root.st_ino, st_root.st_dev) else "dotdot-escapes")
try:
    os.stat("/outabs/secret")
    r.append("outabs-reaches-outside")
except FileNotFoundError:
    r.append("outabs-ENOENT")
print(" ".join(r))
EOF

for mode in ro empty; do
    check "[$mode] tree equals kernel overlay's"
    setup_pair "$mode" "$L1:$L2"
    pair_compare "[$mode] merged tree"

    check "[$mode] outward symlinks are symlinks with their targets"
    assert_eq "$(t stat -c %F "$LM/abs")" "symbolic link" "type of abs"
    assert_eq "$(t readlink "$LM/abs")" "/etc" "readlink abs"
    assert_eq "$(t readlink "$LM/sub/a/rel")" "../../.." "readlink sub/a/rel"
    assert_eq "$(t readlink "$LM/outabs")" "$OUT" "readlink outabs"
    check "[$mode] resolved by the caller like any symlink (outside a chroot: the host's /etc)"
    assert_eq "$(t stat -L -c '%d %i' "$LM/abs")" "$(stat -c '%d %i' /etc)" "abs resolves to the caller's /etc"
    check "[$mode] in a chroot on the mount: /abs, ../../.. and /.. stay inside"
    k=$(t "$PY" "$CHROOT" "$KM")
    l=$(t "$PY" "$CHROOT" "$LM" 2>&1) || fail "chroot walk: $l"
    note "kernel: $k"
    assert_eq "$l" "$k" "chroot walk vs kernel"
    case $l in "inside rel->root "*" dotdot-root outabs-ENOENT") ;; *) fail "chroot walk: $l" ;; esac
    check "[$mode] '..' at the mount root is the mount's parent"
    assert_eq "$(t stat -c '%d %i' "$LM/..")" "$(stat -c '%d %i' "$(dirname "$LM")")" "stat MERGED/.."
    assert_eq "$(t stat -c '%d %i' "$LM/sub/..")" "$(t stat -c '%d %i' "$LM")" "stat MERGED/sub/.."
    check "[$mode] a lower copy that is a symlink to outside is not merged into the directory above"
    assert_eq "$(t stat -c %F "$LM/d")" "directory" "type of d"
    assert_listing "$LM/d" "a"
    assert_errno lstat "$LM/d/secret" ENOENT
    assert_listing "$LM/e/f" "x"
    assert_errno lstat "$LM/e/f/secret2" ENOENT
    assert_listing "$LM/e" "f"
    check "[$mode] a symlink to outside over a directory is a symlink, not followed"
    assert_eq "$(t stat -c %F "$LM/lnk")" "symbolic link" "type of lnk"
    assert_eq "$(t stat -c %F "$LM/only")" "symbolic link" "type of only"
    assert_eq "$(t readlink "$LM/only")" "$OUT" "readlink only"
    assert_errno lstat "$LM/lnk/below" ENOENT
    check "[$mode] nothing from outside appears in a full walk"
    if t grep -rqs outside "$LM" 2>/dev/null; then
        fail "content of $OUT reachable through a walk that does not follow symlinks"
    fi
done

pass_test
