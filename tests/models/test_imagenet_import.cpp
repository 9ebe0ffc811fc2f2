// ImageNet import: the imported backbone, with BN calibrated on other images, must compute the same 1280-d
// features in eval mode as PyTorch's BN-free folded network built from the same .npy files
// (tests/golden/imagenet_folded_features.safetensors, written by tests/golden/make_golden_imagenet.py).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "data/dataset.h"
#include "io/safetensors.h"
#include "models/imagenet_import.h"
#include "models/model_file.h"

namespace mriscan {
namespace {

std::string npy_dir() { return find_shared_dir() + "/weights/mobilenetv2_1.0_224_nchw_bnfolded_npy"; }

Tensor features_of(MobileNetV2& model, const Tensor& images) {
  model.set_training(false);
  Tape tape;
  tape.set_enabled(false);
  return model.pool(tape, model.forward_blocks(tape, make_var(images), 0, MobileNetV2::kNumBlocks))->value;
}

double relative_error(const Tensor& actual, const Tensor& expected) {
  double diff = 0.0, norm = 0.0;
  for (int64_t i = 0; i < expected.numel(); ++i) {
    diff += std::pow(actual[i] - expected[i], 2);
    norm += std::pow(expected[i], 2);
  }
  return std::sqrt(diff / norm);
}

class ImageNetImport : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      if (!std::filesystem::is_directory(npy_dir())) GTEST_SKIP() << npy_dir() << " not found";
    } catch (const std::exception& error) {
      GTEST_SKIP() << error.what();
    }
    golden_ = read_safetensors(std::string(MRISCAN_SOURCE_DIR) + "/tests/golden/imagenet_folded_features.safetensors");
  }
  SafetensorsFile golden_;
};

TEST_F(ImageNetImport, FoldedBackboneReproducesPyTorchFeatures) {
  MobileNetV2 model({.width_mult = 1.0f, .num_classes = 4});
  load_folded_backbone(model, npy_dir());
  const double error = relative_error(features_of(model, golden_.tensors.at("input")), golden_.tensors.at("features"));
  std::printf("identity-BN import vs PyTorch folded network: relative L2 error %.2e\n", error);
  EXPECT_LT(error, 1e-4);
}

TEST_F(ImageNetImport, CalibrationMovesStatisticsButKeepsTheFunction) {
  MobileNetV2 model({.width_mult = 1.0f, .num_classes = 4});
  load_folded_backbone(model, npy_dir());
  // Calibrate on unrelated random images: the statistics change, the eval-mode function must not.
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<Tensor> batches(2, Tensor(Shape{4, 64, 64, 3}));
  for (Tensor& batch : batches)
    for (int64_t i = 0; i < batch.numel(); ++i) batch[i] = normal(rng);
  calibrate_batch_norm(model, batches);
  double moved = 0.0;
  for (const NamedBuffer& b : model.buffers())
    if (b.name.find("running_mean") != std::string::npos)
      for (int64_t i = 0; i < b.tensor.numel(); ++i) moved = std::max(moved, static_cast<double>(std::abs(b.tensor[i])));
  EXPECT_GT(moved, 0.1) << "calibration did not set the running means";
  const double error = relative_error(features_of(model, golden_.tensors.at("input")), golden_.tensors.at("features"));
  std::printf("calibrated import vs PyTorch folded network: relative L2 error %.2e\n", error);
  EXPECT_LT(error, 1e-4);
}

TEST_F(ImageNetImport, MissingOrWrongWeightsFailClearly) {
  MobileNetV2 model({.width_mult = 1.0f, .num_classes = 4});
  EXPECT_THROW(load_folded_backbone(model, "/nonexistent/weights"), std::runtime_error);
  MobileNetV2 narrow({.width_mult = 0.5f, .num_classes = 4});
  EXPECT_THROW(load_folded_backbone(narrow, npy_dir()), std::invalid_argument);
  // A backbone file without classifier loads into a 4-class model (backbone only) and round-trips.
  load_folded_backbone(model, npy_dir());
  const std::string path = ::testing::TempDir() + "/backbone.safetensors";
  save_model_file(path, model, 224, {}, {{"num_classes", "0"}});
  MobileNetV2 reloaded({.width_mult = 1.0f, .num_classes = 4});
  EXPECT_FALSE(load_weights_into(reloaded, path));  // classifier not in the file
  const double error = relative_error(features_of(reloaded, golden_.tensors.at("input")), golden_.tensors.at("features"));
  EXPECT_LT(error, 1e-4);
  EXPECT_THROW(load_model_file(path), std::runtime_error);  // a backbone is not a classifier
}

}  // namespace
}  // namespace mriscan
