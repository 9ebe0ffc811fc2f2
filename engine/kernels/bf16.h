// bfloat16, the scalar definition: the upper 16 bits of an IEEE float32 (1 sign, 8 exponent, 7 mantissa bits), so
// it has float32's range and about 2-3 significant decimal digits. Used by the bf16 GEMM's reference (gemm_ref.h)
// and its tests; the fast kernel (gemm_bf16.cpp) converts with AVX512-BF16's vcvtne2ps2bf16, which rounds the same
// way, so both agree bit for bit on every input:
//   round to nearest, ties to even, on the 16 bits dropped: bits + 0x7FFF + (bit 16 of bits), then >> 16
//   denormal inputs are treated as zero (keeping their sign), as the instruction does; NaN stays a quiet NaN.
// What it is not: a storage type for tensors (activations and weights stay float32; only GEMM inputs are rounded,
// and the one activation stored as bf16, the folded network's depthwise -> pointwise hand-off, holds exactly the
// values the product would round it to: models/folded_conv.h).
#pragma once

#include <cstdint>
#include <cstring>

namespace mriscan {

inline uint16_t bf16_bits(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7F800000u) == 0) return static_cast<uint16_t>((bits >> 16) & 0x8000u);  // zero or denormal: +-0
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // NaN: quiet
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // nearest, ties to even; a carry into the exponent is the right answer
  return static_cast<uint16_t>(bits >> 16);
}

inline float bf16_to_float(uint16_t value) {
  const uint32_t bits = uint32_t(value) << 16;
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

inline float round_to_bf16(float x) { return bf16_to_float(bf16_bits(x)); }

}  // namespace mriscan
