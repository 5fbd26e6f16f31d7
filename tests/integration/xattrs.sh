#!/bin/bash
# xattrs: overlay-private xattrs (trusted.overlay.*, user.overlay.*,
# user.fuseoverlayfs.*) are hidden from listxattr and getxattr on the merged
# view; user.*, trusted.* (others) and security.* pass through byte-exact.
# Compared with the kernel overlay on layers whose private xattrs are the ones
# the kernel hides too (trusted.overlay.*).
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

BIG=$(head -c 3000 /dev/zero | tr '\0' 'v')
# A: kernel-comparable layers
A=$T/a
mkdir -p "$A/l1" "$A/l2" "$A/u"
mkfile "$A/l1/f" "f"
setfattr -n user.a -v 1 "$A/l1/f"
setfattr -n user.big -v "$BIG" "$A/l1/f"
setfattr -n user.bin -v 0x00ff00fe0a0d00 "$A/l1/f"
setfattr -n user.empty "$A/l1/f"
setfattr -n security.test -v sec "$A/l1/f"
setfattr -n trusted.foo -v bar "$A/l1/f"
setfattr -n trusted.overlay.foo -v private "$A/l1/f"
mkfile "$A/l1/cap" "cap"
if command -v setcap >/dev/null; then setcap cap_net_raw+ep "$A/l1/cap"; fi
mkfile "$A/l1/nox" "nox"
mkdir -p "$A/l1/d" "$A/l2/d"
setfattr -n user.d -v top "$A/l1/d"; setfattr -n trusted.overlay.foo -v private "$A/l1/d"
setfattr -n user.d -v bottom "$A/l2/d"; setfattr -n user.d2 -v bottom "$A/l2/d"
mkfile "$A/l2/g" "g"; setfattr -n user.g -v g "$A/l2/g"
ln -s f "$A/l1/s"
setfattr -h -n trusted.foo -v link "$A/l1/s"; setfattr -h -n trusted.overlay.foo -v private "$A/l1/s"
mkfile "$A/u/uf" "uf"; setfattr -n user.up -v up "$A/u/uf"; setfattr -n trusted.overlay.foo -v private "$A/u/uf"

for mode in ro empty "upper=$A/u"; do
    label=${mode%%=*}
    check "[$label] all xattrs equal the kernel overlay's"
    setup_pair "$mode" "$A/l1:$A/l2"
    pair_compare "[$label] xattrs" --no-hash --exclude-root

    check "[$label] listxattr: exactly the non-private names"
    assert_eq "$(oscall llistxattr "$LM/f")" "OK security.test trusted.foo user.a user.big user.bin user.empty" "listxattr f"
    assert_eq "$(oscall llistxattr "$LM/nox")" "OK" "listxattr nox"
    assert_eq "$(oscall llistxattr "$LM/s")" "OK trusted.foo" "listxattr of the symlink s"
    assert_eq "$(oscall llistxattr "$LM/d")" "OK user.d" "listxattr of the merged dir d (top copy only)"
    check "[$label] getxattr values byte-exact"
    assert_eq "$(oscall lgetxattr "$LM/f" user.bin)" "OK 00ff00fe0a0d00" "user.bin"
    assert_eq "$(oscall lgetxattr "$LM/f" user.big)" "$(oscall lgetxattr "$A/l1/f" user.big)" "user.big (3000 bytes)"
    assert_eq "$(oscall lgetxattr "$LM/f" user.empty)" "OK" "user.empty (empty value)"
    assert_eq "$(t getfattr --absolute-names --only-values -n security.test "$LM/f")" "sec" "security.test"
    assert_eq "$(t getfattr --absolute-names --only-values -h -n trusted.foo "$LM/s")" "link" "trusted.foo on the symlink"
    if command -v getcap >/dev/null; then
        assert_eq "$(t getcap "$LM/cap" | awk '{print $2}')" "$(getcap "$A/l1/cap" | awk '{print $2}')" "getcap"
    fi
    check "[$label] private xattrs: getfattr says 'No such attribute'"
    out=$(t getfattr --absolute-names -n trusted.overlay.foo "$LM/f" 2>&1 || true)
    case $out in *"No such attribute"*) ;; *) fail "getfattr -n trusted.overlay.foo on a merged file: '$out'" ;; esac
    assert_errno lgetxattr "$LM/d" trusted.overlay.foo ENODATA
    assert_errno lgetxattr "$LM/s" trusted.overlay.foo ENODATA
    assert_errno lgetxattr "$LM/f" user.nonexistent ENODATA
    if [ "$label" = upper ]; then
        assert_eq "$(oscall llistxattr "$LM/uf")" "OK user.up" "listxattr of an upper file"
        assert_errno lgetxattr "$LM/uf" trusted.overlay.foo ENODATA
    fi
    check "[$label] getxattr/listxattr with a too small buffer give ERANGE"
    r=$(t "$PY" - "$LM/f" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
p = os.fsencode(sys.argv[1])
buf = ctypes.create_string_buffer(4)
out = []
for fn, args in (("lgetxattr", (p, b"user.big", buf, 4)), ("llistxattr", (p, buf, 4))):
    r = getattr(libc, fn)(*args)
    out.append("%s=%s" % (fn, "ERANGE" if r < 0 and ctypes.get_errno() == 34 else str(r)))
n = libc.lgetxattr(p, b"user.big", None, 0)
out.append("size=%d" % n)
print(" ".join(out))
EOF
)
    assert_eq "$r" "lgetxattr=ERANGE llistxattr=ERANGE size=3000" "small-buffer xattr calls"
done

# B: user.overlay.* and user.fuseoverlayfs.* are private to layerfs too (the
# kernel hides only its own prefix: trusted.overlay.*, or user.overlay.* with
# userxattr).
B=$T/b
mkdir -p "$B/l1" "$B/l2" "$B/m" "$B/mx" "$B/u"
mkfile "$B/l1/f" "f"
for n in trusted.overlay.foo user.overlay.foo user.fuseoverlayfs.foo; do
    setfattr -n "$n" -v private "$B/l1/f"
done
setfattr -n user.keep -v keep "$B/l1/f"
setfattr -n user.overlayish -v keep "$B/l1/f"
mkdir -p "$B/l1/d" "$B/l2/d"
setfattr -n user.overlay.foo -v private "$B/l1/d"; setfattr -n user.fuseoverlayfs.foo -v private "$B/l1/d"
mkdir -p "$B/km"
mount_kovl "$B/l1:$B/l2" "" "" "$B/km"
note "kernel (trusted mode) lists on f: $(oscall llistxattr "$B/km/f")"
umount_any "$B/km"
mount_kovl "$B/l1:$B/l2" "" "" "$B/km" userxattr
note "kernel (userxattr) lists on f: $(oscall llistxattr "$B/km/f")"
for M in m mx; do
    if [ $M = m ]; then
        check "layerfs (default): user.overlay.* and user.fuseoverlayfs.* hidden too"
        mount_layerfs "$B/l1:$B/l2" "$B/u" "$B/m"
    else
        check "layerfs -o userxattr: every private prefix hidden"
        mount_layerfs_ro "$B/l1:$B/l2" "$B/mx" -o userxattr
    fi
    assert_eq "$(oscall llistxattr "$B/$M/f")" "OK user.keep user.overlayish" "listxattr f"
    assert_eq "$(oscall llistxattr "$B/$M/d")" "OK" "listxattr d"
    for n in trusted.overlay.foo user.overlay.foo user.fuseoverlayfs.foo; do
        assert_errno lgetxattr "$B/$M/f" "$n" ENODATA
    done
    assert_errno lgetxattr "$B/$M/d" user.overlay.foo ENODATA
    assert_eq "$(oscall lgetxattr "$B/$M/f" user.overlayish)" "OK $(printf keep | od -An -tx1 | tr -d ' \n')" "user.overlayish"
done

check "layerfs: user.overlay.X set through the mount is stored escaped, never as a marker"
t setfattr -n user.overlay.opaque -v y "$B/m/d" || fail "setfattr user.overlay.opaque through the mount"
assert_eq "$(getfattr --absolute-names --only-values -n user.overlay.overlay.opaque "$B/u/d" 2>/dev/null)" "y" "stored escaped in the upper"
getfattr --absolute-names -n user.overlay.opaque "$B/u/d" >/dev/null 2>&1 && fail "stored unescaped: the directory became opaque"
assert_eq "$(oscall lgetxattr "$B/m/d" user.overlay.opaque)" "OK $(printf y | od -An -tx1 | tr -d ' \n')" "read back through the mount"

check "layerfs: user.fuseoverlayfs.X set through the mount: EPERM, after the copy-up the kernel makes too"
[ -e "$B/u/f" ] && fail "f already in the upper before the test"
out=$(t setfattr -n user.fuseoverlayfs.x -v 1 "$B/m/f" 2>&1) && fail "setfattr user.fuseoverlayfs.x succeeded"
case "$out" in *"Operation not permitted"*) ;; *) fail "expected EPERM, got: $out" ;; esac
[ -f "$B/u/f" ] || fail "f was not copied up (the kernel copies up before asking the upper)"
getfattr --absolute-names -n user.fuseoverlayfs.x "$B/u/f" >/dev/null 2>&1 && fail "the private xattr was stored"

pass_test
