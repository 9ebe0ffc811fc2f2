// decode_jpeg: libjpeg-turbo's decompressor with its error manager turned into exceptions, a scan meter (the scan
// limit and the decode budget) and DCT scaling (see jpeg_decode.h for why each exists).
#include "io/jpeg_decode.h"

#include <csetjmp>
#include <cstdio>  // jpeglib.h needs size_t and FILE declared before it
#include <string>

#include <jpeglib.h>

#include "io/decode_budget.h"

namespace mriscan {
namespace {

// libjpeg reports fatal errors through error_exit, which must not return: we longjmp back to the phase that called
// libjpeg. (Throwing through libjpeg's C frames instead would skip its cleanup.) Warnings arrive at emit_message with
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

// The progress monitor's state. libjpeg calls the monitor before it consumes each piece of input, and a new scan's
// header (input_scan_number, comps_in_scan) is read before its data, so every scan is counted and charged before
// it is decoded.
struct ScanMeter {
  jpeg_progress_mgr base{};        // first member: libjpeg sees a jpeg_progress_mgr*
  DecodeBudget* budget = nullptr;  // none: only the scan limit applies
  int scans_seen = 0;
  int64_t pixel_scans = 0;  // of the scans seen so far
  int64_t charged = 0;      // to the budget for this file (at least the header's lower bound)
  bool too_many_scans = false, over_budget = false;
};

// Charges the budget up to `total` pixel-scans for this file; false (and over_budget) when it cannot.
bool charge_up_to(ScanMeter& meter, int64_t total) {
  if (meter.budget == nullptr || total <= meter.charged) return true;
  if (!meter.budget->try_charge(total - meter.charged)) {
    meter.over_budget = true;
    return false;
  }
  meter.charged = total;
  return true;
}

void meter_scans(j_common_ptr common) {
  auto* info = reinterpret_cast<j_decompress_ptr>(common);
  auto* meter = reinterpret_cast<ScanMeter*>(info->progress);
  if (info->input_scan_number == meter->scans_seen) return;  // rows of a scan already counted
  meter->scans_seen = info->input_scan_number;
  meter->too_many_scans = meter->scans_seen > kMaxJpegScans;
  meter->pixel_scans += static_cast<int64_t>(info->image_width) * info->image_height * info->comps_in_scan;
  if (meter->too_many_scans || !charge_up_to(*meter, meter->pixel_scans))
    std::longjmp(reinterpret_cast<StrictErrorManager*>(info->err)->jump, 1);
}

// A complete JPEG contains the EOI marker FF D9, normally as its last two bytes, but some writers append trailing
// data, so we search backwards through the whole file. libjpeg would only warn "premature end" (a failure here
// too); this check names the problem in words a user recognises.
bool jpeg_is_truncated(const uint8_t* bytes, size_t size) {
  if (size < 4) return true;
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

// libjpeg's whole state. Plain C structs: a longjmp out of libjpeg skips no destructor. The three phases below are
// the only functions that call libjpeg (besides jpeg_destroy_decompress, which cannot fail), each with its own
// setjmp and nothing but trivially destructible locals, so the caller can hold a std::vector and a std::string
// without them ever living across a setjmp.
struct Decompressor {
  StrictErrorManager errors;
  jpeg_decompress_struct info{};
  ScanMeter meter;
};

// Phase 1: the header. False on failure.
bool read_header(Decompressor& d, const uint8_t* bytes, size_t size) {
  if (setjmp(d.errors.jump)) return false;
  jpeg_create_decompress(&d.info);
  jpeg_mem_src(&d.info, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(&d.info, TRUE);
  return true;
}

// Phase 2: RGB output at the largest DCT reduction that keeps both sides >= min_side; sets output_width and
// output_height (no pixel memory yet). False on failure.
bool choose_output(Decompressor& d, int min_side) {
  if (setjmp(d.errors.jump)) return false;
  d.info.out_color_space = JCS_RGB;  // grayscale replicated, YCbCr converted
  d.info.scale_num = 1;
  d.info.scale_denom = dct_scale_denominator(d.info.image_width, d.info.image_height, min_side);
  jpeg_calc_output_dimensions(&d.info);
  return true;
}

// Phase 3: every scanline into `rgb`, (output_height, output_width, 3), then the rest of the stream. False on failure.
bool read_pixels(Decompressor& d, uint8_t* rgb) {
  if (setjmp(d.errors.jump)) return false;
  d.meter.base.progress_monitor = meter_scans;
  d.info.progress = &d.meter.base;
  jpeg_start_decompress(&d.info);
  const size_t row_bytes = static_cast<size_t>(d.info.output_width) * 3;
  while (d.info.output_scanline < d.info.output_height) {
    JSAMPROW row = rgb + d.info.output_scanline * row_bytes;
    jpeg_read_scanlines(&d.info, &row, 1);
  }
  jpeg_finish_decompress(&d.info);
  return true;
}

// Our own reasons to refuse a readable header: the size limits (before any pixel memory) and CMYK.
std::string refusal(const jpeg_decompress_struct& info, const DecodeLimits& limits, const std::string& source) {
  const int64_t pixels = static_cast<int64_t>(info.image_width) * info.image_height;
  if (info.image_width > static_cast<unsigned>(limits.max_side) ||
      info.image_height > static_cast<unsigned>(limits.max_side) || pixels > limits.max_pixels)
    return "refusing to decode " + source + ": header says " + std::to_string(info.image_width) + "x" +
           std::to_string(info.image_height) + " pixels, limit is " + std::to_string(limits.max_side) +
           " per side and " + std::to_string(limits.max_pixels) + " pixels in total";
  if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK)
    return "cannot decode " + source + ": CMYK JPEG (only grayscale and colour scans are accepted)";
  return "";
}

std::string libjpeg_failure(const Decompressor& d, const std::string& source) {
  if (d.meter.too_many_scans)
    return "refusing to decode " + source + ": progressive JPEG with more than " + std::to_string(kMaxJpegScans) +
           " scans (too costly to decode)";
  if (d.meter.over_budget) return d.meter.budget->exceeded_message(source);
  return "cannot decode " + source + ": corrupt JPEG (libjpeg: " + d.errors.message + ")";
}

// Before any pixel memory: every component is in at least one scan, so the file costs at least this much.
bool charge_header(Decompressor& d) {
  const jpeg_decompress_struct& info = d.info;
  return charge_up_to(d.meter, static_cast<int64_t>(info.image_width) * info.image_height * info.num_components);
}

}  // namespace

Image decode_jpeg(const uint8_t* bytes, size_t size, const DecodeLimits& limits, const std::string& source,
                  DecodeBudget* budget) {
  if (jpeg_is_truncated(bytes, size))
    throw ImageError("cannot decode " + source + ": truncated JPEG (no end-of-image marker)");
  Decompressor d;
  d.info.err = jpeg_std_error(&d.errors.base);
  d.errors.base.error_exit = fail;
  d.errors.base.emit_message = on_message;
  d.meter.budget = budget;
  std::string reason;
  Image image;
  if (!read_header(d, bytes, size)) {
    reason = libjpeg_failure(d, source);
  } else if (reason = refusal(d.info, limits, source); reason.empty()) {
    if (!charge_header(d) || !choose_output(d, limits.min_decoded_side)) {
      reason = libjpeg_failure(d, source);
    } else {
      image = Image(static_cast<int>(d.info.output_width), static_cast<int>(d.info.output_height));
      if (!read_pixels(d, image.rgb.data())) reason = libjpeg_failure(d, source);
    }
  }
  jpeg_destroy_decompress(&d.info);  // also safe when jpeg_create_decompress failed: it finds no memory to free
  if (d.meter.over_budget) throw DecodeBudgetExceeded(reason);
  if (!reason.empty()) throw ImageError(reason);
  return image;
}

}  // namespace mriscan
