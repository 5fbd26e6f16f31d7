#!/bin/bash
# Whiteouts, opaque directories, ENOTEMPTY; layerfs against kernel overlay
# (cases in whiteout_cases.py, runner scenario.py).
. "$(dirname "$0")/lib.sh"
run_cases whiteout_cases.py "$@"
