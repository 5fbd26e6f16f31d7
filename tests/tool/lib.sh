# shellcheck shell=bash
# Helpers of the layer-tool tests: the integration lib (temp dir, mounts
# cleaned up at exit, assertions, snapshots) plus $LT and a runner.
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

LT=${LAYER_TOOL:-$SRCDIR/build/tools/layer-tool/layer-tool}
[ -x "$LT" ] || fail "layer-tool binary not found at '$LT' (build it first)"

LT_RC=0
LT_OUT="$T/.lt.out"
LT_ERR="$T/.lt.err"
# lt ARGS...: runs layer-tool bounded; sets LT_RC, output in $LT_OUT/$LT_ERR.
lt() {
    LT_RC=0
    # under UBSan (LAYERFS_SANITIZE=1) any report is a failure
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
        timeout -k 5 "${LT_TIMEOUT:-300}" "$LT" "$@" </dev/null >"$LT_OUT" 2>"$LT_ERR" || LT_RC=$?
    return 0
}

# lt_ok ARGS...: layer-tool must succeed.
lt_ok() {
    lt "$@"
    [ "$LT_RC" = 0 ] || fail "layer-tool $* exited $LT_RC: $(head -c 2000 "$LT_ERR")"
}

# lt_fails WHAT ARGS...: layer-tool must fail with one 'layer-tool: ' line.
lt_fails() {
    local what=$1
    shift
    lt "$@"
    [ "$LT_RC" != 0 ] || fail "$what: layer-tool $* succeeded"
    [ "$LT_RC" -lt 124 ] || fail "$what: layer-tool $* exited $LT_RC (crash or timeout): $(cat "$LT_ERR")"
    local n
    n=$(grep -vc '^layer-tool: warning: ' "$LT_ERR" || true)
    [ "$n" = 1 ] || fail "$what: expected one error line, got $n: $(cat "$LT_ERR")"
    grep -q '^layer-tool: ' "$LT_ERR" || fail "$what: error line does not start with 'layer-tool: ': $(cat "$LT_ERR")"
    note "$what: $(grep -v '^layer-tool: warning: ' "$LT_ERR")"
}

# field NAME: the value of "NAME value" in the last output.
field() {
    awk -v k="$1" '$1 == k { print $2 }' "$LT_OUT"
}

# tar_listing TAR: every member, in order: name type mode uid gid size link xattrs
tar_listing() {
    "$PY" - "$1" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        def val(v):
            b = v.encode("utf-8", "surrogateescape")
            return v if all(32 < c < 127 for c in b) else "0x" + b.hex()
        x = ",".join("%s=%s" % (k[len("SCHILY.xattr."):], val(v))
                     for k, v in sorted(m.pax_headers.items()) if k.startswith("SCHILY.xattr."))
        print(m.name, m.type.decode(), "%04o" % m.mode, m.uid, m.gid, m.size, m.linkname or "-", x or "-", sep=" ")
PY
}
