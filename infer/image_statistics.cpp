// Image statistics and their fitted ranges (see the header for the definitions).
#include "infer/image_statistics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "data/preprocess.h"

namespace mriscan {

namespace {

// The q-quantile of `values` (sorted in place), interpolating between order statistics like numpy's default.
float quantile(std::vector<float>& values, double q) {
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(position));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = position - static_cast<double>(lo);
  return static_cast<float>((1.0 - frac) * values[lo] + frac * values[hi]);
}

std::string format_float(float value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", value);  // 9 significant digits round-trip a float
  return text;
}

std::string key(int i, const char* bound) {
  return std::string("ood.input.") + ImageStatistics::kNames[i] + "." + bound;
}

}  // namespace

ImageStatistics image_statistics(const Tensor& batch, int64_t index) {
  if (batch.shape().rank() != 4 || batch.dim(3) != 3 || batch.dim(1) < 8 || batch.dim(2) < 8)
    throw std::invalid_argument("image_statistics: expected a preprocessed (N, H, W, 3) batch, got " +
                                batch.shape().str());
  const int64_t h = batch.dim(1), w = batch.dim(2);
  const float* image = batch.data() + index * h * w * 3;  // (H, W, 3), normalised
  const int64_t frame_h = std::max<int64_t>(1, h / 8), frame_w = std::max<int64_t>(1, w / 8);
  std::vector<float> grey(static_cast<size_t>(h * w));  // (H, W) in [0, 1]
  double colour = 0.0, grey_sum = 0.0, border_sum = 0.0;
  int64_t dark = 0, border_pixels = 0;
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const float* p = image + (y * w + x) * 3;
      float rgb[3];
      for (int c = 0; c < 3; ++c)  // undo (v - mean) / std: back to [0, 1]
        rgb[c] = std::clamp(p[c] * PreprocessSpec::kStd[c] + PreprocessSpec::kMean[c], 0.0f, 1.0f);
      const float g = grey[y * w + x] = (rgb[0] + rgb[1] + rgb[2]) / 3.0f;
      colour += std::max({rgb[0], rgb[1], rgb[2]}) - std::min({rgb[0], rgb[1], rgb[2]});
      grey_sum += g;
      dark += g < 0.1f;
      if (y < frame_h || y >= h - frame_h || x < frame_w || x >= w - frame_w) {
        border_sum += g;
        ++border_pixels;
      }
    }
  }
  double change = 0.0;  // texture: over pixels with a right and a lower neighbour that are not dark
  int64_t bright_pixels = 0;
  for (int64_t y = 0; y + 1 < h; ++y)
    for (int64_t x = 0; x + 1 < w; ++x) {
      const float g = grey[y * w + x];
      if (g < 0.1f) continue;
      change += std::abs(grey[y * w + x + 1] - g) + std::abs(grey[(y + 1) * w + x] - g);
      ++bright_pixels;
    }
  const double pixels = static_cast<double>(h * w);
  ImageStatistics s;
  s.values = {static_cast<float>(colour / pixels), static_cast<float>(border_sum / border_pixels),
              static_cast<float>(dark / pixels), static_cast<float>(grey_sum / pixels),
              bright_pixels ? static_cast<float>(change / bright_pixels) : 0.0f};
  return s;
}

std::vector<ImageStatistics> image_statistics(const Tensor& batch) {
  std::vector<ImageStatistics> all;
  for (int64_t i = 0; i < batch.dim(0); ++i) all.push_back(image_statistics(batch, i));
  return all;
}

ImageStatisticsRanges ImageStatisticsRanges::fit(const std::vector<ImageStatistics>& scans, double tail) {
  if (scans.empty()) throw std::invalid_argument("ImageStatisticsRanges::fit: no scans");
  if (!(tail >= 0.0 && tail < 0.5)) throw std::invalid_argument("ImageStatisticsRanges::fit: tail must be in [0, 0.5)");
  ImageStatisticsRanges ranges;
  for (int i = 0; i < ImageStatistics::kCount; ++i) {
    std::vector<float> values;
    for (const ImageStatistics& s : scans) values.push_back(s.values[i]);
    ranges.lower_[i] = ImageStatistics::kTwoSided[i] ? quantile(values, tail) : 0.0f;
    ranges.upper_[i] = quantile(values, 1.0 - tail);
  }
  return ranges;
}

std::vector<std::string> ImageStatisticsRanges::violations(const ImageStatistics& statistics) const {
  std::vector<std::string> found;
  for (int i = 0; i < ImageStatistics::kCount; ++i) {
    const float v = statistics.values[i];
    char line[96];
    if (v > upper_[i])
      std::snprintf(line, sizeof line, "%s %.3f above %.3f", ImageStatistics::kNames[i], v, upper_[i]);
    else if (v < lower_[i])
      std::snprintf(line, sizeof line, "%s %.3f below %.3f", ImageStatistics::kNames[i], v, lower_[i]);
    else
      continue;
    found.emplace_back(line);
  }
  return found;
}

std::map<std::string, std::string> ImageStatisticsRanges::metadata() const {
  std::map<std::string, std::string> metadata;
  for (int i = 0; i < ImageStatistics::kCount; ++i) {
    metadata[key(i, "lower")] = format_float(lower_[i]);
    metadata[key(i, "upper")] = format_float(upper_[i]);
  }
  return metadata;
}

bool ImageStatisticsRanges::present_in(const std::map<std::string, std::string>& metadata) {
  return metadata.count(key(0, "upper")) > 0;
}

ImageStatisticsRanges ImageStatisticsRanges::from_metadata(const std::map<std::string, std::string>& metadata) {
  ImageStatisticsRanges ranges;
  for (int i = 0; i < ImageStatistics::kCount; ++i) {
    for (const char* bound : {"lower", "upper"}) {
      auto it = metadata.find(key(i, bound));
      if (it == metadata.end() && i >= ImageStatistics::kFirstAddedLater) {  // fitted before it existed: no limit
        ranges.lower_[i] = -INFINITY;
        ranges.upper_[i] = INFINITY;
        break;
      }
      if (it == metadata.end())
        throw std::invalid_argument("ImageStatisticsRanges: missing metadata '" + key(i, bound) + "'");
      float value = 0.0f;
      try {
        value = std::stof(it->second);
      } catch (const std::exception&) {
        throw std::invalid_argument("ImageStatisticsRanges: metadata '" + key(i, bound) + "' = '" + it->second +
                                    "' is not a number");
      }
      (std::string(bound) == "lower" ? ranges.lower_ : ranges.upper_)[i] = value;
    }
  }
  return ranges;
}

}  // namespace mriscan
