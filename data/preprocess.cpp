// The single preprocessing function (see preprocess.h for why there is only one).
#include "data/preprocess.h"

#include <cstdio>
#include <exception>

namespace mriscan {

std::string PreprocessSpec::describe() const {
  char text[256];
  std::snprintf(text, sizeof(text),
                "resize %dx%d bilinear half-pixel (box prefilter above 2x); rgb/255; mean [%.3f,%.3f,%.3f]; "
                "std [%.3f,%.3f,%.3f]; layout HWC float32",
                size, size, kMean[0], kMean[1], kMean[2], kStd[0], kStd[1], kStd[2]);
  return text;
}

Image resize_to_input(const Image& image, int size) {
  if (size <= 0) throw ImageError("preprocess: size must be positive, got " + std::to_string(size));
  if (image.empty()) throw ImageError("preprocess: empty image");
  return resize_bilinear(image, size, size);  // (size, size, 3) uint8
}

void preprocess(const Image& image, int size, float* out) {
  // An image already at the input size (the server's, resized right after decoding) is normalised as it is.
  const bool at_size = !image.empty() && image.width == size && image.height == size;
  const Image resized = at_size ? Image() : resize_to_input(image, size);  // (size, size, 3) uint8
  const Image& input = at_size ? image : resized;

  // out = (v / 255 - mean) / std  ==  v * scale[c] + shift[c]  with scale = 1 / (255 std), shift = -mean / std.
  float scale[3], shift[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.0f / (255.0f * PreprocessSpec::kStd[c]);
    shift[c] = -PreprocessSpec::kMean[c] / PreprocessSpec::kStd[c];
  }
  const size_t pixels = static_cast<size_t>(size) * size;
  for (size_t i = 0; i < pixels; ++i)
    for (int c = 0; c < 3; ++c) out[i * 3 + c] = input.rgb[i * 3 + c] * scale[c] + shift[c];
}

Tensor preprocess_batch(const std::vector<Image>& images, int size) {
  if (images.empty()) throw ImageError("preprocess_batch: no images");
  Tensor batch(Shape{static_cast<int64_t>(images.size()), size, size, 3});  // (N, size, size, 3)
  const int64_t per_image = static_cast<int64_t>(size) * size * 3;
  // Each thread owns whole images (disjoint output slices). Exceptions must not escape an OpenMP region, so the
  // first one is kept and rethrown after the loop.
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic)
  for (int64_t n = 0; n < static_cast<int64_t>(images.size()); ++n) {
    try {
      preprocess(images[n], size, batch.data() + n * per_image);
    } catch (...) {
#pragma omp critical(mriscan_preprocess_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return batch;
}

}  // namespace mriscan
