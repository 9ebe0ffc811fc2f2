// SIMD vocabulary for the fast kernels: one float batch type, its width, and load/store helpers that let a
// kernel walk a channel row in full batches plus one partial tail batch with the same code.
//
// What it is: thin aliases over xsimd 8.1. `FloatBatch` is xsimd's batch for the architecture the compiler
// targets, so kernels never name an ISA. Only the kernel sets include it: each fast kernel source is compiled once
// per instruction set (CMakeLists.txt), with that set's flags (AVX-512 gives 16 floats, AVX2 8, SSE/NEON 4) and
// MRISCAN_ISA defined to the set's name, which is also the namespace everything here lives in, so the sets' copies
// never meet. What it is not: the run-time choice between the sets (engine/kernels/dispatch.h), or a macro layer.
//
// The tail idiom, used by every *_simd.cpp kernel:
//   for_each_chunk(C, [&](int c, int count) {           // count == kVectorWidth except for the last chunk
//     FloatBatch v = load_n(x + c, count);               // lanes >= count read as 0
//     store_n(y + c, v * 2.0f, count);                   // lanes >= count are not written
//   });
// After inlining, the full chunks see count == kVectorWidth as a constant and compile to plain vector
// loads/stores; the one tail chunk is a masked load/store (AVX-512's mask registers, AVX2's vmaskmovps), a small
// stack buffer elsewhere. No heap allocation anywhere.
#pragma once

#ifndef MRISCAN_ISA
#error "engine/simd.h belongs to the kernel sets, compiled once per instruction set with MRISCAN_ISA defined"
#endif

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

namespace mriscan::MRISCAN_ISA {

using FloatBatch = xsimd::batch<float>;
constexpr int kVectorWidth = static_cast<int>(FloatBatch::size);  // V: 16 floats with AVX-512

#if defined(__AVX2__) && !defined(__AVX512F__)
// The AVX2 mask of the first `count` (0..8) lanes: a lane is on when its sign bit is set. vmaskmovps neither reads
// nor faults on the lanes that are off.
inline __m256i avx2_lane_mask(int count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
#endif

// Loads `count` (1..V) floats from p; the lanes past `count` are zero and p[count..V) is never read.
inline FloatBatch load_n(const float* p, int count) {
  if (count == kVectorWidth) return FloatBatch::load_unaligned(p);
#if defined(__AVX512F__)
  // A masked load: the lanes past `count` are zero and their memory is not touched (no fault past an end).
  if constexpr (kVectorWidth == 16) return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), p);
#elif defined(__AVX2__)
  if constexpr (kVectorWidth == 8) return _mm256_maskload_ps(p, avx2_lane_mask(count));
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
#elif defined(__AVX2__)
  if constexpr (kVectorWidth == 8) {
    _mm256_maskstore_ps(p, avx2_lane_mask(count), v);
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

}  // namespace mriscan::MRISCAN_ISA
