// The bf16 GEMMs (every pointwise convolution and linear product under --precision bf16):
//   C (M, N) = act(bf16(op(A)) (M, K) . bf16(op(B)) (K, N) [+ C] [+ bias])
// For a long M (forward, input gradient) it is gemm_packed.cpp's loop nest with a different inner product; for the
// weight gradient's long K, gemm_reduce.cpp's threads with reduce_rows_bf16 (at the end of this file).
// AVX512-BF16's vdpbf16ps takes two vectors of 32 bf16 values, i.e. 16 pairs, and adds each lane's pair of
// products to a float32 accumulator (derived in docs/bf16_pairing.md):
//   acc[j] += a[2j] * b[2j] + a[2j + 1] * b[2j + 1]         j < 16
// so one instruction does the work of two float32 FMAs. Both operands are therefore laid out as pairs along K:
//   B packed per call:     packed[panel][kk][j] = (op(B)(2kk, col_j), op(B)(2kk + 1, col_j))   (panels, K2, kPanel)
//   A converted per tile:  pairs[r][kk] = (A(r, 2kk), A(r, 2kk + 1))                           (kRows, K2)
// with K2 = ceil(K / 2) and a zero past K (and past N), each pair one 32-bit word, low half first. A tile of
// kRows x kPanel sums (24 accumulators, as the float32 tile) then takes, per pair kk: two vector loads of B's
// pairs and, per row, one broadcast of A's pair word and two vdpbf16ps. Conversions round to nearest even
// (vcvtne2ps2bf16, the same rounding as bf16.h). The tile's store is the float32 tile's (store_tile).
// Costs beyond the float32 kernel: converting A (once per row tile and panel group, read from L1/L2) and packing
// B (K x N values per call, on the calling thread's team).
// A may also come already in bf16 (gemm_bias_act_bf16_a_fast, the folded network's hand-off from a depthwise conv:
// dispatch.h): with K even its rows are pair words as they lie and are read in place, no conversion.
// What it is not: a bf16 storage format (tensors stay float32; only the products' inputs are rounded).
#include "engine/kernels/gemm_bf16.h"

#if defined(__AVX512BF16__)

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "engine/kernels/bf16.h"
#include "engine/kernels/fast_kernels.h"
#include "engine/kernels/gemm_micro_tile.h"
#include "engine/kernels/gemm_reduce.h"
#include "engine/parallel.h"

namespace mriscan::MRISCAN_ISA {
namespace {

using gemm_tile::kPanel;
using gemm_tile::kPanelGroupBytes;
using gemm_tile::kParallelMinFlops;
using gemm_tile::kRows;
static_assert(kPanel == 32 && gemm_tile::V == 16, "the bf16 tile is written for AVX-512: 2 vectors of 16 lanes");

// 32 floats in K order (low: the first 16, high: the next 16) -> 16 pair words; a zero past K rounds to zero.
// vcvtne2ps2bf16 puts the second operand's 16 values in lanes 0-15 of the result, so this is one instruction.
__m512i pairs_of_consecutive(const FloatBatch& low, const FloatBatch& high) {
  return (__m512i)_mm512_cvtne2ps_pbh(high, low);
}

// 16 values of row k and 16 of row k + 1 (same columns) -> 16 pair words (value k, value k + 1) per column.
__m512i pairs_of_rows(const FloatBatch& row_k, const FloatBatch& row_k1) {
  // Lanes 0-15: row k's 16 bf16, lanes 16-31: row k + 1's; then interleave them: word j = (lane j, lane 16 + j).
  static const __m512i kInterleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                      23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(kInterleave, (__m512i)_mm512_cvtne2ps_pbh(row_k1, row_k));
}

// out (kPanel) = the pair words of `cols` columns of rows k and k + 1 of a row-major matrix (row_k1 null: row k is
// the last, its partner is zero), zero past `cols`.
void pair_rows_of_panel(const float* row_k, const float* row_k1, int cols, uint32_t* out) {
  for (int v = 0; v < 2; ++v) {
    const int count = std::clamp(cols - v * 16, 0, 16);
    const FloatBatch low = count ? load_n(row_k + v * 16, count) : FloatBatch(0.0f);
    const FloatBatch high = count && row_k1 ? load_n(row_k1 + v * 16, count) : FloatBatch(0.0f);
    _mm512_storeu_si512(out + v * 16, pairs_of_rows(low, high));
  }
}

// packed (panels, K2, kPanel) pair words of op(B), panels [panel_begin, panel_end), zero past K and N.
void pack_b_pairs(const GemmParams& p, const float* b, int64_t panel_begin, int64_t panel_end, uint32_t* packed) {
  const int64_t k2 = (p.k + 1) / 2;
  if (!p.trans_b) {  // B (K, N): a panel's pair kk is 32 columns of rows 2kk and 2kk + 1
    for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
      const int64_t col = panel * kPanel;
      const int cols = static_cast<int>(std::min<int64_t>(kPanel, p.n - col));
      for (int64_t kk = 0; kk < k2; ++kk) {
        const float* row_k = b + 2 * kk * p.n + col;  // (cols)
        pair_rows_of_panel(row_k, 2 * kk + 1 < p.k ? row_k + p.n : nullptr, cols,
                           packed + (panel * k2 + kk) * kPanel);
      }
    }
    return;
  }
  // B stored (N, K): column n of op(B) is row n of B, K consecutive floats: converted to pair words, then placed.
  thread_local std::vector<uint32_t> column;  // (K2 rounded up to 16)
  column.resize(static_cast<size_t>((k2 + 15) / 16 * 16));
  for (int64_t panel = panel_begin; panel < panel_end; ++panel)
    for (int j = 0; j < kPanel; ++j) {
      const int64_t n = panel * kPanel + j;
      std::fill(column.begin(), column.end(), 0u);
      for (int64_t k = 0; n < p.n && k < p.k; k += 32) {
        const int count = static_cast<int>(std::min<int64_t>(32, p.k - k));
        const FloatBatch low = load_n(b + n * p.k + k, std::min(count, 16));
        const FloatBatch high = count > 16 ? load_n(b + n * p.k + k + 16, count - 16) : FloatBatch(0.0f);
        _mm512_storeu_si512(column.data() + k / 2, pairs_of_consecutive(low, high));
      }
      for (int64_t kk = 0; kk < k2; ++kk) packed[(panel * k2 + kk) * kPanel + j] = column[kk];
    }
}

// pairs (rows, K2) = A's rows [0, rows) as pair words; a row of A is K floats, lda apart.
void convert_rows(const float* a, int64_t lda, int rows, int64_t k, uint32_t* pairs) {
  const int64_t k2 = (k + 1) / 2;
  for (int r = 0; r < rows; ++r) {
    const float* row = a + r * lda;  // (K)
    uint32_t* out = pairs + r * k2;  // (K2)
    for (int64_t c = 0; c < k; c += 32) {
      const int count = static_cast<int>(std::min<int64_t>(32, k - c));
      const FloatBatch low = load_n(row + c, std::min(count, 16));                       // A(r, c .. c+16)
      const FloatBatch high = count > 16 ? load_n(row + c + 16, count - 16) : FloatBatch(0.0f);  // zero past K
      const __m512i words = pairs_of_consecutive(low, high);
      const int pair_count = (count + 1) / 2;
      _mm512_mask_storeu_epi32(out + c / 2, static_cast<__mmask16>((1u << pair_count) - 1), words);
    }
  }
}

// A's pair words are addressed by strides, as the float32 tile's A: pairs (R, K2) row by row (a_row_stride K2,
// a_k_stride 1) for gemm_bf16_packed_b, or (K2, M) pair row by pair row (1, M) for the weight gradient.
struct Bf16Tile {
  int64_t k2;
  const uint32_t* a_pairs;  // A's pair (r, kk) at a_pairs[r * a_row_stride + kk * a_k_stride]
  int64_t a_row_stride, a_k_stride;
  const uint32_t* b_pairs;  // (K2, kPanel)
  float* c;                 // (R, cols), rows ldc apart
  int64_t ldc;
  int cols;
  bool accumulate;
  const float* bias;  // (cols) or null
  Activation activation;
};

template <int R, int NV>
void bf16_tile(const Bf16Tile& t) {
  FloatBatch acc[R][NV];  // (R, NV * 16) of C: xsimd batches are __m512 registers, so vdpbf16ps takes them as they are
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = FloatBatch(0.0f);
  const uint32_t* b = t.b_pairs;
  for (int64_t kk = 0; kk < t.k2; ++kk, b += kPanel) {
    __m512bh b_kk[NV];  // B's pairs (2kk, 2kk+1) of 16 columns each
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) b_kk[v] = (__m512bh)_mm512_loadu_si512(b + v * 16);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const uint32_t a_pair = t.a_pairs[r * t.a_row_stride + kk * t.a_k_stride];
      const __m512bh a_rk = (__m512bh)_mm512_set1_epi32(static_cast<int>(a_pair));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a_rk, b_kk[v]);
    }
  }
  gemm_tile::store_tile<R, NV>(acc, t.c, t.ldc, t.cols, t.accumulate, t.bias, t.activation);
}

using Bf16TileFn = void (*)(const Bf16Tile&);

template <int... Rs>
constexpr auto make_bf16_tiles(std::integer_sequence<int, Rs...>) {
  return std::array<std::array<Bf16TileFn, 2>, sizeof...(Rs)>{{{bf16_tile<Rs + 1, 1>, bf16_tile<Rs + 1, 2>}...}};
}

Bf16TileFn bf16_tile_for(int rows, int cols) {
  static constexpr auto kTiles = make_bf16_tiles(std::make_integer_sequence<int, kRows>{});
  return kTiles[rows - 1][cols > 16 ? 1 : 0];
}

// C rows [row_begin, row_end) x panels [panel_begin, panel_end): panel groups that stay in L2, row tiles outer.
// A is either float32 (a, converted per row tile) or already bf16 (a_bf16, row-major (M, K) with K even: its
// rows are then pair words as they lie, read in place).
void compute_block(const GemmParams& p, const float* a, const uint16_t* a_bf16, const uint32_t* packed, float* c,
                   const float* bias, Activation activation, int64_t row_begin, int64_t row_end, int64_t panel_begin,
                   int64_t panel_end) {
  const int64_t k2 = (p.k + 1) / 2;
  thread_local std::vector<uint32_t> pairs;  // (kRows, K2)
  pairs.resize(static_cast<size_t>(kRows * k2));
  const int64_t group = std::max<int64_t>(1, kPanelGroupBytes / (k2 * kPanel * int64_t(sizeof(uint32_t))));
  for (int64_t group_begin = panel_begin; group_begin < panel_end; group_begin += group) {
    const int64_t group_end = std::min(panel_end, group_begin + group);
    for (int64_t row = row_begin; row < row_end; row += kRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kRows, row_end - row));
      const uint32_t* a_pairs = pairs.data();  // (rows, K2)
      if (a_bf16)
        a_pairs = reinterpret_cast<const uint32_t*>(a_bf16 + row * p.k);
      else
        convert_rows(a + row * p.k, p.k, rows, p.k, pairs.data());
      for (int64_t panel = group_begin; panel < group_end; ++panel) {
        const int64_t col = panel * kPanel;
        const int cols = static_cast<int>(std::min<int64_t>(kPanel, p.n - col));
        const Bf16Tile t{.k2 = k2,
                         .a_pairs = a_pairs,
                         .a_row_stride = k2,
                         .a_k_stride = 1,
                         .b_pairs = packed + panel * k2 * kPanel,
                         .c = c + row * p.n + col,
                         .ldc = p.n,
                         .cols = cols,
                         .accumulate = p.accumulate,
                         .bias = bias ? bias + col : nullptr,
                         .activation = activation};
        bf16_tile_for(rows, cols)(t);
      }
    }
  }
}

void packed_b_product(const GemmParams& p, const float* a, const uint16_t* a_bf16, const float* b, const float* bias,
                      Activation activation, float* c) {
  const int64_t panels = (p.n + kPanel - 1) / kPanel, k2 = (p.k + 1) / 2;
  const int threads = int64_t(p.m) * p.n * p.k >= kParallelMinFlops ? num_threads() : 1;
  // Reused across calls of this thread, as gemm_packed.cpp's buffer. Packed by the team, a share of panels each:
  // on one thread it would cost as much as a batch-1 product.
  thread_local std::vector<uint32_t> packed;  // (panels, K2, kPanel)
  packed.resize(static_cast<size_t>(panels * k2 * kPanel));
  uint32_t* packed_data = packed.data();
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int64_t team = omp_get_num_threads(), t = omp_get_thread_num();
    pack_b_pairs(p, b, panels * t / team, panels * (t + 1) / team, packed_data);
  }
  gemm_tile::for_each_thread_block(p.m, panels, threads, [&](int64_t row_begin, int64_t row_end, int64_t panel_begin,
                                                             int64_t panel_end) {
    compute_block(p, a, a_bf16, packed_data, c, bias, activation, row_begin, row_end, panel_begin, panel_end);
  });
}

}  // namespace

void gemm_bf16_packed_b(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                        float* c) {
  packed_b_product(p, a, nullptr, b, bias, activation, c);
}

void gemm_bias_act_bf16_a_fast(const GemmParams& p, const uint16_t* a_bf16, const float* b, const float* bias,
                               Activation activation, float* c) {
  if (p.trans_a || p.k <= 0 || p.k % 2 != 0)
    throw std::invalid_argument("gemm_bias_act_bf16_a: A must be (M, K) with K even and positive, not transposed");
  if (p.m == 0 || p.n == 0) return;
  packed_b_product(p, nullptr, a_bf16, b, bias, activation, c);
}

namespace {

// The weight gradient's reduce_rows (gemm_reduce.h) with bf16 inputs: per chunk of kChunkRows rows of A (K, M) and
// B (K, N), both are converted to pairs of consecutive rows, A's chunk whole (K2, M) and B's a panel at a time
// (K2, kPanel), a zero row past the chunk's end; then every row tile of C runs the bf16 tile on them.
void reduce_rows_bf16(const GemmParams& p, const float* a, const float* b, float* target, bool accumulate,
                      int64_t k_begin, int64_t k_end, int64_t panel_begin, int64_t panel_end) {
  constexpr int64_t kChunkRows = kReduceChunkRows;
  thread_local std::vector<uint32_t> a_pairs, b_pairs;  // (kChunkRows / 2, M), (kChunkRows / 2, kPanel)
  a_pairs.resize(static_cast<size_t>(kChunkRows / 2 * p.m));
  b_pairs.resize(static_cast<size_t>(kChunkRows / 2 * kPanel));
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kChunkRows) {
    const int64_t rows_k = std::min(kChunkRows, k_end - k0), k2 = (rows_k + 1) / 2;
    for (int64_t kk = 0; kk < k2; ++kk) {
      const float* row_k = a + (k0 + 2 * kk) * p.m;  // (M)
      const bool has_next = 2 * kk + 1 < rows_k;
      for (int64_t r = 0; r < p.m; r += 16) {
        const int count = static_cast<int>(std::min<int64_t>(16, p.m - r));
        const FloatBatch next = has_next ? load_n(row_k + p.m + r, count) : FloatBatch(0.0f);
        _mm512_mask_storeu_epi32(a_pairs.data() + kk * p.m + r, static_cast<__mmask16>((1u << count) - 1),
                                 pairs_of_rows(load_n(row_k + r, count), next));
      }
    }
    for (int64_t panel = panel_begin; panel < panel_end; ++panel) {
      const int64_t col = panel * kPanel;
      const int cols = static_cast<int>(std::min<int64_t>(kPanel, p.n - col));
      for (int64_t kk = 0; kk < k2; ++kk) {
        const int64_t k = k0 + 2 * kk;
        const bool has_next = 2 * kk + 1 < rows_k;
        uint32_t* out = b_pairs.data() + kk * kPanel;  // (kPanel)
        if (p.trans_b) {  // B stored (N, K): the rare case (no layer uses it), element by element
          for (int j = 0; j < kPanel; ++j) {
            const float low = j < cols ? b[(col + j) * p.k + k] : 0.0f;
            const float high = j < cols && has_next ? b[(col + j) * p.k + k + 1] : 0.0f;
            out[j] = uint32_t(bf16_bits(low)) | uint32_t(bf16_bits(high)) << 16;
          }
          continue;
        }
        const float* row_k = b + k * p.n + col;  // (cols)
        pair_rows_of_panel(row_k, has_next ? row_k + p.n : nullptr, cols, out);
      }
      for (int64_t row = 0; row < p.m; row += kRows) {
        const int rows = static_cast<int>(std::min<int64_t>(kRows, p.m - row));
        const Bf16Tile t{.k2 = k2,
                         .a_pairs = a_pairs.data() + row,
                         .a_row_stride = 1,
                         .a_k_stride = p.m,
                         .b_pairs = b_pairs.data(),
                         .c = target + row * p.n + col,
                         .ldc = p.n,
                         .cols = cols,
                         .accumulate = accumulate || k0 != k_begin,
                         .bias = nullptr,
                         .activation = Activation::kNone};
        bf16_tile_for(rows, cols)(t);
      }
    }
  }
}

}  // namespace

void gemm_bf16_reduce(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                      float* c) {
  gemm_reduce(p, a, b, bias, activation, c, reduce_rows_bf16);
}

const bool has_bf16_gemm = true;

}  // namespace mriscan::MRISCAN_ISA

#else
// No AVX512-BF16: the reference's bf16 product (bf16.h's rounding, float32 sums). fast_kernels() is never such a set
// under bf16 precision (bf16_matmul_supported()), but a lower set a test selects still computes what it asks for.

#include <cstdint>
#include <stdexcept>

#include "engine/kernels/fast_kernels.h"
#include "engine/kernels/gemm_ref.h"

namespace mriscan::MRISCAN_ISA {
const bool has_bf16_gemm = false;
void gemm_bf16_packed_b(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                        float* c) {
  gemm_bf16_ref<float>(p, a, b, bias, activation, c);
}
void gemm_bf16_reduce(const GemmParams& p, const float* a, const float* b, const float* bias, Activation activation,
                      float* c) {
  gemm_bf16_ref<float>(p, a, b, bias, activation, c);
}
// Not installed in such a set's table (kernel_table_simd.cpp keeps the reference's entry); defined so that it links.
void gemm_bias_act_bf16_a_fast(const GemmParams&, const uint16_t*, const float*, const float*, Activation, float*) {
  throw std::logic_error("gemm_bias_act_bf16_a: this kernel set has no AVX512-BF16");
}
}  // namespace mriscan::MRISCAN_ISA

#endif
