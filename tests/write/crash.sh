#!/bin/bash
# Crash consistency: kill -9 the daemon in the middle of copying up a
# 512 MiB file; after a lazy unmount and a remount the file is the old or
# the complete version and WORKDIR/work is empty.
. "$(dirname "$0")/lib.sh"
avail=$(df -Pk /tmp | awk 'NR == 2 { print $4 }')
[ "${avail:-0}" -gt $((3 * 1024 * 1024)) ] || skip "needs 3 GiB free in /tmp"
command -v pgrep >/dev/null || skip "no pgrep"
run_py "$W_DIR/crash.py" --tmp "$T"
rc=$?
[ "$rc" = 0 ] || exit 1
