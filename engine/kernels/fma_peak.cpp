// measure_fma_peak_gflops (fma_peak.h): every thread of an OpenMP team runs the table's probe on its own chains.
#include "engine/kernels/fma_peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace mriscan {
namespace {

// Enough steps that one run takes milliseconds even at AVX-512's peak (2 x 16 x 12 x 2^21 ~ 0.8 GFLOP per thread).
constexpr int64_t kSteps = int64_t(1) << 21;

double timed_run_seconds(const KernelTable& table, int threads, float& sink) {
  const auto start = std::chrono::steady_clock::now();
  float total = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  total += table.fma_probe(kSteps);
  sink += total;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

double fma_probe_flops(const KernelTable& table, int64_t steps) {
  return 2.0 * table.vector_width * kFmaProbeChains * double(steps);
}

double measure_fma_peak_gflops(const KernelTable& table, int threads, int repeats) {
  float sink = 0.0f;
  timed_run_seconds(table, threads, sink);  // warm-up: threads started, clocks up
  std::vector<double> seconds;
  for (int i = 0; i < std::max(1, repeats); ++i) seconds.push_back(timed_run_seconds(table, threads, sink));
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  // sink depends on every FMA; comparing it keeps the calls from being removed as unused.
  return sink == 0.0f ? 0.0 : fma_probe_flops(table, kSteps) * threads / median / 1e9;
}

}  // namespace mriscan
