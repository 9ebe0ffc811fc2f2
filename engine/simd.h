// SIMD vocabulary for the fast kernels: one float batch type, its width, and load/store helpers that let a
// kernel walk a channel row in full batches plus one partial tail batch with the same code.
//
// What it is: thin aliases over xsimd 8.1. `FloatBatch` is xsimd's batch for the architecture the compiler
// targets (-march=native: AVX-512 gives 16 floats, AVX2 8, SSE/NEON 4), so kernels never name an ISA.
// What it is not: runtime ISA dispatch (the binary is built for the machine it runs on), or a macro layer.
//
// The tail idiom, used by every *_simd.cpp kernel:
//   for_each_chunk(C, [&](int c, int count) {           // count == kVectorWidth except for the last chunk
//     FloatBatch v = load_n(x + c, count);               // lanes >= count read as 0
//     store_n(y + c, v * 2.0f, count);                   // lanes >= count are not written
//   });
// After inlining, the full chunks see count == kVectorWidth as a constant and compile to plain vector
// loads/stores; the one tail chunk is a masked load/store with AVX-512, a small stack buffer elsewhere. No heap
// allocation anywhere.
#pragma once

#include <algorithm>
#include <cstdint>

// GCC 12's AVX-512 intrinsics header trips its own -Wmaybe-uninitialized (GCC bug 105593: `__m512 __Y = __Y;`
// in _mm512_undefined_ps) wherever xsimd::min/max inline. Silence it for the intrinsics headers only: the
// pragma state is positional, so it covers those headers' lines and nothing in our code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop

namespace mriscan {

using FloatBatch = xsimd::batch<float>;
constexpr int kVectorWidth = static_cast<int>(FloatBatch::size);  // V: 16 floats with AVX-512

// Loads `count` (1..V) floats from p; the lanes past `count` are zero and p[count..V) is never read.
inline FloatBatch load_n(const float* p, int count) {
  if (count == kVectorWidth) return FloatBatch::load_unaligned(p);
#if defined(__AVX512F__)
  // A masked load: the lanes past `count` are zero and their memory is not touched (no fault past an end).
  if constexpr (kVectorWidth == 16) return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), p);
#endif
  alignas(64) float buffer[kVectorWidth] = {};  // (V)
  std::copy(p, p + count, buffer);
  return FloatBatch::load_aligned(buffer);
}

// Stores the first `count` (1..V) lanes of v to p; p[count..V) is left untouched.
inline void store_n(float* p, const FloatBatch& v, int count) {
  if (count == kVectorWidth) {
    v.store_unaligned(p);
    return;
  }
#if defined(__AVX512F__)
  if constexpr (kVectorWidth == 16) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << count) - 1), v);
    return;
  }
#endif
  alignas(64) float buffer[kVectorWidth];  // (V)
  v.store_aligned(buffer);
  std::copy(buffer, buffer + count, p);
}

// Returns v unchanged, but as a value the compiler must hold in a register. Without it GCC folds a select whose
// other operand is zero into a zero-masking load of v's memory (vmovups ...{k}{z}), and on AMD Zen 4 such masked
// loads streaming from DRAM ran 1.5-1.6x slower than a plain load and a blend (the fused BN + ReLU6 backward on
// 112x112 maps, engine/kernels/batchnorm_simd.cpp). An empty asm statement that "modifies" the register is the
// standard way to stop the fold; it emits no instruction.
inline FloatBatch in_register(const FloatBatch& v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  typename FloatBatch::register_type r = v;
  asm("" : "+v"(r));
  return FloatBatch(r);
#else
  return v;
#endif
}

// Calls fn(c, count) for the chunks [c, c + count) covering [0, channels): full batches, then one tail.
template <typename Fn>
inline void for_each_chunk(int64_t channels, Fn&& fn) {
  int64_t c = 0;
  for (; c + kVectorWidth <= channels; c += kVectorWidth) fn(c, kVectorWidth);
  if (c < channels) fn(c, static_cast<int>(channels - c));
}

}  // namespace mriscan
