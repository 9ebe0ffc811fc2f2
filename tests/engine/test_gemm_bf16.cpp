// The bf16 GEMM (engine/kernels/gemm_bf16.cpp, matmul_precision.h): the scalar rounding (bf16.h) on worked values,
// the hardware conversion against it bit for bit, the fast kernel against its reference (gemm_bf16_ref in double)
// over the GEMM shape sweep with and without the epilogue, the reference table following the setting, and the
// refusal where the CPU or build lacks AVX512-BF16.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "engine/kernels/bf16.h"
#include "engine/kernels/dispatch.h"
#include "engine/kernels/gemm_ref.h"
#include "engine/kernels/matmul_precision.h"
#include "tests/support/kernel_compare.h"

namespace mriscan {
namespace {

using testing::gemm_cases;
using testing::gemm_name;
using testing::gemm_params;
using testing::GemmCase;
using testing::random_floats;
using testing::relative_error;
using testing::to_double;

// Sets the process's GEMM precision for one test and restores float32 after.
struct PrecisionScope {
  explicit PrecisionScope(MatmulPrecision precision) { set_matmul_precision(precision); }
  ~PrecisionScope() { set_matmul_precision(MatmulPrecision::kFloat32); }
};

float from_bits(uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

TEST(Bf16Rounding, WorkedValues) {
  EXPECT_EQ(round_to_bf16(1.0f), 1.0f);
  EXPECT_EQ(round_to_bf16(-2.5f), -2.5f);                           // 8 significant bits: exact
  EXPECT_EQ(round_to_bf16(1.0f + 0x1p-8f), 1.0f);                   // a tie between 1 and 1 + 2^-7: to even (1)
  EXPECT_EQ(round_to_bf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);     // a tie between 1 + 2^-7 and 1 + 2^-6: even
  EXPECT_EQ(round_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);  // just past the tie: up
  EXPECT_EQ(round_to_bf16(0.1f), 0.10009765625f);                   // 0x3DCCCCCD -> 0x3DCD
  EXPECT_EQ(round_to_bf16(std::numeric_limits<float>::max()), std::numeric_limits<float>::infinity());
  EXPECT_EQ(round_to_bf16(-std::numeric_limits<float>::infinity()), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(round_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(std::isnan(round_to_bf16(from_bits(0x7F800001u))));  // a NaN whose payload would round to infinity
  const float denormal = from_bits(0x00400000u);
  EXPECT_EQ(round_to_bf16(denormal), 0.0f);
  EXPECT_TRUE(std::signbit(round_to_bf16(-denormal)));
}

TEST(MatmulPrecisionSetting, ParsesNamesAndRefusesWhatItCannotRun) {
  EXPECT_EQ(parse_matmul_precision("fp32"), MatmulPrecision::kFloat32);
  EXPECT_EQ(parse_matmul_precision("bf16"), MatmulPrecision::kBFloat16);
  EXPECT_THROW(parse_matmul_precision("fp16"), std::invalid_argument);
  EXPECT_STREQ(matmul_precision_name(MatmulPrecision::kBFloat16), "bf16");
  EXPECT_EQ(matmul_precision(), MatmulPrecision::kFloat32);  // the default
  if (bf16_matmul_supported()) {
    set_thread_matmul_precision(MatmulPrecision::kBFloat16);  // this thread only, winning over the process
    EXPECT_EQ(matmul_precision(), MatmulPrecision::kBFloat16);
    set_thread_matmul_precision(std::nullopt);
    EXPECT_EQ(matmul_precision(), MatmulPrecision::kFloat32);
    return;
  }
  try {
    set_matmul_precision(MatmulPrecision::kBFloat16);
    FAIL() << "bf16 accepted without AVX512-BF16";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("AVX512-BF16"), std::string::npos) << error.what();
  }
  EXPECT_THROW(set_thread_matmul_precision(MatmulPrecision::kBFloat16), std::runtime_error);
  EXPECT_EQ(matmul_precision(), MatmulPrecision::kFloat32);
}

// With K = 1 and B = 1, C = bf16(A) * 1 exactly: the hardware conversion (vcvtne2ps2bf16) shown against bf16.h on
// random bit patterns of every exponent, denormals and infinities included (NaNs, whose payloads the hardware may
// change, are left out).
TEST(Bf16Rounding, HardwareConversionEqualsTheScalarOne) {
  if (!bf16_matmul_supported()) GTEST_SKIP() << "no AVX512-BF16 kernels on this CPU";
  PrecisionScope bf16(MatmulPrecision::kBFloat16);
  std::mt19937 rng(5);
  std::vector<float> a;  // (M, 1)
  while (a.size() < 100000) {
    const float x = from_bits(rng());
    if (!std::isnan(x)) a.push_back(x);
  }
  for (float tie : {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -0x1p-126f, 0x1.fffffep127f}) a.push_back(tie);
  const float one = 1.0f;
  std::vector<float> c(a.size());
  const GemmParams p{.m = static_cast<int>(a.size()), .n = 1, .k = 1};
  fast_kernels().gemm(p, a.data(), &one, c.data());
  // Compared as values: the sum starts at +0, so -0 (and a negative denormal, read as -0) comes out +0.
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(c[i], round_to_bf16(a[i])) << "input " << a[i];
}

class KernelGemmBf16 : public ::testing::TestWithParam<GemmCase> {};

// Products of bf16 values are exact in float32, so the fast kernel and the double reference differ only by the
// float32 sums: the same tolerance as the float32 sweep. The bf16 result must also differ from the float32 one
// by about bf16's rounding (2^-9 relative per input), which says the rounding really happened.
TEST_P(KernelGemmBf16, MatchesReference) {
  if (!bf16_matmul_supported()) GTEST_SKIP() << "no AVX512-BF16 kernels on this CPU";
  const GemmCase& c = GetParam();
  const GemmParams p = gemm_params(c);
  const auto a = random_floats(size_t(c.m) * c.k, 31), b = random_floats(size_t(c.k) * c.n, 32);
  const auto bias = random_floats(size_t(c.n), 33);
  const auto c0 = random_floats(size_t(c.m) * c.n, 34);  // overwritten, or accumulated into
  const auto ad = to_double(a), bd = to_double(b), bias_d = to_double(bias);
  PrecisionScope bf16(MatmulPrecision::kBFloat16);

  std::vector<float> out = c0;
  std::vector<double> out_ref = to_double(c0), out_fp32 = to_double(c0);
  fast_kernels().gemm(p, a.data(), b.data(), out.data());
  gemm_ref<double>(p, ad.data(), bd.data(), out_fp32.data());
  const double rounding = relative_error(out, out_fp32);
  gemm_bf16_ref<double>(p, ad.data(), bd.data(), nullptr, Activation::kNone, out_ref.data());
  EXPECT_CLOSE(out, out_ref);
  EXPECT_LT(rounding, 0.05);
  if (c.k >= 2) {  // rounded: K >= 2 leaves a visible error
    EXPECT_GT(rounding, 1e-5);
  }

  std::vector<float> fused = c0;
  std::vector<double> fused_ref = to_double(c0);
  fast_kernels().gemm_bias_act(p, a.data(), b.data(), bias.data(), Activation::kReLU6, fused.data());
  gemm_bf16_ref<double>(p, ad.data(), bd.data(), bias_d.data(), Activation::kReLU6, fused_ref.data());
  EXPECT_CLOSE(fused, fused_ref);
}

INSTANTIATE_TEST_SUITE_P(Sweep, KernelGemmBf16, ::testing::ValuesIn(gemm_cases()), gemm_name);

// MRISCAN_KERNELS=ref runs the reference table: under bf16 it rounds too, so both selections compute one thing.
TEST(KernelGemmBf16Table, ReferenceTableFollowsThePrecision) {
  if (!bf16_matmul_supported()) GTEST_SKIP() << "no AVX512-BF16 kernels on this CPU";
  const GemmParams p{.m = 37, .n = 45, .k = 29, .trans_b = true};
  const auto a = random_floats(size_t(p.m) * p.k, 41), b = random_floats(size_t(p.k) * p.n, 42);
  std::vector<float> table(size_t(p.m) * p.n), expected(size_t(p.m) * p.n), fp32(size_t(p.m) * p.n);
  reference_kernels().gemm(p, a.data(), b.data(), fp32.data());
  PrecisionScope bf16(MatmulPrecision::kBFloat16);
  reference_kernels().gemm(p, a.data(), b.data(), table.data());
  gemm_bf16_ref<float>(p, a.data(), b.data(), nullptr, Activation::kNone, expected.data());
  EXPECT_EQ(table, expected);
  EXPECT_NE(table, fp32);
}

}  // namespace
}  // namespace mriscan
