#!/bin/bash
# run_root: `layerfs run` as root on the fixture Debian rootfs (with a
# small top layer holding the host's ps and ip): auto picks kernel overlay,
# and layerfs where the kernel refuses (510 layers); then once per backend
# (kernel overlay, layerfs): pid 1 is the init and ps sees only the container; the
# host name; id; only lo, up; apt-get and dpkg run; exit statuses 0, 1, 137;
# SIGTERM and SIGINT to the launcher reach the command; the environment,
# capabilities, no_new_privs, closed fds, /dev, binds, tmpfs, --cwd; the
# daemon cannot be killed from inside; writes land in the upper and a later
# `layerfs mount` shows them; the throw-away upper goes (or stays with
# --keep); after every run nothing is mounted, running or left in TMPDIR.
. "$(dirname "$0")/runlib.sh"
require_root
require_layerfs

fixture_rootfs
IMG=$C/full
TOOLS=$T/tools
tools_layer "$TOOLS" "$IMG"
LOWERS=$TOOLS:$IMG
O=$T/out

check "auto backend: kernel overlay when it mounts (said with -v)"
lrun "$O" -v "$LOWERS" -- /bin/true
expect_rc 0 "$O" "run -v /bin/true"
grep -q "backend: kernel overlay" "$O" || fail "-v does not say the kernel overlay was used: $(cat "$O")"
assert_clean "auto run"

check "auto backend: layerfs when kernel overlay refuses (510 layers; the kernel stops at 500)"
mkdir -p "$T/many"
spec=""
for ((i = 0; i < 510; i++)); do mkdir "$T/many/$i"; spec+="$T/many/$i:"; done
echo top >"$T/many/0/on-top"
lrun "$O" -v "$spec$IMG" -- /bin/sh -c 'cat /on-top /etc/debian_version'
expect_rc 0 "$O" "auto with 510 layers"
grep -q "kernel overlay does not mount: .*too many lower" "$O" || fail "-v does not say why not kernel overlay: $(cat "$O")"
grep -q "backend: layerfs (FUSE)" "$O" || fail "-v does not say layerfs was used: $(cat "$O")"
assert_eq "$(grep -v '^layerfs run:' "$O" | tr '\n' ' ')" "top $(cat "$IMG/etc/debian_version") " "contents with 510 layers"
lrun "$O" --backend kernel "$spec$IMG" -- /bin/true
expect_rc 125 "$O" "--backend kernel with 510 layers"
grep -qx "layerfs run: kernel overlay does not mount here: .*too many lower.* (try --backend fuse)" "$O" ||
    fail "--backend kernel with 510 layers: $(cat "$O")"
rm -rf "$T/many"
assert_clean "510 layers"

for BE in kernel fuse; do
    case $BE in kernel) FSTYPE=overlay ;; fuse) FSTYPE=fuse.layerfs ;; esac
    R=(--backend "$BE")

    check "[$BE] pid 1 is the init; ps sees only the container"
    lrun "$O" "${R[@]}" "$LOWERS" -- /bin/sh -c 'echo "self=$$"; ps -e -o pid=,comm='
    expect_rc 0 "$O" "ps"
    note "$(tr '\n' ' ' <"$O")"
    grep -qx 'self=2' "$O" || fail "the command is not pid 2 (the init's child): $(cat "$O")"
    assert_eq "$(grep -v '^self=' "$O" | awk '{ print $1 "/" $2 }' | tr '\n' ' ')" "1/layerfs 2/sh 3/ps " "ps -e inside"
    assert_clean "ps"

    check "[$BE] the init reaps orphans (no zombie is left)"
    lrun "$O" "${R[@]}" "$LOWERS" -- /bin/sh -c '(sleep 0.1 &); sleep 0.6; ps -e -o pid=,stat=,comm= >/tmp/ps; cat /tmp/ps'
    expect_rc 0 "$O" "orphans"
    if grep -q ' Z' "$O"; then fail "zombies in the container: $(cat "$O")"; fi
    assert_eq "$(awk '{ print ($1 == 1 ? "1/" : "") $3 }' "$O" | tr '\n' ' ')" "1/layerfs sh ps " "processes after the orphan ended"

    check "[$BE] --hostname; id -u is 0; / is the stack ($FSTYPE)"
    lrun "$O" "${R[@]}" --hostname box-$BE "$LOWERS" -- /bin/sh -c \
        'cat /proc/sys/kernel/hostname; id -u; awk "\$2 == \"/\" { print \$3 }" /proc/mounts'
    expect_rc 0 "$O" "hostname"
    assert_eq "$(tr '\n' ' ' <"$O")" "box-$BE 0 $FSTYPE " "hostname, id -u, root fs type"
    [ "$(hostname)" != "box-$BE" ] || fail "the host's name changed"

    check "[$BE] ip link shows only lo, up"
    lrun "$O" "${R[@]}" "$LOWERS" -- ip -o link
    expect_rc 0 "$O" "ip link"
    assert_eq "$(awk '{ print $2 }' "$O" | tr '\n' ' ')" "lo: " "interfaces"
    grep -q '<LOOPBACK,UP,LOWER_UP>' "$O" || fail "lo is not up: $(cat "$O")"
    lrun "$O" "${R[@]}" --net host "$LOWERS" -- ip -o link
    [ "$(grep -c '' "$O")" -gt 1 ] || fail "--net host: only $(cat "$O")"

    check "[$BE] apt-get --version and dpkg -l"
    lrun "$O" "${R[@]}" "$LOWERS" -- /bin/sh -c 'apt-get --version | head -n1; dpkg -l | grep -c "^ii"'
    expect_rc 0 "$O" "apt-get/dpkg"
    grep -q '^apt [0-9]' "$O" || fail "apt-get --version: $(cat "$O")"
    n=$(tail -n1 "$O")
    [ "$n" -gt 50 ] || fail "dpkg -l lists $n packages"

    check "[$BE] exit statuses 0, 1, 137 (kill -9 \$\$)"
    for pair in "0:exit 0" "1:exit 1" "137:kill -9 \$\$" "143:kill -TERM \$\$"; do
        lrun "$O" "${R[@]}" "$LOWERS" -- /bin/sh -c "${pair#*:}"
        expect_rc "${pair%%:*}" "$O" "sh -c '${pair#*:}'"
    done
    assert_clean "exit statuses"

    check "[$BE] SIGTERM to the launcher reaches the command (and its trap)"
    bg_run "$O" "$T/ready" "${R[@]}" --bind "$T:/host" "$LOWERS" -- /bin/sh -c \
        'trap "echo got-term; exit 42" TERM; touch /host/ready; while :; do sleep 0.05; done'
    kill -TERM "$LP"
    rc=0
    bounded_wait "$LP" || rc=$?
    assert_eq "$rc:$(cat "$O")" "42:got-term" "exit status and output after SIGTERM"
    assert_clean "SIGTERM"

    check "[$BE] SIGINT to the launcher: the command dies of it (130)"
    bg_run "$O" "$T/ready" "${R[@]}" --bind "$T:/host" "$LOWERS" -- /bin/sh -c 'touch /host/ready; exec sleep 60'
    sleep 0.1
    kill -INT "$LP"
    rc=0
    bounded_wait "$LP" || rc=$?
    assert_eq "$rc" 130 "exit status after SIGINT"
    assert_clean "SIGINT"

    check "[$BE] environment: PATH, TERM and --env only"
    RC=0
    TERM=xterm-test FOO=from-caller SECRET=no TMPDIR=$RT timeout 60 "$LAYERFS" run "${R[@]}" \
        --env A=1 --env FOO --env UNSET_VAR "$LOWERS" -- /usr/bin/env </dev/null >"$O" 2>&1 || RC=$?
    expect_rc 0 "$O" "env"
    assert_eq "$(sort "$O" | tr '\n' ' ')" \
        "A=1 FOO=from-caller PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=xterm-test " "env"

    check "[$BE] capabilities (podman's default set), no_new_privs, fds beyond 2 closed"
    RC=0
    TMPDIR=$RT timeout 60 "$LAYERFS" run "${R[@]}" "$LOWERS" -- /bin/sh -c \
        'grep -E "^(CapBnd|CapEff|CapInh|CapAmb|NoNewPrivs)" /proc/self/status; ls /proc/self/fd' \
        </dev/null 7</etc/hostname 8>"$T/fd8" >"$O" 2>&1 || RC=$?
    expect_rc 0 "$O" "caps"
    assert_eq "$(awk '{ print $1 $2 }' "$O" | tr '\n' ' ')" \
        "CapInh:0000000000000000 CapEff:00000000800405fb CapBnd:00000000800405fb CapAmb:0000000000000000 NoNewPrivs:1 0 1 2 3 " \
        "capabilities and fds"

    check "[$BE] /dev, /proc, /sys, /tmp"
    lrun "$O" "${R[@]}" "$LOWERS" -- /bin/sh -c 'ls /dev | tr "\n" " "; echo;
        echo x >/dev/null && head -c 4 /dev/zero | od -An -tx1; head -c 8 /dev/urandom | wc -c;
        awk "\$2 ~ /^\/(dev\/pts|dev\/shm|sys|tmp|proc)\$/ { print \$2, \$3, substr(\$4, 1, 2) }" /proc/mounts;
        echo t >/sys/kernel/x 2>&1 || echo sys-ro; test -c /dev/pts/ptmx && echo ptmx'
    expect_rc 0 "$O" "/dev"
    assert_eq "$(head -n1 "$O")" "core fd full null ptmx pts random shm stderr stdin stdout tty urandom zero " "ls /dev"
    grep -qx ' 00 00 00 00' "$O" || fail "/dev/zero: $(cat "$O")"
    for want in "/proc proc rw" "/dev/pts devpts rw" "/dev/shm tmpfs rw" "/sys sysfs ro" "/tmp tmpfs rw" "sys-ro" "ptmx"; do
        grep -qxF "$want" "$O" || fail "missing '$want' in: $(cat "$O")"
    done

    check "[$BE] the daemon cannot be killed from inside (kill -9 -1)"
    lrun "$O" "${R[@]}" "$LOWERS" -- /bin/sh -c 'kill -9 -1 2>/dev/null; sleep 0.3; cat /etc/debian_version'
    expect_rc 0 "$O" "kill -9 -1"
    assert_eq "$(cat "$O")" "$(cat "$IMG/etc/debian_version")" "reading after kill -9 -1"

    check "[$BE] --bind (rw, ro), --tmpfs, --cwd"
    mkdir -p "$T/bsrc"
    echo hostfile >"$T/bsrc/f"
    lrun "$O" "${R[@]}" --bind "$T/bsrc:/mnt/rw" --bind "$T/bsrc:/mnt/ro:ro" --tmpfs /scratch --cwd /mnt/rw \
        "$LOWERS" -- /bin/sh -c 'cat f; echo in >new; echo no >/mnt/ro/x || echo ro-refused;
            awk "\$2 == \"/scratch\" { print \$3 }" /proc/mounts; pwd'
    expect_rc 0 "$O" "binds"
    assert_eq "$(grep -v 'Read-only' "$O" | tr '\n' ' ')" "hostfile ro-refused tmpfs /mnt/rw " "binds"
    assert_eq "$(cat "$T/bsrc/new")" in "write through the rw bind"
    [ ! -e "$T/bsrc/x" ] || fail "the ro bind was written"
    rm -rf "$T/bsrc"

    check "[$BE] a symlink in the image cannot lead a --bind onto the host"
    EVIL=$T/evil-layer HOSTDIR=$T/hostdir-$BE PLANT=layerfs-run-planted-$$
    mkdir -p "$EVIL" "$HOSTDIR" "$T/evil-up"
    echo secret >"$T/bind-src"
    # absolute, to a host directory the image does not have: refused
    ln -sfn "$HOSTDIR" "$EVIL/escape"
    # climbing above the root: stays inside it, at the image's /etc
    ln -sfn ../../../../../../../../etc "$EVIL/climb"
    lrun "$O" "${R[@]}" --bind "$T/bind-src:/escape/$PLANT" "$EVIL:$LOWERS" -- /bin/true
    expect_rc 125 "$O" "bind through a symlink to a host path"
    grep -q "cannot make '/escape/$PLANT' inside the container" "$O" || fail "bind through /escape: $(cat "$O")"
    lrun "$O" "${R[@]}" --bind "$T/bind-src:/climb/$PLANT" "$EVIL:$LOWERS" "$T/evil-up" -- cat "/etc/$PLANT"
    expect_rc 0 "$O" "bind through a climbing symlink"
    assert_eq "$(cat "$O")" secret "the bind through /climb, seen at /etc inside"
    [ -e "$T/evil-up/etc/$PLANT" ] || fail "the mount point was not made in the image's /etc (in the upper)"
    [ ! -e "/etc/$PLANT" ] && [ -z "$(ls -A "$HOSTDIR")" ] || fail "a bind target was made on the host"
    rm -rf "$EVIL" "$HOSTDIR" "$T/evil-up" "$T/.layerfs-work.evil-up"
    assert_clean "symlink bind"

    check "[$BE] writes land in the upper; a later layerfs mount shows them"
    UP=$T/up-$BE M=$T/m-$BE
    mkdir -p "$UP" "$M"
    lrun "$O" "${R[@]}" "$LOWERS" "$UP" -- /bin/sh -c 'echo made-inside >/root/new; rm /etc/issue; mkdir /srv/d; echo x >/srv/d/f'
    expect_rc 0 "$O" "writes"
    assert_eq "$(cat "$UP/root/new")" made-inside "file in the upper"
    assert_eq "$(stat -c %u:%g "$UP/root/new")" 0:0 "owner in the upper"
    assert_clean "writes"
    mount_layerfs "$LOWERS" "$UP" "$M"
    assert_eq "$(cat "$M/root/new") $(cat "$M/srv/d/f")" "made-inside x" "files through layerfs mount"
    [ ! -e "$M/etc/issue" ] || fail "/etc/issue deleted inside is still there through layerfs mount"
    umount_layerfs "$M"

    check "[$BE] the throw-away upper is removed; --keep keeps it"
    lrun "$O" "${R[@]}" "$LOWERS" -- /bin/sh -c 'echo t >/throwaway'
    expect_rc 0 "$O" "throw-away"
    assert_clean "throw-away upper"
    lrun "$O" "${R[@]}" --keep "$LOWERS" -- /bin/sh -c 'echo t >/kept'
    expect_rc 0 "$O" "--keep"
    kept=$(sed -n 's/^layerfs run: upper kept in \(.*\) (workdir .*)$/\1/p' "$O")
    [ -n "$kept" ] || fail "--keep did not print the upper: $(cat "$O")"
    assert_eq "$(cat "$kept/kept")" t "file in the kept upper"
    rm -rf "$RT"/*
    assert_clean "--keep"
done

pass_test
