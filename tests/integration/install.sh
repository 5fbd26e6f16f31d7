#!/bin/bash
# install: `meson install` (into a DESTDIR in the temp dir) puts in place
# the layerfs binary, its man pages layerfs(1) and layerfs(5), the bash
# completion and the contrib/ examples; the installed binary runs; the man
# pages render without groff warnings; every -o key --help names is in
# layerfs(1), and the examples name options layerfs accepts.
. "$(dirname "$0")/lib.sh"
require_layerfs
BUILDDIR=${BUILDDIR:-$(dirname "$(dirname "$LAYERFS")")}
[ -f "$BUILDDIR/meson-private/install.dat" ] || skip "no meson build dir at $BUILDDIR"

D=$T/dest
check "meson install --destdir puts binaries, man pages, completion and examples in place"
DESTDIR=$D t meson install -C "$BUILDDIR" --no-rebuild --quiet >"$T/install.log" 2>&1 ||
    { cat "$T/install.log"; fail "meson install failed"; }
PREFIX=$(meson introspect --buildoptions "$BUILDDIR" |
    "$PY" -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
R=$D$PREFIX
for f in bin/layerfs share/man/man1/layerfs.1 share/man/man5/layerfs.5 \
         share/bash-completion/completions/layerfs \
         share/doc/layerfs/examples/storage.conf share/doc/layerfs/examples/srv-rootfs.mount \
         share/doc/layerfs/examples/fstab.example; do
    [ -f "$R/$f" ] || fail "not installed: $PREFIX/$f"
done
[ -x "$R/bin/layerfs" ] || fail "installed layerfs is not executable"
cmp -s "$R/bin/layerfs" "$LAYERFS" || fail "installed layerfs differs from the build"

check "the installed binary runs"
out=$(t "$R/bin/layerfs" --version) || fail "installed layerfs --version failed"
case "$out" in "layerfs "*) ;; *) fail "--version printed '$out'" ;; esac

check "man pages render without warnings"
if command -v man >/dev/null && command -v groff >/dev/null; then
    for page in "$R"/share/man/man*/*; do
        w=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$page" 2>&1 >/dev/null || true)
        [ -z "$w" ] || fail "$(basename "$page"): $w"
        MANWIDTH=80 man -l "$page" >/dev/null 2>&1 || fail "$(basename "$page") does not render"
    done
else
    note "man/groff not installed: rendering not checked"
fi

check "every -o key --help names is described in layerfs(1)"
HELP=$(t "$LAYERFS" --help)
MAN1=$(MANWIDTH=200 man -l "$R/share/man/man1/layerfs.1" 2>/dev/null || cat "$R/share/man/man1/layerfs.1")
# the keys: "key=" anywhere in the -o part, and the plain flags of its
# comma-separated list (up to "; unknown options ...")
keys=$("$PY" - "$HELP" <<'PY'
import re, sys
h = sys.argv[1]
part = h[h.index("-o OPT"):h.index("-V, --version")]
keys = set(re.findall(r"\b([a-z_]{2,}=)", part))
lst = part[len("-o OPT[,OPT...]"):part.index("; unknown")]
for tok in re.split(r"[,\s]+", lst):
    if re.fullmatch(r"[a-z_]{2,}", tok):
        keys.add(tok)
print("\n".join(sorted(keys)))
PY
)
[ -n "$keys" ] || fail "no -o keys found in --help"
for k in $keys; do
    grep -qF -- "$k" <<<"$MAN1" || fail "--help names '$k', layerfs(1) does not"
done
for k in uidmapping= gidmapping= squash_to_uid= squash_to_gid= squash_to_root xattr_permissions=; do
    grep -qF -- "$k" <<<"$HELP" || fail "--help lacks $k"
    grep -qF -- "$k" <<<"$MAN1" || fail "layerfs(1) lacks $k"
done

check "the examples' layerfs options are accepted without a warning"
EX=$R/share/doc/layerfs/examples
mkdir -p "$T/l" "$T/u" "$T/w" "$T/m"
optsets=$(grep -h '^Options=' "$EX/srv-rootfs.mount" | sed 's/^Options=//'
          grep -hv '^#' "$EX/fstab.example" | awk 'NF >= 4 {print $4}')
while read -r o; do
    [ -n "$o" ] || continue
    # the example's directories replaced by ours: only the keys are checked
    o=$(sed -e "s#lowerdir=[^,]*#lowerdir=$T/l#" -e "s#upperdir=[^,]*#upperdir=$T/u#" \
            -e "s#workdir=[^,]*#workdir=$T/w#" <<<"$o")
    if [ "$(id -u)" = 0 ]; then
        run_layerfs -o "$o" "$T/m"
        [ "$LF_RC" = 0 ] || fail "example options '$o' refused: $(cat "$LF_ERR")"
        [ ! -s "$LF_ERR" ] || fail "example options '$o' warned: $(cat "$LF_ERR")"
        umount_any "$T/m"
    fi
done <<<"$optsets"
grep -q '^mount_program = "'"$PREFIX"'/bin/layerfs"' "$EX/storage.conf" ||
    note "storage.conf example names a mount_program outside $PREFIX/bin"

pass_test
