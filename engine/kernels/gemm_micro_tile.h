// The register block shared by the fast GEMMs (gemm_packed.cpp, gemm_reduce.cpp): one R x (NV * V) tile of
//   C(r, j) [+]= sum_k A(r, k) * B(k, j)        r < R, j < cols <= NV * V, k < k_count
// with A and B addressed by strides, so the same code reads a row-major A (a_k_stride 1, a_row_stride K) or a
// transposed one (a_k_stride = its row length, a_row_stride 1), and B from packed panels or in place:
//   A(r, k) = a[r * a_row_stride + k * a_k_stride]      broadcast to every lane
//   B(k, j) = b[k * b_k_stride + j]                     NV full vectors per k: b must hold NV * V readable floats
// Per k: NV vector loads of B, R broadcasts of A, R * NV fused multiply-adds into R * NV accumulators (24 of
// AVX-512's 32 registers for 12 x 32). R and NV are template parameters so the accumulators are registers; the
// store is unrolled for the same reason. The store writes `cols` columns: c = act(acc [+ c] [+ bias]).
// Also here: the tile's store (shared with the bf16 tile) and the split of C over threads (shared by both packed
// GEMMs). What it is not: a whole GEMM (no blocking or packing: the callers do those).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include <omp.h>

#include "engine/kernels/epilogue_simd.h"
#include "engine/kernels/kernel_set_tuning.h"
#include "engine/kernels/params.h"
#include "engine/simd.h"

namespace mriscan::MRISCAN_ISA::gemm_tile {

constexpr int V = kVectorWidth;
constexpr int kPanelVectors = 2;
constexpr int kPanel = kPanelVectors * V;  // columns of a full tile: 32 with AVX-512
// Rows of a full tile: kRows * kPanelVectors accumulators + kPanelVectors B vectors + 1 broadcast must fit in the
// vector registers (32 with AVX-512, 16 with AVX2 / SSE): the set's choice (kernel_set_tuning.h).
constexpr int kRows = tuning::kGemmRows;
// The packed GEMMs take panels in groups of about this many bytes of B, which stay in L2 across a band's row tiles.
constexpr int64_t kPanelGroupBytes = int64_t(256) << 10;
// Below this many multiply-adds, starting a thread team costs more than it saves: every GEMM runs on one thread.
constexpr int64_t kParallelMinFlops = int64_t(1) << 18;

struct TileArgs {
  int64_t k_count;
  const float* a;  // A(0, 0) of the tile
  int64_t a_row_stride, a_k_stride;
  const float* b;  // B(0, 0) of the tile
  int64_t b_k_stride;
  float* c;  // C(0, 0) of the tile; rows are ldc apart                                     (R, cols)
  int64_t ldc;
  int cols;           // valid columns, 1..NV * V
  bool accumulate;    // add the sum to C's values
  const float* bias;  // (cols) or null
  Activation activation;
};

// Writes an R x (NV * V) tile of sums to C, `cols` columns of it: c = act(acc [+ c] [+ bias]). Shared with the
// bf16 tile (gemm_bf16.cpp), whose sums are float32 too.
template <int R, int NV>
inline void store_tile(const FloatBatch (&acc)[R][NV], float* c, int64_t ldc, int cols, bool accumulate,
                       const float* bias, Activation activation) {
  const bool full = cols == NV * V;
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int col = v * V, count = full ? V : std::min(V, cols - col);
      if (count <= 0) continue;
      float* out = c + r * ldc + col;  // (count)
      FloatBatch value = acc[r][v];
      if (accumulate) value += load_n(out, count);
      if (bias) value += load_n(bias + col, count);
      store_n(out, activate(activation, value), count);
    }
}

// Splits C's rows (in whole tiles of kRows) or its panels of kPanel columns, whichever has more units, over a team
// of `threads` and runs block(row_begin, row_end, panel_begin, panel_end) once per thread with work.
template <typename Block>
void for_each_thread_block(int64_t m, int64_t panels, int threads, const Block& block) {
  const int64_t row_tiles = (m + kRows - 1) / kRows;
  const bool split_rows = row_tiles >= panels;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t units = split_rows ? row_tiles : panels;
    const int64_t begin = units * t / team, end = units * (t + 1) / team;
    if (end > begin) {
      if (split_rows)
        block(begin * kRows, std::min<int64_t>(m, end * kRows), int64_t(0), panels);
      else
        block(int64_t(0), m, begin, end);
    }
  }
}

template <int R, int NV>
void micro_tile(const TileArgs& t) {
  FloatBatch acc[R][NV];  // (R, NV * V) of C
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = FloatBatch(0.0f);
  const float* a = t.a;  // A(0, k)
  const float* b = t.b;  // B(k, 0)
  for (int64_t k = 0; k < t.k_count; ++k, a += t.a_k_stride, b += t.b_k_stride) {
    FloatBatch b_k[NV];  // B(k, 0 .. NV * V)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b_k[v] = FloatBatch::load_unaligned(b + v * V);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const FloatBatch a_rk(a[r * t.a_row_stride]);  // A(r, k) in every lane
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = xsimd::fma(a_rk, b_k[v], acc[r][v]);
    }
  }
  store_tile<R, NV>(acc, t.c, t.ldc, t.cols, t.accumulate, t.bias, t.activation);
}

using TileFn = void (*)(const TileArgs&);

template <int... Rs>
constexpr auto make_tile_table(std::integer_sequence<int, Rs...>) {
  static_assert(kPanelVectors == 2, "the table lists NV = 1 and NV = 2");
  return std::array<std::array<TileFn, kPanelVectors>, sizeof...(Rs)>{
      {{micro_tile<Rs + 1, 1>, micro_tile<Rs + 1, 2>}...}};
}

// The tile function for `rows` (1..kRows) rows and `cols` (1..kPanel) columns: a full tile or a remainder.
inline TileFn tile_for(int rows, int cols) {
  static constexpr auto kTiles = make_tile_table(std::make_integer_sequence<int, kRows>{});
  return kTiles[rows - 1][cols > V ? 1 : 0];
}

}  // namespace mriscan::MRISCAN_ISA::gemm_tile
