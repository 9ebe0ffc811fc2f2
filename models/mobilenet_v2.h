// MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", 2018), built from the
// paper's (t, c, n, s) table with a width multiplier, any input resolution the strides allow (a multiple of 32
// keeps every stage's size exact; others work with PyTorch's floor rounding), N classes, and dropout before the
// classifier. Parameter and buffer names follow torchvision (`features.3.conv.1.0.weight`, `classifier.1.bias`),
// so a file written here loads into `torchvision.models.mobilenet_v2` by name.
//
//   features.0        ConvBn 3x3 stride 2, 3 -> 32*w, ReLU6      (the stem)
//   features.1..17    InvertedResidual blocks from the table
//   features.18       ConvBn 1x1 -> 1280*max(1, w), ReLU6
//   pool, classifier.0 Dropout, classifier.1 Linear -> num_classes
//
// Freezing: `freeze_blocks(k)` freezes features.0 .. features.(k-1): their parameters need no gradient and their
// batch norms stay in eval mode (running statistics), which is what fine-tuning with a frozen prefix means in
// Keras as well; a frozen prefix then records nothing on the tape.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "layers/dropout.h"
#include "layers/global_avg_pool.h"
#include "layers/layer.h"
#include "layers/linear.h"

namespace mriscan {

struct MobileNetV2Config {
  float width_mult = 1.0f;
  int num_classes = 4;
  float dropout = 0.2f;
  uint32_t seed = 0;  // parameter initialisation and dropout masks
};

// torchvision's _make_divisible: round to the nearest multiple of 8, never below 8 nor 10% below v.
int make_divisible(float v, int divisor = 8);

class MobileNetV2 {
 public:
  static constexpr int kNumBlocks = 19;  // features.0 .. features.18
  explicit MobileNetV2(const MobileNetV2Config& config);

  const MobileNetV2Config& config() const { return config_; }
  int feature_channels() const { return last_channels_; }  // 1280 for width <= 1

  // images (N, H, W, 3) -> logits (N, num_classes).
  Var forward(Tape& tape, const Var& images);
  // Runs features[begin, end) on x: images for begin == 0, otherwise the output of block begin-1.
  Var forward_blocks(Tape& tape, const Var& x, int begin, int end);
  // feature map (N, h, w, C_last) -> logits (N, num_classes): pool, dropout, linear.
  Var forward_head(Tape& tape, const Var& feature_map);
  // pooled features (N, C_last) -> logits, for heads trained on cached features.
  Var forward_classifier(Tape& tape, const Var& pooled);
  Var pool(Tape& tape, const Var& feature_map) { return pool_.forward(tape, feature_map); }

  // The parts, read by models/folded_mobilenet_v2.cpp: features.i (ConvBn for 0 and 18, else InvertedResidual).
  const Layer& block(int i) const { return *blocks_.at(i); }
  const Linear& classifier() const { return classifier_; }

  std::vector<NamedParameter> parameters();  // torchvision order
  std::vector<NamedBuffer> buffers();
  int64_t parameter_count();

  void set_training(bool training);
  void freeze_blocks(int count);  // 0 = nothing frozen
  // Batch norm statistics shared with the other processes of a data-parallel run (layers/batch_norm.h).
  void set_collective(Collective* world);
  // Restarts the dropout mask stream; the trainer reseeds from (seed, epoch) so a resumed run is identical.
  void reseed_dropout(uint32_t seed) { dropout_.reseed(seed); }
  int frozen_blocks() const { return frozen_blocks_; }

 private:
  MobileNetV2Config config_;
  int last_channels_ = 0;
  std::vector<std::unique_ptr<Layer>> blocks_;  // features.0 .. features.18
  GlobalAvgPool pool_;
  Dropout dropout_;
  Linear classifier_;
  int frozen_blocks_ = 0;
};

}  // namespace mriscan
