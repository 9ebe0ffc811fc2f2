// libFuzzer: image decoding (io/image_io.h: JPEG through libjpeg-turbo, PNG through stb_image) on arbitrary bytes,
// with the server's limits, at full size and DCT-scaled (the latter charged to a DecodeBudget, as the server does).
// A decoded image must fit its limits and have 3 channels, and the budget is never overspent.
#include <cstdint>
#include <cstdlib>

#include "io/decode_budget.h"
#include "io/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (int min_decoded_side : {0, 32}) {
    const mriscan::DecodeLimits limits = {.max_pixels = 4'000'000, .max_side = 4096,
                                          .min_decoded_side = min_decoded_side};
    mriscan::DecodeBudget budget(64'000'000);
    try {
      mriscan::Image image =
          mriscan::decode_image(data, size, limits, "fuzz", min_decoded_side > 0 ? &budget : nullptr);
      if (image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) std::abort();
      if (image.width > limits.max_side || image.height > limits.max_side) std::abort();
      mriscan::resize_bilinear(image, 32, 32);  // what the server does next
    } catch (const mriscan::ImageError&) {
    }
    if (budget.spent() > budget.limit()) std::abort();
  }
  return 0;
}
