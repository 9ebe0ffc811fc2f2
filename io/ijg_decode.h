// One JPEG frame of a DICOM file (baseline, extended, and lossless process 14) decoded with the IJG 6b libraries
// that GDCM builds and Debian ships for 8, 12 and 16 bits per sample (libgdcmjpeg8/12/16: IJG with the lossless
// patch; Debian's libjpeg-turbo decodes neither 12/16 bits nor lossless JPEG).
//
// Why not through GDCM's JPEGCodec: it leaks the whole IJG decompressor, with its buffers, on its error paths (found
// by tests/fuzz/fuzz_dicom: 750 KB per malformed file). Here the decompressor is destroyed on every path (IJG's
// error exit longjmps back to the one frame that created it), the frame header is checked against the data set's
// size before decoding allocates, and data that ends early is an error, not a frame padded with zeros.
// What it is not: the project's JPEG file decoder (io/jpeg_decode.h: libjpeg-turbo, 8-bit colour files).
// The three libraries' headers name the same types, so each is compiled in its own file (io/ijg_decode_8.cpp,
// _12.cpp, _16.cpp) from one implementation (io/ijg_frame.inc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mriscan {

// The samples of the JPEG stream in `bytes` (one grey component of columns x rows samples, `precision` bits each
// as its frame header says): (rows, columns). Throws ImageError naming the problem.
std::vector<uint16_t> decode_jpeg_frame(const std::vector<uint8_t>& bytes, int precision, int columns, int rows,
                                        const std::string& source);

// The per-build decoders behind it: false when the stream is not such a frame or does not decode.
bool decode_jpeg_frame_8(const uint8_t* bytes, size_t size, int columns, int rows, uint16_t* out);
bool decode_jpeg_frame_12(const uint8_t* bytes, size_t size, int columns, int rows, uint16_t* out);
bool decode_jpeg_frame_16(const uint8_t* bytes, size_t size, int columns, int rows, uint16_t* out);

}  // namespace mriscan
