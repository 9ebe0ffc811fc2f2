// DICOM Part 10 files to the 8-bit RGB `Image` that JPEG and PNG files give (io/image_io.h): our own walk reads the
// data set (io/dicom_structure.h), each transfer syntax's decoder gives the samples (io/dicom_pixels.h: GDCM's
// JPEG and RLE codecs, CharLS, OpenJPEG).
//
// What is accepted (docs/dicom.md has the table): single-frame monochrome images (MONOCHROME1 and MONOCHROME2),
// 8 or 16 bits allocated with any Bits Stored up to that, signed or unsigned, in the transfer syntaxes of
// io/dicom_transfer_syntax.h. The stored values go through Rescale Slope/Intercept and the VOI window or LUT (or a
// percentile window when the file has neither) to 8 bits (io/dicom_window.h), replicated to R, G and B.
// Refused: other transfer syntaxes, colour and palette images, 32-bit pixels and a Modality LUT Sequence
// (UnsupportedImageFormat, the server's 415, naming what it is); objects of more than one frame, and anything
// malformed (ImageError, 400, naming the problem).
//
// Safety: no library parses the data set: io/dicom_structure.h walks the whole file (every declared length within
// the file, nesting and element count bounded) and keeps only the values the windowing needs. Rows x Columns x
// frames x bytes per sample is checked against DecodeLimits and against the pixel data actually present, and a
// compressed frame's own header must declare the same size and a depth within Bits Allocated, before a decoder
// allocates anything; the DecodeBudget is charged Rows x Columns. No message names an element's value, only tags
// and numbers.
// What it is not: a DICOM reader for anything but the pixels (the attributes are not returned).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/image_io.h"

namespace mriscan {

// The image of a DICOM Part 10 file (is_dicom_part10, io/dicom_structure.h); throws as described above. `budget`
// may be null.
Image decode_dicom(const uint8_t* bytes, size_t size, const DecodeLimits& limits, const std::string& source,
                   DecodeBudget* budget);

}  // namespace mriscan
