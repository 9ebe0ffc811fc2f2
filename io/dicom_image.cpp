// DICOM images through GDCM; see dicom_image.h. The order: structure and transfer syntax (io/dicom_structure.h),
// then what the image declares against the limits and the bytes present, then the budget, then GDCM reads the data
// set and decodes the pixels, and the grey-level pipeline (io/dicom_window.h) maps them to 8 bits.
#include "io/dicom_image.h"

#include <gdcmDataSet.h>
#include <gdcmImageReader.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmTrace.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <sstream>

#include "io/codestream_header.h"
#include "io/decode_budget.h"
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

// GDCM's warnings and errors print data elements, values included (a patient's name among them): never shown.
void silence_gdcm() {
  static const bool silenced = [] {
    gdcm::Trace::SetDebug(false);
    gdcm::Trace::SetWarning(false);
    gdcm::Trace::SetError(false);
    return true;
  }();
  (void)silenced;
}

// What the walk found, against the limits and the bytes there, before anything is allocated for pixels.
void check_declared_image(const DicomStructure& s, const DecodeLimits& limits, const std::string& source) {
  if (!s.has_pixel_data) fail(source, "the DICOM file has no Pixel Data (7FE0,0010): it is not an image");
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
  if (s.syntax->encapsulated && s.first_fragment_length == 0)
    fail(source, "the DICOM file's compressed pixel data has no fragment");
}

// A compressed frame is sized by its own header: it must declare the image the data set declares.
void check_codestream(const uint8_t* bytes, const DicomStructure& s, const std::string& source) {
  if (!s.syntax->encapsulated || std::string(s.syntax->uid) == "1.2.840.10008.1.2.5") return;  // RLE: no header
  const auto header = read_codestream_header(bytes + s.first_fragment, s.first_fragment_length);
  if (!header) fail(source, std::string("the compressed pixel data is not a readable ") + s.syntax->name + " stream");
  if (header->width != s.columns || header->height != s.rows || header->components != 1)
    fail(source, "the compressed image declares " + std::to_string(header->width) + "x" +
                     std::to_string(header->height) + " pixels of " + std::to_string(header->components) +
                     " components, the data set " + std::to_string(s.columns) + "x" + std::to_string(s.rows) +
                     " of 1");
}

// A text value (DS, IS, CS) of the top-level data set, or "" when absent.
std::string text_value(const gdcm::DataSet& ds, uint16_t group, uint16_t element) {
  const gdcm::Tag tag(group, element);
  if (!ds.FindDataElement(tag)) return "";
  const gdcm::ByteValue* value = ds.GetDataElement(tag).GetByteValue();
  if (value == nullptr || value->GetPointer() == nullptr) return "";
  return std::string(value->GetPointer(), std::min<size_t>(value->GetLength(), 1024));
}

// The first value of a multi-valued text (values separated by '\'), without its padding.
std::string first_value(const std::string& text) {
  std::string value = text.substr(0, text.find('\\'));
  value.erase(0, value.find_first_not_of(" \0", 0, 2));
  value.erase(value.find_last_not_of(" \0", std::string::npos, 2) + 1);
  return value;
}

// The first value of a DS element as a finite number, or nothing if absent or not a number.
std::optional<double> decimal(const gdcm::DataSet& ds, uint16_t group, uint16_t element) {
  const std::string text = first_value(text_value(ds, group, element));
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<VoiWindow> read_window(const gdcm::DataSet& ds) {
  const auto center = decimal(ds, 0x0028, 0x1050), width = decimal(ds, 0x0028, 0x1051);
  if (!center || !width) return std::nullopt;
  const std::string function = first_value(text_value(ds, 0x0028, 0x1056));
  VoiWindow window{*center, *width, VoiWindow::Function::kLinear};
  if (function == "LINEAR_EXACT") window.function = VoiWindow::Function::kLinearExact;
  if (function == "SIGMOID") window.function = VoiWindow::Function::kSigmoid;
  return window;
}

// A 16-bit value of GDCM's data set: little endian whatever the transfer syntax (GDCM's reader byte-swaps the
// binary values of a big-endian data set).
uint16_t u16(const char* p) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  return uint16_t(b[0] | b[1] << 8);
}

// The first item of the VOI LUT Sequence (0028,3010): LUT Descriptor (entries, first mapped value, bits per
// entry; 0 entries means 65536) and LUT Data, 16 bits per entry (8-bit entries may be packed two per word).
std::optional<VoiLut> read_voi_lut(const gdcm::DataSet& ds, bool is_signed, const std::string& source) {
  const gdcm::Tag sequence_tag(0x0028, 0x3010);
  if (!ds.FindDataElement(sequence_tag)) return std::nullopt;
  gdcm::SmartPointer<gdcm::SequenceOfItems> sequence = ds.GetDataElement(sequence_tag).GetValueAsSQ();
  if (!sequence || sequence->GetNumberOfItems() == 0) return std::nullopt;
  const gdcm::DataSet& item = sequence->GetItem(1).GetNestedDataSet();
  const gdcm::Tag descriptor_tag(0x0028, 0x3002), data_tag(0x0028, 0x3006);
  if (!item.FindDataElement(descriptor_tag) || !item.FindDataElement(data_tag))
    fail(source, "the VOI LUT Sequence (0028,3010) has no LUT Descriptor or LUT Data");
  const gdcm::ByteValue* descriptor = item.GetDataElement(descriptor_tag).GetByteValue();
  const gdcm::ByteValue* data = item.GetDataElement(data_tag).GetByteValue();
  if (descriptor == nullptr || descriptor->GetLength() != 6 || data == nullptr)
    fail(source, "the VOI LUT Descriptor (0028,3002) is not three 16-bit values");
  const uint16_t raw_entries = u16(descriptor->GetPointer());
  const uint16_t first = u16(descriptor->GetPointer() + 2);
  VoiLut lut;
  const size_t entries = raw_entries == 0 ? 65536 : raw_entries;
  lut.first_mapped = is_signed ? int64_t{static_cast<int16_t>(first)} : int64_t{first};
  lut.bits = u16(descriptor->GetPointer() + 4);
  if (lut.bits < 8 || lut.bits > 16) fail(source, "the VOI LUT Descriptor declares " + std::to_string(lut.bits) +
                                                      " bits per entry (8 to 16 are valid)");
  const size_t length = data->GetLength();
  lut.data.resize(entries);
  if (length == 2 * entries) {
    for (size_t i = 0; i < entries; ++i) lut.data[i] = u16(data->GetPointer() + 2 * i);
  } else if (lut.bits == 8 && (length == entries || length == entries + 1)) {
    for (size_t i = 0; i < entries; ++i) lut.data[i] = static_cast<uint8_t>(data->GetPointer()[i]);
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

GreyLevelPipeline read_pipeline(const gdcm::DataSet& ds, const gdcm::PixelFormat& format, const std::string& source) {
  if (ds.FindDataElement(gdcm::Tag(0x0028, 0x3000))) refuse(source, "a Modality LUT Sequence (0028,3000)");
  const std::string photometric = photometric_name(text_value(ds, 0x0028, 0x0004));
  if (photometric != "MONOCHROME1" && photometric != "MONOCHROME2")
    refuse(source, "Photometric Interpretation " + photometric);
  GreyLevelPipeline p;
  p.bits_stored = format.GetBitsStored();
  p.is_signed = format.GetPixelRepresentation() == 1;
  p.slope = decimal(ds, 0x0028, 0x1053).value_or(1.0);
  p.intercept = decimal(ds, 0x0028, 0x1052).value_or(0.0);
  if (p.slope == 0.0) fail(source, "Rescale Slope (0028,1053) is 0");
  p.window = read_window(ds);
  p.lut = read_voi_lut(ds, p.is_signed, source);
  p.monochrome1 = photometric == "MONOCHROME1";
  return p;
}

// The stored value of each pixel of GDCM's buffer ((rows, columns) samples of bits_allocated bits, native byte
// order): the bits_stored bits ending at high_bit, sign-extended when signed. Indexed from table.lowest.
std::vector<uint16_t> stored_indices(const std::vector<char>& buffer, const gdcm::PixelFormat& format,
                                     const GreyLevelPipeline& p, size_t pixels) {
  const int shift = format.GetHighBit() + 1 - format.GetBitsStored();
  const uint32_t mask = (uint32_t{1} << p.bits_stored) - 1;
  const uint32_t offset = p.is_signed ? uint32_t{1} << (p.bits_stored - 1) : 0;  // stored - lowest
  std::vector<uint16_t> indices(pixels);  // (rows, columns)
  const auto* bytes = reinterpret_cast<const uint8_t*>(buffer.data());
  const bool wide = format.GetBitsAllocated() == 16;
  for (size_t i = 0; i < pixels; ++i) {
    const uint32_t raw = wide ? uint32_t{bytes[2 * i]} | uint32_t{bytes[2 * i + 1]} << 8 : bytes[i];
    // Two's complement in bits_stored bits, shifted by half the range: (v + offset) mod 2^bits_stored.
    indices[i] = static_cast<uint16_t>((((raw >> shift) & mask) + offset) & mask);
  }
  return indices;
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

// GDCM reads the data set and decodes the pixels; the size it reads must be the one checked.
Image read_with_gdcm(const uint8_t* bytes, size_t size, const DicomStructure& s, const std::string& source) {
  silence_gdcm();
  std::istringstream stream(std::string(reinterpret_cast<const char*>(bytes), size));
  gdcm::ImageReader reader;
  reader.SetStream(stream);
  if (!reader.Read()) fail(source, "GDCM cannot read this DICOM file");
  const gdcm::Image& image = reader.GetImage();
  const gdcm::PixelFormat& format = image.GetPixelFormat();
  const unsigned frames = image.GetNumberOfDimensions() > 2 ? image.GetDimension(2) : 1;
  if (image.GetDimension(0) != unsigned(s.columns) || image.GetDimension(1) != unsigned(s.rows) || frames != 1 ||
      format.GetBitsAllocated() != s.bits_allocated || format.GetSamplesPerPixel() != 1)
    fail(source, "the DICOM image's attributes are inconsistent (GDCM reads another size or pixel format)");
  if (format.GetBitsStored() < 1 || format.GetBitsStored() > s.bits_allocated ||
      format.GetHighBit() + 1 < format.GetBitsStored() || format.GetHighBit() >= s.bits_allocated)
    fail(source, "Bits Stored and High Bit do not fit in " + std::to_string(s.bits_allocated) + " bits allocated");
  const GreyLevelPipeline pipeline = read_pipeline(reader.GetFile().GetDataSet(), format, source);
  const size_t pixels = size_t(s.rows) * s.columns;
  std::vector<char> buffer(pixels * (s.bits_allocated / 8));  // (rows, columns) samples
  if (image.GetBufferLength() != buffer.size() || !image.GetBuffer(buffer.data()))
    fail(source, std::string("GDCM cannot decode the pixel data (") + s.syntax->name + ")");
  return to_image(stored_indices(buffer, format, pipeline, pixels), pipeline, s.columns, s.rows);
}

}  // namespace

Image decode_dicom(const uint8_t* bytes, size_t size, const DecodeLimits& limits, const std::string& source,
                   DecodeBudget* budget) {
  const DicomStructure s = walk_dicom_structure(bytes, size, source);
  check_declared_image(s, limits, source);
  check_codestream(bytes, s, source);
  if (budget != nullptr && !budget->try_charge(int64_t{s.rows} * s.columns))
    throw DecodeBudgetExceeded(budget->exceeded_message(source));
  try {
    return read_with_gdcm(bytes, size, s, source);
  } catch (const ImageError&) {
    throw;
  } catch (const std::exception&) {  // GDCM's own exceptions: their text may quote values, so it is not passed on
    fail(source, std::string("GDCM cannot decode this DICOM file (") + s.syntax->name + ")");
  }
}

}  // namespace mriscan
