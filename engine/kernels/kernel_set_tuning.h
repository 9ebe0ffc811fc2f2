// Each kernel set's tuning: the register-tile shapes, loop orders and cache blocks that depend on how many vector
// registers the instruction set has (AVX-512: 32 of 16 floats; AVX2: 16 of 8; SSE: 16 of 4), chosen per set by
// measurement (docs/kernel_sets.md says how, docs/results/ has the figures). Compiled into each set with its flags,
// like the kernels.
// What it is not: the kernels' algorithms (the *_simd.cpp files), or sizes that follow from the data.
#pragma once

#include <algorithm>
#include <cstdint>

#include "engine/kernels/cpu_features.h"
#include "engine/simd.h"

namespace mriscan::MRISCAN_ISA::tuning {

#if defined(__AVX512F__)
// GEMM micro-tile rows (x 2 vectors of columns): 12 x 32 = 24 accumulators + 2 B vectors + 1 broadcast of 32.
inline constexpr int kGemmRows = 12;
// Depthwise stride-1 tile: neighbouring output pixels that share their input columns.
inline constexpr int kDepthwiseTilePixels = 6;
// Batch norm's column sums: channel vectors whose two sums stay in registers, 2 x (8 + a tail) = 18 of 32.
inline constexpr int kBatchNormGroupVectors = 8;
// The stem's weight gradient: taps whose x 2 vector accumulators stay in registers, 9 x 2 = 18 of 32.
inline constexpr int kStemGradientTaps = 9;
#else
// 16 registers (AVX2; the SSE baseline set takes the same shapes, not tuned further). Each value measured against
// its neighbours with the AVX2 set (MRISCAN_ISA=avx2, one thread, batch 8, docs/results/2026-12-07-kernel-sets.md):
// GEMM 6 x 16 (12 accumulators + 2 B + 1 broadcast = 15 of 16) against 5 x 16 (slower on 21 of 33 layer
// directions, by up to 11%; faster on 8); depthwise tile 6 against 4 (4: up to 10% slower forward, mixed
// backward); batch norm groups 4 against 6 (6: slower on all 20 shapes, by 1-9%); and the stride-1 depthwise loop
// order (tiles outer at 112x112x32, 4 vectors here, against channels outer: 1.3x).
inline constexpr int kGemmRows = 6;
inline constexpr int kDepthwiseTilePixels = 6;
inline constexpr int kBatchNormGroupVectors = 4;
inline constexpr int kStemGradientTaps = 4;
#endif

// The weight-gradient GEMM's chunk of reduction rows (gemm_reduce.cpp): A's chunk (rows x M floats) and B's panel
// chunk (rows x 2V floats) should stay in half the L2 of the core that runs them (the other half: C's tiles, the
// next chunk's prefetch), so the chunk shrinks for wide M on small L2s (M = 960 on a 512 KiB L2: 64 rows, where
// 128 rows of A alone would be 480 KiB) and stays at 128 rows where they fit (a 2 MiB L2). A multiple of 8.
inline int64_t reduce_chunk_rows(int64_t m) {
  const int64_t row_bytes = (m + 2 * kVectorWidth) * int64_t(sizeof(float));
  const int64_t rows = cpu_features().l2_bytes / 2 / row_bytes;
  return std::clamp<int64_t>(rows / 8 * 8, 16, 128);
}

}  // namespace mriscan::MRISCAN_ISA::tuning
