// FoldedMobileNetV2: the snapshot of a MobileNetV2's blocks as folded convs, and the untaped forward (structure and
// formulas in the header).
#include "models/folded_mobilenet_v2.h"

#include <stdexcept>
#include <string>

#include "engine/kernels/dispatch.h"
#include "layers/inverted_residual.h"

namespace mriscan {

namespace {

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
