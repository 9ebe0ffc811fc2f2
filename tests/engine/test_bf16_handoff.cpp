// The bf16 hand-off (engine/kernels/dispatch.h: depthwise_forward_bf16, gemm_bias_act_bf16_a), in both kernel
// tables: a depthwise output written as bf16 is the float32 output rounded by bf16.h, bit for bit, and a bf16
// product reading that A in place is the bf16 product of the float32 A, bit for bit. Together they make the folded
// network's hand-off (models/folded_conv.h) exact, which tests/models/test_folded_mobilenet.cpp checks end to end.
// Sweeps: the depthwise shapes (tails, borders, both strides, the reference fallback) and the GEMM shapes with an
// even K; the fast and reference results are also compared with each other (the products within the float32
// sweep's tolerance, the rounded depthwise outputs within one bf16 step).
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "engine/kernels/bf16.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/matmul_precision.h"
#include "tests/support/kernel_compare.h"

namespace mriscan {
namespace {

using testing::depthwise_cases;
using testing::depthwise_name;
using testing::depthwise_params;
using testing::DepthwiseCase;
using testing::gemm_cases;
using testing::gemm_name;
using testing::gemm_params;
using testing::GemmCase;
using testing::random_floats;
using testing::to_double;

std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<uint16_t> bits(x.size());
  for (size_t i = 0; i < x.size(); ++i) bits[i] = bf16_bits(x[i]);
  return bits;
}

std::vector<float> to_float(const std::vector<uint16_t>& bits) {
  std::vector<float> x(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) x[i] = bf16_to_float(bits[i]);
  return x;
}

class DepthwiseBf16Output : public ::testing::TestWithParam<DepthwiseCase> {};

TEST_P(DepthwiseBf16Output, IsTheFloatOutputRounded) {
  DepthwiseParams p = depthwise_params(GetParam());
  p.activation = Activation::kReLU6;  // as the folded network runs it
  const size_t in = size_t(p.batch) * p.in_h * p.in_w * p.channels;
  const size_t out = size_t(p.batch) * p.out_h * p.out_w * p.channels;
  const auto x = random_floats(in, 51), w = random_floats(size_t(p.kernel) * p.kernel * p.channels, 52);
  const auto bias = random_floats(size_t(p.channels), 53);
  std::vector<std::vector<uint16_t>> results;
  for (const KernelTable* table : {&fast_kernels(), &reference_kernels()}) {
    SCOPED_TRACE(table->name);
    std::vector<float> y(out);
    std::vector<uint16_t> y_bf16(out, 0xFFFF);
    table->depthwise_forward(p, x.data(), w.data(), bias.data(), y.data());
    table->depthwise_forward_bf16(p, x.data(), w.data(), bias.data(), y_bf16.data());
    EXPECT_EQ(y_bf16, to_bf16(y));
    results.push_back(y_bf16);
  }
  // Fast and reference float outputs differ in their last bits, which can move a rounding by one bf16 step
  // (2^-8 relative): compare as values, within that.
  EXPECT_LT(testing::relative_error(to_float(results[0]), to_double(to_float(results[1]))), 1.0 / 256);
}

INSTANTIATE_TEST_SUITE_P(Sweep, DepthwiseBf16Output, ::testing::ValuesIn(depthwise_cases()), depthwise_name);

std::vector<GemmCase> even_k_products() {
  std::vector<GemmCase> cases;
  for (const GemmCase& c : gemm_cases())
    if (!c.trans_a && c.k > 0 && c.k % 2 == 0) cases.push_back(c);
  return cases;
}

class GemmBf16A : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmBf16A, IsTheBf16ProductOfTheFloatA) {
  if (!bf16_matmul_supported()) GTEST_SKIP() << "no AVX512-BF16 kernels on this CPU";
  const GemmCase& c = GetParam();
  const GemmParams p = gemm_params(c);
  const auto a = random_floats(size_t(c.m) * c.k, 61), b = random_floats(size_t(c.k) * c.n, 62);
  const auto bias = random_floats(size_t(c.n), 63), c0 = random_floats(size_t(c.m) * c.n, 64);
  const std::vector<uint16_t> a_bf16 = to_bf16(a);
  std::vector<std::vector<float>> results;
  for (const KernelTable* table : {&fast_kernels(), &reference_kernels()}) {
    SCOPED_TRACE(table->name);
    std::vector<float> from_float = c0, from_bf16 = c0;
    set_thread_matmul_precision(MatmulPrecision::kBFloat16);
    table->gemm_bias_act(p, a.data(), b.data(), bias.data(), Activation::kReLU6, from_float.data());
    set_thread_matmul_precision(MatmulPrecision::kFloat32);  // the hand-off is bf16 whatever the setting
    table->gemm_bias_act_bf16_a(p, a_bf16.data(), b.data(), bias.data(), Activation::kReLU6, from_bf16.data());
    set_thread_matmul_precision(std::nullopt);
    EXPECT_EQ(from_bf16, from_float);
    results.push_back(from_bf16);
  }
  EXPECT_CLOSE(results[0], to_double(results[1]));
}

INSTANTIATE_TEST_SUITE_P(Sweep, GemmBf16A, ::testing::ValuesIn(even_k_products()), gemm_name);

TEST(GemmBf16A, RefusesAnOddOrTransposedA) {
  if (!bf16_matmul_supported()) GTEST_SKIP() << "no AVX512-BF16 kernels on this CPU";
  const std::vector<uint16_t> a(64);
  const std::vector<float> b(64);
  std::vector<float> c(64);
  for (const GemmParams& p : {GemmParams{.m = 2, .n = 2, .k = 3}, GemmParams{.m = 2, .n = 2, .k = 2, .trans_a = true}})
    EXPECT_THROW(fast_kernels().gemm_bias_act_bf16_a(p, a.data(), b.data(), nullptr, Activation::kNone, c.data()),
                 std::invalid_argument);
}

}  // namespace
}  // namespace mriscan
