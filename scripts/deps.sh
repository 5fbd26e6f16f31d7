#!/usr/bin/env bash
# Install the Debian 12 packages layerfs needs to build and test.
# Idempotent and quick: it asks dpkg first and only calls apt-get when
# something is missing. Run as root (or with sudo available).
set -euo pipefail

BUILD_PKGS=(
    gcc pkg-config meson ninja-build
    libfuse3-dev fuse3
    libxxhash-dev liblz4-dev libzstd-dev libarchive-dev libssl-dev
    libcmocka-dev libjansson-dev
)
TEST_PKGS=(
    attr acl libcap2-bin fuse-overlayfs util-linux zstd xfsprogs procps psmisc coreutils
    python3 passwd fio uidmap bubblewrap iproute2
    skopeo umoci podman runc conmon buildah
)
ALL_PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")

missing=()
for pkg in "${ALL_PKGS[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "deps.sh: installing: ${missing[*]}"

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "deps.sh: missing packages (${missing[*]}) and not root; run as root" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
