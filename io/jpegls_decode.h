// One JPEG-LS frame (ITU T.87; DICOM's lossless and near-lossless transfer syntaxes) decoded with CharLS.
//
// Why not through GDCM: GDCM's JPEGLSCodec::Decode leaks the frame's copy on its error path (found by
// tests/fuzz/fuzz_dicom). CharLS's own C++ interface owns everything it allocates, and the frame's header is checked
// against the data set's size before the output is allocated.
// What it is not: the other codecs (io/dicom_pixels.h) or an encoder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mriscan {

// The samples of the JPEG-LS stream in `bytes`, which must be one component of columns x rows samples of at most
// bits_allocated bits: (rows, columns). Throws ImageError naming the problem.
std::vector<uint16_t> decode_jpegls_frame(const std::vector<uint8_t>& bytes, int columns, int rows,
                                          int bits_allocated, const std::string& source);

}  // namespace mriscan
