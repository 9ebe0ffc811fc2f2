// GEMM with a transposed A: C (M, N) [+]= A^T . op(B), A stored (K, M), op(B) (K, N), where K is the long side.
// This is every pointwise convolution's weight gradient, dw (Ci, Co) += x^T (Ci, N*H*W) . dy (N*H*W, Co), and the
// linear layer's: a small C reduced over up to 400k rows.
//
// Threads split the reduction: thread t sums rows [K t / T, K (t + 1) / T) of A and B, thread 0 straight into C,
// the others into private partials of C, which are added to C (in thread order, so a team size gives one answer)
// once all are done; C is at most 320 x 1280 floats, tiny next to the K x (M + N) floats read. When K is too short
// for that (fewer than kMinRowsPerThread rows a thread), the threads split C's panels instead.
// Within a thread, the rows go in chunks (kernel_set_tuning.h's reduce_chunk_rows: up to 128, fewer when A's chunk
// would not fit in half the L2); per chunk, each panel of kPanel columns of B is taken in
// place (its chunk of rows of N floats is already "row k, then the next"), or copied into a small zero-padded
// buffer when it is the last, partial panel or B is stored transposed; then every row tile of C runs the shared
// micro-tile (gemm_micro_tile.h) on it: A(r, k) = a[k * M + r] is a broadcast of 12 consecutive floats of row k,
// B's chunk of the panel (16 KB) stays in L1 across the tiles, and A's chunk (chunk x M floats) in L2.
// The epilogue of gemm_bias_act, when asked, runs over C at the end.
// What it is not: the non-transposed product (gemm_packed.cpp), which has a long M instead.
#include "engine/kernels/gemm_reduce.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "engine/kernels/epilogue_simd.h"
#include "engine/kernels/gemm_micro_tile.h"
#include "engine/kernels/kernel_set_tuning.h"
#include "engine/parallel.h"

namespace mriscan::MRISCAN_ISA {
namespace {

using gemm_tile::kPanel;
using gemm_tile::kParallelMinFlops;
using gemm_tile::kRows;
using gemm_tile::V;
// With fewer reduction rows than this per thread (or below kParallelMinFlops), one thread does it all.
constexpr int64_t kMinRowsPerThread = 2 * kReduceChunkRows;

// The float32 ReduceRowsFn (gemm_reduce.h).
void reduce_rows_fp32(const GemmParams& p, const float* a, const float* b, float* target, bool accumulate,
                      int64_t k_begin, int64_t k_end, int64_t panel_begin, int64_t panel_end) {
  const int64_t chunk_rows = tuning::reduce_chunk_rows(p.m);
  thread_local std::vector<float> panel_copy;  // (chunk_rows, kPanel)
  panel_copy.resize(chunk_rows * kPanel);
  for (int64_t k0 = k_begin; k0 < k_end; k0 += chunk_rows) {
    const int64_t rows_k = std::min(chunk_rows, k_end - k0);
    const bool first = k0 == k_begin;
    for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
      const int64_t col = panel * kPanel;
      const int cols = static_cast<int>(std::min<int64_t>(kPanel, p.n - col));
      // The micro-tile reads V or kPanel floats of each row of B: in place when those are all B's own.
      const bool in_place = !p.trans_b && (cols == kPanel || cols == V);
      const float* b_panel = b + k0 * p.n + col;  // B(k0, col), rows p.n apart
      int64_t b_stride = p.n;
      if (!in_place) {
        for (int64_t k = 0; k < rows_k; ++k)
          for (int j = 0; j < kPanel; ++j)
            panel_copy[k * kPanel + j] = j >= cols   ? 0.0f
                                         : p.trans_b ? b[(col + j) * p.k + k0 + k]
                                                     : b[(k0 + k) * p.n + col + j];
        b_panel = panel_copy.data();
        b_stride = kPanel;
      }
      for (int64_t row = 0; row < p.m; row += kRows) {
        const int rows = static_cast<int>(std::min<int64_t>(kRows, p.m - row));
        const gemm_tile::TileArgs t{.k_count = rows_k,
                                    .a = a + k0 * p.m + row,
                                    .a_row_stride = 1,
                                    .a_k_stride = p.m,
                                    .b = b_panel,
                                    .b_k_stride = b_stride,
                                    .c = target + row * p.n + col,
                                    .ldc = p.n,
                                    .cols = cols,
                                    .accumulate = accumulate || !first,
                                    .bias = nullptr,
                                    .activation = Activation::kNone};
        gemm_tile::tile_for(rows, cols)(t);
      }
    }
  }
}

}  // namespace

void gemm_reduce(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                 float* c, ReduceRowsFn reduce_rows) {
  if (!reduce_rows) reduce_rows = reduce_rows_fp32;
  // The caller (gemm_fast.cpp) handles the empty cases.
  const int64_t flops = int64_t(p.m) * p.n * p.k, panels = (p.n + kPanel - 1) / kPanel;
  const int threads = flops >= kParallelMinFlops ? num_threads() : 1;
  // A reduction too short to split (the 7x7 layers at a small batch: C up to 320 x 1280, K = 49 per image) is split
  // by C's panels instead: each thread owns whole columns of C, and no partials are needed.
  const bool split_k = p.k >= threads * kMinRowsPerThread || panels < threads;
  const int64_t c_size = int64_t(p.m) * p.n;
  // The partials of threads 1 .. T-1 when K is split, owned by the calling thread and reused across calls.
  thread_local std::vector<float> partials;  // (T - 1, M, N)
  partials.resize(split_k ? static_cast<size_t>((threads - 1) * c_size) : 0);
  float* partial_base = partials.data();
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    if (!split_k) {
      reduce_rows(p, a, b, c, p.accumulate, 0, p.k, panels * t / team, panels * (t + 1) / team);
    } else {
      const int64_t begin = p.k * t / team, end = p.k * (t + 1) / team;
      float* target = t == 0 ? c : partial_base + (t - 1) * c_size;  // (M, N)
      if (end > begin)
        reduce_rows(p, a, b, target, t == 0 && p.accumulate, begin, end, 0, panels);
      else if (t > 0)
        std::fill(target, target + c_size, 0.0f);
      else if (!p.accumulate)
        std::fill(c, c + c_size, 0.0f);
    }
#pragma omp barrier
    // C += the partials, then the epilogue: each thread a band of C's rows.
    const int64_t row_begin = p.m * t / team, row_end = p.m * (t + 1) / team;
    for (int64_t row = row_begin; row < row_end; ++row) {
      float* c_row = c + row * p.n;  // (N)
      for (int64_t other = 0; split_k && other + 1 < team; ++other) {
        const float* partial_row = partial_base + other * c_size + row * p.n;  // (N)
        for_each_chunk(p.n, [&](int64_t j, int count) {
          store_n(c_row + j, load_n(c_row + j, count) + load_n(partial_row + j, count), count);
        });
      }
      if (bias || activation != Activation::kNone) bias_activate_row(c_row, p.n, bias, activation);
    }
  }
}

}  // namespace mriscan::MRISCAN_ISA
