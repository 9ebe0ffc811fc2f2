// Batch norm (training and eval), ReLU6, the residual add, global average pooling and softmax cross-entropy
// against PyTorch: tests/golden/ops.json (written in float64 by tests/golden/make_golden_ops.py, engine layout NHWC)
// holds the inputs, an upstream gradient dy (for the loss: d loss = 1), and torch's outputs and gradients; for
// batchnorm_train also the running statistics after one update. Each case runs twice:
//   - through the LAYER (float, via the tape and whatever `kernels()` selected): forward, then backward with dy;
//     max |diff| must stay below 1e-4 of the largest |value| of that tensor;
//   - through the reference KERNELS in double: max |diff| must stay below 1e-9, which leaves room only for
//     summation order.
// The max differences are printed for every tensor. What it is not: a gradient check (test_grad_norm_kernels)
// or a whole-model check (tests/models/).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/kernels/batchnorm_ref.h"
#include "engine/kernels/elementwise_ref.h"
#include "engine/kernels/pool_ref.h"
#include "engine/kernels/softmax_xent_ref.h"
#include "layers/add.h"
#include "layers/batch_norm.h"
#include "layers/global_avg_pool.h"
#include "layers/relu6.h"
#include "layers/softmax_cross_entropy.h"
#include "tests/support/golden_ops.h"

namespace mriscan {
namespace {

using testing::expect_close_double;
using testing::expect_close_float;
using testing::GoldenCase;

// ---------------------------------------------------------------------------------------------------------------
// Batch norm.

// A BatchNorm2d holding the case's gamma, beta and running statistics.
std::unique_ptr<BatchNorm2d> make_batch_norm(const GoldenCase& c) {
  const auto& p = c.params();
  auto bn = std::make_unique<BatchNorm2d>(p.at("channels").get<int>(), p.at("eps").get<float>(),
                                          p.at("momentum").get<float>());
  const auto copy = [](const Tensor& from, Tensor& to) {
    std::copy(from.data(), from.data() + from.numel(), to.data());
  };
  copy(c.tensor("gamma"), bn->weight()->value);
  copy(c.tensor("beta"), bn->bias()->value);
  copy(c.tensor("running_mean"), bn->running_mean());
  copy(c.tensor("running_var"), bn->running_var());
  return bn;
}

void run_batch_norm_layer(const GoldenCase& c, bool training) {
  std::unique_ptr<BatchNorm2d> bn = make_batch_norm(c);
  bn->set_training(training);
  Var x = make_var(c.tensor("x"), /*requires_grad=*/true);  // (N, H, W, C)
  Tape tape;
  Var y = bn->forward(tape, x);
  expect_close_float(c, "y", y->value);
  tape.backward(y, c.tensor("dy"));
  expect_close_float(c, "dx", x->grad);
  expect_close_float(c, "dgamma", bn->weight()->grad);
  expect_close_float(c, "dbeta", bn->bias()->grad);
  // Training updates the running statistics (unbiased variance); eval must leave them untouched.
  expect_close_float(c, training ? "running_mean_after" : "running_mean", bn->running_mean());
  expect_close_float(c, training ? "running_var_after" : "running_var", bn->running_var());
}

TEST(GoldenBatchNormLayer, TrainingModeMatchesPyTorch) {
  LOAD_CASE_OR_SKIP(c, "batchnorm_train");
  run_batch_norm_layer(c, /*training=*/true);
}

TEST(GoldenBatchNormLayer, EvalModeMatchesPyTorch) {
  LOAD_CASE_OR_SKIP(c, "batchnorm_eval");
  run_batch_norm_layer(c, /*training=*/false);
}

TEST(GoldenBatchNormRef, TrainingModeMatchesPyTorchInDouble) {
  LOAD_CASE_OR_SKIP(c, "batchnorm_train");
  const int C = c.params().at("channels").get<int>();
  const BatchNormParams p{
      .rows = c.params().at("rows").get<int64_t>(), .channels = C, .eps = c.params().at("eps").get<float>()};
  const double momentum = c.params().at("momentum").get<double>();
  const auto x = c.data("x"), gamma = c.data("gamma"), beta = c.data("beta"), dy = c.data("dy");  // (M, C), (C)
  std::vector<double> y(x.size()), mean(C), inv_std(C), dx(x.size(), 0.0), dgamma(C, 0.0), dbeta(C, 0.0);
  batchnorm_train_forward_ref<double>(p, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), inv_std.data());
  batchnorm_train_backward_ref<double>(p, dy.data(), x.data(), gamma.data(), nullptr, mean.data(), inv_std.data(),
                                       dx.data(), dgamma.data(), dbeta.data());
  expect_close_double(c, "y", y);
  expect_close_double(c, "dx", dx);
  expect_close_double(c, "dgamma", dgamma);
  expect_close_double(c, "dbeta", dbeta);
  // The running update from the kernel's statistics, as the layer does it: unbiased variance, PyTorch momentum.
  std::vector<double> running_mean = c.data("running_mean"), running_var = c.data("running_var");
  for (int ch = 0; ch < C; ++ch) {
    const double biased_var = 1.0 / (inv_std[ch] * inv_std[ch]) - p.eps;
    running_mean[ch] = (1 - momentum) * running_mean[ch] + momentum * mean[ch];
    running_var[ch] = (1 - momentum) * running_var[ch] + momentum * biased_var * p.rows / (p.rows - 1);
  }
  expect_close_double(c, "running_mean_after", running_mean);
  expect_close_double(c, "running_var_after", running_var);
}

TEST(GoldenBatchNormRef, EvalModeMatchesPyTorchInDouble) {
  LOAD_CASE_OR_SKIP(c, "batchnorm_eval");
  const int C = c.params().at("channels").get<int>();
  const BatchNormParams p{
      .rows = c.params().at("rows").get<int64_t>(), .channels = C, .eps = c.params().at("eps").get<float>()};
  const auto x = c.data("x"), gamma = c.data("gamma"), beta = c.data("beta"), dy = c.data("dy");
  const auto mean = c.data("running_mean"), var = c.data("running_var");
  std::vector<double> inv_std(C), scale(C), shift(C);  // (C) each
  for (int ch = 0; ch < C; ++ch) {
    inv_std[ch] = 1.0 / std::sqrt(var[ch] + p.eps);
    scale[ch] = gamma[ch] * inv_std[ch];
    shift[ch] = beta[ch] - mean[ch] * scale[ch];
  }
  std::vector<double> y(x.size()), dx(x.size(), 0.0), dgamma(C, 0.0), dbeta(C, 0.0);
  channel_affine_forward_ref<double>(p.rows, C, x.data(), scale.data(), shift.data(), y.data());
  batchnorm_eval_backward_ref<double>(p, dy.data(), x.data(), mean.data(), inv_std.data(), gamma.data(), dx.data(),
                                      dgamma.data(), dbeta.data());
  expect_close_double(c, "y", y);
  expect_close_double(c, "dx", dx);
  expect_close_double(c, "dgamma", dgamma);
  expect_close_double(c, "dbeta", dbeta);
}

// ---------------------------------------------------------------------------------------------------------------
// ReLU6, add, global average pool.

TEST(GoldenElementwiseLayer, ReLU6MatchesPyTorch) {
  LOAD_CASE_OR_SKIP(c, "relu6");
  ReLU6 relu6;
  Var x = make_var(c.tensor("x"), /*requires_grad=*/true);
  Tape tape;
  Var y = relu6.forward(tape, x);
  expect_close_float(c, "y", y->value);
  tape.backward(y, c.tensor("dy"));
  expect_close_float(c, "dx", x->grad);
}

TEST(GoldenElementwiseRef, ReLU6MatchesPyTorchInDouble) {
  LOAD_CASE_OR_SKIP(c, "relu6");
  const auto x = c.data("x"), dy = c.data("dy");
  const auto n = static_cast<int64_t>(x.size());
  std::vector<double> y(x.size()), dx(x.size(), 0.0);
  relu6_forward_ref<double>(n, x.data(), y.data());
  relu6_backward_ref<double>(n, x.data(), dy.data(), dx.data());
  expect_close_double(c, "y", y);
  expect_close_double(c, "dx", dx);
}

TEST(GoldenElementwiseLayer, AddMatchesPyTorch) {
  LOAD_CASE_OR_SKIP(c, "add");
  Var a = make_var(c.tensor("a"), true), b = make_var(c.tensor("b"), true);
  Tape tape;
  Var y = add(tape, a, b);
  expect_close_float(c, "y", y->value);
  tape.backward(y, c.tensor("dy"));
  expect_close_float(c, "da", a->grad);
  expect_close_float(c, "db", b->grad);
}

TEST(GoldenElementwiseRef, AddMatchesPyTorchInDouble) {
  LOAD_CASE_OR_SKIP(c, "add");
  const auto a = c.data("a"), b = c.data("b"), dy = c.data("dy");
  const auto n = static_cast<int64_t>(a.size());
  std::vector<double> y(a.size()), da(a.size(), 0.0), db(a.size(), 0.0);
  add_forward_ref<double>(n, a.data(), b.data(), y.data());
  axpy_ref<double>(n, 1.0, dy.data(), da.data());
  axpy_ref<double>(n, 1.0, dy.data(), db.data());
  expect_close_double(c, "y", y);
  expect_close_double(c, "da", da);
  expect_close_double(c, "db", db);
}

TEST(GoldenPoolLayer, GlobalAvgPoolMatchesPyTorch) {
  LOAD_CASE_OR_SKIP(c, "global_avg_pool");
  GlobalAvgPool pool;
  Var x = make_var(c.tensor("x"), /*requires_grad=*/true);  // (N, H, W, C)
  Tape tape;
  Var y = pool.forward(tape, x);  // (N, C)
  ASSERT_EQ(y->value.shape(), c.shape("y"));
  expect_close_float(c, "y", y->value);
  tape.backward(y, c.tensor("dy"));
  expect_close_float(c, "dx", x->grad);
}

TEST(GoldenPoolRef, GlobalAvgPoolMatchesPyTorchInDouble) {
  LOAD_CASE_OR_SKIP(c, "global_avg_pool");
  const auto& q = c.params();
  const PoolParams p{.batch = q.at("batch").get<int>(),
                     .h = q.at("h").get<int>(),
                     .w = q.at("w").get<int>(),
                     .channels = q.at("channels").get<int>()};
  const auto x = c.data("x"), dy = c.data("dy");
  std::vector<double> y(dy.size()), dx(x.size(), 0.0);
  global_avg_pool_forward_ref<double>(p, x.data(), y.data());
  global_avg_pool_backward_ref<double>(p, dy.data(), dx.data());
  expect_close_double(c, "y", y);
  expect_close_double(c, "dx", dx);
}

// ---------------------------------------------------------------------------------------------------------------
// Softmax cross-entropy, with and without label smoothing.

class GoldenSoftmaxXent : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenSoftmaxXent, LayerMatchesPyTorch) {
  LOAD_CASE_OR_SKIP(c, GetParam());
  Var logits = make_var(c.tensor("logits"), /*requires_grad=*/true);  // (B, K)
  Tape tape;
  Var loss = softmax_cross_entropy(tape, logits, c.labels(), c.params().at("label_smoothing").get<float>());
  expect_close_float(c, "loss", loss->value);
  tape.backward(loss);
  expect_close_float(c, "dlogits", logits->grad);
}

TEST_P(GoldenSoftmaxXent, ReferenceMatchesPyTorchInDouble) {
  LOAD_CASE_OR_SKIP(c, GetParam());
  const auto& q = c.params();
  const SoftmaxCrossEntropyParams p{.batch = q.at("batch").get<int>(),
                                    .classes = q.at("classes").get<int>(),
                                    .label_smoothing = q.at("label_smoothing").get<float>()};
  const auto logits = c.data("logits");
  const std::vector<int> labels = c.labels();
  std::vector<double> probs(logits.size()), dlogits(logits.size(), 0.0);
  const double loss = softmax_xent_forward_ref<double>(p, logits.data(), labels.data(), probs.data());
  softmax_xent_backward_ref<double>(p, 1.0, probs.data(), labels.data(), dlogits.data());
  // The params struct holds label_smoothing as a float: 0.1f is 0.1 + 1.5e-9. The loss is affine in s with
  // slope mean_b(log p[b,label] - mean_k log p[b,k]), at most max |log p| in size, so the rounding may move the
  // loss by up to |s_float - s| * max |log p| (~5e-9 here), on top of the usual summation-order allowance.
  const double s_rounding = std::abs(double(p.label_smoothing) - q.at("label_smoothing").get<double>());
  double max_abs_log_p = 0.0;
  for (double prob : probs) max_abs_log_p = std::max(max_abs_log_p, std::abs(std::log(prob)));
  expect_close_double(c, "loss", {loss}, testing::kDoubleAbsoluteTolerance + s_rounding * max_abs_log_p);
  expect_close_double(c, "dlogits", dlogits);  // slope in s is (one_hot - 1/K) / B: the rounding is < 1e-9
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenSoftmaxXent, ::testing::Values("softmax_xent", "softmax_xent_smooth"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace mriscan
