#!/bin/bash
# rename/renameat2, redirects, opaque targets, redirect_dir=off; layerfs
# against kernel overlay (cases in rename_cases.py, runner scenario.py).
. "$(dirname "$0")/lib.sh"
run_cases rename_cases.py "$@"
