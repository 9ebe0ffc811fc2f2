// The forward kernels' fused epilogues (bias + Activation, engine/kernels/params.h), used by the inference path
// (models/folded_mobilenet_v2.h): conv2d_forward and depthwise_forward with p.activation, and gemm_bias_act.
//
// For every shape of the sweeps in tests/support/kernel_compare.h, for Activation kNone and kReLU6, with and
// without bias:
//   1. fused reference == the unfused composition it replaces, all in double: the plain kernel (no bias, identity),
//      then bias_add_rows_ref, then relu6_forward_ref. The two differ only in where the bias enters the sum, so
//      they agree to double rounding (kCompositionTolerance).
//   2. fast fused kernel (float) vs fused reference (double), with kernel_compare.h's metric and tolerance.
// The biases are drawn from [-4, 4] except for channel 0 (+10) and channel 1 (-10), so that outputs land on both
// sides of ReLU6's window; each case with enough outputs checks that its biased pre-activation really crosses 0
// and 6, so that both clamps are exercised.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/kernels/conv2d_ref.h"
#include "engine/kernels/depthwise_ref.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/elementwise_ref.h"
#include "engine/kernels/gemm_ref.h"
#include "engine/parallel.h"
#include "tests/support/kernel_compare.h"

namespace mriscan {
namespace {

using testing::conv_cases;
using testing::conv_name;
using testing::conv_params;
using testing::ConvCase;
using testing::depthwise_cases;
using testing::depthwise_name;
using testing::depthwise_params;
using testing::DepthwiseCase;
using testing::for_each_fast_table;
using testing::gemm_cases;
using testing::gemm_name;
using testing::gemm_params;
using testing::GemmCase;
using testing::random_floats;
using testing::relative_error;
using testing::to_double;

constexpr double kCompositionTolerance = 1e-12;
constexpr Activation kActivations[] = {Activation::kNone, Activation::kReLU6};

std::string activation_name(Activation activation) { return activation == Activation::kReLU6 ? "relu6" : "none"; }

// Per-channel bias (channels): uniform in [-4, 4], then +10 and -10 on the first two channels.
std::vector<float> epilogue_bias(int channels, uint32_t seed) {
  std::vector<float> bias = random_floats(channels, seed, -4.0f, 4.0f);
  if (channels >= 2) bias[0] = 10.0f, bias[1] = -10.0f;
  return bias;
}

// max |a - b| / max(1, max |b|), both in double.
double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0.0, scale = 1.0;
  for (size_t i = 0; i < b.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return worst / scale;
}

// The unfused composition on the plain output y (rows, cols) of a kernel run without bias or activation:
// y += bias (per column, if any), then y = relu6(y) if asked. Checks that enough outputs cross both clamps.
std::vector<double> unfused_epilogue(std::vector<double> y, int cols, const double* bias, Activation activation) {
  const int64_t rows = static_cast<int64_t>(y.size()) / cols;
  if (bias) bias_add_rows_ref<double>(rows, cols, bias, y.data());
  if (bias && cols >= 2 && y.size() >= 256) {  // both sides of the window occur in every large case
    EXPECT_LT(*std::min_element(y.begin(), y.end()), 0.0);
    EXPECT_GT(*std::max_element(y.begin(), y.end()), 6.0);
  }
  if (activation == Activation::kReLU6) relu6_forward_ref<double>(static_cast<int64_t>(y.size()), y.data(), y.data());
  return y;
}

// ---- depthwise -------------------------------------------------------------------------------------------------

class FusedKernelDepthwise : public ::testing::TestWithParam<DepthwiseCase> {};

TEST_P(FusedKernelDepthwise, MatchesReferenceAndComposition) {
  const DepthwiseCase& c = GetParam();
  DepthwiseParams p = depthwise_params(c);
  const size_t x_size = size_t(c.batch) * c.h * c.w * c.channels;
  const size_t y_size = size_t(c.batch) * p.out_h * p.out_w * c.channels;
  const auto x = random_floats(x_size, 1), w = random_floats(size_t(c.kernel) * c.kernel * c.channels, 2, -2, 2);
  const auto bias = epilogue_bias(c.channels, 3);
  const auto xd = to_double(x), wd = to_double(w), biasd = to_double(bias);

  std::vector<double> plain(y_size);  // no bias, no activation
  depthwise_forward_ref<double>(p, xd.data(), wd.data(), nullptr, plain.data());
  for (Activation activation : kActivations)
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(activation_name(activation) + (with_bias ? " with bias" : " without bias"));
      p.activation = activation;
      std::vector<double> y_ref(y_size);
      depthwise_forward_ref<double>(p, xd.data(), wd.data(), with_bias ? biasd.data() : nullptr, y_ref.data());
      const std::vector<double> composed =
          unfused_epilogue(plain, c.channels, with_bias ? biasd.data() : nullptr, activation);
      EXPECT_LT(relative_difference(y_ref, composed), kCompositionTolerance);

      std::vector<float> y(y_size, 123.0f);  // forward must overwrite this garbage
      for_each_fast_table([&](const KernelTable& fast) {
        std::fill(y.begin(), y.end(), 123.0f);
        fast.depthwise_forward(p, x.data(), w.data(), with_bias ? bias.data() : nullptr, y.data());
        EXPECT_CLOSE(y, y_ref);
      });
    }
}

INSTANTIATE_TEST_SUITE_P(Sweep, FusedKernelDepthwise, ::testing::ValuesIn(depthwise_cases()), depthwise_name);

// ---- dense KxK convolution (the stem) --------------------------------------------------------------------------

class FusedKernelConv2d : public ::testing::TestWithParam<ConvCase> {};

TEST_P(FusedKernelConv2d, MatchesReferenceAndComposition) {
  const ConvCase& c = GetParam();
  Conv2dParams p = conv_params(c);
  const size_t x_size = size_t(c.batch) * c.h * c.w * c.in_c;
  const size_t y_size = size_t(c.batch) * p.out_h * p.out_w * c.out_c;
  const auto x = random_floats(x_size, 11);
  const auto w = random_floats(size_t(c.kernel) * c.kernel * c.in_c * c.out_c, 12, -2, 2);
  const auto bias = epilogue_bias(c.out_c, 13);
  const auto xd = to_double(x), wd = to_double(w), biasd = to_double(bias);

  std::vector<double> plain(y_size);  // no bias, no activation
  conv2d_forward_ref<double>(p, xd.data(), wd.data(), nullptr, plain.data());
  for (Activation activation : kActivations)
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(activation_name(activation) + (with_bias ? " with bias" : " without bias"));
      p.activation = activation;
      std::vector<double> y_ref(y_size);
      conv2d_forward_ref<double>(p, xd.data(), wd.data(), with_bias ? biasd.data() : nullptr, y_ref.data());
      const std::vector<double> composed =
          unfused_epilogue(plain, c.out_c, with_bias ? biasd.data() : nullptr, activation);
      EXPECT_LT(relative_difference(y_ref, composed), kCompositionTolerance);

      std::vector<float> y(y_size, 123.0f);
      for_each_fast_table([&](const KernelTable& fast) {
        std::fill(y.begin(), y.end(), 123.0f);
        fast.conv2d_forward(p, x.data(), w.data(), with_bias ? bias.data() : nullptr, y.data());
        EXPECT_CLOSE(y, y_ref);
      });
    }
}

INSTANTIATE_TEST_SUITE_P(Sweep, FusedKernelConv2d, ::testing::ValuesIn(conv_cases()), conv_name);

// ---- GEMM with a per-column epilogue (pointwise conv, linear) ---------------------------------------------------

// Checks gemm_bias_act for one case under the current thread count.
void check_gemm_bias_act(const GemmCase& c) {
  const GemmParams p = gemm_params(c);
  const size_t c_size = size_t(c.m) * c.n;
  const auto a = random_floats(size_t(c.m) * c.k, 21), b = random_floats(size_t(c.k) * c.n, 22);
  const auto bias = epilogue_bias(c.n, 23);
  const auto c0 = random_floats(c_size, 24);  // overwritten, or accumulated into
  const auto ad = to_double(a), bd = to_double(b), biasd = to_double(bias);

  std::vector<double> plain = to_double(c0);  // the product alone (accumulated onto c0 if asked)
  gemm_ref<double>(p, ad.data(), bd.data(), plain.data());
  for (Activation activation : kActivations)
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(activation_name(activation) + (with_bias ? " with bias" : " without bias"));
      std::vector<double> out_ref = to_double(c0);
      gemm_bias_act_ref<double>(p, ad.data(), bd.data(), with_bias ? biasd.data() : nullptr, activation,
                                out_ref.data());
      if (c.n > 0) {
        const std::vector<double> composed =
            unfused_epilogue(plain, c.n, with_bias ? biasd.data() : nullptr, activation);
        EXPECT_LT(relative_difference(out_ref, composed), kCompositionTolerance);
      }

      for_each_fast_table([&](const KernelTable& fast) {
        std::vector<float> out = c0;
        fast.gemm_bias_act(p, a.data(), b.data(), with_bias ? bias.data() : nullptr, activation, out.data());
        EXPECT_CLOSE(out, out_ref);
      });
    }
}

class FusedKernelGemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(FusedKernelGemm, MatchesReferenceAndComposition) { check_gemm_bias_act(GetParam()); }

INSTANTIATE_TEST_SUITE_P(Sweep, FusedKernelGemm, ::testing::ValuesIn(gemm_cases()), gemm_name);

// The epilogue tiles live inside each thread's band: an odd team size gives bands that do not divide the rows (or
// columns) and tiles that end mid-band.
TEST(FusedKernelThreads, GemmEpilogueWithAnOddTeam) {
  const int saved = num_threads();
  set_num_threads(3);
  for (const GemmCase& c : {GemmCase{300, 600, 20, false, false, false}, GemmCase{301, 70, 40, false, false, true},
                            GemmCase{24, 144, 3001, false, false, false}, GemmCase{24, 144, 3001, true, false, true},
                            GemmCase{29, 40, 1001, true, true, false},
                            // a reduction too short to split (K = 49 < 3 x 256): the threads split C's columns
                            GemmCase{320, 100, 49, true, false, true}}) {
    SCOPED_TRACE(std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k));
    check_gemm_bias_act(c);
  }
  set_num_threads(saved);
}

}  // namespace
}  // namespace mriscan
