#!/bin/bash
# setattr forms, fallocate, mmap, append, truncate, xattrs (incl. escaped
# trusted.overlay.*), fsync, open-unlinked files, privilege-bit clearing;
# layerfs against kernel overlay (cases in attrs_cases.py).
. "$(dirname "$0")/lib.sh"
run_cases attrs_cases.py "$@"
