// Fast row-major GEMM: C (M, N) = op(A) . op(B) [+ C], same contract as gemm_ref.h, on Eigen's packed and
// vectorised single-threaded product. Pointwise convolution and the linear layer go through it.
//
// Threads: Eigen is built with EIGEN_DONT_PARALLELIZE (engine/parallel.h says why), so this file splits the
// OUTPUT: each thread computes a disjoint band of C with its own single-threaded Eigen product. The band runs
// along the longer side of C: rows of M for the forward (y = x . w, M = N*H*W) and for dx = dy . w^T; for the
// weight gradient dw (Ci, Co) = x^T . dy, which reduces over the long M, the bands are rows of Ci or columns of
// Co, so no thread ever sums into another's output and no reduction buffer is needed.
// Epilogue (gemm_bias_act, the fused inference forward): each thread computes its band in tiles of whole rows of
// about kEpilogueTileFloats floats (L2-sized) and applies c = act(c + bias) to a tile right after its product, while
// it is still in cache, instead of in separate passes over the whole output. Each tile is its own Eigen product,
// which repacks op(B) (K x band columns, the weights) per tile; the tile keeps at least kMinTileRows rows, so
// that repacking costs at most ~1/kMinTileRows of the product's work.
// What it is not: a hand-written microkernel; Eigen's packing and register blocking are the tuned part.
#include <omp.h>

#include <algorithm>

// simd.h first: it includes the x86 intrinsics headers with GCC 12's false -Wmaybe-uninitialized silenced,
// which Eigen's AVX-512 packet code would otherwise trigger.
#include "engine/simd.h"

#include <Eigen/Core>

#include "engine/kernels/epilogue_simd.h"
#include "engine/kernels/fast_kernels.h"
#include "engine/parallel.h"

namespace mriscan {
namespace {

using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMatrixMap = Eigen::Map<const RowMajorMatrix>;
using MatrixMap = Eigen::Map<RowMajorMatrix>;

// Below this many multiply-adds, starting a thread team costs more than it saves.
constexpr int64_t kParallelMinFlops = int64_t(1) << 18;
// Epilogue tiles: about 128 KiB of C, and never fewer rows than this.
constexpr int64_t kEpilogueTileFloats = int64_t(1) << 15;
constexpr int64_t kMinTileRows = 64;

// The per-column epilogue of gemm_bias_act; null means plain gemm.
struct Epilogue {
  const float* bias;  // (N) or null
  Activation activation;
};

// c_block (rows, cols) = op_a rows [row, row + rows) . op_b columns [col, col + cols)  (or +=).
template <typename OpA, typename OpB>
void block_product(const OpA& op_a, const OpB& op_b, MatrixMap& c, int64_t row, int64_t rows, int64_t col,
                   int64_t cols, bool accumulate) {
  auto c_block = c.block(row, col, rows, cols);  // (rows, cols)
  if (accumulate) c_block.noalias() += op_a.middleRows(row, rows) * op_b.middleCols(col, cols);
  else c_block.noalias() = op_a.middleRows(row, rows) * op_b.middleCols(col, cols);
}

// c = op_a . op_b (or +=), with the output split in bands across threads, then the epilogue if there is one.
// op_a (M, K), op_b (K, N), c (M, N); op_a / op_b are Eigen expressions (a map or a transposed map) so the
// transposes cost nothing.
template <typename OpA, typename OpB>
void banded_product(const OpA& op_a, const OpB& op_b, MatrixMap& c, bool accumulate, const Epilogue* epilogue) {
  const int64_t m = c.rows(), n = c.cols(), k = op_a.cols();
  const bool split_rows = m >= n;
  const int64_t extent = split_rows ? m : n;
  const int threads = m * n * k >= kParallelMinFlops ? num_threads() : 1;
  // Each thread owns one contiguous band [begin, end) of C's rows (or columns): disjoint writes.
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t begin = extent * t / team, end = extent * (t + 1) / team;
    if (end > begin) {
      const int64_t row = split_rows ? begin : 0, rows = split_rows ? end - begin : m;  // the band: rows x cols
      const int64_t col = split_rows ? 0 : begin, cols = split_rows ? n : end - begin;
      if (!epilogue) {
        block_product(op_a, op_b, c, row, rows, col, cols, accumulate);
      } else {
        const int64_t tile_rows = std::max(kMinTileRows, kEpilogueTileFloats / cols);
        for (int64_t tile = row; tile < row + rows; tile += tile_rows) {
          const int64_t count = std::min(tile_rows, row + rows - tile);
          block_product(op_a, op_b, c, tile, count, col, cols, accumulate);
          const float* bias = epilogue->bias ? epilogue->bias + col : nullptr;  // (cols) or null
          for (int64_t r = tile; r < tile + count; ++r)
            bias_activate_row(&c(r, col), cols, bias, epilogue->activation);  // (cols)
        }
      }
    }
  }
}

// Maps A, B and C as the params describe them and runs banded_product on op(A), op(B).
void mapped_product(const GemmParams& p, const float* a, const float* b, float* c, const Epilogue* epilogue) {
  if (p.m == 0 || p.n == 0) return;
  MatrixMap c_map(c, p.m, p.n);  // (M, N)
  if (p.k == 0) {                // an empty sum: C = 0, or C unchanged when accumulating; then the epilogue
    if (!p.accumulate) c_map.setZero();
    if (epilogue)
      for (int64_t r = 0; r < p.m; ++r) bias_activate_row(&c_map(r, 0), p.n, epilogue->bias, epilogue->activation);
    return;
  }
  // A is stored (M, K), or (K, M) when trans_a; B is stored (K, N), or (N, K) when trans_b.
  const ConstMatrixMap a_map(a, p.trans_a ? p.k : p.m, p.trans_a ? p.m : p.k);
  const ConstMatrixMap b_map(b, p.trans_b ? p.n : p.k, p.trans_b ? p.k : p.n);
  if (!p.trans_a && !p.trans_b) banded_product(a_map, b_map, c_map, p.accumulate, epilogue);
  else if (!p.trans_a && p.trans_b) banded_product(a_map, b_map.transpose(), c_map, p.accumulate, epilogue);
  else if (p.trans_a && !p.trans_b) banded_product(a_map.transpose(), b_map, c_map, p.accumulate, epilogue);
  else banded_product(a_map.transpose(), b_map.transpose(), c_map, p.accumulate, epilogue);
}

}  // namespace

void gemm_fast(const GemmParams& p, const float* a, const float* b, float* c) {
  mapped_product(p, a, b, c, nullptr);
}

void gemm_bias_act_fast(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                        float* c) {
  const Epilogue epilogue{bias, activation};
  mapped_product(p, a, b, c, &epilogue);
}

}  // namespace mriscan
