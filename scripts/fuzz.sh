#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, clang, ASan + UBSan) and runs each for SECONDS (default 60), seeded
# from the test fixtures; prints executions and crashes per target and fails if any target crashed.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]. Crash inputs are kept under build-fuzz/crashes/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_image_decode fuzz_dicom fuzz_safetensors fuzz_request_head fuzz_multipart
  fuzz_retrain_params)
CXX=clang++ cmake -S tests/fuzz -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
/usr/bin/python3 tests/fuzz/make_seeds.py build-fuzz/seeds "${MRISCAN_SHARED:-../shared}"
failed=0
for target in "${targets[@]}"; do
  corpus="build-fuzz/corpus/$target" crashes="build-fuzz/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  log="build-fuzz/$target.log"
  if ! build-fuzz/"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$crashes/" "$corpus" "build-fuzz/seeds/$target" >"$log" 2>&1; then
    failed=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  found=$(find "$crashes" -type f | wc -l)
  echo "$target: ${seconds} s, ${execs} executions, ${found} crashes"
  [ "$found" -eq 0 ] || { failed=1; tail -40 "$log"; }
done
exit "$failed"
