// decode_jpeg: libjpeg-turbo's decompressor with its error manager turned into exceptions, a scan counter and DCT
// scaling (see jpeg_decode.h for why each exists).
#include "io/jpeg_decode.h"

#include <csetjmp>
#include <cstdio>  // jpeglib.h needs size_t and FILE declared before it
#include <utility>
#include <vector>

#include <jpeglib.h>

namespace mriscan {
namespace {

// libjpeg reports fatal errors through error_exit, which must not return: we longjmp back to decode_jpeg.
// (Throwing through libjpeg's C frames instead would skip its cleanup.) Warnings arrive at emit_message with
// level -1; they mean corrupt data that libjpeg would paper over, and count as failures here.
struct StrictErrorManager {
  jpeg_error_mgr base;  // first member: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
};

[[noreturn]] void fail(j_common_ptr info) {
  auto* manager = reinterpret_cast<StrictErrorManager*>(info->err);
  (*info->err->format_message)(info, manager->message);
  std::longjmp(manager->jump, 1);
}

void on_message(j_common_ptr info, int level) {
  if (level < 0) fail(info);  // a corrupt-data warning; trace messages (level >= 0) are ignored
}

// Called by libjpeg between passes and every few rows; input_scan_number counts the scans read so far.
void count_scans(j_common_ptr info) {
  const auto* decompress = reinterpret_cast<j_decompress_ptr>(info);
  if (decompress->input_scan_number <= kMaxJpegScans) return;
  auto* manager = reinterpret_cast<StrictErrorManager*>(info->err);
  std::snprintf(manager->message, sizeof(manager->message), "more than %d progressive scans", kMaxJpegScans);
  std::longjmp(manager->jump, 1);
}

// A complete JPEG contains the EOI marker FF D9, normally as its last two bytes, but some writers append trailing
// data, so we search backwards through the whole file. libjpeg would only warn "premature end" (a failure here
// too); this check names the problem in words a user recognises.
bool jpeg_is_truncated(const uint8_t* bytes, size_t size) {
  for (size_t i = size - 1; i >= 1; --i)
    if (bytes[i - 1] == 0xFF && bytes[i] == 0xD9) return false;
  return true;
}

// The largest reduction 1/8, 1/4 or 1/2 that keeps both output sides >= min_side (libjpeg rounds sizes up).
unsigned dct_scale_denominator(unsigned width, unsigned height, int min_side) {
  if (min_side <= 0) return 1;
  for (unsigned denominator : {8u, 4u, 2u}) {
    const unsigned w = (width + denominator - 1) / denominator, h = (height + denominator - 1) / denominator;
    if (w >= static_cast<unsigned>(min_side) && h >= static_cast<unsigned>(min_side)) return denominator;
  }
  return 1;
}

std::string size_refusal(unsigned width, unsigned height, const DecodeLimits& limits, const std::string& source) {
  return "refusing to decode " + source + ": header says " + std::to_string(width) + "x" + std::to_string(height) +
         " pixels, limit is " + std::to_string(limits.max_side) + " per side and " +
         std::to_string(limits.max_pixels) + " pixels in total";
}

}  // namespace

Image decode_jpeg(const uint8_t* bytes, size_t size, const DecodeLimits& limits, const std::string& source) {
  if (jpeg_is_truncated(bytes, size))
    throw ImageError("cannot decode " + source + ": truncated JPEG (no end-of-image marker)");
  // Everything that lives across setjmp is declared before it, and nothing with a destructor is created between
  // setjmp and a longjmp to it.
  StrictErrorManager errors;
  jpeg_decompress_struct info{};
  jpeg_progress_mgr progress{};
  std::string refusal;       // a reason found by our own checks (not libjpeg's)
  Image image;              // filled once libjpeg has finished
  std::vector<uint8_t> rgb;  // (H, W, 3)
  info.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = fail;
  errors.base.emit_message = on_message;
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&info);
    throw ImageError("cannot decode " + source + ": corrupt JPEG (libjpeg: " + errors.message + ")");
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(&info, TRUE);
  const int64_t pixels = static_cast<int64_t>(info.image_width) * info.image_height;
  if (info.image_width > static_cast<unsigned>(limits.max_side) ||
      info.image_height > static_cast<unsigned>(limits.max_side) || pixels > limits.max_pixels)
    refusal = size_refusal(info.image_width, info.image_height, limits, source);
  else if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK)
    refusal = "cannot decode " + source + ": CMYK JPEG (only grayscale and colour scans are accepted)";
  if (!refusal.empty()) {
    jpeg_destroy_decompress(&info);
    throw ImageError(refusal);
  }
  info.out_color_space = JCS_RGB;  // grayscale replicated, YCbCr converted
  info.scale_num = 1;
  info.scale_denom = dct_scale_denominator(info.image_width, info.image_height, limits.min_decoded_side);
  progress.progress_monitor = count_scans;
  info.progress = &progress;
  jpeg_start_decompress(&info);
  const size_t row_bytes = static_cast<size_t>(info.output_width) * 3;
  rgb.resize(row_bytes * info.output_height);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = rgb.data() + info.output_scanline * row_bytes;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  image.width = static_cast<int>(info.output_width);
  image.height = static_cast<int>(info.output_height);
  image.rgb = std::move(rgb);
  jpeg_destroy_decompress(&info);
  return image;
}

}  // namespace mriscan
