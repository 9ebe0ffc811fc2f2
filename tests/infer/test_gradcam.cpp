// Grad-CAM against its closed form. MobileNetV2's head is global-average-pool -> dropout (identity in eval) ->
// linear, so d S_k / d A(i, j, c) = W(c, k) / (h*w) for every position: alpha_c = W(c, k) / (h*w), and Grad-CAM
// reduces to the class activation map cam(i, j) = ReLU(sum_c W(c, k) A(i, j, c)) up to the positive factor that
// the normalisation to [0, 1] removes. The test computes that map directly from the feature map and the
// classifier weight and compares; it also checks the logits and the error for a bad class index.
// Also: the overlay drawn over the image follows the heat.
// What it is not: a check that the heatmap points at tumours (that is for a human looking at gradcam.png).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "infer/gradcam.h"
#include "models/mobilenet_v2.h"

namespace mriscan {
namespace {

Tensor random_image(int size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Tensor image(Shape{1, size, size, 3});  // (1, S, S, 3)
  for (int64_t i = 0; i < image.numel(); ++i) image[i] = normal(rng);
  return image;
}

const Tensor& classifier_weight(MobileNetV2& model) {
  for (const NamedParameter& p : model.parameters())
    if (p.name == "classifier.1.weight") return p.var->value;  // (F, K), engine layout (in, out)
  throw std::logic_error("no classifier.1.weight");
}

TEST(MobileNetGradCam, EqualsTheClassActivationMapOfTheLinearHead) {
  MobileNetV2 model({.width_mult = 0.35f, .num_classes = 4, .seed = 3});
  model.set_training(false);
  const Tensor image = random_image(96, 7);

  Tape tape;
  tape.set_enabled(false);
  const Tensor features = model.forward_blocks(tape, make_var(image), 0, MobileNetV2::kNumBlocks)->value;
  const Tensor logits = model.forward(tape, make_var(image))->value;  // (1, K)
  const Tensor& weight = classifier_weight(model);                     // (F, K)
  const int h = static_cast<int>(features.dim(1)), w = static_cast<int>(features.dim(2));
  const int channels = static_cast<int>(features.dim(3)), num_classes = static_cast<int>(weight.dim(1));
  ASSERT_EQ(h, 3);  // 96 / 32

  for (int k = 0; k < num_classes; ++k) {
    const GradCam cam = grad_cam(model, image, k);
    ASSERT_EQ(cam.height, h);
    ASSERT_EQ(cam.width, w);
    for (int j = 0; j < num_classes; ++j) EXPECT_NEAR(cam.logits[j], logits[j], 1e-4f * std::abs(logits[j]) + 1e-5f);

    std::vector<double> expected(h * w);  // (h, w): ReLU(sum_c W(c, k) A(i, j, c))
    for (int p = 0; p < h * w; ++p) {
      double sum = 0.0;
      for (int c = 0; c < channels; ++c)
        sum += double(weight[int64_t(c) * num_classes + k]) * features[int64_t(p) * channels + c];
      expected[p] = std::max(0.0, sum);
    }
    const double peak = *std::max_element(expected.begin(), expected.end());
    for (int p = 0; p < h * w; ++p) {
      const double want = peak > 0.0 ? expected[p] / peak : 0.0;
      EXPECT_NEAR(cam.heatmap[p], want, 1e-4) << "class " << k << " position " << p;
    }
  }
}

TEST(MobileNetGradCam, DefaultExplainsTheArgMaxAndRejectsBadInput) {
  MobileNetV2 model({.width_mult = 0.35f, .num_classes = 4, .seed = 5});
  model.set_training(false);
  const GradCam cam = grad_cam(model, random_image(64, 11));
  const auto top = std::max_element(cam.logits.begin(), cam.logits.end()) - cam.logits.begin();
  EXPECT_EQ(cam.class_index, top);
  for (float value : cam.heatmap) {
    EXPECT_GE(value, 0.0f);
    EXPECT_LE(value, 1.0f);
  }
  EXPECT_THROW(grad_cam(model, random_image(64, 11), 4), std::invalid_argument);
  EXPECT_THROW(grad_cam(model, Tensor(Shape{2, 64, 64, 3})), std::invalid_argument);
}

TEST(GradCamOverlay, FollowsHeat) {
  Image base(64, 64);
  std::fill(base.rgb.begin(), base.rgb.end(), uint8_t{128});
  // Heat (8, 8): 0.15 on the left half, 0.9 on the right half; the overlay is upsampled to 64 x 64.
  std::vector<float> heat(64);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) heat[y * 8 + x] = x < 4 ? 0.15f : 0.9f;
  const Image out = overlay_heatmap(base, heat.data(), 8, 8, 0.5f);
  ASSERT_EQ(out.width, 64);
  ASSERT_EQ(out.height, 64);
  const uint8_t* cold = out.pixel(4, 32);
  const uint8_t* hot = out.pixel(60, 32);
  // turbo(0.15) is blue, turbo(0.9) red: blue dominates on the cold side, red on the hot side.
  EXPECT_GT(cold[2], cold[0]);
  EXPECT_GT(hot[0], hot[2]);
  EXPECT_GT(std::abs(cold[0] - hot[0]) + std::abs(cold[2] - hot[2]), 60);
  // alpha = 0 leaves the image untouched.
  EXPECT_EQ(overlay_heatmap(base, heat.data(), 8, 8, 0.0f).rgb, base.rgb);
  EXPECT_THROW(overlay_heatmap(base, nullptr, 8, 8, 0.5f), std::invalid_argument);
}

}  // namespace
}  // namespace mriscan
