// DICOM images; see dicom_image.h. The order: structure, transfer syntax and values (io/dicom_structure.h), then
// what the image declares against the limits, the bytes present and a compressed frame's own header, then the
// grey-level pipeline's values, the budget, the transfer syntax's decoder (io/dicom_pixels.h), and the pipeline
// (io/dicom_window.h) maps the samples to 8 bits.
#include "io/dicom_image.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "io/codestream_header.h"
#include "io/decode_budget.h"
#include "io/dicom_pixels.h"
#include "io/dicom_structure.h"
#include "io/dicom_window.h"

namespace mriscan {
namespace {

[[noreturn]] void fail(const std::string& source, const std::string& problem) {
  throw ImageError("cannot decode " + source + ": " + problem);
}
[[noreturn]] void refuse(const std::string& source, const std::string& what) {
  throw UnsupportedImageFormat("cannot decode " + source + ": " + what +
                               " is not accepted (only single-frame MONOCHROME1 or MONOCHROME2 DICOM images with 8 "
                               "or 16 bits allocated)");
}

// What the walk found, against the limits and the bytes there, before anything is allocated for pixels.
void check_declared_image(const DicomStructure& s, const DecodeLimits& limits, const std::string& source) {
  if (!s.has_pixel_data) fail(source, "the DICOM file has no Pixel Data (7FE0,0010): it is not an image");
  if (s.samples_per_pixel == 0 || s.bits_allocated == 0)
    fail(source, "the DICOM image has no Samples per Pixel (0028,0002) or Bits Allocated (0028,0100)");
  if (s.samples_per_pixel != 1)
    refuse(source, "a DICOM image of " + std::to_string(s.samples_per_pixel) + " samples per pixel (colour)");
  if (s.bits_allocated != 8 && s.bits_allocated != 16)
    refuse(source, "a DICOM image of " + std::to_string(s.bits_allocated) + " bits allocated");
  if (s.frames != 1)
    fail(source, "a DICOM object of " + std::to_string(s.frames) +
                     " frames; only single-frame images are classified: send each frame as its own file");
  const int64_t pixels = int64_t{s.rows} * s.columns;
  if (s.rows <= 0 || s.columns <= 0 || s.rows > limits.max_side || s.columns > limits.max_side ||
      pixels > limits.max_pixels)
    fail(source, "refusing a DICOM image of " + std::to_string(s.columns) + "x" + std::to_string(s.rows) +
                     " pixels (Columns x Rows): the limit is " + std::to_string(limits.max_side) + " per side and " +
                     std::to_string(limits.max_pixels) + " pixels in total");
  const uint64_t needed = static_cast<uint64_t>(pixels) * (s.bits_allocated / 8);  // x 1 frame x 1 sample
  if (!s.syntax->encapsulated && s.pixel_data_length < needed)
    fail(source, "the DICOM pixel data holds " + std::to_string(s.pixel_data_length) + " bytes; " +
                     std::to_string(s.columns) + "x" + std::to_string(s.rows) + " pixels of " +
                     std::to_string(s.bits_allocated) + " bits need " + std::to_string(needed));
  if (s.syntax->encapsulated && (s.fragments.empty() || s.fragments[0].length == 0))
    fail(source, "the DICOM file's compressed pixel data has no fragment");
  if (s.bits_stored < 1 || s.bits_stored > s.bits_allocated || s.high_bit + 1 < s.bits_stored ||
      s.high_bit >= s.bits_allocated)
    fail(source, "Bits Stored " + std::to_string(s.bits_stored) + " and High Bit " + std::to_string(s.high_bit) +
                     " do not fit in " + std::to_string(s.bits_allocated) + " bits allocated");
}

// A compressed frame is sized by its own header: it must declare the image the data set declares, at a depth that
// fits the bits allocated. Returns that depth (0 for uncompressed and RLE, which have no such header).
int check_codestream(const uint8_t* bytes, const DicomStructure& s, const std::string& source) {
  if (!s.syntax->encapsulated || std::string(s.syntax->uid) == "1.2.840.10008.1.2.5") return 0;
  const auto header = read_codestream_header(bytes + s.fragments[0].offset, s.fragments[0].length);
  if (!header) fail(source, std::string("the compressed pixel data is not a readable ") + s.syntax->name + " stream");
  if (header->width != s.columns || header->height != s.rows || header->components != 1 || header->precision < 2 ||
      header->precision > s.bits_allocated)
    fail(source, "the compressed image declares " + std::to_string(header->width) + "x" +
                     std::to_string(header->height) + " pixels of " + std::to_string(header->components) +
                     " components of " + std::to_string(header->precision) + " bits, the data set " +
                     std::to_string(s.columns) + "x" + std::to_string(s.rows) + " of 1 component of at most " +
                     std::to_string(s.bits_allocated));
  return header->precision;
}

// The first value of a multi-valued text (values separated by '\'), without its padding.
std::string first_value(const std::string& text) {
  std::string value = text.substr(0, text.find('\\'));
  value.erase(0, value.find_first_not_of(" \0", 0, 2));
  value.erase(value.find_last_not_of(" \0", std::string::npos, 2) + 1);
  return value;
}

// The first value of a DS as a finite number, or nothing if absent or not a number.
std::optional<double> decimal(const std::string& text) {
  const std::string value = first_value(text);
  if (value.empty()) return std::nullopt;
  char* end = nullptr;
  const double number = std::strtod(value.c_str(), &end);
  if (end != value.c_str() + value.size() || !std::isfinite(number)) return std::nullopt;
  return number;
}

std::optional<VoiWindow> read_window(const DicomStructure& s) {
  const auto center = decimal(s.window_center), width = decimal(s.window_width);
  if (!center || !width) return std::nullopt;
  const std::string function = first_value(s.voi_lut_function);
  VoiWindow window{*center, *width, VoiWindow::Function::kLinear};
  if (function == "LINEAR_EXACT") window.function = VoiWindow::Function::kLinearExact;
  if (function == "SIGMOID") window.function = VoiWindow::Function::kSigmoid;
  return window;
}

uint16_t u16(const std::string& bytes, size_t at, bool little) {
  const auto* b = reinterpret_cast<const uint8_t*>(bytes.data() + at);
  return little ? uint16_t(b[0] | b[1] << 8) : uint16_t(b[0] << 8 | b[1]);
}

// The first item of the VOI LUT Sequence (0028,3010): LUT Descriptor (entries, first mapped value, bits per
// entry; 0 entries means 65536) and LUT Data, 16 bits per entry (8-bit entries may be packed two per word).
std::optional<VoiLut> read_voi_lut(const DicomStructure& s, bool is_signed, const std::string& source) {
  if (s.lut_descriptor.empty() && s.lut_data.empty()) return std::nullopt;
  if (s.lut_descriptor.size() != 6 || s.lut_data.empty())
    fail(source, "the VOI LUT Descriptor (0028,3002) is not three 16-bit values, or there is no LUT Data");
  const bool little = s.lut_little;
  const uint16_t raw_entries = u16(s.lut_descriptor, 0, little), first = u16(s.lut_descriptor, 2, little);
  VoiLut lut;
  const size_t entries = raw_entries == 0 ? 65536 : raw_entries;
  lut.first_mapped = is_signed ? int64_t{static_cast<int16_t>(first)} : int64_t{first};
  lut.bits = u16(s.lut_descriptor, 4, little);
  if (lut.bits < 8 || lut.bits > 16)
    fail(source, "the VOI LUT Descriptor declares " + std::to_string(lut.bits) + " bits per entry (8 to 16 are valid)");
  const size_t length = s.lut_data.size();
  lut.data.resize(entries);
  if (length == 2 * entries) {
    for (size_t i = 0; i < entries; ++i) lut.data[i] = u16(s.lut_data, 2 * i, little);
  } else if (lut.bits == 8 && (length == entries || length == entries + 1)) {
    for (size_t i = 0; i < entries; ++i) lut.data[i] = static_cast<uint8_t>(s.lut_data[i]);
  } else {
    fail(source, "the VOI LUT Data (0028,3006) holds " + std::to_string(length) + " bytes for " +
                     std::to_string(entries) + " entries");
  }
  return lut;
}

// Photometric Interpretation is a CS: quoted in a refusal only when it looks like one.
std::string photometric_name(const std::string& text) {
  const std::string value = first_value(text);
  const bool code = !value.empty() && value.size() <= 16 && std::all_of(value.begin(), value.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ' ';
  });
  return code ? value : "(malformed)";
}

GreyLevelPipeline read_pipeline(const DicomStructure& s, const std::string& source) {
  if (s.has_modality_lut) refuse(source, "a Modality LUT Sequence (0028,3000)");
  const std::string photometric = photometric_name(s.photometric);
  if (photometric != "MONOCHROME1" && photometric != "MONOCHROME2")
    refuse(source, "Photometric Interpretation " + photometric);
  GreyLevelPipeline p;
  p.bits_stored = s.bits_stored;
  p.is_signed = s.pixel_representation == 1;
  p.slope = decimal(s.rescale_slope).value_or(1.0);
  p.intercept = decimal(s.rescale_intercept).value_or(0.0);
  if (p.slope == 0.0) fail(source, "Rescale Slope (0028,1053) is 0");
  p.window = read_window(s);
  p.lut = read_voi_lut(s, p.is_signed, source);
  p.monochrome1 = photometric == "MONOCHROME1";
  return p;
}

// Each sample's stored value (PS3.5 8.1.1: the bits_stored bits ending at high_bit, two's complement when signed),
// as an index into the grey-level table, which starts at the lowest value: (rows, columns).
std::vector<uint16_t> stored_indices(std::vector<uint16_t> samples, const DicomStructure& s,
                                     const GreyLevelPipeline& p) {
  const int shift = s.high_bit + 1 - s.bits_stored;
  const uint32_t mask = (uint32_t{1} << p.bits_stored) - 1;
  const uint32_t offset = p.is_signed ? uint32_t{1} << (p.bits_stored - 1) : 0;  // stored - lowest
  // Two's complement in bits_stored bits, shifted by half the range: (v + offset) mod 2^bits_stored.
  for (uint16_t& sample : samples) sample = static_cast<uint16_t>((((sample >> shift) & mask) + offset) & mask);
  return samples;
}

Image to_image(const std::vector<uint16_t>& indices, const GreyLevelPipeline& p, int width, int height) {
  std::vector<uint64_t> histogram(size_t{1} << p.bits_stored, 0);
  for (uint16_t index : indices) ++histogram[index];
  const GreyLevelTable table = grey_level_table(p, histogram);
  Image image(width, height);
  for (size_t i = 0; i < indices.size(); ++i) {
    const uint8_t grey = table.out[indices[i]];
    image.rgb[3 * i] = image.rgb[3 * i + 1] = image.rgb[3 * i + 2] = grey;
  }
  return image;
}

}  // namespace

Image decode_dicom(const uint8_t* bytes, size_t size, const DecodeLimits& limits, const std::string& source,
                   DecodeBudget* budget) {
  const DicomStructure s = walk_dicom_structure(bytes, size, source);
  check_declared_image(s, limits, source);
  const int precision = check_codestream(bytes, s, source);
  const GreyLevelPipeline pipeline = read_pipeline(s, source);
  if (budget != nullptr && !budget->try_charge(int64_t{s.rows} * s.columns))
    throw DecodeBudgetExceeded(budget->exceeded_message(source));
  std::vector<uint16_t> samples = decode_dicom_samples(bytes, s, precision, source);
  return to_image(stored_indices(std::move(samples), s, pipeline), pipeline, s.columns, s.rows);
}

}  // namespace mriscan
