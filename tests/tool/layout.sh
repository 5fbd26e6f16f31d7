#!/usr/bin/env bash
# layer-tool commit: the exact layer of an upper holding every marker form
# layerfs reads; determinism (same digests twice, from a copy, with gzip and
# zstd; SOURCE_DATE_EPOCH and --mtime change them); fixed pax headers;
# command-line errors; --help against the man page.
. "$(dirname "$0")/lib.sh"
require_root

U=$T/upper
mkdir -p "$U"
cd "$U"
mkdir -p d1 d2 d3 d4 d5 d6 d7 links/sub
mknod wh1 c 0 0
ln wh1 wh1-shared                       # the kernel's whiteouts share one inode
touch xwh && setfattr -n trusted.overlay.whiteout -v '' xwh
mkdir d7/x && touch d7/x/uwh && setfattr -n user.overlay.whiteout -v '' d7/x/uwh
setfattr -n trusted.overlay.opaque -v x d7/x
touch .wh.aufs-gone
setfattr -n trusted.overlay.opaque -v y d1 && echo a >d1/a && mknod d1/ignored c 0 0
setfattr -n user.overlay.opaque -v y d2
setfattr -n user.fuseoverlayfs.opaque -v y d3
touch d4/.wh..wh..opq && echo b >d4/b
setfattr -n trusted.overlay.opaque -v x d5 && touch d5/f   # "x" is not opaque
setfattr -n trusted.overlay.origin -v 00fb d6 && setfattr -n trusted.overlay.impure -v y d6
echo same >links/f && ln links/f links/sub/g && ln links/f links/h
echo cap >capfile && setcap cap_net_raw+ep capfile
setfacl -m u:nobody:r capfile 2>/dev/null || true
setfattr -n user.note -v hello links/f
printf 'x%.0s' $(seq 300) >/dev/null
long=$(printf 'n%.0s' $(seq 120))/$(printf 'm%.0s' $(seq 120))
mkdir -p "$(dirname "$long")" && echo deep >"$long"
ln -s /nowhere dangling
mknod blk b 7 0
chown 1234:5678 d5/f
find "$U" -exec touch -h -d @1600000000 {} +
cd "$T"

check "the layer's exact entries"
lt_ok commit "$U" -o "$T/a.tar" --mtime 2000000000
tar_listing "$T/a.tar" | sed "s/$(printf 'n%.0s' $(seq 120))/N120/; s/$(printf 'm%.0s' $(seq 120))/M120/" >"$T/a.list"
cap=$(getfattr --absolute-names -e hex -n security.capability "$U/capfile" | sed -n 's/^security.capability=0x//p')
expected="\
.wh.aufs-gone 0 0644 0 0 0 - -
.wh.wh1 0 0644 0 0 0 - -
.wh.wh1-shared 0 0644 0 0 0 - -
.wh.xwh 0 0644 0 0 0 - -
blk 4 0644 0 0 0 - -
capfile 0 0644 0 0 4 - CAPXATTRS
d1 5 0755 0 0 0 - -
d1/.wh..wh..opq 0 0644 0 0 0 - -
d1/a 0 0644 0 0 2 - -
d2 5 0755 0 0 0 - -
d2/.wh..wh..opq 0 0644 0 0 0 - -
d3 5 0755 0 0 0 - -
d3/.wh..wh..opq 0 0644 0 0 0 - -
d4 5 0755 0 0 0 - -
d4/.wh..wh..opq 0 0644 0 0 0 - -
d4/b 0 0644 0 0 2 - -
d5 5 0755 0 0 0 - -
d5/f 0 0644 1234 5678 0 - -
d6 5 0755 0 0 0 - -
d7 5 0755 0 0 0 - -
d7/x 5 0755 0 0 0 - -
d7/x/.wh.uwh 0 0644 0 0 0 - -
dangling 2 0777 0 0 0 /nowhere -
links 5 0755 0 0 0 - -
links/f 0 0644 0 0 5 - user.note=hello
links/h 1 0644 0 0 0 links/f -
links/sub 5 0755 0 0 0 - -
links/sub/g 1 0644 0 0 0 links/f -
N120 5 0755 0 0 0 - -
N120/M120 0 0644 0 0 5 - -"
got_caps=$(grep '^capfile ' "$T/a.list" | awk '{print $8}')
case $got_caps in
*security.capability=*) ;;
*) fail "security.capability not in the layer: $got_caps" ;;
esac
if getfacl -p "$U/capfile" 2>/dev/null | grep -q nobody; then
    case $got_caps in *system.posix_acl_access=*) ;; *) fail "ACL not in the layer: $got_caps" ;; esac
fi
sed -i "s|^capfile \(.*\) [^ ]*$|capfile \1 CAPXATTRS|" "$T/a.list"
diff -u <(echo "$expected") "$T/a.list" || fail "layer entries differ from the expected layout"
[ -n "$cap" ] || fail "setcap did not work"

check "pax headers: no atime/ctime, no user or group names, times clamped"
"$PY" - "$T/a.tar" <<'PY' || fail "header fields not fixed"
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        bad = [k for k in m.pax_headers if not (k.startswith("SCHILY.xattr.") or k in ("path", "linkpath"))]
        assert not bad, (m.name, bad)
        assert m.uname == "" and m.gname == "", (m.name, m.uname, m.gname)
        assert m.mtime == 1600000000, (m.name, m.mtime)
PY
lt_ok commit "$U" -o "$T/c.tar" --mtime 1500000000
"$PY" -c 'import sys,tarfile; assert {m.mtime for m in tarfile.open(sys.argv[1])} == {1500000000}' "$T/c.tar" ||
    fail "--mtime did not clamp"

check "determinism: the same digests twice, from a copy, with each compression"
for c in tar tar.gz tar.zst tar.lz4; do
    lt_ok commit "$U" -o "$T/1.$c"
    d1=$(field diff_id) b1=$(field digest)
    lt_ok commit "$U" -o "$T/2.$c"
    [ "$(field diff_id)" = "$d1" ] && [ "$(field digest)" = "$b1" ] || fail "$c: digests differ between two runs"
    [ "$(sha256sum <"$T/1.$c" | cut -d' ' -f1)" = "${b1#sha256:}" ] || fail "$c: printed digest is not the file's sha256"
    [ "$c" = tar ] && { [ "$d1" = "$b1" ] || fail "uncompressed: diff_id != digest"; }
    [ "$c" = tar ] || [ "$d1" = "sha256:$(sha256sum <"$T/1.tar" | cut -d' ' -f1)" ] || fail "$c: diff_id is not the tar's sha256"
done
cp -a "$U" "$T/copy"
lt_ok commit "$T/copy" -o "$T/copy.tar.gz"
[ "$(field digest)" = "$(sha256sum <"$T/1.tar.gz" | awk '{print "sha256:" $1}')" ] || fail "a copy of the upper gives another digest"
SOURCE_DATE_EPOCH=1000000000 lt_ok commit "$U" -o "$T/s1.tar"
s1=$(field diff_id)
lt_ok commit "$U" -o "$T/s1b.tar" --mtime 1000000000
[ "$(field diff_id)" = "$s1" ] || fail "--mtime N and SOURCE_DATE_EPOCH=N differ"
SOURCE_DATE_EPOCH=1000000001 lt_ok commit "$U" -o "$T/s2.tar"
[ "$(field diff_id)" != "$s1" ] || fail "another SOURCE_DATE_EPOCH gives the same digest"
[ "$s1" != "$(sha256sum <"$T/1.tar" | awk '{print "sha256:" $1}')" ] || fail "clamping changed nothing"

check "odd names (UTF-8, not UTF-8, spaces, newlines, 255 bytes) survive commit and apply"
N=$T/names
mkdir -p "$N/dïr"
echo 1 >"$N/ünïcödé" && echo 2 >"$N/"$'bin\xff\xfe' && echo 3 >"$N/space name" && echo 4 >"$N/new"$'\n'"line"
echo 5 >"$N/dïr/$(printf 'z%.0s' $(seq 255))"
lt_ok commit "$N" -o "$T/names.tar"
lt_ok apply "$T/names.tar" "$T/names-out"
snap_compare "$N" "$T/names-out" "odd names" --exclude-root

check "a layer written into the upper it is made of leaves itself out"
cp -a "$N" "$T/self"
lt_ok commit "$T/self" -o "$T/self/me.tar"
grep -q 'left out' "$LT_ERR" || fail "no warning: $(cat "$LT_ERR")"
if tar_listing "$T/self/me.tar" | grep -q '^\.me\.tar'; then fail "the layer holds itself"; fi

check "command-line errors"
for args in "" "frob" "commit" "commit $U" "commit $U -o x.tar --image y" "commit $U -o x.tar --compress rar" \
    "commit $U -o x.zip" "apply" "apply onlyone" "unpack x" "diff" "diff a b" "commit $U -o x.tar --mtime soon"; do
    # shellcheck disable=SC2086
    lt $args
    [ "$LT_RC" = 2 ] || fail "'layer-tool $args' exited $LT_RC, not 2"
    [ "$(wc -l <"$LT_ERR")" = 1 ] && grep -q '^layer-tool: ' "$LT_ERR" || fail "'layer-tool $args': $(cat "$LT_ERR")"
done
SOURCE_DATE_EPOCH=yesterday lt commit "$U" -o "$T/x.tar"
[ "$LT_RC" = 2 ] || fail "bad SOURCE_DATE_EPOCH accepted"
lt_fails "missing upper" commit "$T/none" -o "$T/x.tar"
lt_fails "output dir missing" commit "$U" -o "$T/no/such/x.tar"
lt_fails "lz4 in an image" commit "$U" --image "$T/img" --compress lz4
lt_fails "no such image" unpack "$T/none:latest" "$T/dest"
lt_fails "--from missing" commit "$U" --image "$T/img2:x" --from "$T/none:y"
[ ! -e "$T/img2" ] || fail "a bad --from left a new layout"
M=$T/meta && mkdir -p "$M" && echo x >"$M/f" && setfattr -n trusted.overlay.metacopy -v '' "$M/f"
lt_fails "metacopy upper" commit "$M" -o "$T/x.tar"
mkdir -p "$T/img3" && lt_ok commit "$U" --image "$T/img3:one"
lt_fails "no such tag" unpack "$T/img3:two" "$T/dest"
[ ! -e "$T/x.tar" ] || fail "failed commits left $T/x.tar"
ls -A "$T" | grep -q '^\.x\.tar' && fail "a temporary output was left behind"

check "images: --from another layout copies its blobs; unpack checks digests; apply reads stdin"
lt_ok commit "$N" --image "$T/img4:x" --from "$T/img3:one" --mtime 1700000000
lt_ok unpack "$T/img4:x" "$T/un4"
[ "$(cat "$LT_OUT")" = "layerfs mount $T/un4/2:$T/un4/1 UPPER MERGED" ] || fail "unpack printed $(cat "$LT_OUT")"
[ -f "$T/un4/2/ünïcödé" ] && [ -e "$T/un4/1/.wh.wh1" -o -c "$T/un4/1/wh1" ] || fail "unpacked layers lack their files"
"$PY" - "$T/img4" <<'PY' || fail "index.json of img4"
import json, sys
ix = json.load(open(sys.argv[1] + "/index.json"))
assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in ix["manifests"]] == ["x"], ix
assert json.load(open(sys.argv[1] + "/oci-layout")) == {"imageLayoutVersion": "1.0.0"}
PY
lt_ok commit "$N" --image "$T/img4:x" --mtime 1700000000 --compress none   # appends to its own tag
"$PY" -c 'import json,sys; ix=json.load(open(sys.argv[1])); assert len(ix["manifests"]) == 1, ix' "$T/img4/index.json" ||
    fail "re-tagging left two entries for one tag"
layer=$("$PY" -c 'import json,sys; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+json.load(open(sys.argv[1]+"/index.json"))["manifests"][0]["digest"][7:])); print(m["layers"][-1]["digest"][7:])' "$T/img4")
# a byte in the end blocks, which a tar reader does not look at: only the digest tells
printf 'x' | dd of="$T/img4/blobs/sha256/$layer" bs=1 seek=$(($(stat -c %s "$T/img4/blobs/sha256/$layer") - 10)) conv=notrunc 2>/dev/null
lt_fails "unpack of a corrupted blob" unpack "$T/img4:x" "$T/un5"
grep -q 'digest mismatch' "$LT_ERR" || fail "not a digest mismatch: $(cat "$LT_ERR")"
[ ! -e "$T/un5" ] || fail "a failed unpack left $(ls "$T/un5")"
"$LT" apply - "$T/stdin-out" <"$T/names.tar" || fail "apply - (stdin) failed"
snap_compare "$N" "$T/stdin-out" "apply from stdin" --exclude-root

check "--help and the man page name the same options"
lt_ok --help
for o in $(grep -o -- '--[a-z][a-z-]*' "$LT_OUT" | sort -u); do
    grep -q -- "${o//-/\\\\-}" "$SRCDIR/man/layer-tool.1" || grep -q -- "$o" "$SRCDIR/man/layer-tool.1" ||
        fail "option $o of --help is not in man/layer-tool.1"
done
for o in $(grep -o -- '\\-\\-[a-z][a-z\\-]*' "$SRCDIR/man/layer-tool.1" | sed 's/\\//g' | sort -u); do
    grep -q -- "$o" "$LT_OUT" || fail "option $o of the man page is not in --help"
done
lt_ok --version
grep -q '^layer-tool ' "$LT_OUT" || fail "--version: $(cat "$LT_OUT")"

pass_test
