// The grey-level pipeline of a monochrome DICOM image, from stored values to the model's 8-bit input
// (docs/dicom.md derives it): stored value -> modality value by Rescale Slope and Intercept (PS3.3 C.11.1.1.2)
// -> 8 bits by the VOI window (C.11.2.1.2: LINEAR, LINEAR_EXACT or SIGMOID) or else the VOI LUT (C.11.2.1.1), or,
// when the file has neither, by the identity for 8-bit unsigned values without a rescale and otherwise a window over
// the 0.5th to 99.5th percentile of the image's modality values -> inverted for MONOCHROME1 (C.7.6.3.1.2).
//
// What it is: the arithmetic, as one table from every possible stored value to its 8-bit output (at most 2^16
// entries: BitsStored <= 16), so an image costs one look-up per pixel. What it is not: reading the attributes from
// the file (io/dicom_image.cpp) or a presentation state (no Presentation LUT, overlays or shutters).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace mriscan {

struct VoiWindow {
  enum class Function { kLinear, kLinearExact, kSigmoid };  // (0028,1056) VOI LUT Function; LINEAR by default
  double center = 0.0, width = 0.0;                          // (0028,1050), (0028,1051): the first values
  Function function = Function::kLinear;
  // LINEAR needs width >= 1, the others width > 0; an invalid window is ignored, as if absent.
  bool valid() const;
};

struct VoiLut {
  int64_t first_mapped = 0;     // modality value of data[0] (LUT Descriptor, second value)
  int bits = 16;                // LUT Descriptor, third value: entries range over 0 .. 2^bits - 1
  std::vector<uint16_t> data;   // (entries,) LUT Data
};

struct GreyLevelPipeline {
  int bits_stored = 16;          // 1..16
  bool is_signed = false;        // Pixel Representation 1: two's complement
  double slope = 1.0, intercept = 0.0;
  std::optional<VoiWindow> window;
  std::optional<VoiLut> lut;
  bool monochrome1 = false;      // minimum displayed white
};

// The 8-bit output of every stored value from `lowest` (0, or -2^(bits_stored-1) when signed) upwards.
struct GreyLevelTable {
  int32_t lowest = 0;
  std::vector<uint8_t> out;  // (2^bits_stored,)
  uint8_t operator()(int32_t stored) const { return out[static_cast<size_t>(stored - lowest)]; }
};

// The VOI transform the pipeline uses, for messages and tests.
enum class VoiChoice { kWindow, kLut, kIdentity, kPercentile };
VoiChoice voi_choice(const GreyLevelPipeline& pipeline);

// The table for `pipeline`. `histogram` counts the image's pixels per stored value (indexed like `out`); only the
// percentile window reads it.
GreyLevelTable grey_level_table(const GreyLevelPipeline& pipeline, const std::vector<uint64_t>& histogram);

// One value through a window: y in [0, 255] before rounding (the formulas of PS3.3 C.11.2.1.2 and C.11.2.1.3).
double apply_window(double x, const VoiWindow& window);

}  // namespace mriscan
