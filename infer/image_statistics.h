// Input statistics that tell a brain MRI slice from other pictures before any network sees it, and the ranges
// genuine scans fall in.
//
// Brain MRIs as this dataset stores them are grey (R = G = B up to JPEG noise), sit on a dark background that
// reaches the frame, and are mostly dark. Photographs and screenshots are colourful, documents and diagrams are
// bright up to the border, and a scan's tissue is textured where smooth renderings (a glowing blob on black, a
// soft-focus photograph) are not. Five numbers, all in [0, 1], computed on the preprocessed network input (the same
// pixels the network sees, with ImageNet normalisation undone), so fitting and checking cannot disagree:
//   colourfulness      mean over pixels of max(R, G, B) - min(R, G, B)
//   border_brightness  mean grey level of the outer frame (the outer 1/8 of each side)
//   dark_fraction      share of pixels whose grey level is below 0.1
//   mean_brightness    mean grey level
//   texture            mean of |g(x+1, y) - g(x, y)| + |g(x, y+1) - g(x, y)| over the pixels that are not dark
//                      (g >= 0.1; 0 when every pixel is dark): how much the bright part changes from pixel to pixel
// (grey g = (R + G + B) / 3). The ranges are quantiles of the training scans' values: above the upper quantile
// of colourfulness or border brightness, or outside [lower, upper] of the other three, an image is not like them.
// A perfectly grey or perfectly black-framed image is never suspicious for that, so those two are one-sided.
// Texture was added after the first four: a model file fitted before it has no range for it, which reads as
// "never flags" (from_metadata), so older files load and behave as they did.
// What it is not: the feature-space detector (infer/ood.h), or the decision that combines them (infer/ood_check.h).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace mriscan {

struct ImageStatistics {
  static constexpr int kCount = 5;
  static constexpr std::array<const char*, kCount> kNames = {"colourfulness", "border_brightness", "dark_fraction",
                                                             "mean_brightness", "texture"};
  static constexpr std::array<bool, kCount> kTwoSided = {false, false, true, true, true};
  static constexpr int kFirstAddedLater = 4;  // statistics from here on may be missing from older model files
  std::array<float, kCount> values{};  // in kNames' order
};

// The statistics of image `index` of a preprocessed batch (N, S, S, 3) (data/preprocess.h's normalisation).
ImageStatistics image_statistics(const Tensor& batch, int64_t index);
std::vector<ImageStatistics> image_statistics(const Tensor& batch);  // every image of the batch

class ImageStatisticsRanges {
 public:
  // Lower and upper limits at the `tail` and 1 - `tail` quantiles of `scans` (linear interpolation).
  static ImageStatisticsRanges fit(const std::vector<ImageStatistics>& scans, double tail = 0.001);

  // One line per statistic outside its range, e.g. "colourfulness 0.312 above 0.041"; empty when all are in.
  std::vector<std::string> violations(const ImageStatistics& statistics) const;

  float lower(int i) const { return lower_[i]; }
  float upper(int i) const { return upper_[i]; }

  // Metadata strings "ood.input.<name>.lower" / ".upper"; from_metadata ignores other keys.
  std::map<std::string, std::string> metadata() const;
  static ImageStatisticsRanges from_metadata(const std::map<std::string, std::string>& metadata);
  static bool present_in(const std::map<std::string, std::string>& metadata);

 private:
  std::array<float, ImageStatistics::kCount> lower_{}, upper_{};
};

}  // namespace mriscan
