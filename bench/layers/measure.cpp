// Timing, benchmark data and the error measure of mriscan_layer_bench (measure.h).
#include "bench/layers/measure.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "engine/parallel.h"

namespace mriscan::layer_bench {

Timing time_calls(int warmup, int repeats, const std::function<void()>& prepare, const std::function<void()>& call) {
  for (int i = 0; i < warmup; ++i) {
    if (prepare) prepare();
    call();
  }
  Timing t;
  for (int i = 0; i < repeats; ++i) {
    if (prepare) prepare();
    const auto start = std::chrono::steady_clock::now();
    call();
    t.runs_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::vector<double> sorted = t.runs_ms;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  t.median_ms = n == 0 ? 0.0 : n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  return t;
}

namespace {

// SplitMix64 (Steele, Lea, Flood 2014): a well-mixed 64-bit value per counter.
uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<float> random_buffer(size_t n, uint64_t seed, float lo, float hi) {
  std::vector<float> v(n);
  const uint64_t base = splitmix64(seed);
  parallel_for_blocks(static_cast<int64_t>(n), 1 << 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const double unit = double(splitmix64(base + uint64_t(i)) >> 11) * 0x1.0p-53;  // [0, 1)
      v[i] = static_cast<float>(lo + (hi - lo) * unit);
    }
  });
  return v;
}

double max_relative_error(std::span<const float> a, std::span<const float> b) {
  double max_diff = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (!std::isfinite(a[i])) return std::numeric_limits<double>::infinity();
    max_diff = std::max(max_diff, std::abs(double(a[i]) - double(b[i])));
    max_ref = std::max(max_ref, std::abs(double(b[i])));
  }
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  return max_ref > 0.0 ? max_diff / max_ref : max_diff;
}

}  // namespace mriscan::layer_bench
