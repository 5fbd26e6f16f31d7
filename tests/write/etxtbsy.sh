#!/bin/bash
# etxtbsy: opening a running lower executable for writing fails with
# ETXTBSY and copies nothing up, on layerfs as on kernel overlay; once the
# program has exited the same open copies it up.
. "$(dirname "$0")/../integration/lib.sh"
require_root
require_layerfs

mkdir -p "$T/l"
cp /bin/sleep "$T/l/prog"
setup_pair empty "$T/l"
for M in "$KM" "$LM"; do
    check "write-open of $(basename "$M")/prog while it runs"
    "$M/prog" 30 &
    pid=$!
    for _ in $(seq 50); do [ -r "/proc/$pid/exe" ] && break; sleep 0.1; done
    assert_errno openw "$M/prog" ETXTBSY
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
check "nothing was copied up while it ran"
assert_eq "$(ls -A "$KU")" "" "kernel upper"
assert_eq "$(ls -A "$LU")" "" "layerfs upper"
check "after it exits, a write-open copies it up"
assert_errno openw "$LM/prog" OK
[ -f "$LU/prog" ] || fail "prog not copied up"
cmp -s "$LU/prog" /bin/sleep || fail "copied-up prog differs from the lower"
pass_test
