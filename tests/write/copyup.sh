#!/bin/bash
# Copy-up triggers and what a copy-up keeps, layerfs against kernel overlay
# (cases in copyup_cases.py, runner scenario.py).
. "$(dirname "$0")/lib.sh"
run_cases copyup_cases.py "$@"
