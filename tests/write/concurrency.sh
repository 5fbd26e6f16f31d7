#!/bin/bash
# Concurrency: 8 parallel appenders to one lower file, 200 files copied up
# by 4 processes, a 5 s rename storm; no hang, no error but ENOENT races,
# and the final tree agrees with its upper (remount; kernel on that upper).
. "$(dirname "$0")/lib.sh"
run_py "$W_DIR/concurrency.py" --tmp "$T"
rc=$?
[ "$rc" = 0 ] || exit 1
