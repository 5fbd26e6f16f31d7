#!/bin/bash
# Hard links: link() of lower files, lower hard-linked pairs, upper links;
# layerfs against kernel overlay (cases in links_cases.py).
. "$(dirname "$0")/lib.sh"
run_cases links_cases.py "$@"
