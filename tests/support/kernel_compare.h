// Fast-vs-reference comparison, shared by the kernel tests (tests/engine/test_kernels_simd.cpp,
// tests/engine/test_kernels_fused.cpp).
//
// Method: the same random float inputs go to the fast kernel (float) and to the reference run in DOUBLE, so the
// measured difference is the fast kernel's own float rounding, not the sum of two kernels' rounding.
// Metric: max |fast - ref| / max(1, max |ref|). The longest reduction in these tests sums ~10^4 float terms;
// random rounding then costs about sqrt(10^4) * 6e-8 ~ 6e-6 of the result's scale, the worst case n * eps ~ 6e-4
// does not occur with random signs. kTolerance = 1e-4 sits between: a wrong tap, a missed tail lane or a lost `+=`
// produces errors of order 1e-2..1, far above it.
// Sizes: every kernel set is tested with the same sizes, so they are written around the widest vector (16 floats,
// AVX-512) in a way that also crosses the narrower ones (8 with AVX2, 4 with SSE): kChannelSweep = 1, 7, 8, 9, 15,
// 16, 17, 35 (2 x 16 + 3 = 4 x 8 + 3), 53 (3 x 16 + 5 = 6 x 8 + 5): scalar-only, tail-only, exact, one over, several
// full vectors plus a tail, for both widths. depthwise_cases, conv_cases and gemm_cases are the shape sweeps of the
// depthwise, dense conv and GEMM kernels (multiples of 16 plus or minus a few), with the kernel params each case
// stands for. for_each_fast_table runs a check on every kernel set this CPU runs.
// What it is not: a gradient check (tests/support/gradcheck.h) or a golden-value check (tests/support/golden_ops.h).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/dispatch.h"
#include "engine/kernels/params.h"

namespace mriscan::testing {

constexpr double kTolerance = 1e-4;
constexpr int kWidestVector = 16;  // floats per AVX-512 vector; 8 (AVX2) and 4 (SSE) divide it
inline const std::vector<int> kChannelSweep = {1, 7, 8, 9, 15, 16, 17, 35, 53};

// Runs check(table) on every fast table this CPU runs, lowest set first, each failure tagged with the set's name.
template <typename Check>
void for_each_fast_table(Check&& check) {
  for (const KernelTable* table : runnable_fast_kernels()) {
    SCOPED_TRACE("kernel set " + table->name);
    check(*table);
  }
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float low = -1.0f, float high = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> v(n);
  for (float& value : v) value = dist(rng);
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// max |fast - ref| / max(1, max |ref|); the sizes must match.
inline double relative_error(const std::vector<float>& fast, const std::vector<double>& ref) {
  EXPECT_EQ(fast.size(), ref.size());
  double worst = 0.0, scale = 1.0;
  for (size_t i = 0; i < ref.size() && i < fast.size(); ++i) {
    worst = std::max(worst, std::abs(double(fast[i]) - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return worst / scale;
}

// ---- shape sweeps ----------------------------------------------------------------------------------------------

struct DepthwiseCase {
  int batch, h, w, channels, kernel, stride, pad;
};

inline std::string depthwise_name(const ::testing::TestParamInfo<DepthwiseCase>& info) {
  const DepthwiseCase& c = info.param;
  return std::string("n") + std::to_string(c.batch) + "_" + std::to_string(c.h) + "x" + std::to_string(c.w) + "x" +
         std::to_string(c.channels) + "_k" + std::to_string(c.kernel) + "s" + std::to_string(c.stride) + "p" +
         std::to_string(c.pad);
}

inline std::vector<DepthwiseCase> depthwise_cases() {
  std::vector<DepthwiseCase> cases;
  for (int channels : kChannelSweep)
    for (int size : {1, 2, 3, 7, 8})
      for (int stride : {1, 2}) cases.push_back({(channels + size) % 2 ? 3 : 1, size, size, channels, 3, stride, 1});
  // Non-square, no padding, the MobileNetV2-sized maps, and a kernel size that takes the reference fallback.
  cases.push_back({3, 7, 8, kWidestVector + 1, 3, 1, 0});
  cases.push_back({1, 8, 7, 2 * kWidestVector + 3, 3, 2, 0});
  cases.push_back({1, 56, 56, 3 * kWidestVector + 5, 3, 1, 1});
  cases.push_back({3, 56, 56, kWidestVector - 1, 3, 2, 1});
  cases.push_back({1, 56, 56, 2 * kWidestVector, 3, 2, 1});
  cases.push_back({3, 7, 7, kWidestVector + 1, 5, 2, 2});
  // Rows wide enough for several register tiles of interior columns and leftovers after them.
  for (int stride : {1, 2}) {
    cases.push_back({2, 5, 23, kWidestVector + 1, 3, stride, 1});
    cases.push_back({1, 4, 19, 2 * kWidestVector, 3, stride, 0});
    cases.push_back({2, 5, 23, 2 * kWidestVector + 3, 3, stride, 1});  // more than two vectors: tiles outer
  }
  return cases;
}

inline DepthwiseParams depthwise_params(const DepthwiseCase& c) {
  DepthwiseParams p;
  p.batch = c.batch, p.in_h = c.h, p.in_w = c.w, p.channels = c.channels;
  p.kernel = c.kernel, p.stride = c.stride, p.pad = c.pad;
  p.out_h = conv_output_size(c.h, c.kernel, c.stride, c.pad);
  p.out_w = conv_output_size(c.w, c.kernel, c.stride, c.pad);
  return p;
}

struct ConvCase {
  int batch, h, w, in_c, out_c, kernel, stride, pad;
};

inline std::string conv_name(const ::testing::TestParamInfo<ConvCase>& info) {
  const ConvCase& c = info.param;
  return std::string("n") + std::to_string(c.batch) + "_" + std::to_string(c.h) + "x" + std::to_string(c.w) + "x" +
         std::to_string(c.in_c) + "_to" + std::to_string(c.out_c) + "_k" + std::to_string(c.kernel) + "s" +
         std::to_string(c.stride) + "p" + std::to_string(c.pad);
}

inline std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> cases;
  for (int out_c : kChannelSweep)
    for (int size : {1, 2, 3, 7, 8})
      for (int stride : {1, 2}) cases.push_back({(out_c + size) % 2 ? 3 : 1, size, size, 3, out_c, 3, stride, 1});
  cases.push_back({3, 56, 56, 3, 32, 3, 2, 1});              // the MobileNetV2 stem, on a smaller image
  // Rows wide enough for several register tiles of interior columns plus leftovers, with every channel split
  // the fast kernels make (two vectors, one, a tail), odd tap counts and a 5x5 kernel.
  for (int out_c : {kWidestVector, 2 * kWidestVector, 3 * kWidestVector + 5, 2 * kWidestVector + 1})
    for (int stride : {1, 2}) cases.push_back({2, 5, 31, out_c % 2 ? 4 : 3, out_c, 3, stride, 1});
  cases.push_back({1, 9, 40, 5, 2 * kWidestVector, 5, 2, 2});
  cases.push_back({1, 6, 23, 2, kWidestVector, 3, 1, 0});  // no padding: every column is interior
  cases.push_back({1, 8, 7, 1, kWidestVector + 1, 1, 1, 0});  // 1x1 kernel
  cases.push_back({1, 7, 8, 2, 2 * kWidestVector + 3, 5, 2, 2});
  return cases;
}

inline Conv2dParams conv_params(const ConvCase& c) {
  Conv2dParams p;
  p.batch = c.batch, p.in_h = c.h, p.in_w = c.w, p.in_c = c.in_c, p.out_c = c.out_c;
  p.kernel_h = p.kernel_w = c.kernel, p.stride = c.stride, p.pad = c.pad;
  p.out_h = conv_output_size(c.h, c.kernel, c.stride, c.pad);
  p.out_w = conv_output_size(c.w, c.kernel, c.stride, c.pad);
  return p;
}

struct GemmCase {
  int m, n, k;
  bool trans_a, trans_b, accumulate;
};

inline std::string gemm_name(const ::testing::TestParamInfo<GemmCase>& info) {
  const GemmCase& c = info.param;
  return std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k) + (c.trans_a ? "_ta" : "") +
         (c.trans_b ? "_tb" : "") + (c.accumulate ? "_acc" : "");
}

inline std::vector<GemmCase> gemm_cases() {
  // Odd sizes, a square-ish one big enough to run threaded (split by rows), a wide one (split by columns, the
  // dw = x^T dy shape: small Ci x Co output reduced over a long M), the empty inner dimension, and one whose
  // epilogue (gemm_bias_act, 64-row tiles for N = 600) takes several tiles per thread, the last one partial.
  // Around the packed micro-kernel's tiles (gemm_packed.cpp: 12 or 6 rows x 2V columns): row counts that leave
  // every remainder, N one under, at and over one and two vectors, and the batch-1 7x7 layer (49 x 160 x 960);
  // for gemm_reduce.cpp (trans_a), reductions long enough to split over threads and chunks, with a tail chunk.
  constexpr int V = kWidestVector;
  const int sizes[][3] = {
      {1, 1, 1},       {7, 5, 3},      {17, 33, 9},         {300, 70, 40},        {24, 144, 3001},
      {5, 3, 0},       {300, 600, 20}, {13, 2 * V + 1, 17}, {41, V - 1, 33},      {25, 3 * V + 5, 2},
      {12, 2 * V, 64}, {11, V + 1, 5}, {49, 160, 960},      {13, 2 * V + 1, 700}, {30, V, 1300},
      // Row remainders 2, 3, 4 of the 6-row tiles (AVX2, SSE) and column counts around 4 and 8 lanes.
      {2, 7, 9},       {3, 9, 33},     {4, 5, 17},          {8, 3, 100},          {9, 4, 3},         {10, 17, 40}};
  std::vector<GemmCase> cases;
  for (const auto& s : sizes)
    for (int flags = 0; flags < 8; ++flags)
      cases.push_back({s[0], s[1], s[2], bool(flags & 1), bool(flags & 2), bool(flags & 4)});
  return cases;
}

inline GemmParams gemm_params(const GemmCase& c) {
  GemmParams p;
  p.m = c.m, p.n = c.n, p.k = c.k, p.trans_a = c.trans_a, p.trans_b = c.trans_b, p.accumulate = c.accumulate;
  return p;
}

}  // namespace mriscan::testing

#define EXPECT_CLOSE(fast, ref) \
  EXPECT_LT(::mriscan::testing::relative_error(fast, ref), ::mriscan::testing::kTolerance) << #fast " vs " #ref
