#!/usr/bin/env bash
# Sets up and runs every test: installs dependencies, builds, runs the whole ctest suite under both kernel
# selections (fast, then MRISCAN_KERNELS=ref: every op, layer, model, trainer and server test on plain loops),
# then the whole suite again built with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/, any report
# fails), then every libFuzzer target for MRISCAN_FUZZ_SECONDS (default 60) each (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j2 --timeout 900
echo "--- again with the reference kernels (MRISCAN_KERNELS=ref) ---"
# Less the tests that name their kernel tables themselves (every kernel set against the reference, the objects of
# the sets, the same under QEMU): they would run exactly what they ran above.
MRISCAN_KERNELS=ref ctest --output-on-failure -j2 --timeout 900 \
  -E '^(Sweep/(Kernel|FusedKernel|FusedBatchNormReLU6)|KernelThreads\.|EmulatedCpu\.|KernelSetObjects$)'
cd ..
echo "--- sanitizers: the whole suite built with -fsanitize=address,undefined ---"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMRISCAN_SANITIZE=ON -DMRISCAN_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$(nproc)"
suppressions="$PWD/tests/lsan_suppressions.txt"  # an absolute path: ctest runs each test in its own folder
(cd build-asan && ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS="suppressions=$suppressions" ctest --output-on-failure -j2 --timeout 1800)
echo "--- fuzzing: every libFuzzer target for ${MRISCAN_FUZZ_SECONDS:-60} s ---"
scripts/fuzz.sh "${MRISCAN_FUZZ_SECONDS:-60}"
