// Register-blocked GEMM for the pointwise shapes: C (M, N) = A (M, K) . op(B) (K, N) [+ C], then the optional
// epilogue c = act(c + bias). This is every pointwise convolution's forward (A = x (N*H*W, Ci), op(B) = w) and
// input gradient (A = dy (N*H*W, Co), op(B) = w^T), and the linear layer's: M is long (up to 400k rows), K and N
// short (16..1280).
//
// Why not Eigen for these: Eigen's product packs A (the long side) into its own layout before multiplying; with
// K as small as 16-96 that copy moves as many bytes as the product itself reads, and these layers are memory bound.
// Here A is read in place and only op(B), the weights (K x N, at most 1.6 MB), is laid out in panels of kPanel
// columns, and only when B is stored transposed (the input gradient's w^T), once per call:
//   packed[panel][k][j] = op(B)(k, panel * kPanel + j),   zero past column N              (panels, K, kPanel)
// A row-major B needs no copy: its row k already holds a panel's kPanel columns side by side (gemm_packed_b says
// why that is also faster). The micro-tile (gemm_micro_tile.h) broadcasts A(i, k) of kRows rows straight from
// their rows and multiplies each by the panel's row k, accumulating a kRows x kPanel tile of C in registers. The
// tile is written once, with the accumulate and the epilogue applied while it is in registers, so the fused
// inference forward costs no extra pass either.
// Loop order: a band of rows per thread (or of panels, when C is wide and short); within it, panels in groups of
// about kPanelGroupBytes of B (stays in L2) and, per group, row tiles outer, panels inner, so each tile's kRows
// rows of A (K floats each) are read from memory once per group and from L1 for its other panels.
// What it is not: the weight gradient dw = x^T . dy (trans_a: a long reduction, gemm_reduce.cpp), or K-blocked:
// with K <= 1280 a tile's rows of A fit in L1/L2 whole.
#include "engine/kernels/gemm_packed.h"

#include <algorithm>
#include <vector>

#include "engine/kernels/gemm_micro_tile.h"
#include "engine/parallel.h"

namespace mriscan::MRISCAN_ISA {
namespace {

using gemm_tile::kPanel;
using gemm_tile::kPanelGroupBytes;
using gemm_tile::kParallelMinFlops;
using gemm_tile::kRows;

// Where the micro-tile reads panel i of op(B): rows k_stride floats apart, kPanel readable floats each.
struct Panels {
  const float* base;
  int64_t panel_stride, k_stride;
  const float* tail;  // the last, partial panel (K, kPanel), zero padded; null when it is in `base`
  int64_t tail_index;
  const float* panel(int64_t i) const { return tail && i == tail_index ? tail : base + i * panel_stride; }
  int64_t stride(int64_t i) const { return tail && i == tail_index ? kPanel : k_stride; }
};

// packed (panels, K, kPanel) = panels [panel_begin, panels) of B stored (K, N), or (N, K) when trans_b; zero past
// column N.
void pack_b(const GemmParams& p, const float* b, int64_t panel_begin, float* packed) {
  const int64_t panels = (p.n + kPanel - 1) / kPanel;
  for (int64_t panel = panel_begin; panel < panels; ++panel)
    for (int64_t k = 0; k < p.k; ++k) {
      float* out = packed + ((panel - panel_begin) * p.k + k) * kPanel;  // (kPanel)
      for (int j = 0; j < kPanel; ++j) {
        const int64_t n = panel * kPanel + j;
        out[j] = n >= p.n ? 0.0f : p.trans_b ? b[n * p.k + k] : b[k * p.n + n];
      }
    }
}

// C rows [row_begin, row_end) x panels [panel_begin, panel_end), in panel groups, row tiles outer.
void compute_block(const GemmParams& p, const float* a, const Panels& b, float* c, const float* bias,
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
                                    .b = b.panel(panel),
                                    .b_k_stride = b.stride(panel),
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
  // A row-major B (the forward's weights) is read in place: a panel's row k is kPanel consecutive floats of B's
  // row k. Only a partial last panel, whose rows would read past B's end, is copied. Packing all of B copies K x N
  // floats on one thread, as much time as the product itself when M is a batch-1 7x7 or 14x14 map (49 or 196
  // rows: batch-1 latency 13.2 ms packed, 4.6-5.5 ms in place), and measured no faster at long M either (batch-32
  // inference 185 img/s packed, 195 in place; training steps equal). B stored transposed is packed.
  const bool in_place = !p.trans_b;
  const int64_t packed_from = in_place ? (p.n % kPanel ? panels - 1 : panels) : 0;
  // Reused across calls of this thread: a layer's packed weights are at most 1.6 MB, and a fresh buffer per call
  // would come from mmap and go back to the kernel each time.
  thread_local std::vector<float> packed;  // (panels - packed_from, K, kPanel)
  packed.resize(static_cast<size_t>((panels - packed_from) * p.k * kPanel));
  pack_b(p, b, packed_from, packed.data());
  const Panels b_panels = in_place ? Panels{b, kPanel, p.n, packed_from < panels ? packed.data() : nullptr, panels - 1}
                                   : Panels{packed.data(), p.k * kPanel, kPanel, nullptr, 0};
  const int threads = int64_t(p.m) * p.n * p.k >= kParallelMinFlops ? num_threads() : 1;
  gemm_tile::for_each_thread_block(p.m, panels, threads, [&](int64_t row_begin, int64_t row_end, int64_t panel_begin,
                                                             int64_t panel_end) {
    compute_block(p, a, b_panels, c, bias, activation, row_begin, row_end, panel_begin, panel_end);
  });
}

}  // namespace mriscan::MRISCAN_ISA
