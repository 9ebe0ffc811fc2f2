// SHA-256 as specified in FIPS 180-4, section 6.2: pad the message to a multiple of 64 bytes (a 1 bit, zeros,
// then the bit length as a 64-bit big-endian number), then run the compression function on each 64-byte block.
#include "server/sha256.h"

#include <array>
#include <cstring>
#include <vector>

namespace mriscan {
namespace {

// First 32 bits of the fractional parts of the cube roots of the first 64 primes (FIPS 180-4, 4.2.2).
constexpr std::array<uint32_t, 64> kRoundConstants = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

uint32_t rotate_right(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// One application of the compression function to a 64-byte block, updating the hash state h[0..7].
void compress(std::array<uint32_t, 8>& h, const uint8_t* block) {
  std::array<uint32_t, 64> w;  // the message schedule
  for (int t = 0; t < 16; ++t)
    w[t] = (uint32_t(block[4 * t]) << 24) | (uint32_t(block[4 * t + 1]) << 16) | (uint32_t(block[4 * t + 2]) << 8) |
           uint32_t(block[4 * t + 3]);
  for (int t = 16; t < 64; ++t) {
    uint32_t s0 = rotate_right(w[t - 15], 7) ^ rotate_right(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = rotate_right(w[t - 2], 17) ^ rotate_right(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (int t = 0; t < 64; ++t) {
    uint32_t sigma1 = rotate_right(e, 6) ^ rotate_right(e, 11) ^ rotate_right(e, 25);
    uint32_t choose = (e & f) ^ (~e & g);
    uint32_t t1 = hh + sigma1 + choose + kRoundConstants[t] + w[t];
    uint32_t sigma0 = rotate_right(a, 2) ^ rotate_right(a, 13) ^ rotate_right(a, 22);
    uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = sigma0 + majority;
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

}  // namespace

std::string sha256_hex(const void* data, size_t size) {
  // Initial hash value: fractional parts of the square roots of the first 8 primes (FIPS 180-4, 5.3.3).
  std::array<uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  const auto* bytes = static_cast<const uint8_t*>(data);
  size_t full_blocks = size / 64;
  for (size_t i = 0; i < full_blocks; ++i) compress(h, bytes + 64 * i);

  // Padding: the remaining bytes, 0x80, zeros up to 56 mod 64, then the length in bits (big-endian).
  size_t rest = size - 64 * full_blocks;
  std::vector<uint8_t> tail(rest + 1 + 8 <= 64 ? 64 : 128, 0);
  if (rest > 0) std::memcpy(tail.data(), bytes + 64 * full_blocks, rest);
  tail[rest] = 0x80;
  uint64_t bit_length = uint64_t(size) * 8;
  for (int i = 0; i < 8; ++i) tail[tail.size() - 1 - i] = uint8_t(bit_length >> (8 * i));
  for (size_t offset = 0; offset < tail.size(); offset += 64) compress(h, tail.data() + offset);

  static const char* kHex = "0123456789abcdef";
  std::string hex(64, '0');
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) hex[8 * i + j] = kHex[(h[i] >> (28 - 4 * j)) & 0xf];
  return hex;
}

}  // namespace mriscan
