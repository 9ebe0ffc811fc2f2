// The image size that a compressed frame declares in its own header: JPEG (every SOF process, ITU T.81 B.2.2),
// JPEG-LS (SOF55, T.87) and JPEG 2000 (the SIZ marker segment, T.800 A.5.1; bare or in a JP2 file's jp2c box).
//
// Why: a DICOM image's decoder sizes its output from the codestream, not from the data set's Rows and Columns, so a
// small file whose codestream claims 60000 x 60000 pixels would allocate gigabytes. io/dicom_image.cpp compares the
// two before decoding. What it is not: a decoder or a validator of the rest of the codestream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace mriscan {

struct CodestreamHeader {
  int64_t width = 0, height = 0;
  int components = 0;
  int precision = 0;  // bits per sample (JPEG 2000: of the first component)
};

// The first frame header in `bytes` (the first fragment of a frame), or nothing if none is found before the data
// ends or the image data starts.
std::optional<CodestreamHeader> read_codestream_header(const uint8_t* bytes, size_t size);

}  // namespace mriscan
