// DICOM RLE frames; see rle_decode.h.
#include "io/rle_decode.h"

#include "io/image_io.h"

namespace mriscan {
namespace {

uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

// PackBits (PS3.5 G.3.1): a header byte n, then n + 1 literal bytes (n in 0..127), or one byte repeated 1 - n times
// (n in -127..-1); -128 is no operation. Fills `out` (count bytes) from [begin, end); false if the segment ends
// first. Output beyond `count` (an encoder's padding) is not written.
bool unpack_segment(const uint8_t* begin, const uint8_t* end, uint8_t* out, size_t count) {
  size_t filled = 0;
  for (const uint8_t* at = begin; at < end && filled < count;) {
    const int n = static_cast<int8_t>(*at++);
    if (n >= 0) {
      const size_t literal = static_cast<size_t>(n) + 1;
      if (static_cast<size_t>(end - at) < literal) return false;
      for (size_t i = 0; i < literal && filled < count; ++i) out[filled++] = at[i];
      at += literal;
    } else if (n != -128) {
      if (at == end) return false;
      const size_t repeat = static_cast<size_t>(1 - n);
      for (size_t i = 0; i < repeat && filled < count; ++i) out[filled++] = *at;
      ++at;
    }
  }
  return filled == count;
}

}  // namespace

std::vector<uint16_t> decode_rle_frame(const std::vector<uint8_t>& frame, int columns, int rows, int bits_allocated,
                                       const std::string& source) {
  auto fail = [&](const std::string& problem) {
    throw ImageError("cannot decode " + source + ": the RLE frame " + problem);
  };
  const uint32_t segments = static_cast<uint32_t>(bits_allocated / 8);  // one per byte of the one sample
  if (frame.size() < 64) fail("has no 64-byte header");
  if (le32(frame.data()) != segments)
    fail("has " + std::to_string(le32(frame.data())) + " segments, " + std::to_string(segments) + " expected");
  const size_t count = static_cast<size_t>(rows) * columns;
  std::vector<uint8_t> planes(count * segments);  // (segments, rows, columns): most significant byte first
  for (uint32_t k = 0; k < segments; ++k) {
    const size_t begin = le32(frame.data() + 4 + 4 * k);
    const size_t end = k + 1 < segments ? le32(frame.data() + 8 + 4 * k) : frame.size();
    if (begin < 64 || begin > end || end > frame.size()) fail("has a segment offset outside the frame");
    if (!unpack_segment(frame.data() + begin, frame.data() + end, planes.data() + k * count, count))
      fail("has a segment that ends before " + std::to_string(columns) + "x" + std::to_string(rows) + " samples");
  }
  std::vector<uint16_t> samples(count);  // (rows, columns)
  for (size_t i = 0; i < count; ++i)
    samples[i] = segments == 1 ? planes[i] : static_cast<uint16_t>(planes[i] << 8 | planes[count + i]);
  return samples;
}

}  // namespace mriscan
