#!/usr/bin/env bash
# Makes sure the native build tools of the transform crate are here: CMake and NASM, which the
# turbojpeg crate uses to build libjpeg-turbo (its SIMD code is NASM). Installs them with apt-get
# where it can (as root, or with sudo), else says what to install and fails.
#
#   ./scripts/native-tools.sh
set -euo pipefail

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v nasm >/dev/null 2>&1 || missing+=(nasm)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
((${#missing[@]})) || exit 0

if command -v apt-get >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo)
    else
        sudo=(none)
    fi
    if [[ ${sudo[*]-} != none ]]; then
        echo "installing ${missing[*]} (apt-get)"
        "${sudo[@]}" apt-get update -q
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
        exit 0
    fi
fi
echo "missing: ${missing[*]}. The transform crate builds libjpeg-turbo with them;" \
    "install them (Debian/Ubuntu: apt-get install ${missing[*]}; macOS: brew install cmake nasm)." >&2
exit 1
