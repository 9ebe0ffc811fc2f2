// Register-blocked GEMM for the pointwise shapes: C (M, N) = A (M, K) . op(B) (K, N) [+ C], then the optional
// epilogue c = act(c + bias). This is every pointwise convolution's forward (A = x (N*H*W, Ci), op(B) = w) and
// input gradient (A = dy (N*H*W, Co), op(B) = w^T), and the linear layer's: M is long (up to 400k rows), K and N
// short (16..1280).
//
// Why not Eigen for these: Eigen's product packs A (the long side) into its own layout before multiplying; with
// K as small as 16-96 that copy moves as many bytes as the product itself reads, and these layers are memory bound.
// Here only op(B), the weights (K x N, at most 1.6 MB), is packed, once per call, into panels of kPanel columns:
//   packed[panel][k][j] = op(B)(k, panel * kPanel + j),   zero past column N              (panels, K, kPanel)
// and A is read in place: the micro-tile (gemm_micro_tile.h) broadcasts A(i, k) of kRows rows straight from their
// rows and multiplies each by the panel's row k, accumulating a kRows x kPanel tile of C in registers. The tile is
// written once, with the accumulate and the epilogue applied while it is in registers, so the fused inference
// forward costs no extra pass either.
// Loop order: a band of rows per thread (or of panels, when C is wide and short); within it, panels in groups of
// about kPanelGroupBytes of packed B (stays in L2) and, per group, row tiles outer, panels inner, so each tile's
// kRows rows of A (K floats each) are read from memory once per group and from L1 for its other panels.
// What it is not: the weight gradient dw = x^T . dy (trans_a: a long reduction, gemm_reduce.cpp), or K-blocked:
// with K <= 1280 a tile's rows of A fit in L1/L2 whole.
#include "engine/kernels/gemm_packed.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "engine/kernels/gemm_micro_tile.h"
#include "engine/parallel.h"

namespace mriscan {
namespace {

using gemm_tile::kPanel;
using gemm_tile::kRows;
constexpr int64_t kPanelGroupBytes = int64_t(256) << 10;
// Below this many multiply-adds, starting a thread team costs more than it saves (as gemm_fast.cpp).
constexpr int64_t kParallelMinFlops = int64_t(1) << 18;

// packed (panels, K, kPanel) from B stored (K, N), or (N, K) when trans_b; zero past column N.
void pack_b(const GemmParams& p, const float* b, float* packed) {
  const int64_t panels = (p.n + kPanel - 1) / kPanel;
  for (int64_t panel = 0; panel < panels; ++panel)
    for (int64_t k = 0; k < p.k; ++k) {
      float* out = packed + (panel * p.k + k) * kPanel;  // (kPanel)
      for (int j = 0; j < kPanel; ++j) {
        const int64_t n = panel * kPanel + j;
        out[j] = n >= p.n ? 0.0f : p.trans_b ? b[n * p.k + k] : b[k * p.n + n];
      }
    }
}

// C rows [row_begin, row_end) x panels [panel_begin, panel_end), in panel groups, row tiles outer.
void compute_block(const GemmParams& p, const float* a, const float* packed, float* c, const float* bias,
                   Activation activation, int64_t row_begin, int64_t row_end, int64_t panel_begin, int64_t panel_end) {
  const int64_t group = std::max<int64_t>(1, kPanelGroupBytes / (p.k * kPanel * int64_t(sizeof(float))));
  for (int64_t group_begin = panel_begin; group_begin < panel_end; group_begin += group) {
    const int64_t group_end = std::min(panel_end, group_begin + group);
    for (int64_t row = row_begin; row < row_end; row += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, row_end - row));
      for (int64_t panel = group_begin; panel < group_end; ++panel) {
        const int64_t col = panel * kPanel;
        const int cols = static_cast<int>(std::min<int64_t>(kPanel, p.n - col));
        const gemm_tile::TileArgs t{.k_count = p.k,
                                    .a = a + row * p.k,
                                    .a_row_stride = p.k,
                                    .a_k_stride = 1,
                                    .b = packed + panel * p.k * kPanel,
                                    .b_k_stride = kPanel,
                                    .c = c + row * p.n + col,
                                    .ldc = p.n,
                                    .cols = cols,
                                    .accumulate = p.accumulate,
                                    .bias = bias ? bias + col : nullptr,
                                    .activation = activation};
        gemm_tile::tile_for(rows, cols)(t);
      }
    }
  }
}

}  // namespace

void gemm_packed_b(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                   float* c) {
  // The caller (gemm_fast.cpp) handles trans_a and the empty cases.
  const int64_t panels = (p.n + kPanel - 1) / kPanel;
  // Reused across calls of this thread: a layer's packed weights are at most 1.6 MB, and a fresh buffer per call
  // would come from mmap and go back to the kernel each time.
  thread_local std::vector<float> packed;  // (panels, K, kPanel)
  packed.resize(static_cast<size_t>(panels * p.k * kPanel));
  pack_b(p, b, packed.data());
  const int64_t row_tiles = (p.m + kRows - 1) / kRows;
  // Split whichever side has more work units; a thread's band of rows is whole tiles.
  const bool split_rows = row_tiles >= panels;
  const int threads = int64_t(p.m) * p.n * p.k >= kParallelMinFlops ? num_threads() : 1;
  const float* packed_b = packed.data();
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t units = split_rows ? row_tiles : panels;
    const int64_t begin = units * t / team, end = units * (t + 1) / team;
    if (end > begin) {
      if (split_rows)
        compute_block(p, a, packed_b, c, bias, activation, begin * kRows, std::min<int64_t>(p.m, end * kRows), 0,
                      panels);
      else
        compute_block(p, a, packed_b, c, bias, activation, 0, p.m, begin, end);
    }
  }
}

}  // namespace mriscan
