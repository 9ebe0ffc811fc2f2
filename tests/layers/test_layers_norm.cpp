// Behaviour of the batch-norm, dropout, ReLU6, add, pooling and loss layers beyond their formulas (those are in
// test_grad_norm_kernels and test_golden_norm_ops): train vs eval batch norm, the running-statistics update,
// numerically hard statistics, gradient skipping for frozen parameters, dropout's identity cases, keep rate,
// scaling and seeding, and the error messages for bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/kernels/batchnorm_ref.h"
#include "layers/add.h"
#include "layers/batch_norm.h"
#include "layers/dropout.h"
#include "layers/global_avg_pool.h"
#include "layers/relu6.h"
#include "layers/softmax_cross_entropy.h"
#include "tests/support/random_tensor.h"

namespace mriscan {
namespace {

using testing::random_tensor;

// `fn` must throw std::invalid_argument whose message contains every one of `parts`.
void expect_invalid_argument(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception thrown";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
  }
}

// Per-channel mean and biased / unbiased variance of an (M, C) tensor, in double.
struct ChannelStats {
  std::vector<double> mean, biased_var, unbiased_var;
};
ChannelStats channel_stats(const Tensor& t) {
  const int C = static_cast<int>(t.dim(-1));
  const int64_t M = t.numel() / C;
  ChannelStats s{std::vector<double>(C, 0.0), std::vector<double>(C, 0.0), std::vector<double>(C, 0.0)};
  for (int64_t r = 0; r < M; ++r)
    for (int c = 0; c < C; ++c) s.mean[c] += t[r * C + c] / double(M);
  for (int64_t r = 0; r < M; ++r)
    for (int c = 0; c < C; ++c) s.biased_var[c] += std::pow(t[r * C + c] - s.mean[c], 2) / double(M);
  for (int c = 0; c < C; ++c) s.unbiased_var[c] = s.biased_var[c] * M / (M - 1);
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// BatchNorm2d.

TEST(LayerBatchNorm, TrainingNormalisesWithBatchStatisticsEvalWithRunningOnes) {
  BatchNorm2d bn(3);
  const Tensor x = random_tensor(Shape{2, 3, 3, 3}, 1, 4.0f, 8.0f);  // (N, H, W, C), mean ~6: far from running 0
  Tape tape;
  const Var y_train = bn.forward(tape, make_var(x));
  const ChannelStats s = channel_stats(y_train->value);
  for (int c = 0; c < 3; ++c) {  // gamma = 1, beta = 0: standardised per channel
    EXPECT_NEAR(s.mean[c], 0.0, 1e-5) << c;
    EXPECT_NEAR(s.biased_var[c], 1.0, 1e-3) << c;  // eps = 1e-5 shrinks it slightly
  }
  // Eval: a fixed affine map of the running statistics, so the output keeps x's offset.
  BatchNorm2d fresh(3);
  fresh.set_training(false);
  const Var y_eval = fresh.forward(tape, make_var(x));
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_NEAR(y_eval->value[i], x[i] / std::sqrt(1.0 + 1e-5), 1e-5) << i;
  EXPECT_EQ(fresh.running_mean().to_vector(), std::vector<float>(3, 0.0f));  // eval leaves the buffers alone
  EXPECT_EQ(fresh.running_var().to_vector(), std::vector<float>(3, 1.0f));
}

TEST(LayerBatchNorm, RunningStatisticsFollowPyTorchMomentumWithUnbiasedVariance) {
  BatchNorm2d bn(4, 1e-5f, 0.1f);
  std::vector<double> mean(4, 0.0), var(4, 1.0);  // torchvision's initial buffers
  Tape tape;
  tape.set_enabled(false);  // the update happens in training mode whether or not anything is recorded
  for (uint32_t step = 0; step < 3; ++step) {
    const Tensor x = random_tensor(Shape{3, 2, 2, 4}, 10 + step, -1.0f + step, 3.0f + 2 * step);  // M = 12
    bn.forward(tape, make_var(x));
    const ChannelStats s = channel_stats(x);
    for (int c = 0; c < 4; ++c) {
      mean[c] = 0.9 * mean[c] + 0.1 * s.mean[c];
      var[c] = 0.9 * var[c] + 0.1 * s.unbiased_var[c];
      EXPECT_NEAR(bn.running_mean()[c], mean[c], 1e-5) << "step " << step << " channel " << c;
      EXPECT_NEAR(bn.running_var()[c], var[c], 1e-5) << "step " << step << " channel " << c;
    }
  }
  EXPECT_EQ(tape.size(), 0u);
}

TEST(LayerBatchNorm, FeatureRowsAndImagesAreTheSameComputation) {
  const Tensor x = random_tensor(Shape{5, 6}, 20);  // (N, C)
  BatchNorm2d rows_bn(6), image_bn(6);
  Tape tape;
  const Var y_rows = rows_bn.forward(tape, make_var(x));
  const Var y_image = image_bn.forward(tape, make_var(x.reshape(Shape{5, 1, 1, 6})));  // (N, 1, 1, C)
  EXPECT_EQ(y_rows->value.shape(), (Shape{5, 6}));
  EXPECT_EQ(y_rows->value.to_vector(), y_image->value.to_vector());
  EXPECT_EQ(rows_bn.running_var().to_vector(), image_bn.running_var().to_vector());
}

// A mean 1e4 times the spread: E[x^2] - E[x]^2 in float would cancel to noise; the two-pass (and shifted) sums
// must still standardise the data.
TEST(LayerBatchNorm, LargeMeanWithSmallSpreadKeepsItsVariance) {
  Tensor x = random_tensor(Shape{64, 8, 8, 2}, 30, -0.1f, 0.1f);  // (N, H, W, C), spread ~0.06
  for (int64_t i = 0; i < x.numel(); ++i) x[i] += 1000.0f;
  BatchNorm2d bn(2);
  Tape tape;
  const ChannelStats s = channel_stats(bn.forward(tape, make_var(x))->value);  // kernels(): the fast table by default
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(s.mean[c], 0.0, 1e-2) << c;
    EXPECT_NEAR(s.biased_var[c], 1.0, 1e-2) << c;
  }
  // The float reference kernel, directly.
  const BatchNormParams p{.rows = x.numel() / 2, .channels = 2, .eps = 1e-5f};
  std::vector<float> y(x.numel()), mean(2), inv_std(2);
  const float gamma[2] = {1, 1}, beta[2] = {0, 0};
  batchnorm_train_forward_ref<float>(p, x.data(), gamma, beta, y.data(), mean.data(), inv_std.data());
  const ChannelStats exact = channel_stats(x);
  for (int c = 0; c < 2; ++c)
    EXPECT_NEAR(inv_std[c] * std::sqrt(exact.biased_var[c] + 1e-5), 1.0, 1e-3) << c;
}

TEST(LayerBatchNorm, FrozenParametersGetNoGradient) {
  BatchNorm2d bn(3);
  bn.weight()->requires_grad = false;
  bn.bias()->requires_grad = false;
  Var x = make_var(random_tensor(Shape{2, 2, 2, 3}, 40), /*requires_grad=*/true);
  for (bool training : {true, false}) {
    bn.set_training(training);
    Tape tape;
    Var y = bn.forward(tape, x);
    tape.backward(y, random_tensor(y->value.shape(), 41));
    EXPECT_TRUE(x->grad.defined()) << "training " << training;
    EXPECT_FALSE(bn.weight()->grad.defined()) << "training " << training;
    EXPECT_FALSE(bn.bias()->grad.defined()) << "training " << training;
  }
  // Nothing requires a gradient: nothing is recorded.
  BatchNorm2d frozen(3);
  frozen.weight()->requires_grad = frozen.bias()->requires_grad = false;
  Tape tape;
  frozen.forward(tape, make_var(random_tensor(Shape{2, 2, 2, 3}, 42)));
  EXPECT_EQ(tape.size(), 0u);
}

TEST(LayerBatchNorm, NamesParametersAndBuffersLikeTorchvision) {
  BatchNorm2d bn(3);
  std::vector<NamedParameter> params;
  std::vector<NamedBuffer> buffers;
  bn.collect_parameters("features.0.1.", params);
  bn.collect_buffers("features.0.1.", buffers);
  ASSERT_EQ(params.size(), 2u);
  ASSERT_EQ(buffers.size(), 2u);
  EXPECT_EQ(params[0].name, "features.0.1.weight");
  EXPECT_EQ(params[1].name, "features.0.1.bias");
  EXPECT_EQ(buffers[0].name, "features.0.1.running_mean");
  EXPECT_EQ(buffers[1].name, "features.0.1.running_var");
  buffers[1].tensor[2] = 4.0f;  // a loaded buffer writes through to the layer
  EXPECT_EQ(bn.running_var()[2], 4.0f);
}

TEST(LayerBatchNorm, RejectsBadShapesAndSingleRowTraining) {
  BatchNorm2d bn(3);
  Tape tape;
  expect_invalid_argument([&] { bn.forward(tape, make_var(Tensor(Shape{2, 4, 4, 5}))); },
                          {"BatchNorm2d", "(2, 4, 4, 5)", "3"});
  expect_invalid_argument([&] { bn.forward(tape, make_var(Tensor(Shape{1, 3}))); }, {"BatchNorm2d", "(1, 3)"});
  bn.set_training(false);
  EXPECT_NO_THROW(bn.forward(tape, make_var(Tensor(Shape{1, 3}))));  // one sample is fine in eval mode
  expect_invalid_argument([] { BatchNorm2d(0); }, {"BatchNorm2d", "channels 0"});
}

// ---------------------------------------------------------------------------------------------------------------
// Dropout.

TEST(LayerDropout, ZeroProbabilityAndEvalModeAreTheIdentity) {
  Var x = make_var(random_tensor(Shape{4, 8}, 50), /*requires_grad=*/true);
  Tape tape;
  Dropout none(0.0f, 1);
  EXPECT_EQ(none.forward(tape, x), x);  // training mode, p = 0
  Dropout dropout(0.5f, 1);
  dropout.set_training(false);
  EXPECT_EQ(dropout.forward(tape, x), x);
  EXPECT_EQ(tape.size(), 0u);
}

TEST(LayerDropout, KeepsAboutOneMinusPAndScalesByItsInverse) {
  const float p = 0.3f;
  const int64_t n = 100000;
  Tensor ones(Shape{n / 100, 100});
  ones.fill(1.0f);
  Var x = make_var(ones, /*requires_grad=*/true);
  Dropout dropout(p, 7);
  Tape tape;
  Var y = dropout.forward(tape, x);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (y->value[i] != 0.0f) {
      ASSERT_FLOAT_EQ(y->value[i], 1.0f / (1.0f - p)) << i;
      ++kept;
    }
  }
  // Binomial(n, 0.7): standard deviation of the rate sqrt(0.21 / n) = 0.0015, so 0.01 is ~7 sigma.
  EXPECT_NEAR(double(kept) / n, 1.0 - p, 0.01);
  // Backward uses the same mask and scale: with dy = 1, dx equals y.
  Tensor dy(y->value.shape());
  dy.fill(1.0f);
  tape.backward(y, dy);
  EXPECT_EQ(x->grad.to_vector(), y->value.to_vector());
}

TEST(LayerDropout, SeedDeterminesTheMasks) {
  const Var x = make_var(random_tensor(Shape{16, 64}, 60, 0.5f, 1.0f));  // no zeros, so y == 0 means dropped
  Tape tape;
  Dropout a(0.5f, 123), b(0.5f, 123), c(0.5f, 124);
  const auto first = a.forward(tape, x)->value.to_vector();
  EXPECT_EQ(first, b.forward(tape, x)->value.to_vector());
  EXPECT_NE(first, c.forward(tape, x)->value.to_vector());
  EXPECT_NE(first, a.forward(tape, x)->value.to_vector());  // a fresh mask every forward
  a.reseed(123);
  EXPECT_EQ(first, a.forward(tape, x)->value.to_vector());  // reseeding restarts the stream
}

TEST(LayerDropout, RejectsProbabilityOutsideZeroToOne) {
  expect_invalid_argument([] { Dropout(1.0f); }, {"Dropout", "[0, 1)"});
  expect_invalid_argument([] { Dropout(-0.1f); }, {"Dropout", "-0.1"});
}

// ---------------------------------------------------------------------------------------------------------------
// Softmax cross-entropy, add, ReLU6, pooling: errors and conventions.

TEST(LayerSoftmaxCrossEntropy, ReturnsAScalarAndTheProbabilities) {
  Var logits = make_var(random_tensor(Shape{3, 4}, 70, -3.0f, 3.0f), /*requires_grad=*/true);
  Tape tape;
  Tensor probs;
  Var loss = softmax_cross_entropy(tape, logits, {0, 3, 1}, 0.0f, &probs);
  EXPECT_EQ(loss->value.numel(), 1);
  ASSERT_EQ(probs.shape(), (Shape{3, 4}));
  double expected = 0.0;
  for (int b = 0; b < 3; ++b) {
    double sum = 0.0;
    for (int k = 0; k < 4; ++k) sum += probs[b * 4 + k];
    EXPECT_NEAR(sum, 1.0, 1e-6) << b;
    expected -= std::log(probs[b * 4 + (b == 0 ? 0 : b == 1 ? 3 : 1)]) / 3.0;
  }
  EXPECT_NEAR(loss->value[0], expected, 1e-5);
  tape.backward(loss);
  for (int b = 0; b < 3; ++b) {  // each row of d loss / d logits sums to zero (softmax is shift-invariant)
    double sum = 0.0;
    for (int k = 0; k < 4; ++k) sum += logits->grad[b * 4 + k];
    EXPECT_NEAR(sum, 0.0, 1e-6) << b;
  }
}

TEST(LayerSoftmaxCrossEntropy, RejectsBadLabelsAndShapes) {
  Var logits = make_var(Tensor(Shape{2, 4}));
  Tape tape;
  expect_invalid_argument([&] { softmax_cross_entropy(tape, logits, {0, 4}); }, {"label 4", "index 1", "[0, 4)"});
  expect_invalid_argument([&] { softmax_cross_entropy(tape, logits, {-1, 0}); }, {"label -1", "index 0"});
  expect_invalid_argument([&] { softmax_cross_entropy(tape, logits, {0}); }, {"1 labels", "(2, 4)"});
  expect_invalid_argument([&] { softmax_cross_entropy(tape, make_var(Tensor(Shape{2, 1, 4})), {0, 1}); },
                          {"(2, 1, 4)"});
  expect_invalid_argument([&] { softmax_cross_entropy(tape, logits, {0, 1}, 1.5f); }, {"label_smoothing", "1.5"});
}

TEST(LayerAdd, RejectsMismatchedShapes) {
  Tape tape;
  expect_invalid_argument([&] { add(tape, make_var(Tensor(Shape{1, 4, 4, 8})), make_var(Tensor(Shape{1, 4, 4, 16}))); },
                          {"add", "(1, 4, 4, 8)", "(1, 4, 4, 16)"});
}

TEST(LayerAdd, AVarAddedToItselfGetsBothGradients) {
  Var x = make_var(random_tensor(Shape{2, 3}, 80), /*requires_grad=*/true);
  Tape tape;
  Var y = add(tape, x, x);
  const Tensor dy = random_tensor(Shape{2, 3}, 81);
  tape.backward(y, dy);
  for (int64_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(x->grad[i], 2.0f * dy[i]) << i;
}

TEST(LayerReLU6, ClampsToZeroSixAndPassesGradientOnlyInside) {
  Var x = make_var(Tensor(Shape{5}, {-1.0f, 0.5f, 3.0f, 5.5f, 7.0f}), /*requires_grad=*/true);
  Tape tape;
  ReLU6 relu6;
  Var y = relu6.forward(tape, x);
  EXPECT_EQ(y->value.to_vector(), (std::vector<float>{0.0f, 0.5f, 3.0f, 5.5f, 6.0f}));
  tape.backward(y, Tensor(Shape{5}, {1, 2, 3, 4, 5}));
  EXPECT_EQ(x->grad.to_vector(), (std::vector<float>{0, 2, 3, 4, 0}));
}

TEST(LayerGlobalAvgPool, RejectsNonImageInput) {
  GlobalAvgPool pool;
  Tape tape;
  expect_invalid_argument([&] { pool.forward(tape, make_var(Tensor(Shape{2, 8}))); }, {"GlobalAvgPool", "(2, 8)"});
}

}  // namespace
}  // namespace mriscan
