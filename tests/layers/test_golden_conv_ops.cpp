// The convolution and linear ops against PyTorch: tests/golden/ops.json (written in float64 by
// tests/golden/make_golden_ops.py, engine layouts) holds x, w, bias, an upstream gradient dy, and torch's y, dx, dw,
// dbias. Each case runs twice:
//   - through the LAYER (float, via the tape and whatever `kernels()` selected): forward, then backward with dy;
//     max |diff| must stay below 1e-4 of the largest |value| of that tensor;
//   - through the reference KERNELS in double: max |diff| must stay below 1e-9, which leaves room only for
//     summation order, so any indexing or padding slip shows.
// The max differences are printed for every tensor. What it is not: a whole-model check (tests/models/).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/kernels/conv2d_ref.h"
#include "engine/kernels/depthwise_ref.h"
#include "engine/kernels/gemm_ref.h"
#include "layers/conv2d.h"
#include "layers/depthwise_conv2d.h"
#include "layers/linear.h"
#include "layers/pointwise_conv2d.h"
#include "tests/support/golden_ops.h"

namespace mriscan {
namespace {

using testing::expect_close_double;
using testing::expect_close_float;
using testing::GoldenCase;

const std::vector<std::string> kCases = {"conv2d_stem", "conv2d_k3s1p0", "depthwise_s1", "depthwise_s2",
                                         "pointwise",   "linear"};

// ---------------------------------------------------------------------------------------------------------------
// Layers, float, via the tape.

// The layer the case describes, with the golden weight and bias copied into its parameters.
std::unique_ptr<Layer> make_layer(const GoldenCase& c) {
  const std::string& op = c.op();
  std::mt19937 rng(0);  // initial values are overwritten below
  const bool bias = c.params().at("bias").get<bool>();
  std::unique_ptr<Layer> layer;
  if (op == "conv2d") {
    layer = std::make_unique<Conv2d>(c.param("in_c"), c.param("out_c"), c.param("kernel"), c.param("stride"),
                                     c.param("pad"), bias, rng);
  } else if (op == "depthwise_conv2d") {
    if (c.param("pad") != c.param("kernel") / 2)
      throw std::runtime_error(c.name() + ": DepthwiseConv2d only does 'same' padding kernel / 2");
    layer = std::make_unique<DepthwiseConv2d>(c.param("channels"), c.param("stride"), bias, rng, c.param("kernel"));
  } else if (op == "pointwise_conv2d") {
    layer = std::make_unique<PointwiseConv2d>(c.param("in_c"), c.param("out_c"), bias, rng);
  } else if (op == "linear") {
    layer = std::make_unique<Linear>(c.param("in"), c.param("out"), rng, bias);
  } else {
    throw std::runtime_error(c.name() + ": not a convolution or linear op: " + op);
  }
  std::vector<NamedParameter> params;
  layer->collect_parameters("", params);
  for (const NamedParameter& p : params) {
    const std::string golden_name = p.name == "weight" ? "w" : p.name;
    const Tensor golden = c.tensor(golden_name);
    if (golden.shape() != p.var->value.shape())
      throw std::runtime_error(c.name() + ": golden " + golden_name + " " + golden.shape().str() + " vs layer " +
                               p.name + " " + p.var->value.shape().str());
    std::copy(golden.data(), golden.data() + golden.numel(), p.var->value.data());
  }
  return layer;
}

class GoldenConvLayer : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenConvLayer, ForwardAndGradientsMatchPyTorch) {
  LOAD_CASE_OR_SKIP(c, GetParam());
  std::unique_ptr<Layer> layer = make_layer(c);
  std::vector<NamedParameter> params;
  layer->collect_parameters("", params);

  Var x = make_var(c.tensor("x"), /*requires_grad=*/true);
  Tape tape;
  Var y = layer->forward(tape, x);
  expect_close_float(c, "y", y->value);
  tape.backward(y, c.tensor("dy"));
  expect_close_float(c, "dx", x->grad);
  for (const NamedParameter& p : params) expect_close_float(c, p.name == "weight" ? "dw" : "dbias", p.var->grad);
}

INSTANTIATE_TEST_SUITE_P(Ops, GoldenConvLayer, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------------------------------------------------------
// Reference kernels, double. Forward overwrites; backward buffers start at zero since the kernels accumulate.

void run_conv2d_ref(const GoldenCase& c) {
  Conv2dParams p;
  p.batch = c.param("batch"), p.in_h = c.param("in_h"), p.in_w = c.param("in_w"), p.in_c = c.param("in_c");
  p.out_h = c.param("out_h"), p.out_w = c.param("out_w"), p.out_c = c.param("out_c");
  p.kernel_h = p.kernel_w = c.param("kernel"), p.stride = c.param("stride"), p.pad = c.param("pad");
  // x (N, H, W, Ci), w (KH, KW, Ci, Co), dy (N, OH, OW, Co)
  const auto x = c.data("x"), w = c.data("w"), dy = c.data("dy");
  const bool has_bias = c.has("bias");
  const std::vector<double> bias = has_bias ? c.data("bias") : std::vector<double>{};
  std::vector<double> y(dy.size()), dx(x.size()), dw(w.size()), dbias(bias.size());
  conv2d_forward_ref<double>(p, x.data(), w.data(), has_bias ? bias.data() : nullptr, y.data());
  conv2d_backward_input_ref<double>(p, dy.data(), w.data(), dx.data());
  conv2d_backward_weight_ref<double>(p, x.data(), dy.data(), dw.data(), has_bias ? dbias.data() : nullptr);
  expect_close_double(c, "y", y);
  expect_close_double(c, "dx", dx);
  expect_close_double(c, "dw", dw);
  if (has_bias) expect_close_double(c, "dbias", dbias);
}

void run_depthwise_ref(const GoldenCase& c) {
  DepthwiseParams p;
  p.batch = c.param("batch"), p.in_h = c.param("in_h"), p.in_w = c.param("in_w"), p.channels = c.param("channels");
  p.out_h = c.param("out_h"), p.out_w = c.param("out_w");
  p.kernel = c.param("kernel"), p.stride = c.param("stride"), p.pad = c.param("pad");
  const auto x = c.data("x"), w = c.data("w"), dy = c.data("dy");  // (N, H, W, C), (K, K, C), (N, OH, OW, C)
  const bool has_bias = c.has("bias");
  const std::vector<double> bias = has_bias ? c.data("bias") : std::vector<double>{};
  std::vector<double> y(dy.size()), dx(x.size()), dw(w.size()), dbias(bias.size());
  depthwise_forward_ref<double>(p, x.data(), w.data(), has_bias ? bias.data() : nullptr, y.data());
  depthwise_backward_input_ref<double>(p, dy.data(), w.data(), dx.data());
  depthwise_backward_weight_ref<double>(p, x.data(), dy.data(), dw.data(), has_bias ? dbias.data() : nullptr);
  expect_close_double(c, "y", y);
  expect_close_double(c, "dx", dx);
  expect_close_double(c, "dw", dw);
  if (has_bias) expect_close_double(c, "dbias", dbias);
}

// Pointwise conv and linear: y(M, Co) = x(M, Ci) . w(Ci, Co) + bias, with M = N*H*W or N.
void run_gemm_layer_ref(const GoldenCase& c, int rows, int in, int out) {
  const auto x = c.data("x"), w = c.data("w"), dy = c.data("dy");  // (M, Ci), (Ci, Co), (M, Co)
  std::vector<double> y(dy.size()), dx(x.size()), dw(w.size());
  gemm_ref<double>({.m = rows, .n = out, .k = in}, x.data(), w.data(), y.data());  // y = x . w
  gemm_ref<double>({.m = rows, .n = in, .k = out, .trans_b = true, .accumulate = true}, dy.data(), w.data(),
                   dx.data());  // dx = dy . w^T
  gemm_ref<double>({.m = in, .n = out, .k = rows, .trans_a = true, .accumulate = true}, x.data(), dy.data(),
                   dw.data());  // dw = x^T . dy
  if (c.has("bias")) {
    const auto bias = c.data("bias");
    std::vector<double> dbias(out, 0.0);
    for (int r = 0; r < rows; ++r)  // y += bias on every row; dbias = column sums of dy
      for (int j = 0; j < out; ++j) y[r * out + j] += bias[j], dbias[j] += dy[r * out + j];
    expect_close_double(c, "dbias", dbias);
  }
  expect_close_double(c, "y", y);
  expect_close_double(c, "dx", dx);
  expect_close_double(c, "dw", dw);
}

class GoldenConvRef : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenConvRef, ReferenceKernelsMatchPyTorchInDouble) {
  LOAD_CASE_OR_SKIP(c, GetParam());
  const std::string& op = c.op();
  if (op == "conv2d") {
    run_conv2d_ref(c);
  } else if (op == "depthwise_conv2d") {
    run_depthwise_ref(c);
  } else if (op == "pointwise_conv2d") {
    run_gemm_layer_ref(c, c.param("batch") * c.param("h") * c.param("w"), c.param("in_c"), c.param("out_c"));
  } else if (op == "linear") {
    run_gemm_layer_ref(c, c.param("batch"), c.param("in"), c.param("out"));
  } else {
    FAIL() << c.name() << ": not a convolution or linear op: " << op;
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, GoldenConvRef, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace mriscan
