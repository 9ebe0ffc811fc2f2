// JPEG-LS frames through CharLS; see jpegls_decode.h.
#include "io/jpegls_decode.h"

#include <charls/charls.h>

#include <algorithm>
#include <cstring>

#include "io/image_io.h"

namespace mriscan {

std::vector<uint16_t> decode_jpegls_frame(const std::vector<uint8_t>& bytes, int columns, int rows,
                                          int bits_allocated, const std::string& source) {
  auto fail = [&](const std::string& problem) {
    throw ImageError("cannot decode " + source + ": the JPEG-LS frame " + problem);
  };
  std::vector<uint8_t> decoded;  // (rows, columns) samples of 1 byte (up to 8 bits) or 2 (this machine's order)
  int precision = 0;
  try {
    charls::jpegls_decoder decoder(bytes, true);  // reads the header
    const charls::frame_info& info = decoder.frame_info();
    if (info.component_count != 1 || info.width != static_cast<uint32_t>(columns) ||
        info.height != static_cast<uint32_t>(rows) || info.bits_per_sample < 2 || info.bits_per_sample > bits_allocated)
      fail("is not one component of " + std::to_string(columns) + "x" + std::to_string(rows) +
           " samples of at most " + std::to_string(bits_allocated) + " bits");
    precision = info.bits_per_sample;
    decoded.resize(decoder.destination_size());
    decoder.decode(decoded);
  } catch (const charls::jpegls_error&) {
    fail("cannot be decoded");
  }
  const size_t count = static_cast<size_t>(rows) * columns, width = precision > 8 ? 2 : 1;
  if (decoded.size() < count * width) fail("decoded to fewer samples than its header declares");
  std::vector<uint16_t> samples(count);  // (rows, columns)
  if (width == 2) std::memcpy(samples.data(), decoded.data(), count * 2);
  else std::copy(decoded.begin(), decoded.begin() + count, samples.begin());
  return samples;
}

}  // namespace mriscan
