// Image files in and out: decoding (JPEG via libjpeg-turbo, io/jpeg_decode.h; PNG via stb_image; DICOM,
// io/dicom_image.h), PNG encoding (stb_image_write) and the one resize used everywhere (bilinear with half-pixel
// centres, box prefilter for large downscales).
//
// What it is: the boundary between bytes and an 8-bit RGB `Image`. Every decoded image has exactly 3 channels:
// grayscale is replicated to RGB, alpha is composited onto black (MRI backgrounds are black, so a transparent
// border stays black instead of showing whatever colour the encoder left under it), 16-bit PNGs are reduced to 8
// bits by stb. What it is not: normalisation or float conversion; that is data/preprocess.h, and nothing else.
//
// Safety: the format is chosen by the file's first bytes (its magic number; DICOM's "DICM" after a 128-byte
// preamble), and only JPEG, PNG and DICOM reach a decoder:
// Debian's stb_image is compiled with every decoder (GIF, PSD, PIC, PNM, TGA, HDR, BMP), each a parser of
// untrusted input that this project does not need, so anything else is refused (UnsupportedImageFormat) before stb
// sees it, and JPEGs never reach stb (libjpeg-turbo decodes them, strictly). The header is then parsed and the
// dimensions checked against DecodeLimits BEFORE any pixel memory is allocated, so a 100-byte file claiming
// 60000 x 60000 pixels (a "decompression bomb") is rejected instead of allocating 10 GB. All failures throw
// ImageError with the source name and the decoder's reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace mriscan {

struct ImageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Not JPEG, PNG or DICOM, or a DICOM encoding that is not accepted (the server answers 415).
struct UnsupportedImageFormat : ImageError {
  using ImageError::ImageError;
};

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // (H, W, 3) row-major, interleaved RGB

  Image() = default;
  Image(int width, int height);  // black image; throws ImageError on non-positive sizes
  bool empty() const { return width <= 0 || height <= 0; }
  uint8_t* pixel(int x, int y) { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* pixel(int x, int y) const { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
};

struct DecodeLimits {
  int64_t max_pixels = 40'000'000;  // width * height; 40 MP is far above any MRI slice
  int max_side = 12000;             // either dimension
  // > 0: a JPEG may be decoded at a DCT scale of 1/2, 1/4 or 1/8 while both sides stay >= this (the caller will
  // shrink it to about this size anyway); 0: full size. PNGs are always decoded at full size.
  int min_decoded_side = 0;
};

class DecodeBudget;  // io/decode_budget.h

// `source` names the data in error messages (a path, "upload", ...). With a `budget`, the decoder charges it for
// the work (from the header before any pixel memory, then per progressive scan) and throws DecodeBudgetExceeded
// instead of going over it.
Image decode_image(const uint8_t* bytes, size_t size, const DecodeLimits& limits = {},
                   const std::string& source = "image data", DecodeBudget* budget = nullptr);
Image load_image(const std::string& path, const DecodeLimits& limits = {});

// Whole file as bytes; throws ImageError naming the path if it cannot be read.
std::vector<uint8_t> read_file_bytes(const std::string& path);

std::vector<uint8_t> encode_png(const Image& image);
void write_png(const std::string& path, const Image& image);

// Resize to (height, width) = (h, w). Bilinear interpolation with half-pixel centres, the convention of PyTorch's
// interpolate(mode="bilinear", align_corners=False, antialias=False) and OpenCV's INTER_LINEAR:
//   src_x = (x + 0.5) * (in_w / out_w) - 0.5, clamped to [0, in_w - 1], blend the two neighbours.
// Bilinear reads only 2 source pixels per axis per output pixel, so a downscale by more than 2x skips pixels and
// aliases (noise and fine texture turn into moire). For such axes we first average k x k blocks with k =
// floor(in / out) (a box prefilter, like PIL's `reducing_gap`), which leaves a remaining ratio below 2 for the
// bilinear step. Same-size resizes return an exact copy.
Image resize_bilinear(const Image& image, int w, int h);

// Luma (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B) of every pixel, (H, W) as float in [0, 255].
std::vector<float> to_grayscale(const Image& image);

}  // namespace mriscan
