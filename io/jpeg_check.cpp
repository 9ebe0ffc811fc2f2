// check_jpeg_stream: libjpeg's error manager turned into exceptions (see jpeg_check.h for why the check exists).
#include "io/jpeg_check.h"

#include <csetjmp>
// clang-format off
#include <cstdio>    // jpeglib.h needs size_t and FILE declared before it
#include <jpeglib.h>
// clang-format on

#include "io/image_io.h"

namespace mriscan {
namespace {

// libjpeg reports fatal errors through error_exit, which must not return: we longjmp back to check_jpeg_stream.
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

}  // namespace

void check_jpeg_stream(const uint8_t* bytes, size_t size, const std::string& source) {
  StrictErrorManager errors;
  jpeg_decompress_struct info{};
  info.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = fail;
  errors.base.emit_message = on_message;
  // Nothing with a destructor may live between setjmp and a longjmp to it.
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&info);
    throw ImageError("cannot decode " + source + ": corrupt JPEG (libjpeg: " + errors.message + ")");
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, bytes, static_cast<unsigned long>(size));
  jpeg_read_header(&info, TRUE);
  // Markers and entropy-coded data are where corrupt data shows (bad Huffman codes, premature end, stray bytes);
  // reading the DCT coefficients parses all of them and skips the inverse DCT, upsampling and colour conversion,
  // which cannot warn and whose pixels stb computes anyway.
  jpeg_read_coefficients(&info);
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
}

}  // namespace mriscan
