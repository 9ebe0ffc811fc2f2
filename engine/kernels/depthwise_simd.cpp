// Fast depthwise convolution (NHWC): xsimd over channels, OpenMP over rows of the output (forward, dw) or of
// the input (dx). Same math and contract as depthwise_ref.h: forward overwrites y, backward accumulates (dx is
// stored when !p.accumulate_dx).
//
// Specialised for the 3x3 kernel (every depthwise layer in MobileNetV2) with any stride and padding: the tap
// loops have a compile-time trip count, so they unroll into straight FMA chains and the nine per-tap
// accumulators of the weight gradient live in registers. Other kernel sizes fall back to the reference.
// The forward applies p.activation to each accumulator before its store (the fused inference epilogue).
// Depthwise is memory bound (2 FLOPs per weight load), so each kernel is arranged to stream its big buffers
// once: the three input rows a row of outputs needs are reused from cache, never re-read from memory. At
// stride 1 all three kernels also run their interior pixels in tiles of six, which load each input (or dy)
// column once per kernel row instead of once per tap that reads it: reads from cache, not FMAs, bound them.
// Which loop is outer (pixels or tiles, or channel chunks) is chosen per kernel and shape by measurement
// (tiles_outer, and the comments of each kernel); the results do not depend on it beyond float summation order.
// What it is not: a Winograd or im2col kernel.
#include <omp.h>

#include <cstdint>
#include <vector>

#include "engine/kernels/bf16.h"
#include "engine/kernels/conv2d_ref.h"  // index4
#include "engine/kernels/depthwise_ref.h"
#include "engine/kernels/epilogue_simd.h"
#include "engine/kernels/fast_kernels.h"
#include "engine/kernels/kernel_set_tuning.h"
#include "engine/parallel.h"
#include "engine/simd.h"

namespace mriscan::MRISCAN_ISA {
namespace {

constexpr int K = 3;  // the specialised kernel size

// For one output row oh: which of the K input rows it reads exist (the rest are zero padding), and where they
// start. rows[kh] points at x[n, oh*s + kh - p, 0, 0] and is only formed when ok[kh].
struct TapRows {
  const float* rows[K] = {};
  bool ok[K] = {};
};

TapRows input_rows_of_output_row(const DepthwiseParams& p, const float* x, int n, int oh) {
  TapRows taps;
  for (int kh = 0; kh < K; ++kh) {
    const int ih = oh * p.stride + kh - p.pad;
    taps.ok[kh] = ih >= 0 && ih < p.in_h;
    if (taps.ok[kh]) taps.rows[kh] = x + index4(n, ih, 0, 0, p.in_h, p.in_w, p.channels);  // (W, C)
  }
  return taps;
}

// Calls tap(kh, kw) for each tap of one output pixel that falls inside the input, iw0 being the input column of
// its tap kw = 0: all nine without a check when `inside` (an interior pixel of a row with all K input rows), else
// only the valid ones. Shared by the forward and the weight gradient, whose loops differ only in what a tap does.
template <typename TapFn>
[[gnu::always_inline]] inline void for_each_valid_tap(const DepthwiseParams& p, const TapRows& in, int iw0,
                                                      bool inside, TapFn&& tap) {
  if (inside) {
    for (int kh = 0; kh < K; ++kh)
      for (int kw = 0; kw < K; ++kw) tap(kh, kw);
    return;
  }
  for (int kh = 0; kh < K; ++kh) {
    if (!in.ok[kh]) continue;
    for (int kw = 0; kw < K; ++kw)
      if (iw0 + kw >= 0 && iw0 + kw < p.in_w) tap(kh, kw);
  }
}

// kTilePixels neighbouring interior outputs of a stride-1 row, lanes c..c+count (x_rows already offset by c),
// from input column iw0 on. Neighbours share two of their three input columns, so the tile loads each of its
// kTilePixels + 2 columns once per kernel row and uses it for every output that reads it: 3 * 8 = 24 loads for
// 54 FMAs, where one load per FMA would be 54. (The same tile at stride 2, 3 * 13 loads, measured no faster.)
constexpr int kTilePixels = tuning::kDepthwiseTilePixels;  // also the stride-1 gradients' tile (kernel_set_tuning.h)

// The stride-1 loop order of all three kernels (measured: docs/results/2026-12-04-training-step-profile.md): tiles of
// kTilePixels outer and channel chunks inner when a row has more than two channel vectors and room for a tile;
// otherwise channel chunks outer, each chunk's weights (or the weight gradient's sums) in registers across the whole
// row.
bool tiles_outer(const DepthwiseParams& p, InteriorColumns interior) {
  return p.stride == 1 && p.channels > 2 * kVectorWidth && interior.end - interior.begin >= kTilePixels;
}
[[gnu::always_inline]] inline void forward_tile(const float* const x_rows[K], int64_t C, int iw0, int count,
                                                const FloatBatch* wv, const FloatBatch& bv, FloatBatch* acc) {
  constexpr int kColumns = kTilePixels + K - 1;
  for (int i = 0; i < kTilePixels; ++i) acc[i] = bv;
  for (int kh = 0; kh < K; ++kh) {
    const float* x_cols = x_rows[kh] + int64_t(iw0) * C;  // (kColumns, C) from input column iw0
    FloatBatch column[kColumns];                          // (kColumns, count)
    for (int j = 0; j < kColumns; ++j) column[j] = load_n(x_cols + j * C, count);
    for (int i = 0; i < kTilePixels; ++i)
      for (int kw = 0; kw < K; ++kw) acc[i] = xsimd::fma(column[i + kw], wv[kh * K + kw], acc[i]);
  }
}

// y_row = y[n, oh, :, :], one output row (OW, C). x rows (W, C), w (K, K, C).
// Interior pixels (all nine taps inside the image) skip every bounds check; border pixels take the checked path.
// Loop order, each measured against the others with both in one process, interleaved
// (docs/results/2026-12-04-training-step-profile.md):
//   stride 1, more than two channel vectors: tiles of six pixels outer (forward_tile), channel chunks inner,
//     so a tile's input columns are read as contiguous runs: 1.2-1.8x over chunk-outer from 56x56x144 down;
//   stride 1, up to two vectors (112x112x32): chunk outer, pixels inner, the chunk's nine weights and bias in
//     registers for the whole row, tiles of six for the interior (1.2x faster than tiles-outer there);
//   other strides: pixels outer, channels inner, weights from L1 (1.2-1.6x over chunk-outer on the stride-2
//     layers from 56x56x144 down, equal on 112x112x96).
// (Blocking the row into groups of 8..32 pixels, to keep the input columns in L1 across chunks, measured no
// better, and 30% slower on the stride-2 layers.)
void forward_row(const DepthwiseParams& p, const float* x, const float* w, const float* bias, float* y_row, int n,
                 int oh) {
  const int64_t C = p.channels;
  const TapRows in = input_rows_of_output_row(p, x, n, oh);
  const bool all_rows = in.ok[0] && in.ok[1] && in.ok[2];
  const InteriorColumns interior = interior_columns(p.in_w, p.out_w, K, p.stride, p.pad);
  // One output pixel, all channels, weights from L1.
  auto pixel_all_channels = [&](int ow) {
    const int iw0 = ow * p.stride - p.pad;  // input column of tap kw = 0
    const bool inside = all_rows && ow >= interior.begin && ow < interior.end;
    for_each_chunk(C, [&](int64_t c, int count) {
      FloatBatch acc = bias ? load_n(bias + c, count) : FloatBatch(0.0f);
      for_each_valid_tap(p, in, iw0, inside, [&](int kh, int kw) {
        acc = xsimd::fma(load_n(in.rows[kh] + (iw0 + kw) * C + c, count), load_n(w + (kh * K + kw) * C + c, count),
                         acc);
      });
      store_n(y_row + ow * C + c, activate(p.activation, acc), count);
    });
  };
  // kTilePixels outputs from ow on, lanes c..c+count, given the chunk's weights and bias.
  auto tile = [&](int ow, int64_t c, int count, const FloatBatch* wv, const FloatBatch& bv) {
    const float* x_rows[K] = {in.rows[0] + c, in.rows[1] + c, in.rows[2] + c};
    FloatBatch acc[kTilePixels];  // (kTilePixels, count)
    forward_tile(x_rows, C, ow - p.pad, count, wv, bv, acc);
    for (int i = 0; i < kTilePixels; ++i) store_n(y_row + (ow + i) * C + c, activate(p.activation, acc[i]), count);
  };
  if (p.stride != 1) {
    for (int ow = 0; ow < p.out_w; ++ow) pixel_all_channels(ow);
    return;
  }
  if (all_rows && tiles_outer(p, interior)) {
    // Tiles outer, channel chunks inner: a tile's input columns are read as contiguous runs of C floats, and
    // each chunk's weights are reloaded from L1 per tile.
    int ow = 0;
    for (; ow < interior.begin; ++ow) pixel_all_channels(ow);
    for (; ow + kTilePixels <= interior.end; ow += kTilePixels)
      for_each_chunk(C, [&](int64_t c, int count) {
        FloatBatch wv[K * K];  // (K*K) lanes c..c+count of each tap's weights
        for (int t = 0; t < K * K; ++t) wv[t] = load_n(w + t * C + c, count);
        tile(ow, c, count, wv, bias ? load_n(bias + c, count) : FloatBatch(0.0f));
      });
    for (; ow < p.out_w; ++ow) pixel_all_channels(ow);
    return;
  }
  for_each_chunk(C, [&](int64_t c, int count) {
    FloatBatch wv[K * K];  // (K*K) lanes c..c+count of each tap's weights
    for (int tap = 0; tap < K * K; ++tap) wv[tap] = load_n(w + tap * C + c, count);
    const FloatBatch bv = bias ? load_n(bias + c, count) : FloatBatch(0.0f);
    auto pixel = [&](int ow) {
      const int iw0 = ow * p.stride - p.pad;  // input column of tap kw = 0
      FloatBatch acc = bv;
      for_each_valid_tap(p, in, iw0, all_rows && ow >= interior.begin && ow < interior.end, [&](int kh, int kw) {
        acc = xsimd::fma(load_n(in.rows[kh] + (iw0 + kw) * C + c, count), wv[kh * K + kw], acc);
      });
      store_n(y_row + ow * C + c, activate(p.activation, acc), count);
    };
    int ow = 0;
    if (all_rows) {
      for (; ow < interior.begin; ++ow) pixel(ow);
      for (; ow + kTilePixels <= interior.end; ow += kTilePixels) tile(ow, c, count, wv, bv);
    }
    for (; ow < p.out_w; ++ow) pixel(ow);
  });
}

// For input column iw: which taps kw read it (ok) and from which output column (ow). all: every tap does (the
// interior columns of a stride-1 layer; with stride 2 the taps alternate by parity, so never all): then no check
// is needed. Computed once per call, not per pixel.
struct InputColumnTaps {
  bool ok[K];
  int ow[K];
  bool all;
};

std::vector<InputColumnTaps> input_column_taps(const DepthwiseParams& p) {
  std::vector<InputColumnTaps> columns(p.in_w);
  for (int iw = 0; iw < p.in_w; ++iw) {
    InputColumnTaps& t = columns[iw];
    t.all = true;
    for (int kw = 0; kw < K; ++kw) {
      const int u = iw + p.pad - kw;
      t.ok[kw] = u >= 0 && u % p.stride == 0 && u / p.stride < p.out_w;
      t.ow[kw] = t.ok[kw] ? u / p.stride : 0;
      t.all = t.all && t.ok[kw];
    }
  }
  return columns;
}

// dx[n, ih, :, :] (+)= (everything that reads it), for one input row: the gather form of the reference's scatter.
// Input row ih is read by output row oh through tap kh exactly when ih = oh*s + kh - p, i.e. when
// (ih + p - kh) is a non-negative multiple of s and the quotient is a valid oh; likewise for columns.
// With !p.accumulate_dx the sum is stored over dx (the first gradient to reach it): no read of dx.
// Loop order, each measured (docs/results/2026-12-04-training-step-profile.md): stride 2 (one, two or four taps per
// pixel, and dx four times dy's size) runs pixels outer, so dx is written as one contiguous stream (the chunk-outer
// order took about twice as long on 112x112x96). Stride 1 (nine taps per pixel) runs its interior pixels six at a time
// (1.25-1.8x over one at a time), with the tiles outer and channel chunks inner when there are more than two channel
// vectors, else channel chunks outer with the chunk's nine weights in registers for the whole row, as forward_row.
void backward_input_row(const DepthwiseParams& p, const float* dy, const float* w,
                        const std::vector<InputColumnTaps>& columns, float* dx, int n, int ih) {
  const int64_t C = p.channels;
  const float* dy_rows[K] = {};  // dy[n, oh(kh), 0, 0], (OW, C)
  bool row_ok[K];
  for (int kh = 0; kh < K; ++kh) {
    const int t = ih + p.pad - kh;
    row_ok[kh] = t >= 0 && t % p.stride == 0 && t / p.stride < p.out_h;
    if (row_ok[kh]) dy_rows[kh] = dy + index4(n, t / p.stride, 0, 0, p.out_h, p.out_w, C);
  }
  const bool all_rows = row_ok[0] && row_ok[1] && row_ok[2];
  float* dx_row = dx + index4(n, ih, 0, 0, p.in_h, p.in_w, C);  // (W, C)
  // acc += the taps of input pixel iw, lanes c..c+count; weight(tap) gives the tap's weights.
  auto gather = [&](int iw, int64_t c, int count, FloatBatch acc, auto&& weight) {
    const InputColumnTaps& t = columns[iw];
    if (all_rows && t.all) {
      for (int kh = 0; kh < K; ++kh)
        for (int kw = 0; kw < K; ++kw)
          acc = xsimd::fma(load_n(dy_rows[kh] + t.ow[kw] * C + c, count), weight(kh * K + kw), acc);
    } else {
      for (int kh = 0; kh < K; ++kh) {
        if (!row_ok[kh]) continue;
        for (int kw = 0; kw < K; ++kw)
          if (t.ok[kw]) acc = xsimd::fma(load_n(dy_rows[kh] + t.ow[kw] * C + c, count), weight(kh * K + kw), acc);
      }
    }
    return acc;
  };
  auto initial = [&](const float* dx_pixel, int count) {
    return p.accumulate_dx ? load_n(dx_pixel, count) : FloatBatch(0.0f);
  };
  // The interior columns (every tap reads them) are contiguous at stride 1; there, kTilePixels pixels share the
  // kTilePixels + 2 dy columns they read, loaded once per kernel row (as in forward_tile): input pixel iw + i
  // reads dy column iw + i + p - kw, column j of the tile being iw + p - 2 + j. Lanes c..c+count.
  auto tile = [&](int iw, int64_t c, int count, const FloatBatch* wv) {
    FloatBatch acc[kTilePixels];  // (kTilePixels, count)
    for (int i = 0; i < kTilePixels; ++i) acc[i] = initial(dx_row + (iw + i) * C + c, count);
    for (int kh = 0; kh < K; ++kh) {
      const float* dy_cols = dy_rows[kh] + int64_t(iw + p.pad - (K - 1)) * C + c;  // (kTilePixels + 2, C)
      FloatBatch column[kTilePixels + K - 1];                                     // (kTilePixels + 2, count)
      for (int j = 0; j < kTilePixels + K - 1; ++j) column[j] = load_n(dy_cols + j * C, count);
      for (int i = 0; i < kTilePixels; ++i)
        for (int kw = 0; kw < K; ++kw) acc[i] = xsimd::fma(column[i + K - 1 - kw], wv[kh * K + kw], acc[i]);
    }
    for (int i = 0; i < kTilePixels; ++i) store_n(dx_row + (iw + i) * C + c, acc[i], count);
  };
  auto pixel_all_channels = [&](int iw) {
    for_each_chunk(C, [&](int64_t c, int count) {
      float* dx_pixel = dx_row + iw * C + c;  // (count)
      const auto weight = [&](int tap) { return load_n(w + tap * C + c, count); };
      store_n(dx_pixel, gather(iw, c, count, initial(dx_pixel, count), weight), count);
    });
  };
  if (all_rows && tiles_outer(p, interior_columns(p.in_w, p.out_w, K, p.stride, p.pad))) {
    // Tiles outer, channel chunks inner, as forward_row: 1.2-2.5x over the chunk-outer order below from 56x56x144
    // to 14x14 (measured in one process, interleaved), which stays for up to two channel vectors (1.1x faster).
    int iw = 0;
    for (; iw < p.in_w && !columns[iw].all; ++iw) pixel_all_channels(iw);
    for (; iw + kTilePixels <= p.in_w && columns[iw + kTilePixels - 1].all; iw += kTilePixels)
      for_each_chunk(C, [&](int64_t c, int count) {
        FloatBatch wv[K * K];  // (K*K) lanes c..c+count of each tap's weights
        for (int t = 0; t < K * K; ++t) wv[t] = load_n(w + t * C + c, count);
        tile(iw, c, count, wv);
      });
    for (; iw < p.in_w; ++iw) pixel_all_channels(iw);
    return;
  }
  if (p.stride == 1) {
    for_each_chunk(C, [&](int64_t c, int count) {
      FloatBatch wv[K * K];  // (K*K) lanes c..c+count of each tap's weights
      for (int tap = 0; tap < K * K; ++tap) wv[tap] = load_n(w + tap * C + c, count);
      auto pixel = [&](int iw) {
        float* dx_pixel = dx_row + iw * C + c;  // (count)
        store_n(dx_pixel, gather(iw, c, count, initial(dx_pixel, count), [&](int tap) { return wv[tap]; }), count);
      };
      int iw = 0;
      if (all_rows) {
        for (; iw < p.in_w && !columns[iw].all; ++iw) pixel(iw);
        for (; iw + kTilePixels <= p.in_w && columns[iw + kTilePixels - 1].all; iw += kTilePixels)
          tile(iw, c, count, wv);
      }
      for (; iw < p.in_w; ++iw) pixel(iw);
    });
  } else {
    for (int iw = 0; iw < p.in_w; ++iw) pixel_all_channels(iw);
  }
}

// partial[tap, c] += sum over one output row of x * dy; partial[K*K, c] += sum of dy (the bias gradient).
// Channel chunk outer, pixels inner: the nine tap sums of a chunk stay in registers for the whole row, and
// the row's inputs (3 x W x C floats) stay in cache across chunks; or, where tiles_outer says, tiles outer (below).
// Interior pixels skip the bounds checks, as in forward_row (measured 2.5-4x faster on the 112x112 and 56x56
// layers than checking every tap), and at stride 1 go six at a time (1.2-1.5x on 112x112x32, 56x56x144 and
// 28x28x192, measured alternating).
void backward_weight_row(const DepthwiseParams& p, const float* x, const float* dy, float* partial, int n,
                         int oh) {
  const int64_t C = p.channels;
  const TapRows in = input_rows_of_output_row(p, x, n, oh);
  const float* dy_row = dy + index4(n, oh, 0, 0, p.out_h, p.out_w, C);  // (OW, C)
  const bool all_rows = in.ok[0] && in.ok[1] && in.ok[2];
  const InteriorColumns interior = interior_columns(p.in_w, p.out_w, K, p.stride, p.pad);
  // acc[tap] += x * dy and acc_bias += dy at output pixel ow, lanes c..c+count.
  auto pixel = [&](int ow, int64_t c, int count, FloatBatch* acc, FloatBatch& acc_bias) {
    const int iw0 = ow * p.stride - p.pad;
    const FloatBatch dyv = load_n(dy_row + ow * C + c, count);
    acc_bias += dyv;
    for_each_valid_tap(p, in, iw0, all_rows && ow >= interior.begin && ow < interior.end, [&](int kh, int kw) {
      acc[kh * K + kw] = xsimd::fma(load_n(in.rows[kh] + (iw0 + kw) * C + c, count), dyv, acc[kh * K + kw]);
    });
  };
  // The same for kTilePixels interior pixels of a stride-1 row from ow on: as forward_tile, the outputs' dy and
  // their kTilePixels + 2 input columns per kernel row are loaded once each, every column then used for each tap
  // that reads it.
  auto tile = [&](int ow, int64_t c, int count, FloatBatch* acc, FloatBatch& acc_bias) {
    FloatBatch dyv[kTilePixels];  // (kTilePixels, count)
    for (int i = 0; i < kTilePixels; ++i) {
      dyv[i] = load_n(dy_row + (ow + i) * C + c, count);
      acc_bias += dyv[i];
    }
    for (int kh = 0; kh < K; ++kh) {
      const float* x_cols = in.rows[kh] + int64_t(ow - p.pad) * C + c;  // (kTilePixels + 2, C)
      for (int j = 0; j < kTilePixels + K - 1; ++j) {
        const FloatBatch column = load_n(x_cols + j * C, count);
        // Column j is tap kw of output i = j - kw, for the kw that keep i inside the tile.
        for (int kw = 0; kw < K; ++kw)
          if (j - kw >= 0 && j - kw < kTilePixels) acc[kh * K + kw] = xsimd::fma(column, dyv[j - kw], acc[kh * K + kw]);
      }
    }
  };
  // Runs fn(acc, acc_bias) on the ten sums of lanes c..c+count, starting from zero or from partial's, and adds
  // them into partial (or stores them back) after.
  auto with_sums = [&](int64_t c, int count, bool from_partial, auto&& fn) {
    FloatBatch acc[K * K];  // one per tap
    FloatBatch acc_bias(0.0f);
    for (int tap = 0; tap < K * K; ++tap)
      acc[tap] = from_partial ? load_n(partial + tap * C + c, count) : FloatBatch(0.0f);
    if (from_partial) acc_bias = load_n(partial + K * K * C + c, count);
    fn(acc, acc_bias);
    for (int tap = 0; tap < K * K; ++tap) {
      float* out = partial + tap * C + c;
      store_n(out, from_partial ? acc[tap] : load_n(out, count) + acc[tap], count);
    }
    float* out_bias = partial + K * K * C + c;
    store_n(out_bias, from_partial ? acc_bias : load_n(out_bias, count) + acc_bias, count);
  };
  if (all_rows && tiles_outer(p, interior)) {
    // Tiles outer, channel chunks inner: a chunk's ten sums go through the thread's partial (in L1) once per tile
    // of six pixels instead of staying in registers for the row; the tile's columns are read as contiguous runs.
    // 1.3-1.5x over chunk outer from 56x56x144 to 14x14 (measured in one process, interleaved); on 7x7 (no room
    // for a tile) the per-pixel trips through memory made it 1.8x slower, hence tiles_outer's condition.
    int ow = 0;
    auto pixel_all_channels = [&](int at) {
      for_each_chunk(C, [&](int64_t c, int count) {
        with_sums(c, count, true, [&](FloatBatch* acc, FloatBatch& acc_bias) { pixel(at, c, count, acc, acc_bias); });
      });
    };
    for (; ow < interior.begin; ++ow) pixel_all_channels(ow);
    for (; ow + kTilePixels <= interior.end; ow += kTilePixels)
      for_each_chunk(C, [&](int64_t c, int count) {
        with_sums(c, count, true, [&](FloatBatch* acc, FloatBatch& acc_bias) { tile(ow, c, count, acc, acc_bias); });
      });
    for (; ow < p.out_w; ++ow) pixel_all_channels(ow);
    return;
  }
  for_each_chunk(C, [&](int64_t c, int count) {
    with_sums(c, count, false, [&](FloatBatch* acc, FloatBatch& acc_bias) {
      int ow = 0;
      if (p.stride == 1 && all_rows) {
        for (; ow < interior.begin; ++ow) pixel(ow, c, count, acc, acc_bias);
        for (; ow + kTilePixels <= interior.end; ow += kTilePixels) tile(ow, c, count, acc, acc_bias);
      }
      for (; ow < p.out_w; ++ow) pixel(ow, c, count, acc, acc_bias);
    });
  });
}

// out (n) = bf16_bits of x (n) (bf16.h): with AVX512-BF16, vcvtneps2bf16, which rounds the same way, 16 at a time.
void round_to_bf16(int64_t n, const float* x, uint16_t* out) {
  int64_t i = 0;
#if defined(__AVX512BF16__)
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
#endif
  for (; i < n; ++i) out[i] = bf16_bits(x[i]);
}

}  // namespace

void depthwise_forward_simd(const DepthwiseParams& p, const float* x, const float* w, const float* bias,
                            float* y) {
  if (p.kernel != K) return depthwise_forward_ref<float>(p, x, w, bias, y);
  // Each thread owns whole output rows (n, oh): disjoint writes, and its input rows are read from cache.
#pragma omp parallel for collapse(2) schedule(static) num_threads(num_threads())
  for (int n = 0; n < p.batch; ++n)
    for (int oh = 0; oh < p.out_h; ++oh)
      forward_row(p, x, w, bias, y + index4(n, oh, 0, 0, p.out_h, p.out_w, p.channels), n, oh);
}

void depthwise_forward_bf16_simd(const DepthwiseParams& p, const float* x, const float* w, const float* bias,
                                 uint16_t* y_bf16) {
  const int64_t row_size = int64_t(p.out_w) * p.channels;  // one output row (OW, C)
  if (p.kernel != K) {  // the reference's float32 output, then the same rounding
    std::vector<float> y(size_t(p.batch) * p.out_h * row_size);  // (N, OH, OW, C)
    depthwise_forward_ref<float>(p, x, w, bias, y.data());
    round_to_bf16(int64_t(y.size()), y.data(), y_bf16);
    return;
  }
  // Each output row is computed in float32 into the thread's own row buffer (at most 112 x 96 floats: in cache),
  // then rounded into y_bf16: only the bf16 bytes go to memory.
#pragma omp parallel num_threads(num_threads())
  {
    thread_local std::vector<float> row;  // (OW, C), reused across calls
    row.resize(static_cast<size_t>(row_size));
#pragma omp for collapse(2) schedule(static)
    for (int n = 0; n < p.batch; ++n)
      for (int oh = 0; oh < p.out_h; ++oh) {
        forward_row(p, x, w, bias, row.data(), n, oh);
        round_to_bf16(row_size, row.data(), y_bf16 + index4(n, oh, 0, 0, p.out_h, p.out_w, p.channels));
      }
  }
}

void depthwise_backward_input_simd(const DepthwiseParams& p, const float* dy, const float* w, float* dx) {
  if (p.kernel != K) return depthwise_backward_input_ref<float>(p, dy, w, dx);
  // Each thread owns whole INPUT rows (n, ih) and gathers from the dy positions that read them, so no two
  // threads ever += into the same dx element (the reference's scatter would race here).
  const std::vector<InputColumnTaps> columns = input_column_taps(p);  // (W)
#pragma omp parallel for collapse(2) schedule(static) num_threads(num_threads())
  for (int n = 0; n < p.batch; ++n)
    for (int ih = 0; ih < p.in_h; ++ih) backward_input_row(p, dy, w, columns, dx, n, ih);
}

void depthwise_backward_weight_simd(const DepthwiseParams& p, const float* x, const float* dy, float* dw,
                                    float* dbias) {
  if (p.kernel != K) return depthwise_backward_weight_ref<float>(p, x, dy, dw, dbias);
  const int64_t C = p.channels;
  const int64_t partial_size = (K * K + 1) * C;  // (K*K + 1, C): the tap sums, then the bias sum
  const int threads = num_threads();
  std::vector<float> partials(threads * partial_size, 0.0f);  // (threads, K*K + 1, C)
  const int rows = p.batch * p.out_h;
  // dw reduces over every output position, so threads split the output rows and each sums into its own
  // partial (K*K+1, C) buffer; the few partials are added up below. (Splitting by channel blocks instead would
  // leave a thread idle whenever C / V < threads, e.g. C = 16, and would stride through memory.)
#pragma omp parallel num_threads(threads)
  {
    float* partial = partials.data() + omp_get_thread_num() * partial_size;  // (K*K + 1, C)
#pragma omp for schedule(static)
    for (int r = 0; r < rows; ++r) backward_weight_row(p, x, dy, partial, r / p.out_h, r % p.out_h);
  }
  for (int t = 0; t < threads; ++t) {
    const float* partial = partials.data() + t * partial_size;
    for (int64_t i = 0; i < K * K * C; ++i) dw[i] += partial[i];
    if (dbias)
      for (int64_t c = 0; c < C; ++c) dbias[c] += partial[K * K * C + c];
  }
}

}  // namespace mriscan::MRISCAN_ISA
