#!/bin/bash
# run_errors: how `layerfs run` fails, and that it cleans up on every way
# out: one-line errors with exit status 125 for bad usage, no user
# namespaces allowed, /dev/fuse not accessible (with how to fix it), no
# subordinate ids; 127 and 126 for a command that is missing from the
# image or not executable; the daemon dying under a running command (the
# command sees errors, the launcher says so and exits non-zero); the
# launcher killed with SIGKILL; a command ignoring SIGTERM (a second one
# kills it).  After each: nothing mounted, running or left in TMPDIR.
# Also: `layerfs run --help` and man/layerfs-run.1 name the same options.
. "$(dirname "$0")/runlib.sh"
require_root
require_layerfs

fixture_rootfs
IMG=$C/full
O=$T/out

# one_line_error WANT_RC PATTERN WHAT: the last run failed as it should
one_line_error() {
    expect_rc "$1" "$O" "$3"
    [ "$(grep -c '' "$O")" = 1 ] || fail "$3: not one line: $(cat "$O")"
    grep -q "^layerfs run: .*$2" "$O" || fail "$3: message '$(cat "$O")' does not match '$2'"
}

check "usage errors: one line, exit status 125"
lrun "$O" -- /bin/true;                         one_line_error 125 "no lower layers" "no lowers"
lrun "$O" "$IMG";                               one_line_error 125 "no '--' before the command" "no --"
lrun "$O" "$IMG" --;                            one_line_error 125 "no command given" "no command"
lrun "$O" --net bogus "$IMG" -- /bin/true;      one_line_error 125 "--net 'bogus': none or host" "--net bogus"
lrun "$O" --frobnicate "$IMG" -- /bin/true;     one_line_error 125 "unknown option '--frobnicate'" "unknown option"
lrun "$O" --backend;                            one_line_error 125 "'--backend' needs an argument" "missing argument"
lrun "$O" "$T/none" -- /bin/true;               one_line_error 125 "lower '$T/none': No such file or directory" "missing lower"
lrun "$O" "$IMG" "$IMG/etc/passwd" -- /bin/true; one_line_error 125 "upper .*Not a directory" "upper not a dir"
lrun "$O" --bind "$T/none:/x" "$IMG" -- /bin/true; one_line_error 125 "--bind: source '$T/none'" "missing bind source"
lrun "$O" --bind "$T" "$IMG" -- /bin/true;      one_line_error 125 "expected SRC:DST" "bad --bind"
lrun "$O" --user root "$IMG" -- /bin/true;      one_line_error 125 "expected numeric UID" "--user root"
lrun "$O" --cwd /nonexistent "$IMG" -- /bin/true; one_line_error 125 "--cwd '/nonexistent': No such file" "--cwd"
lrun "$O" --map-root --subids "$IMG" -- /bin/true; one_line_error 125 "exclude each other" "--map-root --subids"
assert_clean "usage errors"

check "a command missing from the image: 127; not executable: 126"
lrun "$O" "$IMG" -- no-such-command
one_line_error 127 "'no-such-command': command not found in the image" "missing command"
lrun "$O" --backend fuse "$IMG" -- /usr/bin/no-such
one_line_error 127 "'/usr/bin/no-such': command not found in the image" "missing command by path"
lrun "$O" "$IMG" -- /etc/passwd
one_line_error 126 "cannot run '/etc/passwd': Permission denied" "not executable"
assert_clean "missing command"

check "/dev/fuse missing (a mount namespace with an empty /dev): how to fix it"
RC=0
TMPDIR=$RT timeout 60 unshare -m sh -c 'mount -t tmpfs none /dev && exec "$@"' sh \
    "$LAYERFS" run "${RUNTAG[@]}" --backend fuse "$IMG" -- /bin/true </dev/null >"$O" 2>&1 || RC=$?
one_line_error 125 "/dev/fuse is missing: No such file or directory (load the module: modprobe fuse" "no /dev/fuse"
assert_clean "no /dev/fuse"

make_user layerfs-run-err
AS_USER=$RUID AS_GROUP=$RGID
USERNS_OK=1
if ! setpriv --reuid="$RUID" --regid="$RGID" --init-groups -- timeout 10 unshare -Ur true 2>"$T/unshare.err"; then
    # the rootless error checks need user namespaces to work at all
    note "NOT CHECKED (no user namespaces for a user here): the rootless errors: $(cat "$T/unshare.err")"
    USERNS_OK=0
fi

if [ "$USERNS_OK" = 1 ]; then
    check "no user namespaces allowed (user.max_user_namespaces=0)"
    # The limit is set to 0 in a user namespace of its own (the limit is per
    # namespace), not on the host, where other programs may need it: inside,
    # the same user as outside creates none.
    cat >"$T/userns0.py" <<'EOF'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r1, w1 = os.pipe(); r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    if libc.unshare(0x10000000) != 0:
        os._exit(99)
    os.write(w1, b"u"); os.read(r2, 1)
    open("/proc/sys/user/max_user_namespaces", "w").write("0\n")
    os.execvp(sys.argv[1], sys.argv[1:])
os.read(r1, 1)
for f in ("uid_map", "gid_map"):
    with open(f"/proc/{pid}/{f}", "w") as m:
        m.write("0 0 65536\n")
os.write(w2, b"g")
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
EOF
    RC=0
    TMPDIR=$RT timeout 60 "$PY" "$T/userns0.py" setpriv --reuid="$RUID" --regid="$RGID" --clear-groups -- \
        "$LAYERFS" run "$IMG" -- /bin/true </dev/null >"$O" 2>&1 || RC=$?
    [ "$RC" != 99 ] || skip "cannot make a user namespace to set the limit in"
    one_line_error 125 "user namespaces are disabled here (sysctl user.max_user_namespaces is 0" "max_user_namespaces=0"
    assert_clean "no user namespaces"

    check "/dev/fuse not accessible (mode 0600) to a user: how to fix it; auto falls back to kernel overlay"
    dev_fuse_mode 0600
    lrun "$O" --backend fuse "$IMG" -- /bin/true
    one_line_error 125 "/dev/fuse is not accessible to uid $RUID: Permission denied (as root: chmod 0666 /dev/fuse" "/dev/fuse 0600"
    lrun "$O" -v "$IMG" -- /bin/true
    expect_rc 0 "$O" "auto with /dev/fuse 0600"
    grep -q "backend: kernel overlay" "$O" || fail "auto did not use the kernel overlay: $(cat "$O")"
    dev_fuse_mode "$_RUN_FUSE_MODE"
    assert_clean "/dev/fuse"

    check "--subids for a user without subordinate ids"
    lrun "$O" --subids "$IMG" -- /bin/true
    one_line_error 125 "no subordinate ids for layerfs-run-err in /etc/subuid and /etc/subgid (add a range" "--subids"
    assert_clean "--subids"
fi
AS_USER="" AS_GROUP=""

check "the daemon dies under a running command: it sees errors, the launcher says so, exit non-zero"
for final in "exit 3" "exit 0"; do
    mkdir -p "$T/ready-daemon"
    bg_run "$O" "$T/ready-daemon/ready" --backend fuse --bind "$T/ready-daemon:/host" "$IMG" -- /bin/sh -c \
        "touch /host/ready; while cat /etc/debian_version >/dev/null; do sleep 0.05; done; echo command-saw-error; $final"
    d=""
    for p in $(procs_of "$RT/"); do
        tr '\0' ' ' <"/proc/$p/cmdline" | grep -q '^layerfs mount ' && d=$p
    done
    [ -n "$d" ] || fail "no layerfs daemon found for the run"
    kill -KILL "$d"
    rc=0
    bounded_wait "$LP" || rc=$?
    want=${final#exit }
    [ "$want" = 0 ] && want=1
    assert_eq "$rc" "$want" "launcher's exit status after the daemon died ($final)"
    grep -q "command-saw-error" "$O" || fail "the command did not see an error: $(cat "$O")"
    grep -qx "layerfs run: the layerfs daemon died (signal 9): the container's root is gone" "$O" ||
        fail "no message about the daemon: $(cat "$O")"
    assert_clean "daemon death ($final)"
done

check "SIGKILL to the launcher: the container, the daemon, the mount and the temp dir go"
for BE in kernel fuse; do
    bg_run "$O" "$T/ready" --backend "$BE" --bind "$T:/host" "$IMG" -- /bin/sh -c 'touch /host/ready; exec sleep 60'
    [ -n "$(procs_of "LAYERFS_RUN_TEST=$T")" ] || fail "nothing running for the launcher"
    kill -KILL "$LP"
    wait "$LP" 2>/dev/null || true
    assert_clean "SIGKILL of the launcher ($BE)"
done

check "a command that ignores SIGTERM: a second SIGTERM kills it (137)"
bg_run "$O" "$T/ready" --backend fuse --bind "$T:/host" "$IMG" -- /bin/sh -c \
    'trap "" TERM; touch /host/ready; while :; do sleep 0.05; done'
kill -TERM "$LP"
sleep 0.3
kill -0 "$LP" 2>/dev/null || fail "one SIGTERM ended a command that ignores it"
kill -TERM "$LP"
rc=0
bounded_wait "$LP" || rc=$?
assert_eq "$rc" 137 "exit status after the second SIGTERM"
assert_clean "second SIGTERM"

check "--help and man/layerfs-run.1 name the same options"
MAN=$SRCDIR/man/layerfs-run.1
[ -f "$MAN" ] || fail "$MAN missing"
"$LAYERFS" run --help >"$O"
opts_help=$(grep -oE -- '(^| )--?[a-z][a-z-]*' "$O" | tr -d ' ' | sort -u | tr '\n' ' ')
# the tag line after each .TP of the OPTIONS section
opts_man=$(awk '/^\.SH OPTIONS/ { on = 1; next } /^\.SH / { on = 0 } on && tag { print; tag = 0 } on && /^\.TP/ { tag = 1 }' "$MAN" |
    tr -d '\\' | grep -oE -- '(^| )--?[a-z][a-z-]*' | tr -d ' ' | sort -u | tr '\n' ' ')
assert_eq "$opts_man" "$opts_help" "options in the man page vs --help"

pass_test
