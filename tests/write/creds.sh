#!/bin/bash
# Credentials: files made by uid 1000 (setpriv), setgid directories, umask,
# permission checks before copy-up; layerfs against kernel overlay
# (cases in creds_cases.py).
. "$(dirname "$0")/lib.sh"
command -v setpriv >/dev/null || skip "no setpriv"
run_cases creds_cases.py "$@"
