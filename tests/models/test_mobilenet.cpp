// MobileNetV2 structure and behaviour: torchvision parameter count and names, shapes at several resolutions,
// freezing, and that a small network can overfit a handful of real MRI scans.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "data/dataset.h"
#include "data/preprocess.h"
#include "io/image_io.h"
#include "layers/softmax_cross_entropy.h"
#include "models/mobilenet_v2.h"
#include "optim/adam.h"

namespace mriscan {
namespace {

TEST(MobileNetStructure, TorchvisionParameterCountAndNames) {
  MobileNetV2 model({.width_mult = 1.0f, .num_classes = 4});
  // torchvision.models.mobilenet_v2(num_classes=4): sum(p.numel() for p in m.parameters()) == 2,228,996.
  EXPECT_EQ(model.parameter_count(), 2228996);
  std::set<std::string> names;
  for (const NamedParameter& p : model.parameters()) names.insert(p.name);
  for (const char* expected : {"features.0.0.weight", "features.0.1.weight", "features.1.conv.0.0.weight",
                               "features.1.conv.1.weight", "features.1.conv.2.bias", "features.3.conv.1.0.weight",
                               "features.3.conv.3.weight", "features.18.0.weight", "features.18.1.bias",
                               "classifier.1.weight", "classifier.1.bias"})
    EXPECT_TRUE(names.count(expected)) << expected;
  EXPECT_EQ(model.parameters().size(), 158u);  // len(list(m.parameters())) in torchvision
  EXPECT_EQ(model.buffers().size(), 104u);     // 52 BNs x (running_mean, running_var)
}

TEST(MobileNetStructure, WidthMultiplierChannels) {
  EXPECT_EQ(make_divisible(32 * 0.35f), 16);
  EXPECT_EQ(make_divisible(1280 * 1.4f), 1792);
  MobileNetV2 small({.width_mult = 0.35f, .num_classes = 3});
  EXPECT_EQ(small.feature_channels(), 1280);  // the last conv never shrinks below 1280
}

TEST(MobileNetStructure, AnyResolutionTheStridesAllow) {
  MobileNetV2 model({.width_mult = 0.35f, .num_classes = 5});
  model.set_training(false);
  for (int size : {32, 64, 100, 160}) {
    Tape tape;
    Var logits = model.forward(tape, make_var(Tensor(Shape{2, size, size, 3})));
    EXPECT_EQ(logits->value.shape(), (Shape{2, 5})) << size;
  }
  Tape tape;
  EXPECT_THROW(model.forward(tape, make_var(Tensor(Shape{1, 16, 16, 3}))), std::invalid_argument);
  EXPECT_THROW(model.forward(tape, make_var(Tensor(Shape{1, 64, 64, 1}))), std::invalid_argument);
}

TEST(MobileNetStructure, FrozenPrefixRecordsNothingAndGetsNoGradient) {
  MobileNetV2 model({.width_mult = 0.35f, .num_classes = 4});
  model.freeze_blocks(14);
  model.set_training(true);
  Tape tape;
  Var logits = model.forward(tape, make_var(Tensor(Shape{2, 64, 64, 3})));
  Var loss = softmax_cross_entropy(tape, logits, {0, 1});
  tape.backward(loss);
  for (const NamedParameter& p : model.parameters()) {
    const bool frozen = p.name.rfind("features.", 0) == 0 && std::stoi(p.name.substr(9)) < 14;
    EXPECT_EQ(p.var->grad.defined(), !frozen) << p.name;
  }
  // Only blocks 14..18 and the head are on the tape: far fewer nodes than the whole network's.
  Tape full_tape;
  MobileNetV2 unfrozen({.width_mult = 0.35f, .num_classes = 4});
  unfrozen.forward(full_tape, make_var(Tensor(Shape{2, 64, 64, 3})));
  EXPECT_LT(tape.size() * 3, full_tape.size());
}

// A width-0.35 network at 64x64 must fit 8 real scans (2 per class) perfectly: the end-to-end check that
// forward, backward and the optimizer agree.
TEST(MobileNetTraining, OverfitsAHandfulOfRealScans) {
  Dataset dataset;
  try {
    dataset = scan_dataset(find_shared_dir() + "/data/brain-tumor-mri/Training");
  } catch (const std::exception& error) {
    GTEST_SKIP() << error.what();
  }
  std::vector<Image> images;
  std::vector<int> labels;
  for (int k = 0; k < 4; ++k) {
    int taken = 0;
    for (const Sample& s : dataset.samples)
      if (s.label == k && taken < 2) {
        images.push_back(load_image(s.path));
        labels.push_back(k);
        ++taken;
      }
  }
  Tensor batch = preprocess_batch(images, 64);
  MobileNetV2 model({.width_mult = 0.35f, .num_classes = 4, .dropout = 0.0f, .seed = 1});
  std::vector<NamedParameter> params = model.parameters();
  Adam adam(params, {.learning_rate = 3e-3f});
  model.set_training(true);
  double last_loss = 0.0;
  int correct = 0;
  for (int step = 0; step < 60; ++step) {
    Tape tape;
    Var logits = model.forward(tape, make_var(batch));
    Var loss = softmax_cross_entropy(tape, logits, labels);
    for (NamedParameter& p : params) p.var->grad = Tensor();
    tape.backward(loss);
    adam.step();
    last_loss = loss->value[0];
    correct = 0;
    for (int i = 0; i < 8; ++i) {
      const float* row = logits->value.data() + i * 4;
      correct += std::max_element(row, row + 4) - row == labels[i];
    }
  }
  EXPECT_EQ(correct, 8);
  EXPECT_LT(last_loss, 0.05);
}

}  // namespace
}  // namespace mriscan
