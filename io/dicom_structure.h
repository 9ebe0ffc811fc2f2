// The structure of a DICOM Part 10 file (PS3.10 7.1, PS3.5 section 7), walked and checked: the only parser of a
// DICOM data set in mriscan.
//
// Why its own: a general DICOM reader (GDCM's, for one) allocates each element's value by its DECLARED length before
// reading it and follows nested sequences by recursion, so a 200-byte file that declares a 1 GB element makes it
// allocate 1 GB, and one that nests items thousands deep exhausts the stack; and a second parser may read a length
// differently from the first (docs/dicom.md, section 4). This walk visits every element of the data set, nested
// ones included, without allocating by a declared length: each must fit in the bytes that are there (and in its
// enclosing item), sequences may nest at most kMaxDicomNesting deep, and a file may hold at most kMaxDicomElements
// elements. On the way it collects what the decoder must check before any pixel memory exists (the transfer syntax,
// the size of the image and of its pixel data, where the pixel data or a compressed image's fragments are) and the
// few values that turn stored samples into grey levels; nothing else of the file is kept.
// What it is not: a general reader of values, or a validator of the standard's modules. Errors name tags and
// numbers only, never an element's value: a value may be a patient's name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/dicom_transfer_syntax.h"

namespace mriscan {

constexpr int kMaxDicomNesting = 8;           // sequence levels; real MR headers use 3 or 4
constexpr int64_t kMaxDicomElements = 100000;  // real MR headers hold a few thousand

// What the top-level data set says about its image (0 or false when absent).
struct DicomStructure {
  const TransferSyntax* syntax = nullptr;  // from (0002,0010), accepted (else the walk throws)
  int rows = 0, columns = 0;               // (0028,0010), (0028,0011)
  int samples_per_pixel = 0;               // (0028,0002)
  int bits_allocated = 0;                  // (0028,0100)
  int bits_stored = 0, high_bit = 0;       // (0028,0101), (0028,0102)
  int pixel_representation = 0;            // (0028,0103): 1 for two's complement
  int64_t frames = 1;                      // (0028,0008) Number of Frames; 1 when absent
  bool has_pixel_data = false;             // (7FE0,0010)
  uint64_t pixel_data_length = 0;          // native pixel data: its length; encapsulated: its fragments' bytes
  size_t pixel_data_offset = 0;            // native pixel data: where its value starts in the file
  struct Fragment {
    size_t offset = 0, length = 0;  // in the file
  };
  std::vector<Fragment> fragments;         // encapsulated: the fragments after the basic offset table, in order
  int64_t elements = 0;                    // elements walked, nested ones included
  // The values the grey-level pipeline reads (io/dicom_window.h), copied as the file stores them: texts with their
  // padding, "" when absent; LUT words in the byte order `lut_little`. Nothing else of the file is kept.
  std::string photometric;                          // (0028,0004)
  std::string window_center, window_width;          // (0028,1050), (0028,1051)
  std::string voi_lut_function;                     // (0028,1056)
  std::string rescale_intercept, rescale_slope;     // (0028,1052), (0028,1053)
  bool has_modality_lut = false;                    // (0028,3000) Modality LUT Sequence
  std::string lut_descriptor, lut_data;             // (0028,3002), (0028,3006) of the first VOI LUT (0028,3010) item
  bool lut_little = true;
};

// A Part 10 file: a 128-byte preamble, then "DICM".
bool is_dicom_part10(const uint8_t* bytes, size_t size);

// Walks the whole file. Throws UnsupportedImageFormat for a transfer syntax that is not accepted
// (io/dicom_transfer_syntax.h), ImageError naming the element and the problem for anything malformed.
DicomStructure walk_dicom_structure(const uint8_t* bytes, size_t size, const std::string& source);

}  // namespace mriscan
