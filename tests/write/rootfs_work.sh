#!/bin/bash
# rootfs_work: real package-manager work in a chroot on the Debian fixture
# rootfs, once on kernel overlay and once on layerfs, from identical
# lowers: useradd -m, dpkg --purge of a package, dpkg -i of a small .deb
# built here.  The merged trees and the uppers (whiteouts, opaque markers,
# owners, modes, contents) must match; files whose contents carry the
# clock (logs) are compared by existence only.
. "$(dirname "$0")/../integration/lib.sh"
require_root
require_layerfs
command -v dpkg-deb >/dev/null || skip "dpkg-deb not installed (it builds the test package)"
fixture_rootfs

check "building a small .deb"
mkdir -p "$T/pkg/DEBIAN" "$T/pkg/usr/share/layerfs-hello" "$T/pkg/usr/bin"
cat >"$T/pkg/DEBIAN/control" <<'CTL'
Package: layerfs-hello
Version: 1.0
Architecture: all
Maintainer: layerfs tests <tests@layerfs.invalid>
Description: a package the layerfs tests install
CTL
echo "hello from a package" >"$T/pkg/usr/share/layerfs-hello/greeting"
printf '#!/bin/sh\ncat /usr/share/layerfs-hello/greeting\n' >"$T/pkg/usr/bin/layerfs-hello"
chmod 0755 "$T/pkg/usr/bin/layerfs-hello"
t dpkg-deb --root-owner-group --build "$T/pkg" "$T/hello.deb" >/dev/null || fail "dpkg-deb --build"

# layerfs has redirect_dir on by default: so does the kernel here
KOVL_OPTS=redirect_dir=on setup_pair empty "$C/bottom:$C/top"
for M in "$KM" "$LM"; do
    check "package work in a chroot on $(basename "$M")"
    timeout -k 5 120 chroot "$M" useradd -m -s /bin/sh lfsuser1 || fail "useradd in $M"
    timeout -k 5 120 chroot "$M" dpkg --purge e2fsprogs >"$T/purge.log" 2>&1 || { cat "$T/purge.log"; fail "dpkg --purge in $M"; }
    cp "$T/hello.deb" "$M/tmp/hello.deb"
    timeout -k 5 120 chroot "$M" dpkg -i /tmp/hello.deb >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "dpkg -i in $M"; }
    rm "$M/tmp/hello.deb"
    assert_eq "$(t chroot "$M" /usr/bin/layerfs-hello)" "hello from a package" "the installed program runs"
    [ -e "$M/sbin/mke2fs" ] && fail "e2fsprogs still there after the purge in $M"
done

# files stamped with the time of the run
CLOCK=(--prune var/log --prune var/cache/debconf --prune var/lib/dpkg/status-old
       --prune var/lib/dpkg/diversions-old --prune var/lib/dpkg/statoverride-old)
check "merged trees: layerfs equals kernel overlay"
pair_compare "merged tree after package work" "${CLOCK[@]}"
check "uppers: same layout (whiteouts, opaque directories, owners, modes, contents)"
# the kernel stamps its upper root with trusted.overlay.uuid; layerfs
# writes null-uuid origins, which the kernel accepts without it
tree_snapshot "$KU" "${CLOCK[@]}" | sed -E 's/,?trusted\.overlay\.uuid=0x[0-9a-f]+//' >"$T/ku.snap"
tree_snapshot "$LU" "${CLOCK[@]}" >"$T/lu.snap"
compare_snapshots "$T/ku.snap" "$T/lu.snap" "upper after package work (kernel '-' vs layerfs '+')"
for f in var/log/dpkg.log var/log/lastlog var/log/faillog; do
    [ -e "$KU/$f" ] && [ ! -e "$LU/$f" ] && fail "$f: in the kernel's upper, not in layerfs's"
done
pass_test
