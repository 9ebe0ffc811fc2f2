#!/usr/bin/env bash
# Sets up and runs every test: installs dependencies, builds, runs ctest under both kernel selections
# (fast, then MRISCAN_KERNELS=ref).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
tools/build.sh
cd build
ctest --output-on-failure -j2 --timeout 900
echo "--- again with the reference kernels (MRISCAN_KERNELS=ref), kernel and model tests only ---"
MRISCAN_KERNELS=ref ctest --output-on-failure -j2 --timeout 900 -R "Kernel|Grad|Golden|Layer|MobileNet"
