// FoldedMobileNetV2: the snapshot of a MobileNetV2's blocks as folded convs, and the untaped forward (structure and
// formulas in the header).
#include "models/folded_mobilenet_v2.h"

#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/kernels/dispatch.h"
#include "engine/parallel.h"
#include "layers/inverted_residual.h"

namespace mriscan {

namespace {

// The second-level caches of the kernel threads together (sysconf's per-core figure where the C library knows it, else
// 1 MB a core). Measured with `mriscan bench --workloads infer --batch 32` (docs/results/2026-12-04-memory.md): budgets
// of 0.5-2x this ran equally fast; 4x and 8x (a quarter and half of the 32 MB L3) slower than the whole batch at once.
int64_t group_budget_bytes() {
  static const int64_t l2_bytes = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return l2 > 0 ? static_cast<int64_t>(l2) : int64_t{1} << 20;
  }();
  return l2_bytes * num_threads();
}

FoldedConv fold(const ConvBn& unit) {
  return FoldedConv(unit.conv(), unit.bn(), unit.has_relu6() ? Activation::kReLU6 : Activation::kNone);
}

}  // namespace

FoldedMobileNetV2::FoldedMobileNetV2(const MobileNetV2& model) {
  for (int i = 0; i < MobileNetV2::kNumBlocks; ++i) {
    const Layer& layer = model.block(i);
    Block block;
    if (const auto* unit = dynamic_cast<const ConvBn*>(&layer)) {  // the stem and features.18
      block.convs.push_back(fold(*unit));
    } else if (const auto* inverted = dynamic_cast<const InvertedResidual*>(&layer)) {
      for (const auto& part : inverted->conv_bn_relu_units()) block.convs.push_back(fold(*part));  // [expand,] dw
      block.convs.emplace_back(inverted->project(), inverted->project_bn(), Activation::kNone);  // linear bottleneck
      block.residual = inverted->uses_residual();
    } else {
      throw std::logic_error("FoldedMobileNetV2: features." + std::to_string(i) +
                             " is neither a ConvBn nor an InvertedResidual");
    }
    blocks_.push_back(std::move(block));
  }
  const Linear& classifier = model.classifier();
  classifier_weight_ = classifier.weight()->value.clone();
  if (classifier.bias()) classifier_bias_ = classifier.bias()->value.clone();
}

Tensor FoldedMobileNetV2::forward_blocks(const Tensor& x, int begin, int end) const {
  if (begin < 0 || end > static_cast<int>(blocks_.size()) || begin > end)
    throw std::out_of_range("FoldedMobileNetV2::forward_blocks: bad range");
  const Shape& s = x.shape();
  if (begin == 0 && (s.rank() != 4 || s[3] != 3 || s[1] < 32 || s[2] < 32))
    throw std::invalid_argument("FoldedMobileNetV2: expected images (N, H, W, 3) with H, W >= 32, got " + s.str());
  Tensor h = x;  // (N, H, W, C): the input of features.i
  for (int i = begin; i < end;) {
    // features.i .. features.(j - 1): the run of blocks with i's group size.
    const int group = images_per_group(i, h.shape());
    Shape out_shape = block_output_shape(i, h.shape());  // (N, H', W', C') of features.(j - 1)
    int j = i + 1;
    for (; j < end && images_per_group(j, out_shape) == group; ++j) out_shape = block_output_shape(j, out_shape);
    const int64_t n = h.dim(0);
    if (group >= n) {
      h = run_blocks(h, i, j);
    } else {
      Tensor out = Tensor::uninitialized(out_shape);  // (N, H', W', C'), filled group by group
      const int64_t in_per_image = h.numel() / n, out_per_image = out.numel() / n;
      for (int64_t first = 0; first < n; first += group) {
        const int64_t count = std::min<int64_t>(group, n - first);
        Tensor part = Tensor::uninitialized(Shape{count, h.dim(1), h.dim(2), h.dim(3)});  // (count, H, W, C)
        std::copy_n(h.data() + first * in_per_image, count * in_per_image, part.data());
        const Tensor y = run_blocks(part, i, j);  // (count, H', W', C')
        std::copy_n(y.data(), count * out_per_image, out.data() + first * out_per_image);
      }
      h = out;
    }
    i = j;
  }
  return h;
}

Shape FoldedMobileNetV2::block_output_shape(int block, Shape input) const {
  for (const FoldedConv& conv : blocks_[block].convs) input = conv.output_shape(input);
  return input;
}

int FoldedMobileNetV2::images_per_group(int block, const Shape& input) const {
  // Floats one image's pass through the block touches: its input and every conv's output.
  Shape s{1, input[1], input[2], input[3]};
  int64_t floats = s.numel();
  for (const FoldedConv& conv : blocks_[block].convs) floats += (s = conv.output_shape(s)).numel();
  const int64_t n = input[0], bytes = floats * static_cast<int64_t>(sizeof(float));
  const int64_t budget = group_budget_bytes();
  if (n * bytes <= budget) return static_cast<int>(n);
  const int64_t pixels = s[1] * s[2];  // output pixels per image: the rows of the block's last product
  const int64_t enough_rows = (kMinGroupRows + pixels - 1) / pixels;
  return static_cast<int>(std::clamp<int64_t>(std::max(budget / bytes, enough_rows), 1, n));
}

Tensor FoldedMobileNetV2::run_blocks(const Tensor& x, int begin, int end) const {
  Tensor h = x;  // the current activation (N, H, W, C); shares storage, never written while it is the input
  for (int i = begin; i < end; ++i) {
    const Block& block = blocks_[i];
    const Tensor block_input = h;  // (N, H, W, C_in), kept for the residual
    for (size_t j = 0; j < block.convs.size(); ++j) {
      const FoldedConv& conv = block.convs[j];
      if (j + 1 < block.convs.size() && conv.hands_off_bf16_to(block.convs[j + 1])) {
        h = block.convs[j + 1].forward(conv.forward_bf16(h));  // depthwise -> project, bf16 between (folded_conv.h)
        ++j;
      } else {
        h = conv.forward(h);
      }
    }
    if (block.residual) kernels().add_forward(h.numel(), h.data(), block_input.data(), h.data());  // h += x, in place
  }
  return h;
}

FoldedOutput FoldedMobileNetV2::forward(const Tensor& images) const {
  const Tensor h = forward_blocks(images, 0, static_cast<int>(blocks_.size()));  // (N, h, w, F)
  const Shape& s = images.shape();
  const int batch = static_cast<int>(s[0]), F = feature_channels(), K = num_classes();
  FoldedOutput out;
  out.features = Tensor::uninitialized(Shape{batch, F});  // (N, F)
  kernels().global_avg_pool_forward({.batch = batch, .h = static_cast<int>(h.dim(1)), .w = static_cast<int>(h.dim(2)),
                                     .channels = F},
                                    h.data(), out.features.data());
  // logits (N, K) = features (N, F) . W (F, K) + b (K)
  out.logits = Tensor::uninitialized(Shape{batch, K});
  kernels().gemm_bias_act({.m = batch, .n = K, .k = F}, out.features.data(), classifier_weight_.data(),
                          classifier_bias_.defined() ? classifier_bias_.data() : nullptr, Activation::kNone,
                          out.logits.data());
  return out;
}

}  // namespace mriscan
