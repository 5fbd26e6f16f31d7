# shellcheck shell=bash
# Helpers for the `layerfs run` tests, on top of tests/integration/lib.sh:
#
#   tools_layer DIR        a small layer with the host's ps and ip (the
#                          minbase fixture has neither) and the libraries
#                          the image lacks
#   lrun OUT ARGS...       run `layerfs run ${RUNTAG[@]} ARGS` bounded, stdin
#                          closed, TMPDIR=$RT, as $AS_USER when set; exit
#                          status in $RC, stdout+stderr in OUT
#   bg_run OUT READY ARGS  the same in the background, until READY exists
#   assert_clean WHAT      nothing mounted under $T, no launcher/daemon/
#                          container process left, $RT empty
#   make_user NAME [START] a system user for the rootless tests (with 65536
#                          subordinate ids from START), removed at exit
. "$(dirname "$0")/../integration/lib.sh"

RUN_TIMEOUT=${RUN_TIMEOUT:-60}
RT=$T/runtmp # TMPDIR of every run: its temp dirs must be gone afterwards
mkdir -p "$RT"
chmod 1777 "$RT"

tools_layer() {
    local d=$1 img=$2 b lib real
    mkdir -p "$d/usr/local/bin"
    for b in ps ip; do
        cp -L "$(command -v "$b")" "$d/usr/local/bin/$b" || fail "cannot copy the host's $b"
        for lib in $(ldd "$(command -v "$b")" | awk '/=> \//{ print $3 }'); do
            # the soname, in the real directory (/lib is a symlink in the image)
            real=$(realpath "$(dirname "$lib")")/$(basename "$lib")
            [ -e "$img$real" ] && continue
            mkdir -p "$d$(dirname "$real")"
            cp -L "$lib" "$d$real"
        done
    done
}

RC=0
lrun() {
    local out=$1
    shift
    RC=0
    TMPDIR=$RT timeout -k 5 "$RUN_TIMEOUT" ${AS_USER:+setpriv --reuid="$AS_USER" --regid="$AS_GROUP" --init-groups --} \
        "$LAYERFS" run "${RUNTAG[@]}" "$@" </dev/null >"$out" 2>&1 || RC=$?
}

# expect_rc WANT OUT WHAT
expect_rc() {
    [ "$RC" = "$1" ] || { sed 's/^/   | /' "$2" | head -40; fail "$3: exit status $RC, expected $1"; }
}

# Every run carries $T in its argv and in the command's environment
# (--env), so that whatever a run leaves running can be found.
RUNTAG=(--env "LAYERFS_RUN_TEST=$T")

# procs_of STRING: pids of processes with STRING in their argv or
# environment (but this shell)
procs_of() {
    local p
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = $$ ] && continue
        if cat "/proc/$p/cmdline" "/proc/$p/environ" 2>/dev/null | tr '\0' '\n' | grep -q -F -- "$1"; then
            echo "$p"
        fi
    done
}

assert_clean() {
    local what=$1 left i
    # the supervisor ends before the launcher returns; its children with it
    for ((i = 0; i < 50; i++)); do
        left=$(procs_of "LAYERFS_RUN_TEST=$T"; procs_of "$RT/")
        [ -z "$left" ] && break
        sleep 0.1
    done
    [ -z "$left" ] || fail "$what: processes left: $(for p in $left; do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done)"
    if grep -F -- "$RT/" /proc/mounts >/dev/null; then
        fail "$what: still mounted: $(grep -F -- "$RT/" /proc/mounts)"
    fi
    left=$(ls -A "$RT")
    [ -z "$left" ] || fail "$what: left in the temp dir: $left"
}

# bounded_wait PID [SECS]: wait for a background launcher; SIGKILL (and
# status 255) when it takes longer than SECS
bounded_wait() {
    local p=$1 secs=${2:-30} i
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$p" 2>/dev/null; then
        kill -KILL "$p"
        wait "$p" 2>/dev/null
        return 255
    fi
    wait "$p"
}

# bg_run OUT READY ARGS...: `layerfs run ${RUNTAG[@]} ARGS` in the
# background (as $AS_USER when set; not under timeout(1), which would
# signal the whole process group), its pid in LP; returns once the file
# READY exists (the command makes it through a --bind).
LP=""
bg_run() {
    local out=$1 ready=$2 i
    shift 2
    rm -f "$ready"
    TMPDIR=$RT ${AS_USER:+setpriv --reuid="$AS_USER" --regid="$AS_GROUP" --init-groups --} \
        "$LAYERFS" run "${RUNTAG[@]}" "$@" </dev/null >"$out" 2>&1 &
    LP=$!
    track_pid "$LP"
    for ((i = 0; i < 200; i++)); do
        [ -e "$ready" ] && return 0
        kill -0 "$LP" 2>/dev/null || break
        sleep 0.05
    done
    fail "the command did not start: $(cat "$out")"
}

_RUN_USERS=()
_RUN_FUSE_MODE=""
_run_cleanup() {
    local rc=$? u
    _IN_CLEANUP=1
    set +e
    [ -n "$_RUN_FUSE_MODE" ] && chmod "$_RUN_FUSE_MODE" /dev/fuse
    for u in "${_RUN_USERS[@]}"; do
        # processes of the user first (a failed test may leave some)
        pkill -KILL -u "$u" 2>/dev/null
        sleep 0.1
        # userdel drops its /etc/subuid and /etc/subgid lines too (with
        # shadow's locking: other tests may edit those files meanwhile)
        userdel "$u" >/dev/null 2>&1
    done
    (exit "$rc")
    _cleanup
}
trap _run_cleanup EXIT

# make_user NAME [SUBID_START]: sets AS_USER AS_GROUP RUID RGID
make_user() {
    local u=$1 start=${2:-}
    if id "$u" >/dev/null 2>&1; then
        userdel "$u" >/dev/null 2>&1 || true
    fi
    useradd --system --no-create-home --shell /bin/sh "$u" || skip "cannot create user $u"
    _RUN_USERS+=("$u")
    RUID=$(id -u "$u") RGID=$(id -g "$u")
    if [ -n "$start" ]; then
        usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$u" ||
            fail "cannot add subordinate ids for $u"
    fi
}

# dev_fuse_mode MODE: set /dev/fuse's mode, restored at exit
dev_fuse_mode() {
    [ -n "$_RUN_FUSE_MODE" ] || _RUN_FUSE_MODE=$(stat -c %a /dev/fuse)
    chmod "$1" /dev/fuse
}
