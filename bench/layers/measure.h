// What mriscan_layer_bench measures with: the median of timed calls, deterministic random benchmark data, and the
// normwise relative error between a mriscan result and oneDNN's.
//
// What it is: small helpers shared by the per-layer comparisons (depthwise_case.cpp, pointwise_case.cpp,
// batchnorm_case.cpp) and the roofline's bandwidth probe. What it is not: a benchmark framework (no adaptive
// repetition counts, no statistics beyond the median and the individual runs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace mriscan::layer_bench {

struct Timing {
  double median_ms = 0.0;
  std::vector<double> runs_ms;  // every timed call, in order
};

// `warmup` untimed calls, then `repeats` timed ones; `prepare` runs (untimed) before every call, e.g. to zero a
// gradient the kernel adds into. Wall time of `call` alone (steady_clock).
Timing time_calls(int warmup, int repeats, const std::function<void()>& prepare, const std::function<void()>& call);

// n values uniform in [lo, hi), the same for the same seed on every machine and thread count (a counter hash,
// filled in parallel: the benchmark's buffers reach 10^8 floats).
std::vector<float> random_buffer(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);

// max_i |a_i - b_i| / max_i |b_i| (0 when both are all zeros; infinity when a has a non-finite value). The scale
// is the reference's largest magnitude, so elements that are sums cancelling to near zero do not inflate it.
double max_relative_error(std::span<const float> a, std::span<const float> b);

// The benchmark's tolerance for max_relative_error. Every op here is float32 sums of products, computed by the two
// libraries in different orders (blocking, threads); the longest are the batch statistics and the weight and
// batch-norm gradients, over N*H*W = 401408 rows at batch 32, where the two differ by about 2e-5 (float32
// rounding grows with the square root of the length, so larger batches differ more). A wrong kernel (a tap, a row
// or a channel missed, a wrong index) differs by far more than 1e-3.
inline constexpr double kTolerance = 1e-3;

}  // namespace mriscan::layer_bench
