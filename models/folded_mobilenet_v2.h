// FoldedMobileNetV2: an inference-only snapshot of a MobileNetV2 in eval mode, with every batch norm folded into
// the conv before it and every ReLU6 fused into that conv's kernel epilogue (models/folded_conv.h has the fold).
// One kernel call per conv, instead of conv, BN and ReLU6 each making a pass over the activation:
//
//   features.0       y = relu6(conv3x3_s2(x; w') + b')                                   (N, H/2, W/2, 32w)
//   features.1..17   h = relu6(conv1x1(x; w'_e) + b'_e)   (absent when t == 1)             (N, h, w, t*C_in)
//                    h = relu6(depthwise3x3_s(h; w'_d) + b'_d)                            (N, h/s, w/s, t*C_in)
//                    y = conv1x1(h; w'_p) + b'_p   [+ x when s == 1 and C_in == C_out]    (N, h/s, w/s, C_out)
//   features.18      y = relu6(conv1x1(x; w') + b')                                       (N, h, w, F)
//   features (N, F)  = global average pool of features.18;  logits (N, K) = features . W + b
// Dropout is the identity in eval mode and is left out. The outputs are run_inference's (infer/inference.h): the
// same logits and pooled features as the taped eval-mode forward, up to float rounding
// (tests/models/test_folded_mobilenet.cpp).
//
// Images in groups: a block whose activations for the whole batch would not fit in the threads' second-level caches
// runs a few images at a time, so what its expand conv writes is still in a cache when its depthwise conv reads it
// (at batch 32 a 112x112 block's activations are 150 MB each, written to DRAM and read back). A group has as many
// images as fit that budget, but at least enough for kMinGroupRows output pixels, below which a 1x1 conv's product
// is too short to keep the threads busy. Consecutive blocks with the same group size run as one loop over groups.
// Results do not depend on the grouping: every kernel computes each image's outputs from that image alone.
//
// What it is: an immutable copy of the weights and running statistics, taken when it is built. Build it after
// training or loading; later changes to the MobileNetV2 (an optimiser step, new running statistics) do not reach
// it. forward() is const and may run on several threads at once; its activations come uninitialised from the
// engine's caching allocator (every kernel overwrites its output), so repeated calls allocate nothing new.
// What it is not: taped. No gradients, so not for training (beyond a frozen prefix), BN calibration
// (models/imagenet_import.h) or Grad-CAM, which needs d score / d feature map (infer/gradcam.h runs on the MobileNetV2
// itself). Nor does it have a training mode: batch norm always uses the running statistics, whatever mode the source
// model was in.
#pragma once

#include <vector>

#include "engine/tensor.h"
#include "models/folded_conv.h"
#include "models/mobilenet_v2.h"

namespace mriscan {

struct FoldedOutput {
  Tensor logits;    // (N, K)
  Tensor features;  // (N, F) globally pooled features.18 output, F = feature_channels()
};

class FoldedMobileNetV2 {
 public:
  explicit FoldedMobileNetV2(const MobileNetV2& model);

  // images (N, H, W, 3), H and W >= 32, as MobileNetV2::forward takes them.
  FoldedOutput forward(const Tensor& images) const;
  // features.begin .. features.(end - 1) on x, their input (images when begin = 0), as MobileNetV2::forward_blocks
  // in eval mode. Training runs a frozen prefix through it: those blocks are in eval mode and never change.
  Tensor forward_blocks(const Tensor& x, int begin, int end) const;  // (N, h, w, C) of features.(end - 1)

  // How many images of an input (N, H, W, C) features.block runs at a time (N: all at once): "Images in groups".
  int images_per_group(int block, const Shape& input) const;

  int num_classes() const { return static_cast<int>(classifier_weight_.dim(1)); }
  int feature_channels() const { return static_cast<int>(classifier_weight_.dim(0)); }

 private:
  struct Block {
    std::vector<FoldedConv> convs;  // applied in order
    bool residual = false;          // y = x + convs(x)
  };

  static constexpr int64_t kMinGroupRows = 1024;  // see "Images in groups" above

  // features.begin .. features.(end - 1) on all of x at once: the plain loop.
  Tensor run_blocks(const Tensor& x, int begin, int end) const;
  Shape block_output_shape(int block, Shape input) const;

  std::vector<Block> blocks_;  // features.0 .. features.18
  Tensor classifier_weight_;   // (F, K)
  Tensor classifier_bias_;     // (K), undefined when the classifier has no bias
};

}  // namespace mriscan
