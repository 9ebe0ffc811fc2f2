// MobileNetV2 against PyTorch: a width-0.35 network at 64x64, batch 8, with torchvision's initial weights,
// must reproduce torchvision's eval logits, train-mode logits and loss, every parameter gradient, the BN running
// statistics after one step, and the losses of 10 Adam and 10 AdamW steps.
// Fixture: tests/golden/mobilenet_v2_w035_64.safetensors, written by tests/golden/make_golden.py (computed in float64).
// Gradients are compared relative to the scale of the whole network's gradients: the projection BNs' biases have
// gradients that are exactly zero in exact arithmetic (the next BN removes any per-channel shift), so their
// float32 values are pure rounding noise and a per-tensor relative error would be meaningless for them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "io/safetensors.h"
#include "layers/softmax_cross_entropy.h"
#include "models/mobilenet_v2.h"
#include "models/weights_io.h"
#include "optim/adam.h"

namespace mriscan {
namespace {

const std::string kFixture = std::string(MRISCAN_SOURCE_DIR) + "/tests/golden/mobilenet_v2_w035_64.safetensors";

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (int64_t i = 0; i < t.numel(); ++i) m = std::max(m, static_cast<double>(std::abs(t[i])));
  return m;
}

// max |a - b| / max(floor, max |b|): the error relative to the tensor's scale (llm.c's check_tensor, as a number).
double relative_difference(const Tensor& actual, const Tensor& expected, double floor = 1e-3) {
  double max_diff = 0.0, scale = floor;
  for (int64_t i = 0; i < expected.numel(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::abs(actual[i] - expected[i])));
    scale = std::max(scale, static_cast<double>(std::abs(expected[i])));
  }
  return max_diff / scale;
}

class GoldenMobileNet : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kFixture))
      GTEST_SKIP() << kFixture << " missing; regenerate with: /usr/bin/python3 tests/golden/make_golden.py";
    golden_ = read_safetensors(kFixture);
    model_ = std::make_unique<MobileNetV2>(MobileNetV2Config{.width_mult = 0.35f, .num_classes = 4, .dropout = 0.0f});
    load_initial_weights();
    const Tensor& labels = golden_.tensors.at("labels");
    for (int64_t i = 0; i < labels.numel(); ++i) labels_.push_back(static_cast<int>(labels[i]));
  }

  void load_initial_weights() {
    for (NamedParameter& p : model_->parameters()) {
      Tensor value = to_engine_layout(golden_.tensors.at("param." + p.name), p.var->value.shape(), p.name);
      std::copy_n(value.data(), value.numel(), p.var->value.data());
    }
    for (NamedBuffer& b : model_->buffers()) {
      const Tensor& value = golden_.tensors.at("buffer." + b.name);
      std::copy_n(value.data(), value.numel(), b.tensor.data());
    }
  }

  Var train_forward(Tape& tape, Var* logits_out = nullptr) {
    model_->set_training(true);
    Var logits = model_->forward(tape, make_var(golden_.tensors.at("input")));
    if (logits_out) *logits_out = logits;
    return softmax_cross_entropy(tape, logits, labels_);
  }

  std::vector<float> optimizer_losses(bool decoupled) {
    load_initial_weights();
    std::vector<NamedParameter> params = model_->parameters();
    Adam adam(params, {.learning_rate = 1e-4f, .weight_decay = decoupled ? 0.01f : 0.0f,
                       .decoupled_weight_decay = decoupled});
    std::vector<float> losses;
    for (int step = 0; step < 10; ++step) {
      Tape tape;
      Var loss = train_forward(tape);
      losses.push_back(loss->value[0]);
      for (NamedParameter& p : params) p.var->grad = Tensor();
      tape.backward(loss);
      adam.step();
    }
    return losses;
  }

  SafetensorsFile golden_;
  std::unique_ptr<MobileNetV2> model_;
  std::vector<int> labels_;
};

TEST_F(GoldenMobileNet, EvalLogitsMatchTorchvision) {
  model_->set_training(false);
  Tape tape;
  Var logits = model_->forward(tape, make_var(golden_.tensors.at("input")));
  const double diff = relative_difference(logits->value, golden_.tensors.at("eval_logits"));
  std::printf("eval logits: max relative difference %.2e\n", diff);
  EXPECT_LT(diff, 1e-4);
}

TEST_F(GoldenMobileNet, TrainLogitsLossGradientsAndRunningStats) {
  Tape tape;
  Var logits;
  Var loss = train_forward(tape, &logits);
  const double logits_diff = relative_difference(logits->value, golden_.tensors.at("logits"));
  const double loss_diff = std::abs(loss->value[0] - golden_.tensors.at("loss")[0]);
  std::printf("train logits: %.2e, loss: %.2e (ours %.6f, torch %.6f)\n", logits_diff, loss_diff, loss->value[0],
              golden_.tensors.at("loss")[0]);
  EXPECT_LT(logits_diff, 1e-4);
  EXPECT_LT(loss_diff, 1e-5);

  tape.backward(loss);
  double gradient_scale = 0.0;  // the largest gradient entry of the whole network
  for (NamedParameter& p : model_->parameters())
    gradient_scale = std::max(gradient_scale, max_abs(golden_.tensors.at("grad." + p.name)));
  double worst = 0.0;
  std::string worst_name;
  for (NamedParameter& p : model_->parameters()) {
    ASSERT_TRUE(p.var->grad.defined()) << p.name;
    Tensor expected = to_engine_layout(golden_.tensors.at("grad." + p.name), p.var->value.shape(), p.name);
    const double diff = relative_difference(p.var->grad, expected, 1e-3 * gradient_scale);
    if (diff > worst) worst = diff, worst_name = p.name;
    EXPECT_LT(diff, 1e-3) << p.name;
  }
  std::printf("parameter gradients: worst relative difference %.2e (%s)\n", worst, worst_name.c_str());

  double worst_running = 0.0;
  for (NamedBuffer& b : model_->buffers()) {
    const double diff = relative_difference(b.tensor, golden_.tensors.at("running_after." + b.name));
    worst_running = std::max(worst_running, diff);
    EXPECT_LT(diff, 1e-4) << b.name;
  }
  std::printf("BN running statistics: worst relative difference %.2e\n", worst_running);
}

TEST_F(GoldenMobileNet, TenAdamAndAdamWStepsFollowPyTorch) {
  for (bool decoupled : {false, true}) {
    const Tensor& expected = golden_.tensors.at(decoupled ? "adamw_losses" : "adam_losses");
    std::vector<float> losses = optimizer_losses(decoupled);
    double worst = 0.0;
    for (int i = 0; i < 10; ++i) {
      worst = std::max(worst, static_cast<double>(std::abs(losses[i] - expected[i])));
      // Adam's normalised steps amplify rounding (a parameter with a tiny, noisy gradient still moves by ~lr), so
      // trajectories drift apart: torch's own float32 run departs from its float64 run by 1.3e-3 by step 9. The
      // first three steps are checked tightly (a wrong bias correction or decay is off by > 1e-2 at step 1); later
      // ones only have to stay on the same course.
      EXPECT_NEAR(losses[i], expected[i], i < 3 ? 1e-3 : 2e-2) << (decoupled ? "AdamW" : "Adam") << " step " << i;
    }
    std::printf("%s: 10 losses, max abs difference %.2e (first %.5f, last %.5f)\n", decoupled ? "AdamW" : "Adam", worst,
                losses.front(), losses.back());
  }
}

}  // namespace
}  // namespace mriscan
