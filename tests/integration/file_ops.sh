#!/bin/bash
# file_ops: readlink; access(2) as root and as nobody; reading a 16 MiB random
# file (sequential and random offsets); SEEK_DATA/SEEK_HOLE on a sparse file;
# statfs reports the upper's filesystem (the top lower's when read-only);
# 255-byte names work, 256-byte names give ENAMETOOLONG; a path deeper than
# PATH_MAX works through relative chdir.  Compared with the kernel overlay.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs

L1=$T/l1 L2=$T/l2
mkdir -p "$L1" "$L2"

# --- symlinks
LONGT=$(head -c 4000 /dev/zero | tr '\0' 'L')
mkfile "$L1/f" "f"
ln -s f "$L1/rel"
ln -s /etc/passwd "$L1/abs"
ln -s nonexistent/x "$L1/dangling"
ln -s "../$LONGT" "$L1/long"
ln -s "../x" "$L2/dotdot"
mkdir -p "$L2/sd"; ln -s ../f "$L2/sd/up"
# --- permissions
for spec in r644:0644:0:0 p600:0600:0:0 x755:0755:0:0 x700:0700:0:0 n000:0000:0:0 \
    nob600:0600:65534:65534 g640:0640:0:65534; do
    IFS=: read -r n m o g <<<"$spec"
    mkfile "$L1/$n" "$n"; chmod "$m" "$L1/$n"; chown "$o:$g" "$L1/$n"
done
mkfile "$L1/d700/inner" "inner"; chmod 0700 "$L1/d700"
mkfile "$L1/d711/inner" "inner"; chmod 0711 "$L1/d711"
mkfile "$L2/d711/other" "other"; chmod 0755 "$L2/d711"
# --- big random file, sparse file
head -c 16M /dev/urandom >"$L2/big"
SPARSE=$L1/sparse
truncate -s 8M "$SPARSE"
printf 'data' | dd of="$SPARSE" bs=4096 seek=0 conv=notrunc status=none
head -c 4096 /dev/urandom | dd of="$SPARSE" bs=4096 seek=256 conv=notrunc status=none
head -c 65536 /dev/urandom | dd of="$SPARSE" bs=4096 seek=1280 conv=notrunc status=none
# --- names
N255=$(head -c 255 /dev/zero | tr '\0' 'n')
N256=$(head -c 256 /dev/zero | tr '\0' 'n')
U85=$("$PY" -c 'print("\u20ac" * 85)')   # 255 bytes of UTF-8
mkfile "$L2/$N255" "255"
mkfile "$L1/$U85" "utf8"
# --- deep path: 25 levels of 200-byte names (> PATH_MAX), the first 10 in both layers
"$PY" - "$L1" "$L2" <<'EOF'
import os, sys
for root, depth in ((sys.argv[1], 10), (sys.argv[2], 25)):
    fd = os.open(root, os.O_RDONLY)
    os.fchdir(fd)
    for i in range(depth):
        name = ("%02d" % i) * 100
        os.mkdir(name)
        os.chdir(name)
    with open("bottom" if depth == 25 else "mid", "w") as f:
        f.write("deep %d" % depth)
EOF

DEEPWALK=$T/deepwalk.py
cat >"$DEEPWALK" <<'EOF'
import os, sys
os.chdir(sys.argv[1])
total = len(sys.argv[1])
for i in range(25):
    name = ("%02d" % i) * 100
    os.chdir(name)
    total += 1 + len(name)
    if i == 9:
        names = sorted(os.listdir("."))
        assert names == [("%02d" % 10) * 100, "mid"], names
        assert open("mid").read() == "deep 10"
print(total, open("bottom").read(), sorted(os.listdir(".")), os.stat("bottom").st_size)
EOF

SEEKS=$T/seeks.py
cat >"$SEEKS" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
out = []
M = 1 << 20
for off in (0, 2, 4096, 8192, M - 1, M, M + 4096, 2 * M, 5 * M, 5 * M + 65535, 5 * M + 65536, 8 * M - 1, 8 * M, 9 * M):
    for wh, name in ((os.SEEK_DATA, "DATA"), (os.SEEK_HOLE, "HOLE")):
        try:
            r = os.lseek(fd, off, wh)
        except OSError as e:
            r = "ENXIO" if e.errno == 6 else e.strerror
        out.append("%s(%d)=%s" % (name, off, r))
print(" ".join(out))
EOF

ACCESS=$T/access.py
cat >"$ACCESS" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
root = sys.argv[1]
names = ["r644", "p600", "x755", "x700", "n000", "nob600", "g640", "d700", "d700/inner",
         "d711", "d711/inner", "d711/other", "f"]
out = []
for n in names:
    p = os.fsencode(os.path.join(root, n))
    res = []
    for c, m in (("r", os.R_OK), ("w", os.W_OK), ("x", os.X_OK)):
        r = libc.access(p, m)
        res.append(c if r == 0 else "-")
    try:
        with open(p, "rb") as f:
            f.read()
        rd = "read"
    except IsADirectoryError:
        try:
            os.listdir(p)
            rd = "list"
        except OSError as e:
            rd = "E" + str(e.errno)
    except OSError as e:
        rd = "E" + str(e.errno)
    out.append("%s:%s:%s" % (n, "".join(res), rd))
print(" ".join(out))
EOF

for mode in ro empty; do
    setup_pair "$mode" "$L1:$L2"

    check "[$mode] symlinks: readlink gives the stored targets"
    for n in rel abs dangling long dotdot sd/up; do
        assert_eq "$(t readlink "$LM/$n")" "$(readlink "$KM/$n")" "readlink $n"
        assert_eq "$(t readlink "$LM/$n")" "$(readlink "$L1/$n" 2>/dev/null || readlink "$L2/$n")" "readlink $n vs the lower"
    done
    assert_eq "$(t stat -L -c %s "$LM/rel")" 1 "rel -> f followed"
    assert_eq "$(t stat -c %s "$LM/long")" 4003 "st_size of a symlink = target length"

    check "[$mode] access/read as root equal the kernel's"
    k=$(t "$PY" "$ACCESS" "$KM")
    l=$(t "$PY" "$ACCESS" "$LM")
    note "kernel: $k"
    assert_eq "$l" "$k" "access table as root"
    case $mode in
    ro) want_w="-" ;;
    *) want_w="w" ;;
    esac
    case " $l " in
    *" p600:r${want_w}-:read "* | *" n000:r${want_w}-:read "*) ;;
    *) fail "root must read p600/n000, no x on them: $l" ;;
    esac
    check "[$mode] access/read as nobody equal the kernel's"
    k=$(as_user nobody timeout 60 "$PY" "$ACCESS" "$KM")
    l=$(as_user nobody timeout 60 "$PY" "$ACCESS" "$LM")
    note "kernel: $k"
    assert_eq "$l" "$k" "access table as nobody"
    case " $l " in *" r644:r--:read "*) ;; *) fail "nobody: r644 readable, not writable: $l" ;; esac
    case " $l " in *" p600:---:E13 "*) ;; *) fail "nobody: p600 EACCES: $l" ;; esac
    case " $l " in *" x755:r-x:read "*) ;; *) fail "nobody: x755 r-x: $l" ;; esac
    case " $l " in *" d700/inner:---:E13 "*) ;; *) fail "nobody: d700/inner unreachable: $l" ;; esac
    case " $l " in *" d711/other:r--:read "*) ;; *) fail "nobody: d711/other reachable through a 0711 top copy: $l" ;; esac
    case " $l " in *" nob600:r${want_w}-:read "*) ;; *) fail "nobody: own file nob600: $l" ;; esac
    check "[$mode] test -r/-w/-x as nobody (shell)"
    as_user nobody timeout 30 test -r "$LM/r644" || fail "test -r r644 as nobody"
    ! as_user nobody timeout 30 test -w "$LM/r644" || fail "test -w r644 as nobody"
    ! as_user nobody timeout 30 test -r "$LM/p600" || fail "test -r p600 as nobody"
    as_user nobody timeout 30 test -x "$LM/x755" || fail "test -x x755 as nobody"
    ! as_user nobody timeout 30 test -x "$LM/x700" || fail "test -x x700 as nobody"

    check "[$mode] 16 MiB random file: same sha256, same bytes at 300 random offsets"
    assert_eq "$(t sha256sum <"$LM/big")" "$(sha256sum <"$L2/big")" "sha256 of big"
    assert_eq "$(t dd if="$LM/big" bs=1M skip=7 count=3 status=none | sha256sum)" \
        "$(dd if="$L2/big" bs=1M skip=7 count=3 status=none | sha256sum)" "dd window of big"
    r=$(t "$PY" - "$LM/big" "$L2/big" <<'EOF'
import os, random, sys
a = os.open(sys.argv[1], os.O_RDONLY); b = os.open(sys.argv[2], os.O_RDONLY)
rng = random.Random(7); size = os.fstat(b).st_size; bad = 0
for i in range(300):
    off = rng.randrange(0, size + 4096); n = rng.choice([1, 17, 4095, 4096, 65537, 200000])
    if os.pread(a, n, off) != os.pread(b, n, off): bad += 1
print(bad)
EOF
)
    assert_eq "$r" 0 "random preads that differ from the lower"

    check "[$mode] SEEK_DATA/SEEK_HOLE on a sparse file equal the lower's"
    lower=$("$PY" "$SEEKS" "$SPARSE")
    case $lower in *"HOLE(0)=4096"*) ;; *) fail "the lower file is not sparse here (test setup): $lower" ;; esac
    assert_eq "$(t "$PY" "$SEEKS" "$KM/sparse")" "$lower" "kernel overlay SEEK_DATA/HOLE (test sanity)"
    assert_eq "$(t "$PY" "$SEEKS" "$LM/sparse")" "$lower" "layerfs SEEK_DATA/HOLE"
    assert_eq "$(t sha256sum <"$LM/sparse")" "$(sha256sum <"$SPARSE")" "sha256 of sparse"

    check "[$mode] 255-byte names work, 256-byte names give ENAMETOOLONG"
    assert_file_content "$LM/$N255" "255"
    assert_file_content "$LM/$U85" "utf8"
    listing "$LM" >"$T/names"
    grep -qxF -- "$N255" "$T/names" || fail "the 255-byte name is not listed"
    assert_errno lstat "$LM/$N256" ENAMETOOLONG
    assert_errno lstat "$KM/$N256" ENAMETOOLONG

    check "[$mode] a path deeper than PATH_MAX through relative chdir"
    k=$(t "$PY" "$DEEPWALK" "$KM")
    l=$(t "$PY" "$DEEPWALK" "$LM" 2>&1) || fail "deep walk through layerfs: $l"
    assert_eq "$l" "$k" "deep walk"
    note "deep walk: $l"
done

check "statfs with an upper: the upper's filesystem numbers"
SF=$T/sf
mkdir -p "$SF" "$T/sfm" "$T/sfkm"
mount_tmpfs "$SF" "size=48m,nr_inodes=4321"
mkdir "$SF/up" "$SF/kup" "$SF/kwork"
mount_layerfs "$L1:$L2" "$SF/up" "$T/sfm"
mount_kovl "$L1:$L2" "$SF/kup" "$SF/kwork" "$T/sfkm"
want=$(stat -f -c '%b %S %s %l %c' "$SF")
note "tmpfs: $want  kernel overlay: $(stat -f -c '%b %S %s %l %c' "$T/sfkm")"
assert_eq "$(stat -f -c '%b %S %s %l %c' "$T/sfkm")" "$want" "kernel overlay statfs (test sanity)"
assert_eq "$(t stat -f -c '%b %S %s %l %c' "$T/sfm")" "$want" "statfs of the mount (blocks bsize frsize namemax files)"
check "statfs read-only: the kernel reports the top lower's filesystem"
setup_pair ro "$L1:$L2"
assert_eq "$(t stat -f -c '%b %S %s %l %c' "$LM")" "$(stat -f -c '%b %S %s %l %c' "$KM")" "statfs of a read-only mount"

pass_test
