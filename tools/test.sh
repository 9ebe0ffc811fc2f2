#!/usr/bin/env bash
# Sets up and runs every test: installs dependencies, builds, runs the whole ctest suite under both kernel
# selections (fast, then MRISCAN_KERNELS=ref: every op, layer, model, trainer and server test on plain loops).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
tools/build.sh
cd build
ctest --output-on-failure -j2 --timeout 900
echo "--- again with the reference kernels (MRISCAN_KERNELS=ref) ---"
MRISCAN_KERNELS=ref ctest --output-on-failure -j2 --timeout 900
