// Decoding (PNG here, JPEG in jpeg_decode.cpp, DICOM in dicom_image.cpp), encoding and resizing of 8-bit RGB
// images (see image_io.h).
#include "io/image_io.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <fstream>
#include <iterator>
#include <memory>

#include "io/decode_budget.h"
#include "io/dicom_image.h"
#include "io/dicom_structure.h"
#include "io/jpeg_decode.h"

namespace mriscan {

Image::Image(int w, int h) : width(w), height(h) {
  if (w <= 0 || h <= 0)
    throw ImageError("image size must be positive, got " + std::to_string(w) + "x" + std::to_string(h));
  rgb.assign(static_cast<size_t>(w) * h * 3, 0);
}

namespace {

std::string stb_reason() {
  const char* reason = stbi_failure_reason();  // thread-local in stb_image >= 2.26
  return reason ? reason : "unknown error";
}

// stb_image grows its buffer for the compressed PNG data by each chunk's DECLARED length before reading the chunk,
// so a 100-byte PNG whose second IDAT claims 1.7 GB makes it allocate 2 GB (found by tests/fuzz/fuzz_image_decode).
// Walks the chunks first: every declared length must fit in the bytes that are actually there.
bool png_chunks_fit(const uint8_t* bytes, size_t size) {
  size_t at = 8;  // after the signature
  while (at + 12 <= size) {
    const uint64_t length = (uint64_t{bytes[at]} << 24) | (uint64_t{bytes[at + 1]} << 16) |
                            (uint64_t{bytes[at + 2]} << 8) | uint64_t{bytes[at + 3]};
    if (length > size - at - 12) return false;  // length + type + data + CRC beyond the end
    if (std::equal(bytes + at + 4, bytes + at + 8, "IEND")) return true;
    at += 12 + length;
  }
  return true;  // no IEND: stb decides; no chunk declared more than is there
}

}  // namespace

Image decode_image(const uint8_t* bytes, size_t size, const DecodeLimits& limits, const std::string& source,
                   DecodeBudget* budget) {
  if (bytes == nullptr || size == 0) throw ImageError("cannot decode " + source + ": empty data (0 bytes)");
  if (size > static_cast<size_t>(INT_MAX)) throw ImageError("cannot decode " + source + ": file larger than 2 GB");
  const int length = static_cast<int>(size);
  static const uint8_t kJpeg[] = {0xFF, 0xD8, 0xFF};
  static const uint8_t kPng[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const bool jpeg = size >= sizeof(kJpeg) && std::equal(kJpeg, kJpeg + sizeof(kJpeg), bytes);
  const bool png = size >= sizeof(kPng) && std::equal(kPng, kPng + sizeof(kPng), bytes);
  if (is_dicom_part10(bytes, size)) return decode_dicom(bytes, size, limits, source, budget);
  if (!jpeg && !png)
    throw UnsupportedImageFormat("cannot decode " + source +
                                 ": not a JPEG, PNG or DICOM file (the accepted formats)");

  if (jpeg) return decode_jpeg(bytes, size, limits, source, budget);

  // PNG through stb_image. 1. Header only: dimensions and channel count, no pixel allocation yet.
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(bytes, length, &width, &height, &channels))
    throw ImageError("cannot decode " + source + ": " + stb_reason() + " (not a readable PNG image)");
  const int64_t pixels = static_cast<int64_t>(width) * height;
  if (width <= 0 || height <= 0 || width > limits.max_side || height > limits.max_side ||
      pixels > limits.max_pixels)
    throw ImageError("refusing to decode " + source + ": header says " + std::to_string(width) + "x" +
                     std::to_string(height) + " pixels, limit is " + std::to_string(limits.max_side) +
                     " per side and " + std::to_string(limits.max_pixels) + " pixels in total");
  if (!png_chunks_fit(bytes, size))
    throw ImageError("cannot decode " + source + ": corrupt PNG (a chunk is longer than the file)");
  // One pass over every sample (an interlaced PNG's seven passes together cover each pixel once).
  if (budget != nullptr && !budget->try_charge(pixels * channels))
    throw DecodeBudgetExceeded(budget->exceeded_message(source));

  // 2. Pixels. Ask stb for RGBA when there is alpha (2 = grey+alpha, 4 = RGBA) so we can composite; otherwise for
  // RGB, which makes stb replicate grey to RGB. 16-bit PNGs come back as 8 bits (stb scales by 255/65535).
  const bool has_alpha = channels == 2 || channels == 4;
  const int wanted = has_alpha ? 4 : 3;
  int w = 0, h = 0, file_channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(
      stbi_load_from_memory(bytes, length, &w, &h, &file_channels, wanted), stbi_image_free);
  if (!data) throw ImageError("cannot decode " + source + ": " + stb_reason());
  if (w != width || h != height)
    throw ImageError("cannot decode " + source + ": header and pixel data disagree on the size");

  Image image(w, h);
  const size_t count = static_cast<size_t>(w) * h;
  const stbi_uc* src = data.get();  // (H, W, wanted)
  if (!has_alpha) {
    std::copy(src, src + count * 3, image.rgb.begin());
  } else {
    // Composite onto black: out = rgb * alpha / 255, rounded.
    for (size_t i = 0; i < count; ++i)
      for (int c = 0; c < 3; ++c)
        image.rgb[i * 3 + c] = static_cast<uint8_t>((src[i * 4 + c] * src[i * 4 + 3] + 127) / 255);
  }
  return image;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw ImageError("cannot open image file '" + path + "'");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) throw ImageError("error while reading '" + path + "'");
  return bytes;
}

Image load_image(const std::string& path, const DecodeLimits& limits) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), limits, "'" + path + "'");
}

std::vector<uint8_t> encode_png(const Image& image) {
  if (image.empty() || image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3)
    throw ImageError("encode_png: invalid image " + std::to_string(image.width) + "x" + std::to_string(image.height));
  std::vector<uint8_t> out;
  auto append = [](void* context, void* data, int size) {
    auto* buffer = static_cast<std::vector<uint8_t>*>(context);
    buffer->insert(buffer->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  if (!stbi_write_png_to_func(append, &out, image.width, image.height, 3, image.rgb.data(), image.width * 3))
    throw ImageError("encode_png: stb_image_write failed");
  return out;
}

void write_png(const std::string& path, const Image& image) {
  const std::vector<uint8_t> png = encode_png(image);
  std::ofstream file(path, std::ios::binary);
  file.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
  if (!file) throw ImageError("cannot write PNG '" + path + "'");
}

namespace {

// Average k_x x k_y blocks; the last block in a row/column averages only the pixels that exist.
// in (H, W, 3) -> out (ceil(H / k_y), ceil(W / k_x), 3)
Image box_reduce(const Image& in, int k_x, int k_y) {
  Image out((in.width + k_x - 1) / k_x, (in.height + k_y - 1) / k_y);
  for (int oy = 0; oy < out.height; ++oy) {
    const int y0 = oy * k_y, y1 = std::min(y0 + k_y, in.height);
    for (int ox = 0; ox < out.width; ++ox) {
      const int x0 = ox * k_x, x1 = std::min(x0 + k_x, in.width);
      uint32_t sum[3] = {0, 0, 0};
      for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x)
          for (int c = 0; c < 3; ++c) sum[c] += in.pixel(x, y)[c];
      const uint32_t n = static_cast<uint32_t>((y1 - y0) * (x1 - x0));
      for (int c = 0; c < 3; ++c) out.pixel(ox, oy)[c] = static_cast<uint8_t>((sum[c] + n / 2) / n);
    }
  }
  return out;
}

// Source coordinate of output index i under half-pixel centres, as the two neighbours and the weight of the second.
struct Tap {
  int i0, i1;
  float t;
};

std::vector<Tap> bilinear_taps(int in_size, int out_size) {
  std::vector<Tap> taps(out_size);
  const double scale = static_cast<double>(in_size) / out_size;
  for (int i = 0; i < out_size; ++i) {
    double src = (i + 0.5) * scale - 0.5;
    src = std::clamp(src, 0.0, static_cast<double>(in_size - 1));
    const int i0 = static_cast<int>(src);  // src >= 0, so truncation is floor
    taps[i] = {i0, std::min(i0 + 1, in_size - 1), static_cast<float>(src - i0)};
  }
  return taps;
}

}  // namespace

Image resize_bilinear(const Image& image, int w, int h) {
  if (image.empty()) throw ImageError("resize_bilinear: empty input image");
  if (w <= 0 || h <= 0)
    throw ImageError("resize_bilinear: target size must be positive, got " + std::to_string(w) + "x" +
                     std::to_string(h));
  if (w == image.width && h == image.height) return image;

  // Box prefilter on axes shrinking by more than 2x (see header).
  const int k_x = image.width > 2 * w ? image.width / w : 1;
  const int k_y = image.height > 2 * h ? image.height / h : 1;
  const Image reduced = (k_x > 1 || k_y > 1) ? box_reduce(image, k_x, k_y) : Image();
  const Image& src = (k_x > 1 || k_y > 1) ? reduced : image;

  const std::vector<Tap> xs = bilinear_taps(src.width, w), ys = bilinear_taps(src.height, h);
  Image out(w, h);
  for (int y = 0; y < h; ++y) {
    const Tap ty = ys[y];
    for (int x = 0; x < w; ++x) {
      const Tap tx = xs[x];
      const uint8_t *p00 = src.pixel(tx.i0, ty.i0), *p01 = src.pixel(tx.i1, ty.i0);
      const uint8_t *p10 = src.pixel(tx.i0, ty.i1), *p11 = src.pixel(tx.i1, ty.i1);
      for (int c = 0; c < 3; ++c) {
        const float top = p00[c] + tx.t * (p01[c] - p00[c]);
        const float bottom = p10[c] + tx.t * (p11[c] - p10[c]);
        const float value = top + ty.t * (bottom - top);
        out.pixel(x, y)[c] = static_cast<uint8_t>(std::clamp(value + 0.5f, 0.0f, 255.0f));
      }
    }
  }
  return out;
}

std::vector<float> to_grayscale(const Image& image) {
  std::vector<float> gray(static_cast<size_t>(image.width) * image.height);  // (H, W)
  for (size_t i = 0; i < gray.size(); ++i) {
    const uint8_t* p = image.rgb.data() + i * 3;
    gray[i] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
  }
  return gray;
}

}  // namespace mriscan
