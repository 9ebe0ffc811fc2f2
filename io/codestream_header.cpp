// Frame headers of JPEG, JPEG-LS and JPEG 2000 codestreams; see codestream_header.h.
#include "io/codestream_header.h"

#include <cstring>

namespace mriscan {
namespace {

uint32_t be16(const uint8_t* p) { return uint32_t{p[0]} << 8 | p[1]; }
uint32_t be32(const uint8_t* p) { return be16(p) << 16 | be16(p + 2); }

// JPEG and JPEG-LS: marker segments FFxx + 16-bit length (counting itself) from after SOI (FFD8) until a frame
// header: SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC), or JPEG-LS's SOF55 (F7). Its payload: sample
// precision (1 byte), height (2), width (2), component count (1).
std::optional<CodestreamHeader> jpeg_header(const uint8_t* bytes, size_t size) {
  size_t at = 2;
  for (;;) {
    while (at < size && bytes[at] == 0xFF && at + 1 < size && bytes[at + 1] == 0xFF) ++at;  // fill bytes
    if (size - at < 4 || bytes[at] != 0xFF) return std::nullopt;
    const uint8_t marker = bytes[at + 1];
    if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {  // RSTn, TEM: no length
      at += 2;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return std::nullopt;  // start of scan or end of image before a frame
    const size_t length = be16(bytes + at + 2);
    const bool frame = (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) ||
                       marker == 0xF7;
    if (frame) {
      if (length < 8 || size - at < 2 + 8) return std::nullopt;
      return CodestreamHeader{be16(bytes + at + 7), be16(bytes + at + 5), bytes[at + 9], bytes[at + 4]};
    }
    if (length < 2 || length > size - at - 2) return std::nullopt;
    at += 2 + length;
  }
}

// JPEG 2000: SOC (FF4F), then SIZ (FF51): Lsiz (2), Rsiz (2), Xsiz, Ysiz, XOsiz, YOsiz (4 each), XTsiz, YTsiz,
// XTOsiz, YTOsiz (4 each), Csiz (2), then per component Ssiz (1: depth - 1, and the sign in the top bit), XRsiz,
// YRsiz. The image is (Xsiz - XOsiz) x (Ysiz - YOsiz).
std::optional<CodestreamHeader> j2k_header(const uint8_t* bytes, size_t size) {
  if (size < 4 + 41 || be16(bytes + 2) != 0xFF51) return std::nullopt;
  const uint8_t* siz = bytes + 4;
  const int64_t x = be32(siz + 4), y = be32(siz + 8), x0 = be32(siz + 12), y0 = be32(siz + 16);
  if (x0 >= x || y0 >= y) return std::nullopt;
  return CodestreamHeader{x - x0, y - y0, static_cast<int>(be16(siz + 36)), (siz[38] & 0x7F) + 1};
}

// A JP2 file (ISO 15444-1 annex I): boxes of length (4; 1: a 64-bit length follows; 0: to the end) and type
// (4); the codestream is the jp2c box.
std::optional<CodestreamHeader> jp2_header(const uint8_t* bytes, size_t size) {
  size_t at = 0;
  while (size - at >= 8) {
    uint64_t length = be32(bytes + at), header = 8;
    if (length == 1) {
      if (size - at < 16) return std::nullopt;
      length = uint64_t{be32(bytes + at + 8)} << 32 | be32(bytes + at + 12);
      header = 16;
    } else if (length == 0) {
      length = size - at;
    }
    if (length < header || length > size - at) return std::nullopt;
    if (std::memcmp(bytes + at + 4, "jp2c", 4) == 0) return j2k_header(bytes + at + header, length - header);
    at += length;
  }
  return std::nullopt;
}

}  // namespace

std::optional<CodestreamHeader> read_codestream_header(const uint8_t* bytes, size_t size) {
  if (bytes == nullptr || size < 4) return std::nullopt;
  if (bytes[0] == 0xFF && bytes[1] == 0xD8) return jpeg_header(bytes, size);
  if (bytes[0] == 0xFF && bytes[1] == 0x4F) return j2k_header(bytes, size);
  static const uint8_t kJp2Signature[] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' '};
  if (size >= 8 && std::memcmp(bytes, kJp2Signature, 8) == 0) return jp2_header(bytes, size);
  return std::nullopt;
}

}  // namespace mriscan
