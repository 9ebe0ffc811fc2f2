#!/usr/bin/env bash
# Configures and builds mriscan (Release; one binary for every x86-64 CPU: kernels per instruction set, chosen at
# run time) into build/. Usage: scripts/build.sh [extra cmake args], e.g. -DMRISCAN_NATIVE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
