// libFuzzer: DICOM decoding (io/dicom_image.h: the structure walk, then GDCM) on arbitrary bytes placed after a
// Part 10 preamble and "DICM", so that every input reaches the DICOM path (fuzz_image_decode covers the choice of
// decoder). With the server's limits and a decode budget: a decoded image must fit the limits and have 3 equal
// channels, and the budget is never overspent.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "io/decode_budget.h"
#include "io/image_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> file(132 + size, 0);  // 128-byte preamble, "DICM", the input
  std::memcpy(file.data() + 128, "DICM", 4);
  if (size > 0) std::memcpy(file.data() + 132, data, size);
  const mriscan::DecodeLimits limits = {.max_pixels = 4'000'000, .max_side = 4096};
  mriscan::DecodeBudget budget(64'000'000);
  try {
    const mriscan::Image image = mriscan::decode_image(file.data(), file.size(), limits, "fuzz", &budget);
    if (image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) std::abort();
    if (image.width > limits.max_side || image.height > limits.max_side) std::abort();
    for (size_t i = 0; i < image.rgb.size(); i += 3)
      if (image.rgb[i] != image.rgb[i + 1] || image.rgb[i] != image.rgb[i + 2]) std::abort();
  } catch (const mriscan::ImageError&) {
  }
  if (budget.spent() > budget.limit()) std::abort();
  return 0;
}
