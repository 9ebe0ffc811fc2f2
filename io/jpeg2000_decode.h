// One JPEG 2000 frame (a J2K codestream, or a JP2 file as some writers put in DICOM) decoded with OpenJPEG.
//
// Why not through GDCM: GDCM's JPEG 2000 codec (3.0.21) leaks OpenJPEG's decoder, stream and image on its error
// paths (found by tests/fuzz/fuzz_dicom: about 18 KB per malformed file, up to a whole decoded image), reads
// marker lengths of the codestream without bounds checks, and goes on with a half-decoded image when OpenJPEG
// fails. Here every OpenJPEG object is released on every path, any failure refuses the frame, and the size the
// codestream declares is checked against the data set's before OpenJPEG allocates the image.
// What it is not: the other codecs (io/dicom_pixels.h) or a JPEG 2000 encoder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mriscan {

// The samples of `codestream`, which must be one component of columns x rows samples of at most bits_allocated
// bits: (rows, columns), each the sample's two's complement in 16 bits. Throws ImageError naming the problem.
std::vector<uint16_t> decode_jpeg2000_frame(std::vector<uint8_t> codestream, int columns, int rows,
                                            int bits_allocated, const std::string& source);

}  // namespace mriscan
