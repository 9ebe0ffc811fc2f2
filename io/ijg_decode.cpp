// The JPEG frame decoder's choice of IJG build; see ijg_decode.h.
#include "io/ijg_decode.h"

#include "io/image_io.h"

namespace mriscan {

std::vector<uint16_t> decode_jpeg_frame(const std::vector<uint8_t>& bytes, int precision, int columns, int rows,
                                        const std::string& source) {
  std::vector<uint16_t> samples(static_cast<size_t>(rows) * columns);  // (rows, columns)
  // The build whose sample type holds the frame's precision, as GDCM chooses it.
  auto* decode = precision <= 8 ? decode_jpeg_frame_8 : precision <= 12 ? decode_jpeg_frame_12 : decode_jpeg_frame_16;
  if (precision < 2 || precision > 16 || !decode(bytes.data(), bytes.size(), columns, rows, samples.data()))
    throw ImageError("cannot decode " + source + ": the JPEG frame is not one grey component of " +
                     std::to_string(columns) + "x" + std::to_string(rows) + " samples that decodes");
  return samples;
}

}  // namespace mriscan
