#!/usr/bin/env bash
# Build layerfs and run its whole test suite (unit + integration) with
# meson. The last line of output is always "N passed, N failed, N skipped"
# once the tests have run.
#
#   LAYERFS_SANITIZE=1        build and test with ASan + UBSan (build-asan/)
#   LAYERFS_TIMEOUT_MULT=N    multiply every test's timeout by N (default 1)
#   extra arguments           passed to `meson test` (e.g. a test name)
#
# Exit status: 0 when every test that ran passed and at least one test
# passed; non-zero when a test failed, when no test ran, or on a build error.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd -P)

if [[ "${LAYERFS_SANITIZE:-0}" == 1 ]]; then
    BUILDDIR="$ROOT/build-asan"
else
    BUILDDIR="$ROOT/build"
fi

"$SCRIPT_DIR/build.sh"

TESTLOG="$BUILDDIR/meson-logs/testlog.json"
# A stale log from an earlier run must not be counted as this run.
rm -f -- "$TESTLOG"

cd "$ROOT"
set +e
meson test -C "$BUILDDIR" --print-errorlogs --num-processes 2 \
    --timeout-multiplier "${LAYERFS_TIMEOUT_MULT:-1}" "$@"
meson_rc=$?
set -e

summarize_python() {
    python3 - "$TESTLOG" <<'PY'
import json, sys

path = sys.argv[1]
passed = failed = skipped = 0
skips, fails = [], []
try:
    f = open(path, encoding="utf-8", errors="replace")
except FileNotFoundError:
    f = []
for line in f:
    line = line.strip()
    if not line:
        continue
    try:
        t = json.loads(line)
    except ValueError:
        continue
    name = t.get("name", "?")
    res = t.get("result", "")
    if res in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif res == "SKIP":
        skipped += 1
        reason = ""
        for field in ("stdout", "stderr"):
            for out_line in (t.get(field) or "").splitlines():
                s = out_line.strip()
                if s.startswith("SKIP:"):
                    reason = s[len("SKIP:"):].strip()
                    break
            if reason:
                break
        skips.append((name, reason or "(no SKIP: line printed)"))
    else:
        # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, INTERRUPT, anything else
        failed += 1
        fails.append((name, res))

if skips:
    print()
    print("Skipped tests:")
    for name, reason in skips:
        print(f"  {name}: {reason}")
if fails:
    print()
    print("Failed tests:")
    for name, res in fails:
        print(f"  {name}: {res}")
print()
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
}

# Print the raw (still escaped) value of string field $1 of a JSON line.
# JSON escapes quotes inside strings, so '"KEY": "' only matches real keys.
json_field() {
    sed -n 's/.*"'"$1"'": "\(\([^"\\]\|\\.\)*\)".*/\1/p'
}

# From an escaped JSON string value, print the text after the first line
# that starts with SKIP:, with \" and \\ unescaped.
skip_reason() {
    sed 's/\\n/\n/g' | sed -n 's/^[[:space:]]*SKIP:[[:space:]]*//p' | head -n1 |
        sed 's/\\"/"/g; s/\\\\/\\/g'
}

summarize_grep() {
    local passed=0 failed=0 skipped=0 total=0 line name reason
    if [[ -f "$TESTLOG" ]]; then
        # JSON escapes quotes inside strings, so '"result": "X"' only
        # matches the real key.
        total=$(grep -c '"result": "' "$TESTLOG" || true)
        passed=$(grep -cE '"result": "(OK|EXPECTEDFAIL)"' "$TESTLOG" || true)
        skipped=$(grep -c '"result": "SKIP"' "$TESTLOG" || true)
        failed=$((total - passed - skipped))
        if [[ $skipped -gt 0 ]]; then
            echo
            echo "Skipped tests:"
            while IFS= read -r line; do
                name=$(sed -n 's/^{"name": "\(\([^"\\]\|\\.\)*\)".*/\1/p' <<<"$line")
                reason=$(json_field stdout <<<"$line" | skip_reason || true)
                if [[ -z "$reason" ]]; then
                    reason=$(json_field stderr <<<"$line" | skip_reason || true)
                fi
                echo "  ${name:-?}: ${reason:-(no SKIP: line printed)}"
            done < <(grep '"result": "SKIP"' "$TESTLOG")
        fi
    fi
    echo
    echo "$passed passed, $failed failed, $skipped skipped"
}

if command -v python3 >/dev/null 2>&1; then
    summary=$(summarize_python) || summary=$(summarize_grep)
else
    summary=$(summarize_grep)
fi

last=$(tail -n1 <<<"$summary")
read -r n_passed _ n_failed _ _ _ <<<"${last//,/}"

rc=0
if [[ $n_failed -ne 0 ]]; then
    rc=1
elif [[ $n_passed -eq 0 ]]; then
    echo "test.sh: no test ran (nothing passed)"
    rc=1
elif [[ $meson_rc -ne 0 ]]; then
    echo "test.sh: meson test exited $meson_rc"
    rc=$meson_rc
fi

# The summary line is the very last line of output.
printf '%s\n' "$summary"
exit "$rc"
