// The grey-level pipeline of a monochrome DICOM image; see dicom_window.h and docs/dicom.md.
#include "io/dicom_window.h"

#include <algorithm>
#include <cmath>

namespace mriscan {
namespace {

constexpr double kOutMax = 255.0;  // ymax; ymin = 0
constexpr double kLowPercentile = 0.005, kHighPercentile = 0.995;

uint8_t to_byte(double y) { return static_cast<uint8_t>(std::lround(std::clamp(y, 0.0, kOutMax))); }

// The stored value at 0-based rank `rank` of the image's stored values in ascending order.
int32_t stored_at_rank(const std::vector<uint64_t>& histogram, int32_t lowest, uint64_t rank) {
  uint64_t below = 0;
  for (size_t i = 0; i < histogram.size(); ++i) {
    below += histogram[i];
    if (below > rank) return lowest + static_cast<int32_t>(i);
  }
  return lowest + static_cast<int32_t>(histogram.size()) - 1;
}

// The window over [p_0.5, p_99.5] of the modality values, as a LINEAR_EXACT window (center = (lo + hi) / 2,
// width = hi - lo maps lo to 0 and hi to 255). Ranks floor(0.005 (N - 1)) and ceil(0.995 (N - 1)); a negative
// slope reverses the order, so the modality percentiles then come from the opposite stored ranks.
VoiWindow percentile_window(const GreyLevelPipeline& p, const std::vector<uint64_t>& histogram, int32_t lowest) {
  uint64_t n = 0;
  for (uint64_t count : histogram) n += count;
  const uint64_t last = n == 0 ? 0 : n - 1;
  uint64_t low_rank = static_cast<uint64_t>(std::floor(kLowPercentile * static_cast<double>(last)));
  uint64_t high_rank = static_cast<uint64_t>(std::ceil(kHighPercentile * static_cast<double>(last)));
  if (p.slope < 0) {
    low_rank = last - low_rank;
    high_rank = last - high_rank;
  }
  const double lo = stored_at_rank(histogram, lowest, low_rank) * p.slope + p.intercept;
  const double hi = stored_at_rank(histogram, lowest, high_rank) * p.slope + p.intercept;
  return {(lo + hi) / 2.0, hi - lo, VoiWindow::Function::kLinearExact};
}

uint8_t apply_lut(double x, const VoiLut& lut) {
  const int64_t entries = static_cast<int64_t>(lut.data.size());
  const int64_t index = std::clamp<int64_t>(std::llround(x) - lut.first_mapped, 0, entries - 1);
  const double top = std::ldexp(1.0, lut.bits) - 1.0;  // 2^bits - 1: the LUT's white
  return to_byte(lut.data[static_cast<size_t>(index)] * kOutMax / top);
}

}  // namespace

bool VoiWindow::valid() const {
  if (!std::isfinite(center) || !std::isfinite(width)) return false;
  return function == Function::kLinear ? width >= 1.0 : width > 0.0;
}

double apply_window(double x, const VoiWindow& w) {
  const double c = w.center;
  switch (w.function) {
    case VoiWindow::Function::kLinear: {
      // C.11.2.1.2.1: the window's edges are c - 0.5 -/+ (w - 1) / 2; between them
      // y = ((x - (c - 0.5)) / (w - 1) + 0.5) * (ymax - ymin) + ymin.
      const double half = (w.width - 1.0) / 2.0;
      if (x <= c - 0.5 - half) return 0.0;
      if (x > c - 0.5 + half) return kOutMax;
      return ((x - (c - 0.5)) / (w.width - 1.0) + 0.5) * kOutMax;
    }
    case VoiWindow::Function::kLinearExact:
      // C.11.2.1.3.2: y = ((x - c) / w + 0.5) * (ymax - ymin) + ymin, clamped outside c -/+ w / 2.
      if (x <= c - w.width / 2.0) return 0.0;
      if (x > c + w.width / 2.0) return kOutMax;
      return ((x - c) / w.width + 0.5) * kOutMax;
    case VoiWindow::Function::kSigmoid:
      // C.11.2.1.3.1: y = (ymax - ymin) / (1 + exp(-4 (x - c) / w)) + ymin.
      return kOutMax / (1.0 + std::exp(-4.0 * (x - c) / w.width));
  }
  return 0.0;
}

VoiChoice voi_choice(const GreyLevelPipeline& p) {
  if (p.window && p.window->valid()) return VoiChoice::kWindow;
  if (p.lut && !p.lut->data.empty()) return VoiChoice::kLut;
  if (p.bits_stored <= 8 && !p.is_signed && p.slope == 1.0 && p.intercept == 0.0) return VoiChoice::kIdentity;
  return VoiChoice::kPercentile;
}

GreyLevelTable grey_level_table(const GreyLevelPipeline& p, const std::vector<uint64_t>& histogram) {
  GreyLevelTable table;
  const int64_t count = int64_t{1} << p.bits_stored;
  table.lowest = p.is_signed ? static_cast<int32_t>(-(count / 2)) : 0;
  table.out.resize(static_cast<size_t>(count));
  const VoiChoice choice = voi_choice(p);
  const VoiWindow window = choice == VoiChoice::kWindow       ? *p.window
                           : choice == VoiChoice::kPercentile ? percentile_window(p, histogram, table.lowest)
                                                              : VoiWindow{};
  const bool flat = choice == VoiChoice::kPercentile && !(window.width > 0.0);  // one value: black
  for (int64_t i = 0; i < count; ++i) {
    const double x = static_cast<double>(table.lowest + i) * p.slope + p.intercept;  // the modality value
    uint8_t y = 0;
    if (choice == VoiChoice::kLut) y = apply_lut(x, *p.lut);
    else if (choice == VoiChoice::kIdentity) y = static_cast<uint8_t>(i);
    else if (!flat) y = to_byte(apply_window(x, window));
    table.out[static_cast<size_t>(i)] = p.monochrome1 ? static_cast<uint8_t>(255 - y) : y;
  }
  return table;
}

}  // namespace mriscan
