// One frame of DICOM's RLE Lossless transfer syntax (PS3.5 annex G) decoded: a 64-byte header (the number of
// segments and the offset of each), then one PackBits segment per byte of a sample, most significant byte first.
//
// Why our own: GDCM's RLECodec reads past its buffer on malformed segment offsets (a crash found by
// tests/fuzz/fuzz_dicom), and the format is a page of the standard. Every offset and every run is checked against
// the bytes there and the samples wanted.
// What it is not: an encoder, or a decoder of colour (one segment per byte of each of several samples).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mriscan {

// The samples of `frame` (one grey component of columns x rows samples of bits_allocated = 8 or 16 bits):
// (rows, columns). Throws ImageError naming the problem.
std::vector<uint16_t> decode_rle_frame(const std::vector<uint8_t>& frame, int columns, int rows, int bits_allocated,
                                       const std::string& source);

}  // namespace mriscan
