// JPEG decoding with libjpeg-turbo, strict: the only JPEG decoder in mriscan (PNG goes through stb_image,
// io/image_io.cpp).
//
// Why libjpeg-turbo: it is fuzzed continuously upstream (stb_image is not hardened against hostile files, and
// Debian's build of it read out of bounds on a 640-byte file found by tests/fuzz/fuzz_image_decode), and its
// default decode (accurate integer IDCT, "fancy" triangle-filter chroma upsampling) is the one PIL and
// torchvision use, so a scan gives the model the same pixels here as in a PyTorch pipeline.
// Strict: any error or corrupt-data warning (bad Huffman code, premature end, extraneous bytes before a marker)
// refuses the file instead of being papered over with grey blocks, and so does a progressive file with more than
// kMaxJpegScans scans (each scan is a full pass over the coefficients: thousands of tiny refinement scans would
// cost seconds of CPU for a few kilobytes of input), or one whose scans would overrun the caller's DecodeBudget
// (io/decode_budget.h: charged from the header before any pixel memory, then scan by scan as they arrive).
// One libjpeg decompressor reads the header and the pixels: each file is parsed once.
// What it is not: format detection or the PNG path (io/image_io.h), resizing, or a JPEG encoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/image_io.h"

namespace mriscan {

// Far above what encoders write (libjpeg's standard progressive script has 10 scans for colour, 6 for grayscale);
// TurboJPEG 3 offers the same guard as TJPARAM_SCANLIMIT.
inline constexpr int kMaxJpegScans = 500;

// bytes must start with the JPEG SOI marker. The header's dimensions are checked against `limits` before any
// pixel memory is allocated. When limits.min_decoded_side > 0, the image is decoded at the smallest DCT scale
// (1/2, 1/4 or 1/8) whose output still has both sides >= that value: the scaled IDCT reads every coefficient but
// computes fewer pixels, so a 4000 x 3000 photo of a scan costs a 500 x 375 decode. Grayscale is replicated to
// RGB, YCbCr converted to RGB; CMYK is refused. Throws ImageError naming `source` and libjpeg's reason, and
// DecodeBudgetExceeded when `budget` (may be null: no budget) cannot pay for the file's scans.
Image decode_jpeg(const uint8_t* bytes, size_t size, const DecodeLimits& limits, const std::string& source,
                  DecodeBudget* budget = nullptr);

}  // namespace mriscan
