// Grad-CAM (Selvaraju et al., 2017) for MobileNetV2: which regions of the image drove the score of one class.
//
//   A = features.18 output (1, h, w, C)      the last convolutional feature map (7x7x1280 at 224x224)
//   S = logit of the explained class          (before softmax, as in the paper)
//   alpha_c = mean_{i,j} dS / dA(i, j, c)     channel importance: global-average-pooled gradient
//   cam(i, j) = ReLU(sum_c alpha_c A(i, j, c)), divided by its maximum so it lies in [0, 1]
//
// The gradient is taken with respect to the intermediate activation A through the tape: the backbone runs with
// recording off, A becomes a leaf that requires a gradient, and only the head (pool, dropout, linear) is recorded.
// overlay_heatmap draws the map over the image it explains.
// What it is not: Grad-CAM++ or guided backprop; the map has the feature map's resolution (the overlay upsamples it).
#pragma once

#include <vector>

#include "engine/tensor.h"
#include "io/image_io.h"
#include "models/mobilenet_v2.h"

namespace mriscan {

struct GradCam {
  int class_index = -1;        // the explained class
  std::vector<float> logits;   // (K) logits of the image
  std::vector<float> heatmap;  // (h, w) in [0, 1]
  int height = 0, width = 0;
};

// image (1, S, S, 3), preprocessed. class_index -1 explains the arg-max class. The model must be in eval mode;
// parameter gradients are not touched when the parameters are frozen (requires_grad == false).
GradCam grad_cam(MobileNetV2& model, const Tensor& image, int class_index = -1);

// Grad-CAM overlay: base (H, W) RGB blended with turbo(heat), heat (h, w) in [0, 1] row-major, bilinearly
// resized to (H, W) when it differs: out = (1 - alpha) * base + alpha * turbo(heat).
Image overlay_heatmap(const Image& base, const float* heat, int h, int w, float alpha);

}  // namespace mriscan
