// Training-time data augmentation on the uint8 Image, before data/preprocess.h. Seeded: the caller passes the
// engine (the DataLoader derives one per (seed, epoch, sample)), so a run is reproducible.
//
// One random geometric warp = horizontal flip (p 0.5) + rotation (+-15 degrees) + zoom-in crop (keep 85-100 % of
// the side, random position) composed into a single affine map and sampled ONCE with bilinear interpolation;
// pixels that fall outside the source are black (the MRI background). Composing the three avoids the blur of
// resampling three times. Then brightness and contrast jitter (+-15 %, as torchvision's ColorJitter):
//   v' = clamp(((v * b) - m) * c + m),  b, c ~ U(1 - 0.15, 1 + 0.15),  m = mean of v * b over the image.
// Why these: MRI slices vary in orientation by a few degrees, field of view and scanner intensity; flips are safe
// because the tumour classes have no left/right meaning. What it is not: used at evaluation or serving time.
#pragma once

#include <random>

#include "io/image_io.h"

namespace mriscan {

struct AugmentConfig {
  bool enabled = true;
  double max_rotation_degrees = 15.0;  // angle ~ U(-max, +max)
  double min_scale = 0.85;             // crop side fraction ~ U(min_scale, max_scale), then resized back
  double max_scale = 1.0;
  double flip_probability = 0.5;       // horizontal
  double brightness = 0.15;            // multiplicative factor ~ U(1 - brightness, 1 + brightness)
  double contrast = 0.15;              // factor around the image mean ~ U(1 - contrast, 1 + contrast)
};

// Returns a new image of the same size. With config.enabled == false returns an unchanged copy and draws nothing.
// Throws std::invalid_argument naming the field for out-of-range settings.
Image augment(const Image& image, const AugmentConfig& config, std::mt19937& rng);

}  // namespace mriscan
