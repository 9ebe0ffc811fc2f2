// Fast row-major GEMM: C (M, N) = op(A) . op(B) [+ C], same contract as gemm_ref.h, on Eigen's packed and
// vectorised single-threaded product. Pointwise convolution and the linear layer go through it.
//
// Threads: Eigen is built with EIGEN_DONT_PARALLELIZE (engine/parallel.h says why), so this file splits the
// OUTPUT: each thread computes a disjoint band of C with its own single-threaded Eigen product. The band runs
// along the longer side of C: rows of M for the forward (y = x . w, M = N*H*W) and for dx = dy . w^T; for the
// weight gradient dw (Ci, Co) = x^T . dy, which reduces over the long M, the bands are rows of Ci or columns of
// Co, so no thread ever sums into another's output and no reduction buffer is needed.
// What it is not: a hand-written microkernel; Eigen's packing and register blocking are the tuned part.
#include <omp.h>

// simd.h first: it includes the x86 intrinsics headers with GCC 12's false -Wmaybe-uninitialized silenced,
// which Eigen's AVX-512 packet code would otherwise trigger.
#include "engine/simd.h"

#include <Eigen/Core>

#include "engine/kernels/fast_kernels.h"
#include "engine/parallel.h"

namespace mriscan {
namespace {

using RowMajorMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMatrixMap = Eigen::Map<const RowMajorMatrix>;
using MatrixMap = Eigen::Map<RowMajorMatrix>;

// Below this many multiply-adds, starting a thread team costs more than it saves.
constexpr int64_t kParallelMinFlops = int64_t(1) << 18;

// c = op_a . op_b (or +=), with the output split in bands across threads. op_a (M, K), op_b (K, N), c (M, N);
// op_a / op_b are Eigen expressions (a map or a transposed map) so the transposes cost nothing.
template <typename OpA, typename OpB>
void banded_product(const OpA& op_a, const OpB& op_b, MatrixMap& c, bool accumulate) {
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
      if (split_rows) {
        auto c_band = c.middleRows(begin, end - begin);  // (band, N)
        if (accumulate) c_band.noalias() += op_a.middleRows(begin, end - begin) * op_b;
        else c_band.noalias() = op_a.middleRows(begin, end - begin) * op_b;
      } else {
        auto c_band = c.middleCols(begin, end - begin);  // (M, band)
        if (accumulate) c_band.noalias() += op_a * op_b.middleCols(begin, end - begin);
        else c_band.noalias() = op_a * op_b.middleCols(begin, end - begin);
      }
    }
  }
}

}  // namespace

void gemm_fast(const GemmParams& p, const float* a, const float* b, float* c) {
  if (p.m == 0 || p.n == 0) return;
  MatrixMap c_map(c, p.m, p.n);  // (M, N)
  if (p.k == 0) {                // an empty sum: C = 0, or C unchanged when accumulating
    if (!p.accumulate) c_map.setZero();
    return;
  }
  // A is stored (M, K), or (K, M) when trans_a; B is stored (K, N), or (N, K) when trans_b.
  const ConstMatrixMap a_map(a, p.trans_a ? p.k : p.m, p.trans_a ? p.m : p.k);
  const ConstMatrixMap b_map(b, p.trans_b ? p.n : p.k, p.trans_b ? p.k : p.n);
  if (!p.trans_a && !p.trans_b) banded_product(a_map, b_map, c_map, p.accumulate);
  else if (!p.trans_a && p.trans_b) banded_product(a_map, b_map.transpose(), c_map, p.accumulate);
  else if (p.trans_a && !p.trans_b) banded_product(a_map.transpose(), b_map, c_map, p.accumulate);
  else banded_product(a_map.transpose(), b_map.transpose(), c_map, p.accumulate);
}

}  // namespace mriscan
