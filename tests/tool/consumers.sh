#!/usr/bin/env bash
# layer-tool images read by real consumers from Debian: the fixture rootfs
# committed as a base image, a layerfs upper on top of it (whiteouts, an
# opaque dir, a renamed dir, a hard link) appended as a second layer; then
# `skopeo inspect oci:DIR:TAG`, `umoci unpack` and `layer-tool unpack`
# give the merged view, and podman (private storage, runc, no network)
# pulls the image and runs it.
. "$(dirname "$0")/lib.sh"
require_root
require_layerfs
for b in skopeo umoci podman runc; do
    command -v "$b" >/dev/null || skip "$b is not installed (scripts/deps.sh installs it)"
done
grep -qw overlay /proc/filesystems || skip "no kernel overlay"
fixture_rootfs
BASE=$C/full
IMG=$T/img
export SOURCE_DATE_EPOCH=1700000000

check "the fixture rootfs as a base image (gzip)"
# on a terminal (script(1) gives one) a progress line goes to stderr
LT_RC=0
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1} timeout -k 5 600 script -qefc "'$LT' commit '$BASE' --image '$IMG:base'" "$T/typescript" \
    </dev/null >/dev/null 2>&1 || LT_RC=$?
[ "$LT_RC" = 0 ] || fail "commit of the base exited $LT_RC: $(tail -c 1000 "$T/typescript")"
tr -d '\r' <"$T/typescript" | sed 's/\x1b\[K//g' >"$LT_OUT"
grep -q 'layer-tool: commit: [0-9]* entries, [0-9.]* MiB' "$LT_OUT" || fail "no progress line on a terminal: $(head -c 500 "$LT_OUT")"
base_layer=$(field digest)
[ -n "$base_layer" ] || fail "no digest printed: $(cat "$LT_OUT")"

check "a layerfs upper over it, appended with --from"
U=$T/upper M=$T/m
mkdir -p "$U" "$M"
mount_layerfs "$BASE" "$U" "$M"
t sh -c "
    printf '#!/bin/sh\necho hello from layer-tool\n' >'$M/hello.sh' && chmod 755 '$M/hello.sh'
    ln '$M/hello.sh' '$M/usr/local/bin/hello'
    rm '$M/etc/motd'
    rm -rf '$M/usr/share/doc/apt'
    rm -rf '$M/opt' && mkdir '$M/opt' && echo new >'$M/opt/only'
    mv '$M/usr/share/common-licenses' '$M/usr/share/licenses'
    echo changed >>'$M/etc/hostname'
" || fail "changes on layerfs failed"
umount_layerfs "$M"
lt_ok commit "$U" --lower "$BASE" --image "$IMG:app" --from "$IMG:base"
app_layer=$(field digest) app_diff=$(field diff_id) app_manifest=$(field manifest)
lt_ok commit "$U" --lower "$BASE" --image "$IMG:appz" --from "$IMG:base" --compress zstd

check "the merged view, to compare with"
V=$T/view
mkdir -p "$V"
mount_kovl "$U:$BASE" "" "" "$V" redirect_dir=follow
tree_snapshot "$V" --exclude-root --no-xattrs >"$T/want.snap"
umount_any "$V"
grep -q '^usr/share/licenses/GPL-3	' "$T/want.snap" || fail "the renamed directory is not in the merged view"

check "skopeo inspect oci:DIR:TAG"
t skopeo inspect "oci:$IMG:app" >"$T/inspect.json" 2>"$T/skopeo.err" || fail "skopeo inspect: $(cat "$T/skopeo.err")"
"$PY" - "$T/inspect.json" "$base_layer" "$app_layer" "$app_manifest" <<'PY' || fail "skopeo inspect: $(cat "$T/inspect.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["Layers"] == [sys.argv[2], sys.argv[3]], j["Layers"]
assert j["Digest"] == sys.argv[4], j["Digest"]
assert j["Os"] == "linux" and j["Created"].startswith("2023-11-14T22:13:20"), j
PY
t skopeo inspect --config "oci:$IMG:app" >"$T/config.json" 2>"$T/skopeo.err" || fail "skopeo inspect --config: $(cat "$T/skopeo.err")"
"$PY" - "$T/config.json" "$app_diff" <<'PY' || fail "config: $(cat "$T/config.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["rootfs"]["type"] == "layers" and len(j["rootfs"]["diff_ids"]) == 2, j["rootfs"]
assert j["rootfs"]["diff_ids"][1] == sys.argv[2]
assert len(j["history"]) == 2 and all("created" in h for h in j["history"]), j["history"]
PY
t skopeo inspect "oci:$IMG:appz" >/dev/null 2>"$T/skopeo.err" || fail "skopeo inspect (zstd): $(cat "$T/skopeo.err")"

check "umoci unpack gives the merged view"
t umoci unpack --image "$IMG:app" "$T/bundle" >"$T/umoci.out" 2>&1 || fail "umoci unpack: $(tail -5 "$T/umoci.out")"
tree_snapshot "$T/bundle/rootfs" --exclude-root --no-xattrs >"$T/umoci.snap"
compare_snapshots "$T/want.snap" "$T/umoci.snap" "umoci unpack vs the merged view"

check "layer-tool unpack, stacked by layerfs, gives the merged view"
lt_ok unpack "$IMG:appz" "$T/un"
line=$(cat "$LT_OUT")
lowers=$(sed -n 's/^layerfs mount \(.*\) UPPER MERGED$/\1/p' <<<"$line")
[ "$lowers" = "$T/un/2:$T/un/1" ] || fail "unpack printed '$line'"
mount_layerfs_ro "$lowers" "$V"
tree_snapshot "$V" --exclude-root --no-xattrs >"$T/un.snap"
umount_layerfs "$V"
compare_snapshots "$T/want.snap" "$T/un.snap" "layer-tool unpack + layerfs vs the merged view"
lt_fails "unpack into layers that exist" unpack "$IMG:appz" "$T/un"

check "podman pulls and runs the image (private storage, runc, --network none)"
P=$T/podman
mkdir -p "$P"
cat >"$P/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"
[network]
network_config_dir = "$P/networks"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$P/tmp"
CONF
cat >"$P/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "$P/runroot"
graphroot = "$P/root"
CONF
export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf
PM=(podman --root "$P/root" --runroot "$P/runroot" --storage-driver vfs)
# podman names an image after its path, which must be lower case ($T is not)
LC=/tmp/layer-tool-consumers-$$
ln -sfn "$IMG" "$LC"
podman_cleanup() {
    # no `system reset`: it also removes the networks of the host's podman
    pm rm -a -f >/dev/null 2>&1 || true
    pm rmi -a -f >/dev/null 2>&1 || true
    rm -f "$LC"
}
trap 'rc=$?; _IN_CLEANUP=1; podman_cleanup; (exit $rc); _cleanup' EXIT
# podman keeps a blob-info cache in /var/lib/containers/cache whatever
# --root says: where that directory exists (another user of podman here),
# each podman of this test runs in a mount namespace of its own that puts a
# private directory there.
mkdir -p "$P/varlib"
pm() {
    if [ -d /var/lib/containers ]; then
        timeout -k 5 180 unshare -m --propagation private sh -c \
            'mount --bind "$0" /var/lib/containers && exec "$@"' "$P/varlib" "${PM[@]}" "$@"
    else
        timeout -k 5 180 "${PM[@]}" "$@"
    fi
}
pm pull -q "oci:$LC:base" >"$T/pull-base" 2>"$T/pm.err" || fail "podman pull oci:$LC:base: $(tail -3 "$T/pm.err")"
base_id=$(tail -n1 "$T/pull-base")
if ! pm run --rm --network none "$base_id" /bin/true >"$T/pm.out" 2>"$T/pm.err"; then
    skip "podman cannot run a container on this machine: $(tail -1 "$T/pm.err")"
fi
for tag in app appz; do
    pm pull -q "oci:$LC:$tag" >"$T/pull-$tag" 2>"$T/pm.err" || fail "podman pull oci:$IMG:$tag: $(tail -3 "$T/pm.err")"
    id=$(tail -n1 "$T/pull-$tag")
    out=$(pm run --rm --network none "$id" /bin/sh -c \
        '/hello.sh; /usr/local/bin/hello; test ! -e /etc/motd && echo motd-gone; ls /opt; ls /usr/share/licenses | grep -c ^GPL; test -d /usr/share/common-licenses || echo old-gone; test -d /usr/share/doc/apt || echo doc-gone' \
        2>"$T/pm.err") || fail "podman run ($tag): $(tail -3 "$T/pm.err")"
    expected="hello from layer-tool
hello from layer-tool
motd-gone
only
$(grep -c '^usr/share/licenses/GPL' "$T/want.snap")
old-gone
doc-gone"
    [ "$out" = "$expected" ] || fail "podman run ($tag) printed:
$out
expected:
$expected"
done

pass_test
