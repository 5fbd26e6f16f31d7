#!/bin/bash
# run_rootless: `layerfs run` as unprivileged users the test creates, on a
# copy of the fixture rootfs owned by the first user's ids (as a rootless
# image unpacker leaves it), once per backend (kernel overlay with
# userxattr, layerfs):
#   - with /etc/subuid and /etc/subgid entries (default --subids): the id
#     maps, id -u 0, pid 1 and ps, host name, only lo, apt-get and dpkg,
#     exit statuses, SIGTERM reaching the command, files made inside owned
#     by the caller (and by its subordinate ids) outside, a later
#     `layerfs mount` showing the writes, the daemon running as the caller;
#   - --map-root: only the caller mapped; --user of another id refused;
#   - a user without entries gets --map-root by default.
# /dev/fuse is made 0666 for the test and given its mode back at exit.
. "$(dirname "$0")/runlib.sh"
require_root
require_layerfs
command -v newuidmap >/dev/null || skip "newuidmap missing (package uidmap)"

fixture_rootfs
SUB=600000
make_user layerfs-run-plain
PLAIN_UID=$RUID PLAIN_GID=$RGID
make_user layerfs-run-sub "$SUB"
SUB_USER=layerfs-run-sub
dev_fuse_mode 0666
if ! setpriv --reuid="$RUID" --regid="$RGID" --init-groups -- timeout 10 unshare -Ur true 2>"$T/unshare.err"; then
    skip "an unprivileged user cannot create a user namespace here: $(cat "$T/unshare.err")"
fi

check "a copy of the rootfs owned by the user's ids (0 -> $RUID, N -> $SUB+N-1)"
IMG=$T/img
cp -a "$C/full" "$IMG"
"$PY" - "$IMG" "$RUID" "$RGID" "$SUB" <<'EOF'
import os, stat, sys
top, uid, gid, sub = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def shift(i, base):
    return base if i == 0 else sub + i - 1
for d, dirs, files in os.walk(top):
    # a symlink to a directory is listed in dirs but not walked into
    links = [n for n in dirs if os.path.islink(os.path.join(d, n))]
    for p in [d] + [os.path.join(d, n) for n in files + links]:
        st = os.lstat(p)
        os.lchown(p, shift(st.st_uid, uid), shift(st.st_gid, gid))
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(p, stat.S_IMODE(st.st_mode))  # chown cleared set-id bits
EOF
TOOLS=$T/tools
tools_layer "$TOOLS" "$IMG"
chown -R "$RUID:$RGID" "$TOOLS"
LOWERS=$TOOLS:$IMG
O=$T/out
AS_USER=$RUID AS_GROUP=$RGID

daemon_uid() { # uid (outside) of the layerfs daemon of a run in progress
    local p
    for p in $(procs_of "$RT/"); do
        if tr '\0' ' ' <"/proc/$p/cmdline" | grep -q '^layerfs mount '; then
            awk '/^Uid:/ { print $2 }' "/proc/$p/status"
            return
        fi
    done
}

for BE in kernel fuse; do
    R=(--backend "$BE")

    check "[$BE] subordinate ids by default: the id maps, id -u 0"
    lrun "$O" "${R[@]}" "$LOWERS" -- /bin/sh -c 'cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g'
    expect_rc 0 "$O" "id maps"
    assert_eq "$(awk '{ print $1 "," $2 "," $3 }' "$O" | tr '\n' ' ')" \
        "0,$RUID,1 1,$SUB,65536 0,$RGID,1 1,$SUB,65536 0,, 0,, " "uid_map, gid_map, id"
    assert_clean "id maps"

    check "[$BE] pid 1 is the init, ps sees only the container; hostname; only lo"
    lrun "$O" "${R[@]}" --hostname rl-$BE "$LOWERS" -- /bin/sh -c \
        'ps -e -o pid=,comm= >/tmp/ps; awk "{ printf \"%s/%s \", \$1, \$2 }" /tmp/ps; echo;
        cat /proc/sys/kernel/hostname; ip -o link | cut -d" " -f2'
    expect_rc 0 "$O" "ps"
    assert_eq "$(tr '\n' '|' <"$O")" "1/layerfs 2/sh 3/ps |rl-$BE|lo:|" "ps, hostname, interfaces"

    check "[$BE] apt-get --version and dpkg -l"
    lrun "$O" "${R[@]}" "$LOWERS" -- /bin/sh -c 'apt-get --version | head -n1; dpkg -l | grep -c "^ii"'
    expect_rc 0 "$O" "apt-get/dpkg"
    grep -q '^apt [0-9]' "$O" || fail "apt-get --version: $(cat "$O")"
    [ "$(tail -n1 "$O")" -gt 50 ] || fail "dpkg -l: $(cat "$O")"

    check "[$BE] exit statuses 0, 1, 137"
    for pair in "0:exit 0" "1:exit 1" "137:kill -9 \$\$"; do
        lrun "$O" "${R[@]}" "$LOWERS" -- /bin/sh -c "${pair#*:}"
        expect_rc "${pair%%:*}" "$O" "sh -c '${pair#*:}'"
    done
    assert_clean "exit statuses"

    check "[$BE] SIGTERM to the launcher reaches the command; the daemon runs as the caller"
    READY=$T/ready-$BE
    mkdir -p "$READY"
    chown "$RUID:$RGID" "$READY"
    bg_run "$O" "$READY/ready" "${R[@]}" --bind "$READY:/host" "$LOWERS" -- /bin/sh -c \
        'trap "echo got-term; exit 42" TERM; touch /host/ready; while :; do sleep 0.05; done'
    if [ "$BE" = fuse ]; then
        assert_eq "$(daemon_uid)" "$RUID" "uid of the layerfs daemon outside"
    fi
    kill -TERM "$LP"
    rc=0
    bounded_wait "$LP" || rc=$?
    assert_eq "$rc:$(cat "$O")" "42:got-term" "exit status and output after SIGTERM"
    assert_clean "SIGTERM"

    check "[$BE] files made inside belong to the caller (and its subordinate ids) outside"
    # the default workdir is the upper's sibling: the parent is the user's
    UP=$T/c-$BE/up M=$T/m-$BE
    mkdir -p "$UP" "$M"
    chown "$RUID:$RGID" "$UP" "$T/c-$BE"
    lrun "$O" "${R[@]}" "$LOWERS" "$UP" -- /bin/sh -c \
        'echo made-inside >/root/new; echo o >/home/other; chown 100:42 /home/other; rm /etc/issue; ls -n /home/other'
    expect_rc 0 "$O" "writes"
    assert_eq "$(stat -c %u:%g "$UP/root/new")" "$RUID:$RGID" "owner of /root/new outside"
    assert_eq "$(stat -c %u:%g "$UP/home/other")" "$((SUB + 99)):$((SUB + 41))" "owner of /home/other outside"
    assert_eq "$(awk '{ print $3 ":" $4 }' "$O")" "100:42" "owner of /home/other inside"
    assert_clean "writes"

    check "[$BE] a later layerfs mount of the stack shows the writes"
    mount_layerfs "$LOWERS" "$UP" "$M" -o userxattr
    assert_eq "$(cat "$M/root/new")" made-inside "/root/new through layerfs mount"
    [ ! -e "$M/etc/issue" ] || fail "/etc/issue deleted inside is still there through layerfs mount"
    umount_layerfs "$M"

    check "[$BE] --map-root: only the caller is mapped; --user 100 is refused"
    lrun "$O" "${R[@]}" --map-root "$LOWERS" -- /bin/sh -c 'cat /proc/self/uid_map; id -u'
    expect_rc 0 "$O" "--map-root"
    assert_eq "$(awk '{ print $1 "," $2 "," $3 }' "$O" | tr '\n' ' ')" "0,$RUID,1 0,, " "uid_map with --map-root"
    lrun "$O" "${R[@]}" --map-root --user 100 "$LOWERS" -- /bin/true
    expect_rc 125 "$O" "--map-root --user 100"
    grep -q "not mapped in the user namespace" "$O" || fail "--user 100 with --map-root: $(cat "$O")"
    lrun "$O" "${R[@]}" --user 100:42 "$LOWERS" -- /bin/sh -c 'id -u; id -g'
    expect_rc 0 "$O" "--user 100:42"
    assert_eq "$(tr '\n' ' ' <"$O")" "100 42 " "--user 100:42 with subordinate ids"
    assert_clean "--map-root"

    check "[$BE] --net host: the host's interfaces, /sys read-only"
    lrun "$O" "${R[@]}" --net host "$LOWERS" -- /bin/sh -c \
        'ip -o link | wc -l; awk "\$2 == \"/sys\" { print substr(\$4, 1, 2) }" /proc/mounts'
    expect_rc 0 "$O" "--net host"
    [ "$(head -n1 "$O")" -gt 1 ] || fail "--net host: $(cat "$O")"
    assert_eq "$(tail -n1 "$O")" ro "/sys with --net host"
    assert_clean "--net host"
done

check "subordinate ids but no newuidmap in PATH: only the caller is mapped (said with -v)"
RC=0
TMPDIR=$RT timeout 60 setpriv --reuid="$RUID" --regid="$RGID" --init-groups -- env PATH=/nonexistent \
    "$LAYERFS" run -v "${RUNTAG[@]}" "$LOWERS" -- /bin/cat /proc/self/uid_map </dev/null >"$O" 2>&1 || RC=$?
expect_rc 0 "$O" "no newuidmap"
grep -q "no newuidmap/newgidmap (package uidmap): only the caller is mapped" "$O" || fail "no note: $(cat "$O")"
assert_eq "$(grep -v '^layerfs run:' "$O" | awk '{ print $1 "," $2 "," $3 }')" "0,$RUID,1" "uid_map without newuidmap"
assert_clean "no newuidmap"

check "a user without subordinate ids gets --map-root by default"
AS_USER=$PLAIN_UID AS_GROUP=$PLAIN_GID
lrun "$O" "$C/full" -- /bin/sh -c 'cat /proc/self/uid_map; id -u; echo x >/tmp/x && cat /tmp/x'
expect_rc 0 "$O" "plain user"
assert_eq "$(awk '{ print $1 "," $2 "," $3 }' "$O" | tr '\n' ' ')" "0,$PLAIN_UID,1 0,, x,, " "plain user"
lrun "$O" --subids "$C/full" -- /bin/true
expect_rc 125 "$O" "--subids without entries"
grep -q "no subordinate ids for layerfs-run-plain in /etc/subuid" "$O" || fail "--subids without entries: $(cat "$O")"
assert_clean "plain user"

pass_test
