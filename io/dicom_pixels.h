// The stored samples of a single-frame DICOM image, uncompressed or compressed, as 16-bit words.
//
// Each transfer syntax goes to one decoder, called directly on the fragments io/dicom_structure.h found:
// uncompressed pixel data is read from the file's own bytes (little or big endian); JPEG (baseline, extended,
// lossless) goes to GDCM's IJG builds for 8, 12 and 16 bits (io/ijg_decode.h), JPEG-LS to CharLS
// (io/jpegls_decode.h), JPEG 2000 to OpenJPEG (io/jpeg2000_decode.h), RLE to our own decoder (io/rle_decode.h).
// Nothing goes through GDCM's reader or codecs; tests/fuzz/fuzz_dicom found, in that order: its reader allocates by
// lengths it reads differently than the walk did (an unknown VR's), its JPEG 2000, JPEG-LS and JPEG codecs leak on
// their error paths, and its RLE codec reads past its buffer. gdcm::Image::GetBuffer moreover falls back to running
// the pvrg-jpeg program on a temporary file when its JPEG codec fails (Debian's GDCM does, where pvrg-jpeg is
// installed) and copies a codec's output by the expected length without checking the length the codec gave.
// What it is not: the interpretation of the samples (Bits Stored, sign, windowing: io/dicom_window.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/dicom_structure.h"

namespace mriscan {

// The samples of the frame: (rows, columns) words of s.bits_allocated bits (8-bit samples zero-extended), as the
// file stores them. `precision` is the bits per sample of a JPEG frame's header (io/codestream_header.h), which
// chooses the IJG build. Throws ImageError naming the transfer syntax when the frame does not decode to that
// size.
std::vector<uint16_t> decode_dicom_samples(const uint8_t* bytes, const DicomStructure& s, int precision,
                                           const std::string& source);

}  // namespace mriscan
