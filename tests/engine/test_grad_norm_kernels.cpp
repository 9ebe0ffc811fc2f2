// Finite-difference checks, in double, of the reference kernels for batch norm (training and eval, and training
// with ReLU6 fused), ReLU6, the
// residual add, global average pooling, softmax cross-entropy, dropout and the row bias.
//
// For each kernel: L = sum(forward(inputs) * r) with a fixed random r (for the loss: L = dloss * loss); the
// backward kernel runs with dy = r and must match central differences of L for every input entry
// (tests/support/gradcheck.h). Gradient buffers start non-zero and the analytic gradient is what the kernel ADDED,
// so a backward that overwrites instead of accumulating fails. Batch norm is checked through its batch
// statistics at several row counts, including rows = 2, where every xhat is +-1 and the statistics dominate.
// What it is not: a check of the forwards against PyTorch (test_golden_norm_ops) or of the fast kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "engine/kernels/batchnorm_ref.h"
#include "engine/kernels/dropout_ref.h"
#include "engine/kernels/elementwise_ref.h"
#include "engine/kernels/pool_ref.h"
#include "engine/kernels/softmax_xent_ref.h"
#include "tests/support/gradcheck.h"

namespace mriscan {
namespace {

using testing::accumulated_gradient;
using testing::dot;
using testing::max_gradient_error;
using testing::random_vector;

constexpr double kTolerance = 1e-6;

// ---------------------------------------------------------------------------------------------------------------
// Batch norm, training mode: gradients flow through the batch mean and variance.

class GradBatchNormTrain : public ::testing::TestWithParam<int64_t> {};

TEST_P(GradBatchNormTrain, InputGammaBetaGradientsMatchFiniteDifferences) {
  const BatchNormParams p{.rows = GetParam(), .channels = 3, .eps = 1e-5f};
  const size_t n = static_cast<size_t>(p.rows) * p.channels;
  std::vector<double> x = random_vector(n, 11, -1.5, 2.5);              // (M, C), mean away from 0
  std::vector<double> gamma = random_vector(p.channels, 12, 0.5, 1.5);  // (C)
  std::vector<double> beta = random_vector(p.channels, 13);             // (C)
  const std::vector<double> r = random_vector(n, 14);                   // dy (M, C)
  std::vector<double> y(n), mean(p.channels), inv_std(p.channels);
  auto loss = [&] {
    batchnorm_train_forward_ref<double>(p, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), inv_std.data());
    return dot(y, r);
  };
  loss();  // mean and inv_std of the unperturbed x, for backward
  const std::vector<double> mean0 = mean, inv_std0 = inv_std;

  std::vector<double> dgamma_start = random_vector(p.channels, 16), dgamma = dgamma_start;
  std::vector<double> dbeta_start = random_vector(p.channels, 17), dbeta = dbeta_start;
  const auto dx = accumulated_gradient(n, 15, [&](double* g) {
    batchnorm_train_backward_ref<double>(p, r.data(), x.data(), gamma.data(), nullptr, mean0.data(), inv_std0.data(), g,
                                         dgamma.data(), dbeta.data());
  });
  for (int c = 0; c < p.channels; ++c) dgamma[c] -= dgamma_start[c], dbeta[c] -= dbeta_start[c];

  const double err_x = max_gradient_error(loss, x, dx);
  const double err_gamma = max_gradient_error(loss, gamma, dgamma);
  const double err_beta = max_gradient_error(loss, beta, dbeta);
  std::printf("  rows %3lld: dx %.2e  dgamma %.2e  dbeta %.2e\n", static_cast<long long>(p.rows), err_x, err_gamma,
              err_beta);
  EXPECT_LT(err_x, kTolerance);
  EXPECT_LT(err_gamma, kTolerance);
  EXPECT_LT(err_beta, kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Rows, GradBatchNormTrain, ::testing::Values(2, 3, 7, 18),
                         [](const auto& info) { return "rows" + std::to_string(info.param); });

// Batch norm with ReLU6 fused (training mode): z = relu6(bn(x)), backward from z. gamma in [2, 4] around beta = 3
// puts values on both flat sides, so the mask matters; no value lands within a finite-difference step of a kink.
TEST_P(GradBatchNormTrain, FusedReLU6GradientsMatchFiniteDifferencesAndTheComposition) {
  const BatchNormParams p{.rows = GetParam(), .channels = 3, .eps = 1e-5f, .activation = Activation::kReLU6};
  const BatchNormParams plain{.rows = p.rows, .channels = p.channels, .eps = p.eps};
  const size_t n = static_cast<size_t>(p.rows) * p.channels;
  std::vector<double> x = random_vector(n, 21, -1.5, 2.5);              // (M, C)
  std::vector<double> gamma = random_vector(p.channels, 22, 2.0, 4.0);  // (C)
  std::vector<double> beta(p.channels, 3.0);                            // (C)
  const std::vector<double> r = random_vector(n, 24);                   // dz (M, C)
  std::vector<double> z(n), mean(p.channels), inv_std(p.channels);
  auto loss = [&] {
    batchnorm_train_forward_ref<double>(p, x.data(), gamma.data(), beta.data(), z.data(), mean.data(), inv_std.data());
    return dot(z, r);
  };
  loss();
  const std::vector<double> z0 = z, mean0 = mean, inv_std0 = inv_std;
  int flat = 0;
  for (double v : z0) flat += v == 0.0 || v == 6.0;
  if (p.rows > 2) {
    EXPECT_GT(flat, 0) << "no value on a flat side: the mask is not exercised";
  }

  std::vector<double> dgamma(p.channels, 0.0), dbeta(p.channels, 0.0);
  const auto dx = accumulated_gradient(n, 25, [&](double* g) {
    batchnorm_train_backward_ref<double>(p, r.data(), x.data(), gamma.data(), beta.data(), mean0.data(), inv_std0.data(),
                                         g, dgamma.data(), dbeta.data());
  });
  EXPECT_LT(max_gradient_error(loss, x, dx), kTolerance);
  EXPECT_LT(max_gradient_error(loss, gamma, dgamma), kTolerance);
  EXPECT_LT(max_gradient_error(loss, beta, dbeta), kTolerance);

  // The unfused composition: BN, then ReLU6 on its output; ReLU6's backward, then BN's.
  std::vector<double> y(n), z_composed(n), dy(n, 0.0), dx_composed(n, 0.0);
  std::vector<double> dgamma_composed(p.channels, 0.0), dbeta_composed(p.channels, 0.0);
  batchnorm_train_forward_ref<double>(plain, x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                      inv_std.data());
  relu6_forward_ref<double>(int64_t(n), y.data(), z_composed.data());
  EXPECT_EQ(z_composed, z0);
  relu6_backward_ref<double>(int64_t(n), y.data(), r.data(), dy.data());
  batchnorm_train_backward_ref<double>(plain, dy.data(), x.data(), gamma.data(), nullptr, mean.data(), inv_std.data(),
                                       dx_composed.data(), dgamma_composed.data(), dbeta_composed.data());
  std::vector<double> dx_fused(n, 0.0), dgamma_fused(p.channels, 0.0), dbeta_fused(p.channels, 0.0);
  batchnorm_train_backward_ref<double>(p, r.data(), x.data(), gamma.data(), beta.data(), mean0.data(), inv_std0.data(),
                                       dx_fused.data(), dgamma_fused.data(), dbeta_fused.data());
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(dx_fused[i], dx_composed[i], 1e-12) << i;
  for (int c = 0; c < p.channels; ++c) {
    EXPECT_NEAR(dgamma_fused[c], dgamma_composed[c], 1e-12) << c;
    EXPECT_NEAR(dbeta_fused[c], dbeta_composed[c], 1e-12) << c;
  }
}

// Null gradient pointers are skipped, and each gradient comes out the same whichever others are requested.
TEST(GradBatchNormTrainNulls, EachGradientIsIndependentOfTheOthers) {
  const BatchNormParams p{.rows = 5, .channels = 2, .eps = 1e-5f};
  const size_t n = static_cast<size_t>(p.rows) * p.channels;
  const auto x = random_vector(n, 21), gamma = random_vector(2, 22), beta = random_vector(2, 23);
  const auto dy = random_vector(n, 24);
  std::vector<double> y(n), mean(2), inv_std(2);
  batchnorm_train_forward_ref<double>(p, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), inv_std.data());
  std::vector<double> dx_all(n, 0.0), dgamma_all(2, 0.0), dbeta_all(2, 0.0);
  batchnorm_train_backward_ref<double>(p, dy.data(), x.data(), gamma.data(), nullptr, mean.data(), inv_std.data(),
                                       dx_all.data(), dgamma_all.data(), dbeta_all.data());
  std::vector<double> dx(n, 0.0), dgamma(2, 0.0), dbeta(2, 0.0);
  batchnorm_train_backward_ref<double>(p, dy.data(), x.data(), gamma.data(), nullptr, mean.data(), inv_std.data(),
                                       dx.data(), nullptr, nullptr);
  batchnorm_train_backward_ref<double>(p, dy.data(), x.data(), gamma.data(), nullptr, mean.data(), inv_std.data(),
                                       nullptr, dgamma.data(), nullptr);
  batchnorm_train_backward_ref<double>(p, dy.data(), x.data(), gamma.data(), nullptr, mean.data(), inv_std.data(),
                                       nullptr, nullptr, dbeta.data());
  EXPECT_EQ(dx, dx_all);
  EXPECT_EQ(dgamma, dgamma_all);
  EXPECT_EQ(dbeta, dbeta_all);
}

// ---------------------------------------------------------------------------------------------------------------
// Batch norm, eval mode: running statistics are constants; y = channel_affine(x, gamma * inv_std, shift).

TEST(GradBatchNormEval, InputGammaBetaGradientsMatchFiniteDifferences) {
  const BatchNormParams p{.rows = 6, .channels = 4, .eps = 1e-5f};
  const size_t n = static_cast<size_t>(p.rows) * p.channels;
  std::vector<double> x = random_vector(n, 31, -2.0, 3.0);                 // (M, C)
  std::vector<double> gamma = random_vector(p.channels, 32, 0.5, 1.5);     // (C)
  std::vector<double> beta = random_vector(p.channels, 33);                // (C)
  const std::vector<double> running_mean = random_vector(p.channels, 34);  // (C)
  const std::vector<double> running_var = random_vector(p.channels, 35, 0.5, 2.0);
  std::vector<double> inv_std(p.channels);  // (C)
  for (int c = 0; c < p.channels; ++c) inv_std[c] = 1.0 / std::sqrt(running_var[c] + p.eps);
  const std::vector<double> r = random_vector(n, 36);
  std::vector<double> y(n), scale(p.channels), shift(p.channels);
  auto loss = [&] {
    for (int c = 0; c < p.channels; ++c) {
      scale[c] = gamma[c] * inv_std[c];
      shift[c] = beta[c] - running_mean[c] * scale[c];
    }
    channel_affine_forward_ref<double>(p.rows, p.channels, x.data(), scale.data(), shift.data(), y.data());
    return dot(y, r);
  };

  std::vector<double> dgamma_start = random_vector(p.channels, 38), dgamma = dgamma_start;
  std::vector<double> dbeta_start = random_vector(p.channels, 39), dbeta = dbeta_start;
  const auto dx = accumulated_gradient(n, 37, [&](double* g) {
    batchnorm_eval_backward_ref<double>(p, r.data(), x.data(), running_mean.data(), inv_std.data(), gamma.data(), g,
                                        dgamma.data(), dbeta.data());
  });
  for (int c = 0; c < p.channels; ++c) dgamma[c] -= dgamma_start[c], dbeta[c] -= dbeta_start[c];
  EXPECT_LT(max_gradient_error(loss, x, dx), kTolerance);
  EXPECT_LT(max_gradient_error(loss, gamma, dgamma), kTolerance);
  EXPECT_LT(max_gradient_error(loss, beta, dbeta), kTolerance);
}

// ---------------------------------------------------------------------------------------------------------------
// Elementwise.

TEST(GradReLU6, GradientMatchesFiniteDifferencesAwayFromTheKinks) {
  // Values in (-2, 8), re-drawn until at least 0.05 from 0 and 6, so both flat sides and the window are covered.
  std::vector<double> x = random_vector(60, 41, -2.0, 8.0);
  uint32_t seed = 100;
  for (double& v : x)
    while (std::abs(v) < 0.05 || std::abs(v - 6.0) < 0.05) v = random_vector(1, seed++, -2.0, 8.0)[0];
  const auto r = random_vector(x.size(), 42);
  std::vector<double> y(x.size());
  auto loss = [&] {
    relu6_forward_ref<double>(static_cast<int64_t>(x.size()), x.data(), y.data());
    return dot(y, r);
  };
  const auto dx = accumulated_gradient(x.size(), 43, [&](double* g) {
    relu6_backward_ref<double>(static_cast<int64_t>(x.size()), x.data(), r.data(), g);
  });
  int below = 0, inside = 0, above = 0;
  for (double v : x) (v < 0 ? below : v > 6 ? above : inside) += 1;
  ASSERT_GT(below, 0);  // the draw really covers all three pieces
  ASSERT_GT(inside, 0);
  ASSERT_GT(above, 0);
  EXPECT_LT(max_gradient_error(loss, x, dx), kTolerance);
}

// The residual add's backward is axpy(1, dy) into each input.
TEST(GradAdd, BothInputsReceiveTheUpstreamGradient) {
  const size_t n = 24;
  std::vector<double> a = random_vector(n, 51), b = random_vector(n, 52);
  const auto r = random_vector(n, 53);
  std::vector<double> y(n);
  auto loss = [&] {
    add_forward_ref<double>(static_cast<int64_t>(n), a.data(), b.data(), y.data());
    return dot(y, r);
  };
  const auto da = accumulated_gradient(n, 54, [&](double* g) { axpy_ref<double>(int64_t(n), 1.0, r.data(), g); });
  const auto db = accumulated_gradient(n, 55, [&](double* g) { axpy_ref<double>(int64_t(n), 1.0, r.data(), g); });
  EXPECT_LT(max_gradient_error(loss, a, da), kTolerance);
  EXPECT_LT(max_gradient_error(loss, b, db), kTolerance);
}

// y(rows, cols) = y0 + bias broadcast; dbias = column sums of dy.
TEST(GradBiasRows, BiasGradientIsTheColumnSum) {
  const int64_t rows = 5;
  const int cols = 3;
  const auto y0 = random_vector(rows * cols, 61);
  std::vector<double> bias = random_vector(cols, 62);
  const auto r = random_vector(rows * cols, 63);
  std::vector<double> y(y0.size());
  auto loss = [&] {
    y = y0;
    bias_add_rows_ref<double>(rows, cols, bias.data(), y.data());
    return dot(y, r);
  };
  const auto dbias =
      accumulated_gradient(cols, 64, [&](double* g) { bias_backward_rows_ref<double>(rows, cols, r.data(), g); });
  EXPECT_LT(max_gradient_error(loss, bias, dbias), kTolerance);
}

// ---------------------------------------------------------------------------------------------------------------
// Global average pool.

TEST(GradGlobalAvgPool, GradientSpreadsEvenlyOverPositions) {
  const PoolParams p{.batch = 2, .h = 3, .w = 4, .channels = 5};
  std::vector<double> x = random_vector(2 * 3 * 4 * 5, 71);  // (N, H, W, C)
  const auto r = random_vector(2 * 5, 72);                   // dy (N, C)
  std::vector<double> y(r.size());
  auto loss = [&] {
    global_avg_pool_forward_ref<double>(p, x.data(), y.data());
    return dot(y, r);
  };
  const auto dx =
      accumulated_gradient(x.size(), 73, [&](double* g) { global_avg_pool_backward_ref<double>(p, r.data(), g); });
  EXPECT_LT(max_gradient_error(loss, x, dx), kTolerance);
}

// ---------------------------------------------------------------------------------------------------------------
// Softmax cross-entropy.

struct XentCase {
  const char* name;
  float label_smoothing;
  double logit_scale;  // logits in (-scale, scale); 40 saturates the softmax (probabilities near 0 and 1)
};
void PrintTo(const XentCase& c, std::ostream* os) { *os << c.name; }

class GradSoftmaxXent : public ::testing::TestWithParam<XentCase> {};

TEST_P(GradSoftmaxXent, LogitGradientMatchesFiniteDifferences) {
  const XentCase c = GetParam();
  const SoftmaxCrossEntropyParams p{.batch = 4, .classes = 5, .label_smoothing = c.label_smoothing};
  std::vector<double> logits = random_vector(20, 81, -c.logit_scale, c.logit_scale);  // (B, K)
  const std::vector<int> labels = {2, 0, 4, 1};
  const double dloss = 0.7;  // an upstream gradient other than 1, so a missing dloss factor fails
  std::vector<double> probs(logits.size());
  auto loss = [&] { return dloss * softmax_xent_forward_ref<double>(p, logits.data(), labels.data(), probs.data()); };
  loss();
  const std::vector<double> probs0 = probs;
  for (int b = 0; b < p.batch; ++b) {  // rows of probs sum to 1
    double sum = 0.0;
    for (int k = 0; k < p.classes; ++k) sum += probs0[b * p.classes + k];
    EXPECT_NEAR(sum, 1.0, 1e-12) << "row " << b;
  }
  const auto dlogits = accumulated_gradient(logits.size(), 82, [&](double* g) {
    softmax_xent_backward_ref<double>(p, dloss, probs0.data(), labels.data(), g);
  });
  EXPECT_LT(max_gradient_error(loss, logits, dlogits), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Cases, GradSoftmaxXent,
                         ::testing::Values(XentCase{"plain", 0.0f, 2.0}, XentCase{"smoothed", 0.1f, 2.0},
                                           XentCase{"smoothed_large_logits", 0.1f, 40.0}),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------------------------------
// Dropout with a fixed mask: a linear map, so its backward is the same mask and scale.

TEST(GradDropout, FixedMaskGradientMatchesFiniteDifferences) {
  const int64_t n = 40;
  const double p = 0.3;
  std::vector<uint8_t> keep(n);
  for (int64_t i = 0; i < n; ++i) keep[i] = (i * 7 % 10) < 7 ? 1 : 0;  // 70% kept, scattered
  std::vector<double> x = random_vector(n, 91);
  const auto r = random_vector(n, 92);
  std::vector<double> y(n);
  auto loss = [&] {
    dropout_forward_ref<double>(n, p, keep.data(), x.data(), y.data());
    return dot(y, r);
  };
  loss();
  for (int64_t i = 0; i < n; ++i) EXPECT_DOUBLE_EQ(y[i], keep[i] ? x[i] / (1.0 - p) : 0.0) << i;
  const auto dx =
      accumulated_gradient(n, 93, [&](double* g) { dropout_backward_ref<double>(n, p, keep.data(), r.data(), g); });
  EXPECT_LT(max_gradient_error(loss, x, dx), kTolerance);
}

}  // namespace
}  // namespace mriscan
