// Grad-CAM: backbone without recording, head with recording, gradient of one logit w.r.t. the feature map.
#include "infer/gradcam.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "io/plot_canvas.h"

namespace mriscan {

GradCam grad_cam(MobileNetV2& model, const Tensor& image, int class_index) {
  if (image.shape().rank() != 4 || image.dim(0) != 1)
    throw std::invalid_argument("grad_cam: expected one preprocessed image (1, S, S, 3), got " + image.shape().str());
  Tape tape;
  tape.set_enabled(false);
  Var feature_map = model.forward_blocks(tape, make_var(image), 0, MobileNetV2::kNumBlocks);  // (1, h, w, C)
  // A fresh leaf holding A, so that the tape records only the head and stops at A.
  Var activations = make_var(feature_map->value, /*requires_grad=*/true);
  tape.set_enabled(true);
  Var logits = model.forward_head(tape, activations);  // (1, K)

  GradCam result;
  const int num_classes = static_cast<int>(logits->value.dim(1));
  result.logits = logits->value.to_vector();
  result.class_index = class_index >= 0
                           ? class_index
                           : static_cast<int>(std::max_element(result.logits.begin(), result.logits.end()) -
                                              result.logits.begin());
  if (result.class_index >= num_classes)
    throw std::invalid_argument("grad_cam: class index " + std::to_string(class_index) + " >= " +
                                std::to_string(num_classes) + " classes");
  Tensor seed(logits->value.shape());  // one-hot: d S / d logits
  seed[result.class_index] = 1.0f;
  tape.backward(logits, seed);

  const int h = static_cast<int>(activations->value.dim(1)), w = static_cast<int>(activations->value.dim(2));
  const int channels = static_cast<int>(activations->value.dim(3));
  const float* a = activations->value.data();  // (h, w, C)
  const float* da = activations->grad.data();  // (h, w, C)
  std::vector<double> alpha(channels, 0.0);    // (C)
  for (int p = 0; p < h * w; ++p)
    for (int c = 0; c < channels; ++c) alpha[c] += da[p * channels + c];
  for (double& value : alpha) value /= h * w;

  result.height = h;
  result.width = w;
  result.heatmap.assign(h * w, 0.0f);
  float peak = 0.0f;
  for (int p = 0; p < h * w; ++p) {
    double sum = 0.0;
    for (int c = 0; c < channels; ++c) sum += alpha[c] * a[p * channels + c];
    result.heatmap[p] = static_cast<float>(std::max(0.0, sum));
    peak = std::max(peak, result.heatmap[p]);
  }
  if (peak > 0.0f)
    for (float& value : result.heatmap) value /= peak;
  return result;
}

Image overlay_heatmap(const Image& base, const float* heat, int h, int w, float alpha) {
  if (base.empty()) throw std::invalid_argument("overlay_heatmap: base image is empty");
  if (heat == nullptr || h <= 0 || w <= 0)
    throw std::invalid_argument("overlay_heatmap: heat must be a non-null (h, w) map, got (" + std::to_string(h) +
                                ", " + std::to_string(w) + ")");
  if (!(alpha >= 0.0f && alpha <= 1.0f))
    throw std::invalid_argument("overlay_heatmap: alpha must be in [0, 1], got " + std::to_string(alpha));
  Image out = base;
  // Bilinear sampling of heat at each output pixel, half-pixel centres (as resize_bilinear does for images):
  //   src = (dst + 0.5) * (in / out) - 0.5, clamped to [0, in - 1].
  const float sx = static_cast<float>(w) / base.width, sy = static_cast<float>(h) / base.height;
  for (int y = 0; y < base.height; ++y) {
    const float fy = std::clamp((y + 0.5f) * sy - 0.5f, 0.0f, static_cast<float>(h - 1));
    const int y0 = static_cast<int>(fy), y1 = std::min(y0 + 1, h - 1);
    const float ty = fy - y0;
    for (int x = 0; x < base.width; ++x) {
      const float fx = std::clamp((x + 0.5f) * sx - 0.5f, 0.0f, static_cast<float>(w - 1));
      const int x0 = static_cast<int>(fx), x1 = std::min(x0 + 1, w - 1);
      const float tx = fx - x0;
      const float top = (1 - tx) * heat[y0 * w + x0] + tx * heat[y0 * w + x1];
      const float bottom = (1 - tx) * heat[y1 * w + x0] + tx * heat[y1 * w + x1];
      blend_pixel(out, x, y, turbo_color((1 - ty) * top + ty * bottom), alpha);
    }
  }
  return out;
}

}  // namespace mriscan
