#!/usr/bin/env bash
# layer-tool apply against hostile and broken archives: traversal ("..",
# absolute names, symlinked parents), hard links out of the tree or to
# later entries, devices as non-root, huge or truncated headers, garbage.
# Each must give one 'layer-tool:' line and a non-zero exit, leave the
# target as it was (absent, or empty) and no staging directory, and touch
# nothing outside.
. "$(dirname "$0")/lib.sh"
require_root

O=$T/outside A=$T/archives
mkdir -p "$O" "$A" "$T/work"
echo secret >"$O/target"
"$PY" "$SRCDIR/tests/tool/mkhostile.py" "$A" "$O"
before=$(tree_snapshot "$O" --mtime)

refused() { # CASE: apply must fail, into an absent and into an empty DIR
    local c=$1 f
    f=$(ls "$A/$c".tar* | head -n1)
    lt_fails "$c" apply "$f" "$T/work/absent"
    [ ! -e "$T/work/absent" ] || fail "$c: a failed apply created the target"
    mkdir "$T/work/empty"
    lt_fails "$c (into an empty dir)" apply "$f" "$T/work/empty"
    [ -z "$(ls -A "$T/work/empty")" ] || fail "$c: a failed apply left files in the target: $(ls -A "$T/work/empty")"
    rmdir "$T/work/empty"
    [ -z "$(ls -A "$T/work")" ] || fail "$c: left behind in the parent: $(ls -A "$T/work")"
    [ "$(tree_snapshot "$O" --mtime)" = "$before" ] || fail "$c: something outside the target changed"
    [ ! -e "$T/escape" ] && [ ! -e "$T/work/escape" ] || fail "$c: a file escaped"
}

for c in dotdot dotdot-nested absolute symlink-parent-abs symlink-parent-rel symlink-parent-deep \
    hardlink-out hardlink-abs hardlink-later hardlink-via-symlink hardlink-dir under-a-file \
    symlink-over-dir whiteout-dotdot long-component truncated-data truncated-header huge-pax \
    bad-pax-record huge-size bad-checksum garbage truncated; do
    check "refused: $c"
    refused "$c"
done

check "an empty file is an empty layer or an error, never a crash"
lt apply "$A/empty-file.tar" "$T/work/e"
[ "$LT_RC" -lt 2 ] || fail "empty file: exit $LT_RC: $(cat "$LT_ERR")"
rm -rf "$T/work/e"

check "device nodes: refused as a user"
mkdir -p "$T/user" && chown nobody "$T/user"
LT_RC=0
setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$LT" apply "$A/device.tar" "$T/user/dev" \
    >"$LT_OUT" 2>"$LT_ERR" </dev/null || LT_RC=$?
[ "$LT_RC" = 1 ] || fail "device as user: exit $LT_RC: $(cat "$LT_ERR")"
grep -q '^layer-tool: .*device' "$LT_ERR" || fail "device as user: $(cat "$LT_ERR")"
[ ! -e "$T/user/dev" ] && [ -z "$(ls -A "$T/user")" ] || fail "device as user: left $(ls -A "$T/user")"
check "as a user: markers in the user's form, which kernel overlay (userxattr) and layerfs read"
mkdir -p "$T/ulow/d" && echo old >"$T/ulow/d/old" && echo x >"$T/ulow/gone" && echo keep >"$T/ulow/keep"
"$PY" - "$A/user.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for name, kind in (("d", tarfile.DIRTYPE), ("d/.wh..wh..opq", tarfile.REGTYPE), ("d/new", tarfile.REGTYPE),
                       (".wh.gone", tarfile.REGTYPE)):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode = kind, 0o755 if kind == tarfile.DIRTYPE else 0o644
        t.addfile(ti, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
PY
LT_RC=0
setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$LT" apply "$A/user.tar" "$T/user/lay" \
    >"$LT_OUT" 2>"$LT_ERR" </dev/null || LT_RC=$?
[ "$LT_RC" = 0 ] || fail "apply as a user: $(cat "$LT_ERR")"
[ "$(getfattr --only-values --absolute-names -n user.overlay.opaque "$T/user/lay/d")" = y ] ||
    fail "as a user: no user.overlay.opaque"
chmod 0755 "$T/ulow"
for impl in kernel layerfs; do
    mkdir -p "$T/uview"
    if [ $impl = kernel ]; then mount_kovl "$T/user/lay:$T/ulow" "" "" "$T/uview" userxattr
    else mount_layerfs_ro "$T/user/lay:$T/ulow" "$T/uview"; fi
    assert_listing "$T/uview" "d keep"
    assert_listing "$T/uview/d" "new"
    umount_any "$T/uview"
done

check "device nodes made as root"
lt_ok apply "$A/device.tar" "$T/work/dev"
[ "$(stat -c %t,%T "$T/work/dev/null")" = "1,3" ] || fail "device as root not made"
rm -rf "$T/work/dev"

check "overlay-private xattrs in a layer are dropped, others kept"
lt_ok apply "$A/overlay-xattr.tar" "$T/work/x"
grep -q 'warning: .*overlay-private' "$LT_ERR" || fail "no warning: $(cat "$LT_ERR")"
if getfattr -d -m - --absolute-names "$T/work/x/d" 2>/dev/null | grep -q overlay; then
    fail "trusted.overlay.redirect was set from the archive"
fi
[ "$(getfattr --only-values --absolute-names -n user.ok "$T/work/x/d")" = 1 ] || fail "user.ok not kept"

check "symlinks pointing out are kept as links, never followed; links to earlier entries work"
lt_ok apply "$A/outward-symlink.tar" "$T/work/sym"
[ "$(readlink "$T/work/sym/out")" = "$O/target" ] && [ "$(readlink "$T/work/sym/rel")" = ../../x ] ||
    fail "symlinks not kept as they are"
[ "$(stat -c %i "$T/work/sym/f")" = "$(stat -c %i "$T/work/sym/g")" ] || fail "hard link to an earlier entry not made"
[ "$(tree_snapshot "$O" --mtime)" = "$before" ] || fail "outward symlink: something outside changed"

pass_test
