// libFuzzer: image decoding (io/image_io.h) on arbitrary bytes, with the server's limits. Only JPEG and PNG may
// reach stb_image; a decoded image must have the size its header claimed and 3 channels.
#include <cstdint>
#include <cstdlib>

#include "io/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const mriscan::DecodeLimits limits = {.max_pixels = 4'000'000, .max_side = 4096};
  try {
    mriscan::Image image = mriscan::decode_image(data, size, limits, "fuzz");
    if (image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) std::abort();
    if (image.width > limits.max_side || image.height > limits.max_side) std::abort();
    mriscan::resize_bilinear(image, 32, 32);  // what the server does next
  } catch (const mriscan::ImageError&) {
  }
  return 0;
}
