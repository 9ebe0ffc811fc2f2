// Fast dense KxK convolution (the MobileNetV2 stem: Ci = 3, K = 3, stride 2, Co = 32), NHWC, any kernel size,
// stride and padding. Same math and contract as conv2d_ref.h: forward overwrites y, backward accumulates.
//
// With Ci = 3 there is nothing to vectorise over the input channels, so every kernel vectorises over the
// OUTPUT channels Co: one input value is broadcast and multiplied into a row of the (Ci, Co) weight slice.
//   forward:  threads own output rows (n, oh). Interior columns (every tap inside the image) run as register
//             tiles of 6 pixels x 2 channel vectors: an implicit im2col GEMM with K = KH * KW * Ci whose A rows
//             are read straight from x. Border columns and channels past the last full vector go per pixel,
//             with bounds checks. p.activation is applied to each accumulator before its store.
//   dw:       reduces over all output positions: threads own output rows and sum into private partial
//             (KH, KW, Ci, Co) + (Co) buffers, added up at the end. Interior columns are summed per row in
//             register tiles of 9 taps x 2 channel vectors, so a partial is touched once per row, not per pixel.
//   dx:       threads own input rows and gather from the dy positions that read them (no shared +=); each
//             dx[ci] is a dot product over Co, vectorised and then summed across lanes. The stem's input is
//             the image and normally needs no gradient, so this one is kept simple, correct and tested.
// What it is not: an explicit im2col + GEMM (for Ci = 3 the im2col matrix would be 27 wide: too thin to pack).
#include <omp.h>

#include <vector>

#include "engine/kernels/conv2d_ref.h"  // index4
#include "engine/kernels/epilogue_simd.h"
#include "engine/kernels/fast_kernels.h"
#include "engine/kernels/kernel_set_tuning.h"
#include "engine/parallel.h"
#include "engine/simd.h"

namespace mriscan::MRISCAN_ISA {
namespace {

// The interior columns (params.h's interior_columns): there the taps of one kernel row kh are one contiguous run of
// KW * Ci floats of x (columns ow*s - pad ... ow*s - pad + KW - 1, all channels), read with no bounds checks.
// Columns outside them (the stem: only ow = 0) take the checked per-pixel path.
InteriorColumns interior_columns(const Conv2dParams& p) {
  return mriscan::interior_columns(p.in_w, p.out_w, p.kernel_w, p.stride, p.pad);
}

// Calls tap(kh, kw, x_pixel) for each tap of output pixel (n, oh, ow) that falls inside the image, x_pixel being
// the (Ci) input it reads: the checked path of the border columns, shared by the forward and the weight gradient.
template <typename TapFn>
void for_each_valid_tap(const Conv2dParams& p, const float* x, int n, int oh, int ow, TapFn&& tap) {
  for (int kh = 0; kh < p.kernel_h; ++kh) {
    const int ih = oh * p.stride + kh - p.pad;
    if (ih < 0 || ih >= p.in_h) continue;
    for (int kw = 0; kw < p.kernel_w; ++kw) {
      const int iw = ow * p.stride + kw - p.pad;
      if (iw >= 0 && iw < p.in_w) tap(kh, kw, x + index4(n, ih, iw, 0, p.in_h, p.in_w, p.in_c));
    }
  }
}

// y[n, oh, ow, co_begin:] with bounds checks on every tap: the border columns, and the channels past the last
// full vector. x (N, H, W, Ci), w (KH, KW, Ci, Co), y (N, OH, OW, Co).
void forward_pixel(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y, int n, int oh,
                   int ow, int64_t co_begin) {
  const int64_t Ci = p.in_c, Co = p.out_c;
  float* y_pixel = y + index4(n, oh, ow, 0, p.out_h, p.out_w, Co);  // (Co)
  for_each_chunk(Co - co_begin, [&](int64_t chunk, int count) {
    const int64_t co = co_begin + chunk;
    FloatBatch acc = bias ? load_n(bias + co, count) : FloatBatch(0.0f);
    for_each_valid_tap(p, x, n, oh, ow, [&](int kh, int kw, const float* x_pixel) {
      const float* w_tap = w + index4(kh, kw, 0, 0, p.kernel_w, Ci, Co);  // (Ci, Co)
      for (int64_t ci = 0; ci < Ci; ++ci)
        acc = xsimd::fma(FloatBatch(x_pixel[ci]), load_n(w_tap + ci * Co + co, count), acc);
    });
    store_n(y_pixel + co, activate(p.activation, acc), count);
  });
}

// y[n, oh, ow : ow + kPixels, co : co + kVecs * V] for interior columns, as a register tile of kPixels x kVecs
// accumulators: per tap, kVecs weight vectors are loaded once and each of the kPixels input values is broadcast
// once, for kPixels * kVecs FMAs (the per-pixel path loads a weight vector per FMA). This is an im2col GEMM
// (K = KH * KW * Ci) whose A rows are read straight from x: row kh's taps of pixel ow start at column ow*s - pad.
template <int kPixels, int kVecs>
void forward_tile(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y, int n, int oh,
                  int ow, int64_t co) {
  const int64_t Ci = p.in_c, Co = p.out_c;
  const int64_t row_taps = int64_t(p.kernel_w) * Ci;     // L: one kernel row's taps, (KW, Ci) flattened
  const int64_t pixel_step = int64_t(p.stride) * Ci;     // x offset from one output column's taps to the next
  FloatBatch acc[kPixels][kVecs];                         // (kPixels, kVecs * V)
  for (int v = 0; v < kVecs; ++v) {
    const FloatBatch start = bias ? FloatBatch::load_unaligned(bias + co + v * kVectorWidth) : FloatBatch(0.0f);
    for (int i = 0; i < kPixels; ++i) acc[i][v] = start;
  }
  for (int kh = 0; kh < p.kernel_h; ++kh) {
    const int ih = oh * p.stride + kh - p.pad;
    if (ih < 0 || ih >= p.in_h) continue;
    const float* x_taps = x + index4(n, ih, ow * p.stride - p.pad, 0, p.in_h, p.in_w, Ci);  // (kPixels, L), strided
    const float* w_row = w + kh * row_taps * Co + co;                                     // (L, Co)
    for (int64_t j = 0; j < row_taps; ++j) {
      FloatBatch wv[kVecs];  // (kVecs * V)
      for (int v = 0; v < kVecs; ++v) wv[v] = FloatBatch::load_unaligned(w_row + j * Co + v * kVectorWidth);
      for (int i = 0; i < kPixels; ++i) {
        const FloatBatch xv(x_taps[i * pixel_step + j]);
        for (int v = 0; v < kVecs; ++v) acc[i][v] = xsimd::fma(xv, wv[v], acc[i][v]);
      }
    }
  }
  for (int i = 0; i < kPixels; ++i) {
    float* y_pixel = y + index4(n, oh, ow + i, co, p.out_h, p.out_w, Co);  // (kVecs * V) of (Co)
    for (int v = 0; v < kVecs; ++v)
      activate(p.activation, acc[i][v]).store_unaligned(y_pixel + v * kVectorWidth);
  }
}

// The interior columns [begin, end) of one output row, channels [co, co + kVecs * V): tiles of 6 pixels, then
// single pixels. 6 x 2 = 12 accumulators cover the FMA latency times its ports (4 x 2) with room to spare.
template <int kVecs>
void forward_interior(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y, int n,
                      int oh, InteriorColumns columns, int64_t co) {
  constexpr int kPixels = 6;
  int ow = columns.begin;
  for (; ow + kPixels <= columns.end; ow += kPixels) forward_tile<kPixels, kVecs>(p, x, w, bias, y, n, oh, ow, co);
  for (; ow < columns.end; ++ow) forward_tile<1, kVecs>(p, x, w, bias, y, n, oh, ow, co);
}

// y[n, oh, :, :] for one output row: interior columns in register tiles over full channel vectors (two at a time,
// then one), everything else per pixel with bounds checks.
void forward_row(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y, int n, int oh) {
  const InteriorColumns columns = interior_columns(p);
  const int64_t full = p.out_c / kVectorWidth * kVectorWidth;  // channels covered by whole vectors
  for (int ow = 0; ow < p.out_w; ++ow)
    if (ow < columns.begin || ow >= columns.end) forward_pixel(p, x, w, bias, y, n, oh, ow, 0);
  int64_t co = 0;
  for (; co + 2 * kVectorWidth <= full; co += 2 * kVectorWidth)
    forward_interior<2>(p, x, w, bias, y, n, oh, columns, co);
  if (co < full) forward_interior<1>(p, x, w, bias, y, n, oh, columns, co);
  if (full < p.out_c)
    for (int ow = columns.begin; ow < columns.end; ++ow) forward_pixel(p, x, w, bias, y, n, oh, ow, full);
}

// dx[n, ih, :, :] += everything that reads it, for one input row (gather form of the reference's scatter):
// input row ih is read by output row oh through tap kh when ih + pad - kh = oh * stride; likewise columns.
void backward_input_row(const Conv2dParams& p, const float* dy, const float* w, float* dx, int n, int ih) {
  const int64_t Ci = p.in_c, Co = p.out_c;
  for (int iw = 0; iw < p.in_w; ++iw) {
    float* dx_pixel = dx + index4(n, ih, iw, 0, p.in_h, p.in_w, Ci);  // (Ci)
    for (int kh = 0; kh < p.kernel_h; ++kh) {
      const int t = ih + p.pad - kh;
      if (t < 0 || t % p.stride != 0 || t / p.stride >= p.out_h) continue;
      for (int kw = 0; kw < p.kernel_w; ++kw) {
        const int u = iw + p.pad - kw;
        if (u < 0 || u % p.stride != 0 || u / p.stride >= p.out_w) continue;
        const float* dy_pixel = dy + index4(n, t / p.stride, u / p.stride, 0, p.out_h, p.out_w, Co);  // (Co)
        const float* w_tap = w + index4(kh, kw, 0, 0, p.kernel_w, Ci, Co);                            // (Ci, Co)
        for (int64_t ci = 0; ci < Ci; ++ci) {
          FloatBatch dot(0.0f);
          for_each_chunk(Co, [&](int64_t co, int count) {
            dot = xsimd::fma(load_n(dy_pixel + co, count), load_n(w_tap + ci * Co + co, count), dot);
          });
          dx_pixel[ci] += xsimd::hadd(dot);
        }
      }
    }
  }
}

// partial (KH, KW, Ci, Co)[..., co_begin:] += x * dy at one output pixel, with bounds checks on every tap.
void backward_weight_pixel(const Conv2dParams& p, const float* x, const float* dy, float* partial, int n, int oh,
                           int ow, int64_t co_begin) {
  const int64_t Ci = p.in_c, Co = p.out_c;
  const float* dy_pixel = dy + index4(n, oh, ow, 0, p.out_h, p.out_w, Co);  // (Co)
  for_each_valid_tap(p, x, n, oh, ow, [&](int kh, int kw, const float* x_pixel) {
    float* dw_tap = partial + index4(kh, kw, 0, 0, p.kernel_w, Ci, Co);  // (Ci, Co)
    for (int64_t ci = 0; ci < Ci; ++ci) {
      const FloatBatch xv(x_pixel[ci]);
      float* dw_row = dw_tap + ci * Co;  // (Co)
      for_each_chunk(Co - co_begin, [&](int64_t chunk, int count) {
        const int64_t co = co_begin + chunk;
        store_n(dw_row + co, xsimd::fma(xv, load_n(dy_pixel + co, count), load_n(dw_row + co, count)), count);
      });
    }
  });
}

// partial[kh, taps j0 : j0 + kTaps of the flattened (KW, Ci), co : co + kVecs * V] += x * dy summed over the
// interior columns of one output row, in kTaps x kVecs register accumulators: per pixel, kVecs dy vectors are
// loaded once and kTaps input values broadcast, and partial is touched once per row, not once per pixel.
template <int kTaps, int kVecs>
void backward_weight_tile(const Conv2dParams& p, const float* x, const float* dy, float* partial, int n, int oh,
                          InteriorColumns columns, int kh, int64_t j0, int64_t co) {
  const int64_t Ci = p.in_c, Co = p.out_c, row_taps = int64_t(p.kernel_w) * Ci;
  const int64_t pixel_step = int64_t(p.stride) * Ci;
  const int ih = oh * p.stride + kh - p.pad;
  const float* x_taps = x + index4(n, ih, columns.begin * p.stride - p.pad, j0, p.in_h, p.in_w, Ci);  // strided
  const float* dy_row = dy + index4(n, oh, columns.begin, co, p.out_h, p.out_w, Co);                  // strided
  FloatBatch acc[kTaps][kVecs];  // (kTaps, kVecs * V)
  for (int t = 0; t < kTaps; ++t)
    for (int v = 0; v < kVecs; ++v) acc[t][v] = FloatBatch(0.0f);
  for (int ow = columns.begin; ow < columns.end; ++ow, x_taps += pixel_step, dy_row += Co) {
    FloatBatch dyv[kVecs];  // (kVecs * V)
    for (int v = 0; v < kVecs; ++v) dyv[v] = FloatBatch::load_unaligned(dy_row + v * kVectorWidth);
    for (int t = 0; t < kTaps; ++t) {
      const FloatBatch xv(x_taps[t]);
      for (int v = 0; v < kVecs; ++v) acc[t][v] = xsimd::fma(xv, dyv[v], acc[t][v]);
    }
  }
  float* dw = partial + (kh * row_taps + j0) * Co + co;  // (kTaps, Co) rows of (KH * L, Co)
  for (int t = 0; t < kTaps; ++t)
    for (int v = 0; v < kVecs; ++v) {
      float* out = dw + t * Co + v * kVectorWidth;
      (FloatBatch::load_unaligned(out) + acc[t][v]).store_unaligned(out);
    }
}

// One kernel row kh's taps for channels [co, co + kVecs * V), in groups that fit the registers: 9 taps (the
// stem's 3 x 3 channels) x 2 vectors = 18 accumulators with AVX-512's 32 registers, fewer with 16.
template <int kVecs>
void backward_weight_taps(const Conv2dParams& p, const float* x, const float* dy, float* partial, int n, int oh,
                          InteriorColumns columns, int kh, int64_t co) {
  constexpr int kGroup = tuning::kStemGradientTaps;
  const int64_t row_taps = int64_t(p.kernel_w) * p.in_c;
  int64_t j = 0;
  for (; j + kGroup <= row_taps; j += kGroup)
    backward_weight_tile<kGroup, kVecs>(p, x, dy, partial, n, oh, columns, kh, j, co);
  for (; j < row_taps; ++j) backward_weight_tile<1, kVecs>(p, x, dy, partial, n, oh, columns, kh, j, co);
}

// partial (KH, KW, Ci, Co) += x * dy over one output row; partial_bias (Co) += dy over the row.
void backward_weight_row(const Conv2dParams& p, const float* x, const float* dy, float* partial,
                         float* partial_bias, int n, int oh) {
  const int64_t Co = p.out_c;
  const float* dy_row = dy + index4(n, oh, 0, 0, p.out_h, p.out_w, Co);  // (OW, Co)
  for_each_chunk(Co, [&](int64_t co, int count) {
    FloatBatch sum = load_n(partial_bias + co, count);
    for (int ow = 0; ow < p.out_w; ++ow) sum += load_n(dy_row + ow * Co + co, count);
    store_n(partial_bias + co, sum, count);
  });
  const InteriorColumns columns = interior_columns(p);
  const int64_t full = Co / kVectorWidth * kVectorWidth;  // channels covered by whole vectors
  for (int ow = 0; ow < p.out_w; ++ow)
    if (ow < columns.begin || ow >= columns.end) backward_weight_pixel(p, x, dy, partial, n, oh, ow, 0);
  if (columns.begin == columns.end) return;
  for (int kh = 0; kh < p.kernel_h; ++kh) {
    const int ih = oh * p.stride + kh - p.pad;
    if (ih < 0 || ih >= p.in_h) continue;
    int64_t co = 0;
    for (; co + 2 * kVectorWidth <= full; co += 2 * kVectorWidth)
      backward_weight_taps<2>(p, x, dy, partial, n, oh, columns, kh, co);
    if (co < full) backward_weight_taps<1>(p, x, dy, partial, n, oh, columns, kh, co);
  }
  if (full < Co)
    for (int ow = columns.begin; ow < columns.end; ++ow) backward_weight_pixel(p, x, dy, partial, n, oh, ow, full);
}

}  // namespace

void conv2d_forward_simd(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y) {
  // Each thread owns whole output rows (n, oh): disjoint writes.
#pragma omp parallel for collapse(2) schedule(static) num_threads(num_threads())
  for (int n = 0; n < p.batch; ++n)
    for (int oh = 0; oh < p.out_h; ++oh) forward_row(p, x, w, bias, y, n, oh);
}

void conv2d_backward_input_simd(const Conv2dParams& p, const float* dy, const float* w, float* dx) {
  // Each thread owns whole INPUT rows (n, ih) and gathers into them: no two threads += the same dx element.
#pragma omp parallel for collapse(2) schedule(static) num_threads(num_threads())
  for (int n = 0; n < p.batch; ++n)
    for (int ih = 0; ih < p.in_h; ++ih) backward_input_row(p, dy, w, dx, n, ih);
}

void conv2d_backward_weight_simd(const Conv2dParams& p, const float* x, const float* dy, float* dw, float* dbias) {
  const int64_t Co = p.out_c;
  const int64_t weight_size = int64_t(p.kernel_h) * p.kernel_w * p.in_c * Co;
  const int64_t partial_size = weight_size + Co;  // (KH, KW, Ci, Co) then (Co)
  const int threads = num_threads();
  std::vector<float> partials(threads * partial_size, 0.0f);  // (threads, partial_size)
  const int rows = p.batch * p.out_h;
  // dw reduces over every output position: threads split the output rows and each sums into its own partial
  // buffer (864 + 32 floats for the stem, L1-resident); the partials are added into dw / dbias below.
#pragma omp parallel num_threads(threads)
  {
    float* partial = partials.data() + omp_get_thread_num() * partial_size;
#pragma omp for schedule(static)
    for (int r = 0; r < rows; ++r)
      backward_weight_row(p, x, dy, partial, partial + weight_size, r / p.out_h, r % p.out_h);
  }
  for (int t = 0; t < threads; ++t) {
    const float* partial = partials.data() + t * partial_size;
    for (int64_t i = 0; i < weight_size; ++i) dw[i] += partial[i];
    if (dbias)
      for (int64_t co = 0; co < Co; ++co) dbias[co] += partial[weight_size + co];
  }
}

}  // namespace mriscan::MRISCAN_ISA
