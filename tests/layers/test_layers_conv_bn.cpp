// ConvBn, the conv + BN + ReLU6 unit: in training mode BN and ReLU6 run as one fused node, which must compute what
// the unfused layers compute (conv, BatchNorm2d, ReLU6): the output, the gradients of the input and of every
// parameter, and the running statistics. Eval mode keeps the separate ReLU6 node. The kernels themselves are
// checked in tests/engine/test_kernels_fused_bn.cpp and test_grad_norm_kernels.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "layers/batch_norm.h"
#include "layers/inverted_residual.h"
#include "layers/pointwise_conv2d.h"
#include "layers/relu6.h"
#include "tests/support/random_tensor.h"

namespace mriscan {
namespace {

using testing::random_tensor;

float max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.numel(), b.numel());
  float worst = 0.0f;
  for (int64_t i = 0; i < a.numel() && i < b.numel(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

std::vector<std::string> op_names(const Tape& tape) {
  std::vector<std::string> names;
  for (const TapeNode& node : tape.nodes()) names.push_back(node.op_name);
  return names;
}

// gamma 3, beta 3: outputs on both flat sides of ReLU6, so the fused mask matters.
void widen(const Var& gamma, const Var& beta) {
  gamma->value.fill(3.0f);
  beta->value.fill(3.0f);
}

TEST(LayerConvBn, TrainingFusesBatchNormAndReLU6AndMatchesTheLayersApart) {
  constexpr int kIn = 5, kOut = 19;
  std::mt19937 rng_fused(7), rng_apart(7);  // same seed: the same conv weights
  ConvBn fused(std::make_unique<PointwiseConv2d>(kIn, kOut, false, rng_fused), kOut, /*relu6=*/true);
  PointwiseConv2d conv(kIn, kOut, false, rng_apart);
  BatchNorm2d bn(kOut);
  ReLU6 relu6;
  widen(fused.bn().weight(), fused.bn().bias());
  widen(bn.weight(), bn.bias());
  fused.set_training(true);
  bn.set_training(true);

  const Tensor input = random_tensor(Shape{2, 4, 3, kIn}, 8), seed = random_tensor(Shape{2, 4, 3, kOut}, 9);
  Var x_fused = make_var(input, true), x_apart = make_var(input, true);
  Tape tape_fused, tape_apart;
  Var z_fused = fused.forward(tape_fused, x_fused);
  Var z_apart = relu6.forward(tape_apart, bn.forward(tape_apart, conv.forward(tape_apart, x_apart)));
  const auto names = op_names(tape_fused);
  EXPECT_EQ(std::count(names.begin(), names.end(), "relu6"), 0) << "ReLU6 should be fused into batch_norm";
  EXPECT_EQ(std::count(names.begin(), names.end(), "batch_norm"), 1);
  EXPECT_EQ(names.size() + 1, op_names(tape_apart).size());

  int flat = 0;
  for (int64_t i = 0; i < z_fused->value.numel(); ++i) flat += z_fused->value[i] == 0.0f || z_fused->value[i] == 6.0f;
  EXPECT_GT(flat, 0);
  EXPECT_LT(max_abs_diff(z_fused->value, z_apart->value), 1e-5f);

  tape_fused.backward(z_fused, seed);
  tape_apart.backward(z_apart, seed);
  EXPECT_LT(max_abs_diff(x_fused->grad, x_apart->grad), 1e-5f);
  std::vector<NamedParameter> params_fused, params_apart;
  fused.collect_parameters("", params_fused);
  conv.collect_parameters("0.", params_apart);
  bn.collect_parameters("1.", params_apart);
  ASSERT_EQ(params_fused.size(), params_apart.size());
  for (size_t i = 0; i < params_fused.size(); ++i) {
    EXPECT_EQ(params_fused[i].name, params_apart[i].name);
    EXPECT_LT(max_abs_diff(params_fused[i].var->grad, params_apart[i].var->grad), 1e-4f) << params_fused[i].name;
  }
  EXPECT_LT(max_abs_diff(fused.bn().running_mean(), bn.running_mean()), 1e-6f);
  EXPECT_LT(max_abs_diff(fused.bn().running_var(), bn.running_var()), 1e-6f);
}

TEST(LayerConvBn, EvalModeKeepsTheSeparateReLU6) {
  std::mt19937 rng(3);
  ConvBn unit(std::make_unique<PointwiseConv2d>(3, 4, false, rng), 4, /*relu6=*/true);
  unit.set_training(false);
  Tape tape;
  Var z = unit.forward(tape, make_var(random_tensor(Shape{1, 2, 2, 3}, 4), true));
  const auto names = op_names(tape);
  EXPECT_EQ(std::count(names.begin(), names.end(), "relu6"), 1);
  for (int64_t i = 0; i < z->value.numel(); ++i) EXPECT_TRUE(z->value[i] >= 0.0f && z->value[i] <= 6.0f);
}

}  // namespace
}  // namespace mriscan
