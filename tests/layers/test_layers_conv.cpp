// Behaviour of the convolution and linear layers on the tape: output shapes (stride 2 on odd sizes), the
// needs-grad mask (a frozen weight or an input that needs no gradient gets no buffer and no work), gradient
// accumulation across backward calls, parameter names and layouts, initialisation statistics and shape errors.
// What it is not: a numerical check of the values (test_golden_conv_ops compares with PyTorch, and
// test_grad_conv_kernels checks the kernels' gradients by finite differences).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "layers/conv2d.h"
#include "layers/depthwise_conv2d.h"
#include "layers/linear.h"
#include "layers/pointwise_conv2d.h"
#include "tests/support/random_tensor.h"

namespace mriscan {
namespace {

using testing::random_tensor;

// One layer configuration to run every behaviour test on.
struct LayerCase {
  std::string name;
  std::function<std::unique_ptr<Layer>(std::mt19937&)> make;  // with a bias, so dbias is covered too
  Shape input;                                                // (N, H, W, C) or (N, F)
};
void PrintTo(const LayerCase& c, std::ostream* os) { *os << c.name; }

std::vector<LayerCase> layer_cases() {
  return {
      {"Conv2d", [](std::mt19937& rng) { return std::make_unique<Conv2d>(3, 4, 3, 2, 1, true, rng); },
       Shape{2, 7, 5, 3}},
      {"DepthwiseConv2d", [](std::mt19937& rng) { return std::make_unique<DepthwiseConv2d>(5, 2, true, rng); },
       Shape{2, 7, 5, 5}},
      {"PointwiseConv2d", [](std::mt19937& rng) { return std::make_unique<PointwiseConv2d>(3, 6, true, rng); },
       Shape{2, 3, 5, 3}},
      {"Linear", [](std::mt19937& rng) { return std::make_unique<Linear>(6, 4, rng); }, Shape{3, 6}},
  };
}

class LayerConvBehaviour : public ::testing::TestWithParam<LayerCase> {
 protected:
  void SetUp() override {
    std::mt19937 rng(7);
    layer = GetParam().make(rng);
    layer->collect_parameters("", params);
    ASSERT_EQ(params.size(), 2u);  // weight, bias
  }
  Var weight() const { return params[0].var; }
  Var bias() const { return params[1].var; }
  // Forward on x, then backward with a fixed random seed gradient on the output.
  void forward_backward(const Var& x, Tape& tape) {
    Var y = layer->forward(tape, x);
    tape.backward(y, random_tensor(y->value.shape(), 99));
  }

  std::unique_ptr<Layer> layer;
  std::vector<NamedParameter> params;
};

TEST_P(LayerConvBehaviour, ParametersAreNamedWeightThenBiasAndRequireGrad) {
  std::vector<NamedParameter> named;
  layer->collect_parameters("features.0.0.", named);
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].name, "features.0.0.weight");
  EXPECT_EQ(named[1].name, "features.0.0.bias");
  EXPECT_TRUE(named[0].var->requires_grad);
  EXPECT_TRUE(named[1].var->requires_grad);
  for (int64_t i = 0; i < bias()->value.numel(); ++i) EXPECT_EQ(bias()->value[i], 0.0f) << "bias starts at zero";
}

TEST_P(LayerConvBehaviour, FrozenWeightGetsNoGradientButBiasAndInputDo) {
  // A twin with the same seed (identical parameters) and nothing frozen gives the reference gradients.
  std::mt19937 rng(7);
  std::unique_ptr<Layer> twin = GetParam().make(rng);
  std::vector<NamedParameter> twin_params;
  twin->collect_parameters("", twin_params);
  Var twin_x = make_var(random_tensor(GetParam().input, 1), true);
  Tape twin_tape;
  Var twin_y = twin->forward(twin_tape, twin_x);
  twin_tape.backward(twin_y, random_tensor(twin_y->value.shape(), 99));

  weight()->requires_grad = false;
  Var x = make_var(random_tensor(GetParam().input, 1), /*requires_grad=*/true);
  Tape tape;
  forward_backward(x, tape);
  EXPECT_FALSE(weight()->grad.defined());
  ASSERT_TRUE(bias()->grad.defined());
  ASSERT_TRUE(x->grad.defined());
  // Freezing the weight must not change the other gradients (the bias takes a different kernel path then).
  const Tensor& twin_dbias = twin_params[1].var->grad;
  for (int64_t i = 0; i < twin_dbias.numel(); ++i)
    EXPECT_NEAR(bias()->grad[i], twin_dbias[i], 1e-5f * (1 + std::abs(twin_dbias[i]))) << "dbias " << i;
  for (int64_t i = 0; i < x->grad.numel(); ++i)
    EXPECT_NEAR(x->grad[i], twin_x->grad[i], 1e-5f * (1 + std::abs(twin_x->grad[i]))) << "dx " << i;
}

TEST_P(LayerConvBehaviour, InputThatNeedsNoGradGetsNone) {
  Var x = make_var(random_tensor(GetParam().input, 1), /*requires_grad=*/false);
  Tape tape;
  forward_backward(x, tape);
  EXPECT_FALSE(x->grad.defined());
  EXPECT_TRUE(weight()->grad.defined());
  EXPECT_TRUE(bias()->grad.defined());
}

TEST_P(LayerConvBehaviour, FullyFrozenLayerOnAPlainInputRecordsNothing) {
  weight()->requires_grad = false;
  bias()->requires_grad = false;
  Var x = make_var(random_tensor(GetParam().input, 1), /*requires_grad=*/false);
  Tape tape;
  Var y = layer->forward(tape, x);
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_FALSE(y->requires_grad);
}

// Two forward/backward passes without zero_grad: every gradient is the sum of the two single-pass gradients.
TEST_P(LayerConvBehaviour, GradientsAccumulateOverTwoBackwardCalls) {
  Var x1 = make_var(random_tensor(GetParam().input, 1), true);
  Var x2 = make_var(random_tensor(GetParam().input, 2), true);
  auto single_pass = [&](const Var& x) {
    zero_grad({weight(), bias()});
    Tape tape;
    forward_backward(x, tape);
    return std::vector<Tensor>{weight()->grad.clone(), bias()->grad.clone()};
  };
  const std::vector<Tensor> g1 = single_pass(x1), g2 = single_pass(x2);
  const Tensor dx1 = x1->grad.clone();

  zero_grad({weight(), bias(), x1});
  Tape first, second, third;  // one tape per pass: a tape replays every node it holds on each backward
  forward_backward(x1, first);
  forward_backward(x2, second);
  forward_backward(x1, third);  // x1 again: its own gradient doubles
  for (int p = 0; p < 2; ++p) {
    const Tensor& g = params[p].var->grad;
    for (int64_t i = 0; i < g.numel(); ++i)
      EXPECT_NEAR(g[i], 2 * g1[p][i] + g2[p][i], 1e-4f * (1 + std::abs(g[i]))) << params[p].name << " " << i;
  }
  for (int64_t i = 0; i < dx1.numel(); ++i) EXPECT_NEAR(x1->grad[i], 2 * dx1[i], 1e-5f * (1 + std::abs(dx1[i]))) << i;
}

TEST_P(LayerConvBehaviour, WrongInputShapeThrowsNamingLayerAndShape) {
  const Shape bad = GetParam().input.rank() == 4 ? Shape{1, 4, 4, 2} : Shape{2, 5};
  Var x = make_var(Tensor(bad));
  Tape tape;
  try {
    layer->forward(tape, x);
    FAIL() << "expected std::invalid_argument for input " << bad.str();
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(GetParam().name), std::string::npos) << message;
    EXPECT_NE(message.find(bad.str()), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(Layers, LayerConvBehaviour, ::testing::ValuesIn(layer_cases()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------------------------
// Shapes, layouts and initialisation, layer by layer.

TEST(LayerConv2d, Stride2OnOddSizesRoundsDown) {
  std::mt19937 rng(1);
  Tape tape;
  // pad 1: OH = floor((7 + 2 - 3) / 2) + 1 = 4, OW = floor((9 + 2 - 3) / 2) + 1 = 5.
  Conv2d padded(3, 8, 3, 2, 1, false, rng);
  EXPECT_EQ(padded.forward(tape, make_var(Tensor(Shape{2, 7, 9, 3})))->value.shape(), (Shape{2, 4, 5, 8}));
  // pad 0: OH = floor((7 - 3) / 2) + 1 = 3, OW = floor((9 - 3) / 2) + 1 = 4.
  Conv2d unpadded(3, 8, 3, 2, 0, false, rng);
  EXPECT_EQ(unpadded.forward(tape, make_var(Tensor(Shape{2, 7, 9, 3})))->value.shape(), (Shape{2, 3, 4, 8}));
}

TEST(LayerConv2d, WeightLayoutNamesAndKaimingFanOutScale) {
  std::mt19937 rng(3);
  Conv2d conv(16, 32, 3, 1, 1, false, rng);
  std::vector<NamedParameter> named;
  conv.collect_parameters("stem.", named);
  ASSERT_EQ(named.size(), 1u) << "no bias parameter without a bias";
  EXPECT_EQ(named[0].name, "stem.weight");
  EXPECT_EQ(named[0].var->value.shape(), (Shape{3, 3, 16, 32}));  // (KH, KW, C_in, C_out)
  // kaiming_normal fan_out: std = sqrt(2 / (C_out * KH * KW)) = sqrt(2 / 288) ~ 0.0833, over 4608 samples.
  const Tensor& w = named[0].var->value;
  double sum = 0.0, sum_sq = 0.0;
  for (int64_t i = 0; i < w.numel(); ++i) sum += w[i], sum_sq += double(w[i]) * w[i];
  const double mean = sum / w.numel(), stddev = std::sqrt(sum_sq / w.numel() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.005);
  EXPECT_NEAR(stddev, std::sqrt(2.0 / 288.0), 0.004);
}

TEST(LayerDepthwiseConv2d, Stride2OnOddSizesGivesCeilHalfAndStride1KeepsSize) {
  std::mt19937 rng(1);
  Tape tape;
  DepthwiseConv2d stride2(4, 2, false, rng);
  EXPECT_EQ(stride2.forward(tape, make_var(Tensor(Shape{1, 7, 9, 4})))->value.shape(), (Shape{1, 4, 5, 4}));
  DepthwiseConv2d stride1(4, 1, false, rng);
  EXPECT_EQ(stride1.forward(tape, make_var(Tensor(Shape{1, 7, 9, 4})))->value.shape(), (Shape{1, 7, 9, 4}));
  std::vector<NamedParameter> named;
  stride1.collect_parameters("", named);
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].var->value.shape(), (Shape{3, 3, 4}));  // (K, K, C)
}

TEST(LayerPointwiseConv2d, KeepsSpatialSizeAndUsesInOutWeight) {
  std::mt19937 rng(1);
  Tape tape;
  PointwiseConv2d pw(5, 7, false, rng);
  EXPECT_EQ(pw.forward(tape, make_var(Tensor(Shape{2, 3, 1, 5})))->value.shape(), (Shape{2, 3, 1, 7}));
  EXPECT_EQ(pw.weight()->value.shape(), (Shape{5, 7}));  // (C_in, C_out)
  EXPECT_EQ(pw.bias(), nullptr);
}

TEST(LayerLinear, ShapesAndSmallNormalInit) {
  std::mt19937 rng(5);
  Tape tape;
  Linear fc(1280, 4, rng);
  EXPECT_EQ(fc.forward(tape, make_var(Tensor(Shape{3, 1280})))->value.shape(), (Shape{3, 4}));
  EXPECT_EQ(fc.weight()->value.shape(), (Shape{1280, 4}));  // (in, out)
  EXPECT_EQ(fc.bias()->value.shape(), (Shape{4}));
  // normal(0, 0.01) over 5120 samples.
  const Tensor& w = fc.weight()->value;
  double sum_sq = 0.0;
  for (int64_t i = 0; i < w.numel(); ++i) sum_sq += double(w[i]) * w[i];
  EXPECT_NEAR(std::sqrt(sum_sq / w.numel()), 0.01, 0.0005);
}

TEST(LayerLinear, SameSeedGivesSameWeights) {
  std::mt19937 rng_a(42), rng_b(42);
  Linear a(8, 3, rng_a), b(8, 3, rng_b);
  EXPECT_EQ(a.weight()->value.to_vector(), b.weight()->value.to_vector());
}

}  // namespace
}  // namespace mriscan
