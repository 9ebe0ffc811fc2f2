// FoldedConv and FoldedMobileNetV2 (BN folded into the conv, ReLU6 fused into its epilogue) against the unfused,
// taped eval-mode network they replace, under the selected kernel table (the suite runs again with
// MRISCAN_KERNELS=ref).
//
// The weights are torchvision's random initialisation and every batch norm gets NON-trivial statistics and affine
// parameters (gamma and beta random; running mean and variance measured on random images, then randomly perturbed:
// randomise_model), so that a fold that forgets a term, uses the wrong channel axis or confuses gamma with
// 1/sqrt(var + eps) is off by O(1). The classifier's weights are made larger than their N(0, 0.01) initialisation
// so that the logits depend on the features more than on the bias.
//
// Metric: max |folded - unfused| / max |unfused| per output. Both are float forwards of the same network that
// round differently (w * scale is rounded once in the fold; the unfused network rounds conv, then BN, separately),
// so they differ by what ~50 layers of float rounding add up to. A random deep network amplifies such differences:
// moving every INPUT value by one ulp already moves these networks' outputs by 4e-6..7e-6 relative (measured here
// as `floor`, the network's own float noise). The folded network must be as close to the unfused one as that:
// within max(kTolerance, 4 * floor), kTolerance = 1e-5. A wrong fold (a forgotten term, the wrong channel axis,
// gamma confused with 1/sqrt(var + eps)) is off by 1e-2..1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/kernels/matmul_precision.h"
#include "engine/parallel.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/depthwise_conv2d.h"
#include "layers/pointwise_conv2d.h"
#include "layers/relu6.h"
#include "models/folded_conv.h"
#include "models/folded_mobilenet_v2.h"
#include "models/mobilenet_v2.h"

namespace mriscan {
namespace {

constexpr double kTolerance = 1e-5;

void fill_uniform(Tensor& t, float low, float high, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(low, high);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = dist(rng);
}

// Random running statistics and affine parameters: mean in [-0.5, 0.5], var in [0.2, 2], gamma in [0.5, 1.5],
// beta in [-0.5, 0.5].
void randomise_batch_norm(BatchNorm2d& bn, std::mt19937& rng) {
  fill_uniform(bn.running_mean(), -0.5f, 0.5f, rng);
  fill_uniform(bn.running_var(), 0.2f, 2.0f, rng);
  fill_uniform(bn.weight()->value, 0.5f, 1.5f, rng);
  fill_uniform(bn.bias()->value, -0.5f, 0.5f, rng);
}

Tensor random_images(int batch, int size, uint32_t seed) {
  Tensor images(Shape{batch, size, size, 3});  // (N, S, S, 3)
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < images.numel(); ++i) images[i] = normal(rng);
  return images;
}

// Non-trivial batch norms that still keep 50 layers' activations in range (statistics drawn independently of
// the data would saturate every ReLU6 a few blocks in, and the output would no longer depend on the input):
//   gamma in [0.5, 1.5], beta and the classifier bias in [-0.5, 0.5], classifier weight in [-0.1, 0.1];
//   running statistics measured on `images` by one training-mode forward started from (0, 0) (each BN then
//   holds momentum * its batch statistic), then perturbed per channel: mean += U(-0.3, 0.3) * std, var *= U(0.5, 2).
void randomise_model(MobileNetV2& model, const Tensor& images, uint32_t seed) {
  constexpr float kMomentum = 0.1f;  // BatchNorm2d's default, which MobileNetV2 uses
  std::mt19937 rng(seed);
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (NamedParameter& p : model.parameters()) {
    Tensor& value = p.var->value;
    if (p.name == "classifier.1.weight") fill_uniform(value, -0.1f, 0.1f, rng);
    else if (value.shape().rank() == 1 && ends_with(p.name, "weight")) fill_uniform(value, 0.5f, 1.5f, rng);
    else if (value.shape().rank() == 1) fill_uniform(value, -0.5f, 0.5f, rng);
  }
  for (NamedBuffer& b : model.buffers()) b.tensor.zero();
  model.set_training(true);
  Tape tape;
  tape.set_enabled(false);
  model.forward_blocks(tape, make_var(images), 0, MobileNetV2::kNumBlocks);
  model.set_training(false);
  std::uniform_real_distribution<float> shift(-0.3f, 0.3f), factor(0.5f, 2.0f);
  std::vector<NamedBuffer> buffers = model.buffers();  // (running_mean, running_var) pairs, in that order
  for (size_t i = 0; i + 1 < buffers.size(); i += 2) {
    Tensor& mean = buffers[i].tensor;
    Tensor& var = buffers[i + 1].tensor;
    ASSERT_TRUE(ends_with(buffers[i].name, "running_mean") && ends_with(buffers[i + 1].name, "running_var"));
    for (int64_t c = 0; c < mean.numel(); ++c) {
      var[c] /= kMomentum;
      mean[c] = mean[c] / kMomentum + shift(rng) * std::sqrt(var[c]);
      var[c] *= factor(rng);
    }
  }
}

// max |a - b| / max |b|; shapes must match.
double relative_difference(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double worst = 0.0, scale = 0.0;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i) {
    worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return scale > 0.0 ? worst / scale : worst;
}

// ---- one conv + BN (+ ReLU6) -----------------------------------------------------------------------------------

// Each conv kind WITH a bias (MobileNetV2's convs have none, so this is where b' = beta + (b - mean) * scale is
// checked), its BN, and optionally ReLU6, taped in eval mode vs the FoldedConv.
TEST(FoldedLayer, ConvBnReLU6MatchesTheTapedLayers) {
  std::mt19937 rng(5);
  struct Case {
    std::string name;
    std::unique_ptr<Layer> conv;
    int in_channels, out_channels;
  };
  Case cases[] = {{"dense 3x3 s2", std::make_unique<Conv2d>(3, 17, 3, 2, 1, true, rng), 3, 17},
                  {"depthwise 3x3 s1", std::make_unique<DepthwiseConv2d>(35, 1, true, rng), 35, 35},
                  {"depthwise 3x3 s2", std::make_unique<DepthwiseConv2d>(16, 2, true, rng), 16, 16},
                  {"pointwise", std::make_unique<PointwiseConv2d>(24, 35, true, rng), 24, 35}};
  for (Case& c : cases)
    for (Activation activation : {Activation::kNone, Activation::kReLU6}) {
      SCOPED_TRACE(c.name + (activation == Activation::kReLU6 ? " + relu6" : ""));
      std::vector<NamedParameter> params;
      c.conv->collect_parameters("", params);
      for (NamedParameter& p : params)
        if (p.name == "bias") fill_uniform(p.var->value, -0.5f, 0.5f, rng);
      BatchNorm2d bn(c.out_channels);
      randomise_batch_norm(bn, rng);
      bn.set_training(false);
      ReLU6 relu6;

      Tensor x(Shape{3, 7, 8, c.in_channels});  // (N, H, W, C_in)
      fill_uniform(x, -2.0f, 2.0f, rng);
      Tape tape;
      tape.set_enabled(false);
      Var unfused = bn.forward(tape, c.conv->forward(tape, make_var(x)));
      if (activation == Activation::kReLU6) unfused = relu6.forward(tape, unfused);
      const Tensor folded = FoldedConv(*c.conv, bn, activation).forward(x);
      EXPECT_LT(relative_difference(folded, unfused->value), kTolerance);
    }
}

// Under bf16 precision a folded depthwise conv hands its output to the pointwise conv after it as bf16: the same
// values the bf16 product would have rounded it to, so the result is the unhanded one's to the bit.
TEST(FoldedLayer, Bf16HandOffFromDepthwiseToPointwiseIsExact) {
  if (!bf16_matmul_supported()) GTEST_SKIP() << "no AVX512-BF16 in this build";
  std::mt19937 rng(9);
  for (int stride : {1, 2}) {
    SCOPED_TRACE("stride " + std::to_string(stride));
    DepthwiseConv2d depthwise(32, stride, false, rng);
    PointwiseConv2d pointwise(32, 24, false, rng), pointwise_to_35(32, 35, false, rng);
    DepthwiseConv2d odd_depthwise(35, stride, false, rng);
    PointwiseConv2d pointwise_from_35(35, 24, false, rng);
    BatchNorm2d bn_dw(32), bn_pw(24), bn_pw_35(35), bn_odd_dw(35), bn_pw_from_35(24);
    for (BatchNorm2d* bn : {&bn_dw, &bn_pw, &bn_pw_35, &bn_odd_dw, &bn_pw_from_35}) randomise_batch_norm(*bn, rng);
    const FoldedConv dw(depthwise, bn_dw, Activation::kReLU6), pw(pointwise, bn_pw, Activation::kNone);
    const FoldedConv pw_35(pointwise_to_35, bn_pw_35, Activation::kNone);
    const FoldedConv dw_odd(odd_depthwise, bn_odd_dw, Activation::kReLU6);
    const FoldedConv pw_from_odd(pointwise_from_35, bn_pw_from_35, Activation::kNone);
    Tensor x(Shape{2, 15, 17, 32});  // (N, H, W, C)
    fill_uniform(x, -2.0f, 2.0f, rng);

    EXPECT_FALSE(dw.hands_off_bf16_to(pw)) << "float32 products: nothing to hand off";
    set_thread_matmul_precision(MatmulPrecision::kBFloat16);
    EXPECT_TRUE(dw.hands_off_bf16_to(pw));
    EXPECT_TRUE(dw.hands_off_bf16_to(pw_35)) << "the pointwise output width does not matter";
    EXPECT_FALSE(dw_odd.hands_off_bf16_to(pw_from_odd)) << "35 channels: rows are not whole bf16 pairs";
    EXPECT_FALSE(dw.hands_off_bf16_to(pw_from_odd)) << "32 channels into a 35-channel conv";
    EXPECT_FALSE(pw.hands_off_bf16_to(dw)) << "only depthwise -> pointwise";
    const Tensor handed = pw.forward(dw.forward_bf16(x)), plain = pw.forward(dw.forward(x));
    set_thread_matmul_precision(std::nullopt);
    ASSERT_EQ(handed.shape(), plain.shape());
    for (int64_t i = 0; i < plain.numel(); ++i) ASSERT_EQ(handed[i], plain[i]) << "element " << i;
    // Misuse is refused, not computed: only a depthwise conv writes bf16, only a pointwise one reads it, and the
    // bf16 input must have the conv's input width.
    EXPECT_THROW(pw.forward_bf16(x), std::logic_error);
    EXPECT_THROW(dw.forward(dw.forward_bf16(x)), std::logic_error);
    EXPECT_THROW(pw_from_odd.forward(dw.forward_bf16(x)), std::logic_error);
  }
}

TEST(FoldedLayer, RejectsWhatItCannotFold) {
  std::mt19937 rng(6);
  PointwiseConv2d conv(8, 16, false, rng);
  EXPECT_THROW(FoldedConv(conv, BatchNorm2d(15), Activation::kNone), std::invalid_argument);  // channel mismatch
  EXPECT_THROW(FoldedConv(ReLU6(), BatchNorm2d(16), Activation::kNone), std::invalid_argument);  // not a conv
  const FoldedConv folded(conv, BatchNorm2d(16), Activation::kNone);
  EXPECT_THROW(folded.forward(Tensor(Shape{1, 4, 4, 7})), std::invalid_argument);
}

// ---- the whole network -----------------------------------------------------------------------------------------

struct Outputs {
  Tensor logits;    // (N, K)
  Tensor features;  // (N, F)
};

// The unfused eval-mode forward, untaped, as run_inference computed it before it used the folded network.
Outputs unfused_forward(MobileNetV2& model, const Tensor& images) {
  Tape tape;
  tape.set_enabled(false);
  Var pooled = model.pool(tape, model.forward_blocks(tape, make_var(images), 0, MobileNetV2::kNumBlocks));  // (N, F)
  return {model.forward_classifier(tape, pooled)->value, pooled->value};
}

// Every value moved by one ulp, up or down alternately.
Tensor one_ulp_away(const Tensor& t) {
  Tensor moved = t.clone();
  for (int64_t i = 0; i < moved.numel(); ++i) moved[i] = std::nextafter(moved[i], i % 2 ? INFINITY : -INFINITY);
  return moved;
}

struct NetworkCase {
  float width;
  int size;
};

class FoldedMobileNet : public ::testing::TestWithParam<NetworkCase> {};

// Logits and pooled features, as run_inference returned them before it used the folded network.
TEST_P(FoldedMobileNet, MatchesTheUnfusedEvalForward) {
  const NetworkCase& c = GetParam();
  MobileNetV2 model({.width_mult = c.width, .num_classes = 4, .seed = 7});
  randomise_model(model, random_images(4, c.size, 8), 9);
  const Tensor images = random_images(3, c.size, 10);
  const Outputs unfused = unfused_forward(model, images);
  const Outputs nudged = unfused_forward(model, one_ulp_away(images));
  const double floor = std::max(relative_difference(nudged.logits, unfused.logits),
                                relative_difference(nudged.features, unfused.features));

  const FoldedMobileNetV2 folded(model);
  const FoldedOutput out = folded.forward(images);
  const double logits_difference = relative_difference(out.logits, unfused.logits);
  const double features_difference = relative_difference(out.features, unfused.features);
  std::printf("  width %.2f, %dx%d: max relative difference logits %.2e, features %.2e (one-ulp input floor %.2e)\n",
              c.width, c.size, c.size, logits_difference, features_difference, floor);
  EXPECT_LT(logits_difference, std::max(kTolerance, 4 * floor));
  EXPECT_LT(features_difference, std::max(kTolerance, 4 * floor));
  EXPECT_EQ(folded.num_classes(), 4);
  EXPECT_EQ(folded.feature_channels(), model.feature_channels());
  // The outputs are not trivial: the samples' logits differ by much more than the tolerance.
  EXPECT_GT(std::abs(out.logits[0] - out.logits[4]), 100 * kTolerance * std::abs(out.logits[0]));
}

INSTANTIATE_TEST_SUITE_P(WidthAndResolution, FoldedMobileNet,
                         ::testing::Values(NetworkCase{0.35f, 64}, NetworkCase{0.35f, 96}, NetworkCase{1.0f, 64},
                                           NetworkCase{1.0f, 96}),
                         [](const ::testing::TestParamInfo<NetworkCase>& info) {
                           return "w" + std::to_string(static_cast<int>(info.param.width * 100)) + "_" +
                                  std::to_string(info.param.size);
                         });

// A snapshot: later changes to the model do not reach it, and the model's train/eval mode does not matter (batch
// norm is always on the running statistics).
TEST(FoldedMobileNetSnapshot, IgnoresLaterChangesAndTrainingMode) {
  MobileNetV2 model({.width_mult = 0.35f, .num_classes = 3, .seed = 1});
  randomise_model(model, random_images(4, 64, 2), 3);
  const Tensor images = random_images(2, 64, 4);
  const FoldedMobileNetV2 folded(model);
  const Tensor before = folded.forward(images).logits;

  model.set_training(true);
  EXPECT_EQ(FoldedMobileNetV2(model).forward(images).logits.to_vector(), before.to_vector());
  for (NamedBuffer& b : model.buffers()) b.tensor.fill(0.5f);  // new running statistics
  EXPECT_EQ(folded.forward(images).logits.to_vector(), before.to_vector());
  EXPECT_GT(relative_difference(FoldedMobileNetV2(model).forward(images).logits, before), 1e-2);
}

// What training runs with a frozen prefix (train/epoch.cpp): features.0 .. features.(k-1) folded, the rest on the
// tape, equal to the taped eval-mode network; and a prefix folded in two pieces equals the whole.
TEST(FoldedMobileNetSnapshot, FrozenPrefixThenTapedTailMatchesTheUnfusedForward) {
  MobileNetV2 model({.width_mult = 0.35f, .num_classes = 4, .seed = 5});
  randomise_model(model, random_images(4, 64, 6), 7);
  const Tensor images = random_images(2, 64, 8);
  const Outputs unfused = unfused_forward(model, images);
  const FoldedMobileNetV2 folded(model);
  for (int frozen : {1, 4, 13, MobileNetV2::kNumBlocks}) {
    Tape tape;
    tape.set_enabled(false);
    const Tensor prefix = folded.forward_blocks(images, 0, frozen);  // (N, h, w, C)
    Var pooled = model.pool(tape, model.forward_blocks(tape, make_var(prefix), frozen, MobileNetV2::kNumBlocks));
    const Tensor logits = model.forward_classifier(tape, pooled)->value;
    EXPECT_LT(relative_difference(logits, unfused.logits), kTolerance) << frozen << " blocks folded";
    const Tensor pieces = folded.forward_blocks(folded.forward_blocks(images, 0, frozen / 2), frozen / 2, frozen);
    EXPECT_EQ(pieces.to_vector(), prefix.to_vector()) << frozen;
  }
  EXPECT_THROW(folded.forward_blocks(images, 3, 2), std::out_of_range);
  EXPECT_THROW(folded.forward_blocks(images, 0, MobileNetV2::kNumBlocks + 1), std::out_of_range);
}

// Images in groups (folded_mobilenet_v2.h): the high-resolution blocks run a few images at a time, the last ones
// the whole batch, and a batch's outputs are each image's alone, bit for bit, in both matmul precisions.
TEST(FoldedMobileNetSnapshot, ImagesInGroupsGiveEachImagesOwnResult) {
  MobileNetV2 model({.width_mult = 0.35f, .num_classes = 4, .seed = 11});
  randomise_model(model, random_images(2, 224, 12), 13);
  const FoldedMobileNetV2 folded(model);
  const Tensor images = random_images(3, 224, 14);  // (3, 224, 224, 3)
  // One kernel thread on this test's thread, so the budget is one L2 cache (at most a few MB on any CPU), whatever
  // the machine's core count: features.2 (112x112, expand to 48 channels), about 3.5 MB per image, then groups.
  set_thread_num_threads(1);
  const Shape block2_input = folded.forward_blocks(images, 0, 2).shape();  // (3, 112, 112, 8)
  ASSERT_LT(folded.images_per_group(2, block2_input), 3) << "this machine's caches hold the whole batch";
  EXPECT_EQ(folded.images_per_group(2, Shape{1, 112, 112, block2_input[3]}), 1);
  EXPECT_EQ(folded.images_per_group(MobileNetV2::kNumBlocks - 1, Shape{3, 7, 7, 112}), 3);  // 7x7: all at once
  const std::vector<std::optional<MatmulPrecision>> precisions =
      bf16_matmul_supported() ? std::vector<std::optional<MatmulPrecision>>{std::nullopt, MatmulPrecision::kBFloat16}
                              : std::vector<std::optional<MatmulPrecision>>{std::nullopt};
  for (const std::optional<MatmulPrecision>& precision : precisions) {
    set_thread_matmul_precision(precision);
    const FoldedOutput batch = folded.forward(images);
    const int64_t per_image = images.numel() / 3;
    for (int i = 0; i < 3; ++i) {
      Tensor one = Tensor::uninitialized(Shape{1, 224, 224, 3});
      std::copy_n(images.data() + i * per_image, per_image, one.data());
      const FoldedOutput alone = folded.forward(one);
      for (int k = 0; k < 4; ++k) EXPECT_EQ(batch.logits[i * 4 + k], alone.logits[k]) << "image " << i;
      const int64_t F = folded.feature_channels();
      for (int64_t f = 0; f < F; ++f) ASSERT_EQ(batch.features[i * F + f], alone.features[f]) << "image " << i;
    }
  }
  set_thread_matmul_precision(std::nullopt);
  set_thread_num_threads(0);
}

TEST(FoldedMobileNetSnapshot, RejectsBadImages) {
  const FoldedMobileNetV2 folded(MobileNetV2({.width_mult = 0.35f, .num_classes = 2}));
  EXPECT_THROW(folded.forward(Tensor(Shape{1, 16, 16, 3})), std::invalid_argument);
  EXPECT_THROW(folded.forward(Tensor(Shape{1, 64, 64, 1})), std::invalid_argument);
  EXPECT_THROW(folded.forward(Tensor(Shape{64, 64, 3})), std::invalid_argument);
}

}  // namespace
}  // namespace mriscan
