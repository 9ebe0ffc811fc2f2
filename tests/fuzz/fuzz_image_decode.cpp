// libFuzzer: image decoding (io/image_io.h: JPEG through libjpeg-turbo, PNG through stb_image) on arbitrary bytes,
// with the server's limits, at full size and DCT-scaled. A decoded image must fit its limits and have 3 channels.
#include <cstdint>
#include <cstdlib>

#include "io/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (int min_decoded_side : {0, 32}) {
    const mriscan::DecodeLimits limits = {.max_pixels = 4'000'000, .max_side = 4096,
                                          .min_decoded_side = min_decoded_side};
    try {
      mriscan::Image image = mriscan::decode_image(data, size, limits, "fuzz");
      if (image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) std::abort();
      if (image.width > limits.max_side || image.height > limits.max_side) std::abort();
      mriscan::resize_bilinear(image, 32, 32);  // what the server does next
    } catch (const mriscan::ImageError&) {
    }
  }
  return 0;
}
