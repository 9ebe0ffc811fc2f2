// Finite-difference checks, in double, of the reference convolution and GEMM kernels' gradients.
//
// For each kernel: L = sum(forward(x, w, b) * r) with a fixed random r; the backward kernels run with dy = r and
// must match central differences of L for every entry of x, w and b (tests/support/gradcheck.h). The gradient
// buffers start non-zero, and the analytic gradient is what the kernel ADDED, so a backward kernel that overwrites
// instead of accumulating fails. Shapes are tiny and odd (5 x 6) so stride 2 leaves a partial window and the
// padding taps are exercised on every edge. What it is not: a check of the forward against PyTorch (that is
// test_golden_conv_ops) or of the fast kernels (the ref-vs-fast tests).
#include <gtest/gtest.h>

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "engine/kernels/conv2d_ref.h"
#include "engine/kernels/depthwise_ref.h"
#include "engine/kernels/gemm_ref.h"
#include "tests/support/gradcheck.h"

namespace mriscan {
namespace {

using testing::accumulated_gradient;
using testing::dot;
using testing::max_gradient_error;
using testing::random_vector;

constexpr double kTolerance = 1e-6;

// after - before, elementwise: what a backward kernel accumulated into a buffer that started as `before`.
std::vector<double> added(const std::vector<double>& after, const std::vector<double>& before) {
  std::vector<double> d(after.size());
  for (size_t i = 0; i < after.size(); ++i) d[i] = after[i] - before[i];
  return d;
}

struct ConvCase {
  const char* name;
  int kernel, stride, pad;
};
void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }  // gtest prints the case name on failure

// ---------------------------------------------------------------------------------------------------------------
// Dense KxK convolution.

class GradConv2d : public ::testing::TestWithParam<ConvCase> {};

TEST_P(GradConv2d, InputWeightAndBiasGradientsMatchFiniteDifferences) {
  const ConvCase c = GetParam();
  Conv2dParams p;
  p.batch = 2, p.in_h = 5, p.in_w = 6, p.in_c = 3, p.out_c = 4;
  p.kernel_h = p.kernel_w = c.kernel, p.stride = c.stride, p.pad = c.pad;
  p.out_h = conv_output_size(p.in_h, c.kernel, c.stride, c.pad);
  p.out_w = conv_output_size(p.in_w, c.kernel, c.stride, c.pad);

  std::vector<double> x = random_vector(size_t(p.batch) * p.in_h * p.in_w * p.in_c, 1);       // (N, H, W, Ci)
  std::vector<double> w = random_vector(size_t(c.kernel) * c.kernel * p.in_c * p.out_c, 2);   // (KH, KW, Ci, Co)
  std::vector<double> b = random_vector(size_t(p.out_c), 3);                                  // (Co)
  const std::vector<double> r = random_vector(size_t(p.batch) * p.out_h * p.out_w * p.out_c, 4);  // dy
  std::vector<double> y(r.size());                                                            // (N, OH, OW, Co)
  auto loss = [&] {
    conv2d_forward_ref<double>(p, x.data(), w.data(), b.data(), y.data());
    return dot(y, r);
  };

  const auto dx = accumulated_gradient(x.size(), 5, [&](double* g) {
    conv2d_backward_input_ref<double>(p, r.data(), w.data(), g);
  });
  std::vector<double> db_start = random_vector(b.size(), 6), db = db_start;
  const auto dw = accumulated_gradient(w.size(), 7, [&](double* g) {
    conv2d_backward_weight_ref<double>(p, x.data(), r.data(), g, db.data());
  });
  const std::vector<double> dbias = added(db, db_start);

  const double err_x = max_gradient_error(loss, x, dx);
  const double err_w = max_gradient_error(loss, w, dw);
  const double err_b = max_gradient_error(loss, b, dbias);
  std::printf("conv2d %s: max error dx %.2e dw %.2e dbias %.2e\n", c.name, err_x, err_w, err_b);
  EXPECT_LT(err_x, kTolerance) << "dx";
  EXPECT_LT(err_w, kTolerance) << "dw";
  EXPECT_LT(err_b, kTolerance) << "dbias";
}

INSTANTIATE_TEST_SUITE_P(Shapes, GradConv2d,
                         ::testing::Values(ConvCase{"k1_s1_p0", 1, 1, 0}, ConvCase{"k1_s2_p0", 1, 2, 0},
                                           ConvCase{"k1_s1_p1", 1, 1, 1}, ConvCase{"k3_s1_p0", 3, 1, 0},
                                           ConvCase{"k3_s1_p1", 3, 1, 1}, ConvCase{"k3_s2_p0", 3, 2, 0},
                                           ConvCase{"k3_s2_p1", 3, 2, 1}),
                         [](const auto& info) { return std::string(info.param.name); });

// A null bias is "no bias" (not an uninitialised read), and a null dbias leaves dw unchanged.
TEST(GradConv2dBias, NullBiasAndNullDbiasMeanNoBias) {
  Conv2dParams p;
  p.batch = 1, p.in_h = 4, p.in_w = 4, p.in_c = 2, p.out_c = 3, p.kernel_h = p.kernel_w = 3, p.stride = 1, p.pad = 1;
  p.out_h = p.out_w = 4;
  const auto x = random_vector(4 * 4 * 2, 1), w = random_vector(3 * 3 * 2 * 3, 2), b = random_vector(3, 3);
  const auto dy = random_vector(4 * 4 * 3, 4);
  std::vector<double> with_bias(dy.size()), without_bias(dy.size(), 123.0);
  conv2d_forward_ref<double>(p, x.data(), w.data(), b.data(), with_bias.data());
  conv2d_forward_ref<double>(p, x.data(), w.data(), nullptr, without_bias.data());
  for (size_t i = 0; i < dy.size(); ++i) EXPECT_NEAR(with_bias[i] - without_bias[i], b[i % 3], 1e-12) << i;

  std::vector<double> dw_with(w.size()), dw_without(w.size()), dbias(3);
  conv2d_backward_weight_ref<double>(p, x.data(), dy.data(), dw_with.data(), dbias.data());
  conv2d_backward_weight_ref<double>(p, x.data(), dy.data(), dw_without.data(), nullptr);
  for (size_t i = 0; i < w.size(); ++i) EXPECT_DOUBLE_EQ(dw_with[i], dw_without[i]) << i;
}

// ---------------------------------------------------------------------------------------------------------------
// Depthwise convolution.

class GradDepthwise : public ::testing::TestWithParam<ConvCase> {};

TEST_P(GradDepthwise, InputWeightAndBiasGradientsMatchFiniteDifferences) {
  const ConvCase c = GetParam();
  DepthwiseParams p;
  p.batch = 2, p.in_h = 5, p.in_w = 6, p.channels = 5;
  p.kernel = c.kernel, p.stride = c.stride, p.pad = c.pad;
  p.out_h = conv_output_size(p.in_h, c.kernel, c.stride, c.pad);
  p.out_w = conv_output_size(p.in_w, c.kernel, c.stride, c.pad);

  std::vector<double> x = random_vector(size_t(p.batch) * p.in_h * p.in_w * p.channels, 11);  // (N, H, W, C)
  std::vector<double> w = random_vector(size_t(c.kernel) * c.kernel * p.channels, 12);        // (K, K, C)
  std::vector<double> b = random_vector(size_t(p.channels), 13);                              // (C)
  const std::vector<double> r = random_vector(size_t(p.batch) * p.out_h * p.out_w * p.channels, 14);  // dy
  std::vector<double> y(r.size());                                                            // (N, OH, OW, C)
  auto loss = [&] {
    depthwise_forward_ref<double>(p, x.data(), w.data(), b.data(), y.data());
    return dot(y, r);
  };

  const auto dx = accumulated_gradient(x.size(), 15, [&](double* g) {
    depthwise_backward_input_ref<double>(p, r.data(), w.data(), g);
  });
  std::vector<double> db_start = random_vector(b.size(), 16), db = db_start;
  const auto dw = accumulated_gradient(w.size(), 17, [&](double* g) {
    depthwise_backward_weight_ref<double>(p, x.data(), r.data(), g, db.data());
  });
  const std::vector<double> dbias = added(db, db_start);

  const double err_x = max_gradient_error(loss, x, dx);
  const double err_w = max_gradient_error(loss, w, dw);
  const double err_b = max_gradient_error(loss, b, dbias);
  std::printf("depthwise %s: max error dx %.2e dw %.2e dbias %.2e\n", c.name, err_x, err_w, err_b);
  EXPECT_LT(err_x, kTolerance) << "dx";
  EXPECT_LT(err_w, kTolerance) << "dw";
  EXPECT_LT(err_b, kTolerance) << "dbias";
}

INSTANTIATE_TEST_SUITE_P(Shapes, GradDepthwise,
                         ::testing::Values(ConvCase{"k3_s1_p1", 3, 1, 1}, ConvCase{"k3_s2_p1", 3, 2, 1},
                                           ConvCase{"k3_s1_p0", 3, 1, 0}, ConvCase{"k3_s2_p0", 3, 2, 0},
                                           ConvCase{"k5_s2_p2", 5, 2, 2}),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------------------------------
// GEMM. L = sum(C * R) with C = op(A) . op(B); then d op(A) = R . op(B)^T and d op(B) = op(A)^T . R, each computed
// by gemm_ref itself with the transpose flags that undo the storage order, accumulating (as the layers do).

struct GemmCase {
  const char* name;
  bool trans_a, trans_b;
};
void PrintTo(const GemmCase& c, std::ostream* os) { *os << c.name; }

class GradGemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GradGemm, GradientsOfBothOperandsMatchFiniteDifferences) {
  const GemmCase c = GetParam();
  const int m = 4, n = 5, k = 3;
  const GemmParams p{.m = m, .n = n, .k = k, .trans_a = c.trans_a, .trans_b = c.trans_b};
  std::vector<double> a = random_vector(size_t(m) * k, 21);        // (M, K), or (K, M) when trans_a
  std::vector<double> b = random_vector(size_t(k) * n, 22);        // (K, N), or (N, K) when trans_b
  const std::vector<double> r = random_vector(size_t(m) * n, 23);  // dC (M, N)
  std::vector<double> out(r.size());                               // C (M, N)
  auto loss = [&] {
    gemm_ref<double>(p, a.data(), b.data(), out.data());
    return dot(out, r);
  };

  // dA: stored (M, K) it is R . op(B)^T; stored (K, M) it is the transpose, op(B) . R^T.
  const auto da = accumulated_gradient(a.size(), 24, [&](double* g) {
    if (!c.trans_a)
      gemm_ref<double>({.m = m, .n = k, .k = n, .trans_b = !c.trans_b, .accumulate = true}, r.data(), b.data(), g);
    else
      gemm_ref<double>({.m = k, .n = m, .k = n, .trans_a = c.trans_b, .trans_b = true, .accumulate = true}, b.data(),
                       r.data(), g);
  });
  // dB: stored (K, N) it is op(A)^T . R; stored (N, K) it is the transpose, R^T . op(A).
  const auto db = accumulated_gradient(b.size(), 25, [&](double* g) {
    if (!c.trans_b)
      gemm_ref<double>({.m = k, .n = n, .k = m, .trans_a = !c.trans_a, .accumulate = true}, a.data(), r.data(), g);
    else
      gemm_ref<double>({.m = n, .n = k, .k = m, .trans_a = true, .trans_b = c.trans_a, .accumulate = true}, r.data(),
                       a.data(), g);
  });

  const double err_a = max_gradient_error(loss, a, da);
  const double err_b = max_gradient_error(loss, b, db);
  std::printf("gemm %s: max error dA %.2e dB %.2e\n", c.name, err_a, err_b);
  EXPECT_LT(err_a, kTolerance) << "dA";
  EXPECT_LT(err_b, kTolerance) << "dB";
}

// `accumulate` adds op(A) . op(B) to what C held; without it C is overwritten whatever it held.
TEST_P(GradGemm, AccumulateAddsAndOtherwiseOverwrites) {
  const GemmCase c = GetParam();
  const int m = 3, n = 2, k = 4;
  const auto a = random_vector(size_t(m) * k, 31), b = random_vector(size_t(k) * n, 32);
  const auto c0 = random_vector(size_t(m) * n, 33);
  std::vector<double> product(c0), accumulated(c0);  // both start as C0 (M, N)
  gemm_ref<double>({.m = m, .n = n, .k = k, .trans_a = c.trans_a, .trans_b = c.trans_b}, a.data(), b.data(),
                   product.data());
  gemm_ref<double>({.m = m, .n = n, .k = k, .trans_a = c.trans_a, .trans_b = c.trans_b, .accumulate = true}, a.data(),
                   b.data(), accumulated.data());
  for (size_t i = 0; i < c0.size(); ++i) EXPECT_NEAR(accumulated[i], c0[i] + product[i], 1e-12) << i;
  // The overwrite result must not depend on C0: compare with a run starting from zeros.
  std::vector<double> from_zero(c0.size(), 0.0);
  gemm_ref<double>({.m = m, .n = n, .k = k, .trans_a = c.trans_a, .trans_b = c.trans_b}, a.data(), b.data(),
                   from_zero.data());
  for (size_t i = 0; i < c0.size(); ++i) EXPECT_DOUBLE_EQ(product[i], from_zero[i]) << i;
}

// The transpose flags read the operands as stored transposed: same product as transposing them by hand.
TEST_P(GradGemm, TransposeFlagsMatchExplicitTransposes) {
  const GemmCase c = GetParam();
  const int m = 3, n = 2, k = 4;
  const auto a = random_vector(size_t(m) * k, 41), b = random_vector(size_t(k) * n, 42);  // as stored
  // op(A) (M, K) and op(B) (K, N), materialised.
  std::vector<double> op_a(a.size()), op_b(b.size());
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < k; ++j) op_a[i * k + j] = c.trans_a ? a[j * m + i] : a[i * k + j];
  for (int i = 0; i < k; ++i)
    for (int j = 0; j < n; ++j) op_b[i * n + j] = c.trans_b ? b[j * k + i] : b[i * n + j];
  std::vector<double> expected(size_t(m) * n, 0.0), actual(size_t(m) * n);  // (M, N)
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      for (int l = 0; l < k; ++l) expected[i * n + j] += op_a[i * k + l] * op_b[l * n + j];
  gemm_ref<double>({.m = m, .n = n, .k = k, .trans_a = c.trans_a, .trans_b = c.trans_b}, a.data(), b.data(),
                   actual.data());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(actual[i], expected[i], 1e-12) << i;
}

INSTANTIATE_TEST_SUITE_P(Transposes, GradGemm,
                         ::testing::Values(GemmCase{"nn", false, false}, GemmCase{"tn", true, false},
                                           GemmCase{"nt", false, true}, GemmCase{"tt", true, true}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace mriscan
