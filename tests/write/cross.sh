#!/bin/bash
# Cross-implementation continuity: phase 1 by one implementation, phase 2
# by the other on the same upper; KL, LK and LL compared with KK
# (cases in cross_cases.py).  (Every scenario of the other scripts also
# cross-mounts its final upper.)
. "$(dirname "$0")/lib.sh"
run_cases cross_cases.py "$@"
