// A DICOM frame's samples, each transfer syntax through its own decoder; see dicom_pixels.h.
#include "io/dicom_pixels.h"

#include "io/ijg_decode.h"
#include "io/jpeg2000_decode.h"
#include "io/jpegls_decode.h"
#include "io/rle_decode.h"

namespace mriscan {
namespace {

// Uncompressed: the walk checked that the element holds at least rows x columns samples.
std::vector<uint16_t> native_samples(const uint8_t* bytes, const DicomStructure& s) {
  const uint8_t* at = bytes + s.pixel_data_offset;
  const bool little = s.syntax->encoding != DicomEncoding::kExplicitBig;
  std::vector<uint16_t> samples(static_cast<size_t>(s.rows) * s.columns);  // (rows, columns)
  for (size_t i = 0; i < samples.size(); ++i) {
    if (s.bits_allocated == 8) samples[i] = at[i];
    else samples[i] = little ? uint16_t(at[2 * i] | at[2 * i + 1] << 8) : uint16_t(at[2 * i] << 8 | at[2 * i + 1]);
  }
  return samples;
}

// The fragments joined: one frame may span several.
std::vector<uint8_t> joined_fragments(const uint8_t* bytes, const DicomStructure& s) {
  std::vector<uint8_t> frame;
  for (const DicomStructure::Fragment& fragment : s.fragments)
    frame.insert(frame.end(), bytes + fragment.offset, bytes + fragment.offset + fragment.length);
  return frame;
}

}  // namespace

std::vector<uint16_t> decode_dicom_samples(const uint8_t* bytes, const DicomStructure& s, int precision,
                                           const std::string& source) {
  if (!s.syntax->encapsulated) return native_samples(bytes, s);
  const std::string uid = s.syntax->uid;
  const std::vector<uint8_t> frame = joined_fragments(bytes, s);
  if (uid == "1.2.840.10008.1.2.4.80" || uid == "1.2.840.10008.1.2.4.81")
    return decode_jpegls_frame(frame, s.columns, s.rows, s.bits_allocated, source);
  if (uid == "1.2.840.10008.1.2.4.90" || uid == "1.2.840.10008.1.2.4.91")
    return decode_jpeg2000_frame(frame, s.columns, s.rows, s.bits_allocated, source);
  if (uid == "1.2.840.10008.1.2.5") return decode_rle_frame(frame, s.columns, s.rows, s.bits_allocated, source);
  return decode_jpeg_frame(frame, precision, s.columns, s.rows, source);  // every JPEG process
}

}  // namespace mriscan
