// Seeded training augmentation: one affine warp (flip, rotation, zoom crop) plus brightness/contrast jitter.
#include "data/augment.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "data/random.h"

namespace mriscan {

namespace {

void check_config(const AugmentConfig& config) {
  auto fail = [](const char* field, const char* rule) {
    throw std::invalid_argument(std::string("AugmentConfig.") + field + " must be " + rule);
  };
  if (!(config.max_rotation_degrees >= 0.0 && config.max_rotation_degrees <= 180.0))
    fail("max_rotation_degrees", "in [0, 180]");
  if (!(config.min_scale > 0.0 && config.min_scale <= config.max_scale && config.max_scale <= 1.0))
    fail("min_scale/max_scale", "0 < min_scale <= max_scale <= 1");
  if (!(config.flip_probability >= 0.0 && config.flip_probability <= 1.0)) fail("flip_probability", "in [0, 1]");
  if (!(config.brightness >= 0.0 && config.brightness < 1.0)) fail("brightness", "in [0, 1)");
  if (!(config.contrast >= 0.0 && config.contrast < 1.0)) fail("contrast", "in [0, 1)");
}

// Bilinear sample of channel values at real source coordinates (x, y); outside the image contributes black.
// This is the inverse-mapping form: for every OUTPUT pixel we ask where it comes from, so there are no holes.
void sample_bilinear(const Image& image, float x, float y, float* rgb) {
  const int x0 = static_cast<int>(std::floor(x)), y0 = static_cast<int>(std::floor(y));
  const float tx = x - x0, ty = y - y0;
  rgb[0] = rgb[1] = rgb[2] = 0.0f;
  for (int dy = 0; dy <= 1; ++dy) {
    for (int dx = 0; dx <= 1; ++dx) {
      const int sx = x0 + dx, sy = y0 + dy;
      if (sx < 0 || sy < 0 || sx >= image.width || sy >= image.height) continue;  // black fill
      const float weight = (dx ? tx : 1.0f - tx) * (dy ? ty : 1.0f - ty);
      const uint8_t* p = image.pixel(sx, sy);
      for (int c = 0; c < 3; ++c) rgb[c] += weight * p[c];
    }
  }
}

}  // namespace

Image augment(const Image& image, const AugmentConfig& config, std::mt19937& rng) {
  if (!config.enabled) return image;
  if (image.empty()) throw ImageError("augment: empty image");
  check_config(config);

  // Draw every parameter first, in a fixed order, so the sequence of draws never depends on the image.
  const bool flip = uniform_unit(rng) < config.flip_probability;
  const double angle = uniform_range(rng, -config.max_rotation_degrees, config.max_rotation_degrees) *
                       std::numbers::pi / 180.0;
  const double scale = uniform_range(rng, config.min_scale, config.max_scale);
  const double shift_x = uniform_unit(rng), shift_y = uniform_unit(rng);  // crop position in the free margin
  const double brightness = uniform_range(rng, 1.0 - config.brightness, 1.0 + config.brightness);
  const double contrast = uniform_range(rng, 1.0 - config.contrast, 1.0 + config.contrast);

  // Geometry, in centred coordinates (origin at the image centre, pixel centres at +0.5):
  //   output pixel p -> crop:  q = scale * p + offset    (the crop of side scale*W sits anywhere inside the image)
  //   crop -> source:          s = R(-angle) * q          (rotating the content by +angle = sampling at -angle)
  //   flip mirrors the output: p.x -> -p.x
  const double cx = image.width / 2.0, cy = image.height / 2.0;
  const double offset_x = (shift_x - 0.5) * (1.0 - scale) * image.width;
  const double offset_y = (shift_y - 0.5) * (1.0 - scale) * image.height;
  const double cos_a = std::cos(angle), sin_a = std::sin(angle);

  Image out(image.width, image.height);  // (H, W, 3)
  std::vector<float> warped(out.rgb.size());  // (H, W, 3) before colour jitter, as float to avoid double rounding
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      double px = x + 0.5 - cx, py = y + 0.5 - cy;
      if (flip) px = -px;
      const double qx = scale * px + offset_x, qy = scale * py + offset_y;
      const double sx = cos_a * qx + sin_a * qy, sy = -sin_a * qx + cos_a * qy;
      sample_bilinear(image, static_cast<float>(sx + cx - 0.5), static_cast<float>(sy + cy - 0.5),
                      &warped[(static_cast<size_t>(y) * out.width + x) * 3]);
    }
  }

  // Colour: brightness scales, contrast stretches around the (brightened) image mean, as ColorJitter does.
  double mean = 0.0;
  for (float v : warped) mean += v;
  mean = mean * brightness / static_cast<double>(warped.size());
  for (size_t i = 0; i < warped.size(); ++i) {
    const double v = (warped[i] * brightness - mean) * contrast + mean;
    out.rgb[i] = static_cast<uint8_t>(std::clamp(v + 0.5, 0.0, 255.0));
  }
  return out;
}

}  // namespace mriscan
