// MobileNetV2 construction from the (t, c, n, s) table, forward in stages, naming, freezing.
#include "models/mobilenet_v2.h"

#include <stdexcept>

#include "layers/conv2d.h"
#include "layers/inverted_residual.h"
#include "layers/pointwise_conv2d.h"

namespace mriscan {

namespace {

// Table 2 of the paper: expansion factor t, output channels c, repeats n, stride of the first repeat s.
struct StageSpec {
  int t, c, n, s;
};
constexpr StageSpec kStages[] = {
    {1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
};

std::mt19937 seeded(uint32_t seed) { return std::mt19937(seed); }

}  // namespace

int make_divisible(float v, int divisor) {
  int rounded = std::max(divisor, static_cast<int>(v + divisor / 2.0f) / divisor * divisor);
  if (rounded < 0.9f * v) rounded += divisor;
  return rounded;
}

MobileNetV2::MobileNetV2(const MobileNetV2Config& config)
    : config_(config),
      last_channels_(make_divisible(1280.0f * std::max(1.0f, config.width_mult))),
      dropout_(config.dropout, config.seed + 1),
      classifier_([&] {
        std::mt19937 rng = seeded(config.seed + 2);
        return Linear(make_divisible(1280.0f * std::max(1.0f, config.width_mult)), config.num_classes, rng);
      }()) {
  if (config.num_classes < 1) throw std::invalid_argument("MobileNetV2: num_classes must be >= 1");
  if (config.width_mult <= 0.0f) throw std::invalid_argument("MobileNetV2: width_mult must be > 0");
  std::mt19937 rng = seeded(config.seed);
  int channels = make_divisible(32.0f * config.width_mult);
  blocks_.push_back(
      std::make_unique<ConvBn>(std::make_unique<Conv2d>(3, channels, 3, 2, 1, false, rng), channels, true));
  for (const StageSpec& stage : kStages) {
    const int out_channels = make_divisible(stage.c * config.width_mult);
    for (int i = 0; i < stage.n; ++i) {
      blocks_.push_back(std::make_unique<InvertedResidual>(channels, out_channels, i == 0 ? stage.s : 1, stage.t, rng));
      channels = out_channels;
    }
  }
  blocks_.push_back(std::make_unique<ConvBn>(std::make_unique<PointwiseConv2d>(channels, last_channels_, false, rng),
                                             last_channels_, true));
}

Var MobileNetV2::forward(Tape& tape, const Var& images) {
  return forward_head(tape, forward_blocks(tape, images, 0, kNumBlocks));
}

Var MobileNetV2::forward_blocks(Tape& tape, const Var& x, int begin, int end) {
  if (begin < 0 || end > kNumBlocks || begin > end) throw std::out_of_range("MobileNetV2::forward_blocks: bad range");
  if (begin == 0) {
    const Shape& s = x->value.shape();
    if (s.rank() != 4 || s[3] != 3)
      throw std::invalid_argument("MobileNetV2: expected images (N, H, W, 3), got " + s.str());
    if (s[1] < 32 || s[2] < 32)
      throw std::invalid_argument("MobileNetV2: input " + s.str() + " is smaller than 32x32 (five stride-2 stages)");
  }
  Var h = x;
  for (int i = begin; i < end; ++i) h = blocks_[i]->forward(tape, h);
  return h;
}

Var MobileNetV2::forward_head(Tape& tape, const Var& feature_map) {
  return forward_classifier(tape, pool_.forward(tape, feature_map));
}

Var MobileNetV2::forward_classifier(Tape& tape, const Var& pooled) {
  return classifier_.forward(tape, dropout_.forward(tape, pooled));
}

std::vector<NamedParameter> MobileNetV2::parameters() {
  std::vector<NamedParameter> out;
  for (size_t i = 0; i < blocks_.size(); ++i) blocks_[i]->collect_parameters("features." + std::to_string(i) + ".", out);
  classifier_.collect_parameters("classifier.1.", out);
  return out;
}

std::vector<NamedBuffer> MobileNetV2::buffers() {
  std::vector<NamedBuffer> out;
  for (size_t i = 0; i < blocks_.size(); ++i) blocks_[i]->collect_buffers("features." + std::to_string(i) + ".", out);
  return out;
}

int64_t MobileNetV2::parameter_count() {
  int64_t count = 0;
  for (const NamedParameter& p : parameters()) count += p.var->value.numel();
  return count;
}

void MobileNetV2::set_training(bool training) {
  for (int i = 0; i < kNumBlocks; ++i) blocks_[i]->set_training(training && i >= frozen_blocks_);
  dropout_.set_training(training);
  classifier_.set_training(training);
}

void MobileNetV2::set_collective(Collective* world) {
  for (auto& block : blocks_) block->set_collective(world);
}

void MobileNetV2::freeze_blocks(int count) {
  if (count < 0 || count > kNumBlocks)
    throw std::invalid_argument("MobileNetV2::freeze_blocks: count must be in [0, " + std::to_string(kNumBlocks) + "]");
  frozen_blocks_ = count;
  for (int i = 0; i < kNumBlocks; ++i) {
    std::vector<NamedParameter> block_parameters;
    blocks_[i]->collect_parameters("", block_parameters);
    for (NamedParameter& p : block_parameters) p.var->requires_grad = i >= count;
    if (i < count) blocks_[i]->set_training(false);
  }
}

}  // namespace mriscan
