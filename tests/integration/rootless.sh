#!/bin/bash
# rootless: an unprivileged user mounts and reads (1) inside `unshare -Urm`
# (a user namespace where it is root) and (2) plainly, through fusermount3,
# layers owned by that user.  The view equals the kernel overlay's of the same
# layers (same user, same namespace).  /dev/fuse is made 0666 (left so).
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs
command -v fusermount3 >/dev/null || skip "fusermount3 missing"

RU=layerfs-test
if ! id "$RU" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /bin/bash "$RU" || skip "cannot create user $RU"
fi
chmod 0666 /dev/fuse
RUID=$(id -u "$RU")
asu() { as_user "$RU" "$@"; }

R=$T/rl
mkdir -p "$R"
L1=$R/l1 L2=$R/l2
mkfile "$L1/f" "L1-f"
mkfile "$L2/f" "L2-f"
mkfile "$L2/g" "L2-g"
mkfile "$L1/d/a" "L1-d-a"
mkfile "$L2/d/b" "L2-d-b"
mkfile "$L2/gone" "gone"; whiteout "$L1/gone"
ln -s f "$L1/sl"
head -c 3M /dev/urandom >"$L2/big"
chmod 0600 "$L2/g"
mkfile "$L1/op/a" "a"; mkfile "$L2/op/b" "b"
setfattr -n user.overlay.opaque -v y "$L1/op"
setfattr -n user.note -v hello "$L1/f"
mkdir -p "$R/ns-up" "$R/ns-m" "$R/ns-km" "$R/ns-mx" "$R/up" "$R/m" "$R/km" "$R/kmx" "$R/mx"
chown -R "$RU:" "$R"
for p in "$R"/*; do chmod 0755 "$p"; done

READCHECK=$T/readcheck.sh
cat >"$READCHECK" <<'EOF'
# $1 = mountpoint: contents a user reads
set -e
m=$1
printf '%s|' "$(cat "$m/f")" "$(cat "$m/g")" "$(cat "$m/d/a")" "$(cat "$m/d/b")" "$(readlink "$m/sl")"
printf '%s|' "$(ls "$m" | tr '\n' ' ')" "$(ls "$m/d" | tr '\n' ' ')" "$(sha256sum <"$m/big" | cut -c1-16)"
if [ -e "$m/gone" ]; then printf 'gone-visible|'; else printf 'gone-hidden|'; fi
printf '%s\n' "$(getfattr --absolute-names --only-values -n user.note "$m/f" 2>&1)"
EOF
chmod 0644 "$READCHECK"
expected="L1-f|L2-g|L1-d-a|L2-d-b|f|big d f g op sl |a b |$(sha256sum <"$L2/big" | cut -c1-16)|gone-hidden|hello"

# ------------------------------------------------------------ user namespace
check "unprivileged user can create a user+mount namespace"
if ! asu timeout 10 unshare -Urm true 2>"$T/unshare.err"; then
    skip "unshare -Urm fails for an unprivileged user here: $(cat "$T/unshare.err")"
fi

check "inside unshare -Urm: mount, read, compare with the kernel overlay, umount"
NS=$T/ns.sh
cat >"$NS" <<'EOF'
set -u
LAYERFS=$1 PY=$2 SNAP=$3 R=$4 READCHECK=$5
fail() { echo "FAIL(ns): $*"; exit 1; }
timeout 30 "$LAYERFS" mount "$R/l1:$R/l2" "$R/ns-up" "$R/ns-m" </dev/null >"$R/ns-up.out" 2>&1 ||
    fail "layerfs mount in the namespace exited $?: $(cat "$R/ns-up.out")"
grep -q " $R/ns-m " /proc/self/mounts || fail "exit 0 but not mounted"
mount -t overlay overlay -o "lowerdir=$R/l1:$R/l2" "$R/ns-km" || fail "kernel overlay in the namespace"
echo "read: $(timeout 60 bash "$READCHECK" "$R/ns-m" 2>&1)"
timeout 300 "$PY" "$SNAP" --prune op "$R/ns-km" >"$R/ns-k.snap" 2>&1
timeout 300 "$PY" "$SNAP" --prune op "$R/ns-m" >"$R/ns-l.snap" 2>&1
diff -u "$R/ns-k.snap" "$R/ns-l.snap" >"$R/ns.diff" && echo "snapshot: same" || echo "snapshot: differs"
echo "root owner: $(stat -c '%u:%g' "$R/ns-m/f")"
timeout 30 "$LAYERFS" umount "$R/ns-m" >"$R/ns-umount.out" 2>&1 || fail "layerfs umount in the namespace: $(cat "$R/ns-umount.out")"
grep -q " $R/ns-m " /proc/self/mounts && fail "still mounted after layerfs umount"
# -o userxattr: user.overlay.opaque honoured, as by the kernel with userxattr
timeout 30 "$LAYERFS" mount "$R/l1:$R/l2" "$R/ns-mx" --read-only -o userxattr </dev/null >"$R/ns-mx.out" 2>&1 ||
    fail "layerfs mount --read-only -o userxattr in the namespace: $(cat "$R/ns-mx.out")"
echo "userxattr op: $(ls "$R/ns-mx/op" | tr '\n' ' ')"
timeout 30 "$LAYERFS" umount "$R/ns-mx" >/dev/null 2>&1 || fail "umount ns-mx"
umount "$R/ns-km"
echo "ns-done"
EOF
chmod 0644 "$NS"
out=$(asu timeout -k 5 600 unshare -Urm bash "$NS" "$LAYERFS" "$PY" "$SNAPSHOT_PY" "$R" "$READCHECK" 2>&1) || true
echo "$out" | sed 's/^/   ns: /'
case $out in *"FAIL(ns)"*) fail "in the user namespace: $(echo "$out" | grep 'FAIL(ns)')" ;; esac
grep -qxF "read: $expected" <<<"$out" || fail "contents read in the namespace differ (expected 'read: $expected')"
grep -qx "snapshot: same" <<<"$out" || { head -40 "$R/ns.diff"; fail "namespace view differs from the kernel overlay's"; }
grep -qx "root owner: 0:0" <<<"$out" || fail "files owned by the user should show as 0:0 inside the namespace"
grep -qx "userxattr op: a " <<<"$out" || fail "-o userxattr in the namespace: user.overlay.opaque not honoured"
grep -qx "ns-done" <<<"$out" || fail "namespace script did not finish"
if [ -n "$(daemon_pids "$R/ns-m")" ]; then fail "a daemon is left for $R/ns-m after the namespace ended"; fi

# ------------------------------------------------------------ plain rootless
check "plain rootless (fusermount3): mount as $RU"
rc=0
asu timeout -k 5 30 "$LAYERFS" mount "$L1:$L2" "$R/up" "$R/m" </dev/null >"$T/rl.out" 2>&1 || rc=$?
track_mount fuse "$R/m"
_track_daemons "$R/m"
[ "$rc" = 0 ] || fail "rootless layerfs mount exited $rc: $(cat "$T/rl.out")"
is_mounted "$R/m" || fail "rootless mount exited 0 but nothing is mounted"
note "mounts: $(grep -F " $R/m " /proc/mounts)"
check "plain rootless: contents as the user"
got=$(asu timeout 60 bash "$READCHECK" "$R/m" 2>&1) || fail "reading as $RU: $got"
assert_eq "$got" "$expected" "contents read through the rootless mount"
check "plain rootless: tree equals the kernel overlay's (walked as $RU)"
mount_kovl "$L1:$L2" "" "" "$R/km"
asu timeout 300 "$PY" "$SNAPSHOT_PY" --prune op "$R/km" >"$T/k.snap" 2>&1 || true
asu timeout 300 "$PY" "$SNAPSHOT_PY" --prune op "$R/m" >"$T/l.snap" 2>&1 || true
compare_snapshots "$T/k.snap" "$T/l.snap" "rootless view (kernel '-' vs layerfs '+')"
check "plain rootless: user.overlay.opaque honoured without -o userxattr (kernel: with userxattr)"
mount_kovl "$L1:$L2" "" "" "$R/kmx" userxattr
assert_eq "$(asu timeout 30 ls "$R/m/op" | tr '\n' ' ')" "$(asu ls "$R/kmx/op" | tr '\n' ' ')" "listing of op"
check "plain rootless: layerfs umount as the user"
rc=0
asu timeout -k 5 30 "$LAYERFS" umount "$R/m" </dev/null >"$T/rlu.out" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "rootless layerfs umount exited $rc: $(cat "$T/rlu.out")"
wait_unmounted "$R/m" 10 || fail "still mounted after rootless layerfs umount"
check "plain rootless: -o lowerdir form, read-only"
rc=0
asu timeout -k 5 30 "$LAYERFS" -o "lowerdir=$L1:$L2" "$R/mx" </dev/null >"$T/rlo.out" 2>&1 || rc=$?
track_mount fuse "$R/mx"
_track_daemons "$R/mx"
[ "$rc" = 0 ] || fail "rootless layerfs -o lowerdir= exited $rc: $(cat "$T/rlo.out")"
got=$(asu timeout 60 bash "$READCHECK" "$R/mx" 2>&1) || fail "reading as $RU: $got"
assert_eq "$got" "$expected" "contents read through the rootless read-only mount"
assert_eq "$(asu timeout 30 "$PY" "$OSCALL_PY" creat "$R/mx/new")" "EROFS" "create on the read-only rootless mount"
asu timeout -k 5 30 "$LAYERFS" umount "$R/mx" >/dev/null 2>&1 || fail "rootless umount of $R/mx"

pass_test
