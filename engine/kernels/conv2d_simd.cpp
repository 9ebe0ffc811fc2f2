// Fast dense KxK convolution (the MobileNetV2 stem: Ci = 3, K = 3, stride 2, Co = 32), NHWC, any kernel size,
// stride and padding. Same math and contract as conv2d_ref.h: forward overwrites y, backward accumulates.
//
// With Ci = 3 there is nothing to vectorise over the input channels, so every kernel vectorises over the
// OUTPUT channels Co: one input value is broadcast and multiplied into a row of the (Ci, Co) weight slice.
//   forward:  threads own output rows (n, oh); p.activation is applied to each accumulator before its store.
//   dw:       reduces over all output positions: threads own output rows and sum into private partial
//             (KH, KW, Ci, Co) + (Co) buffers, added up at the end.
//   dx:       threads own input rows and gather from the dy positions that read them (no shared +=); each
//             dx[ci] is a dot product over Co, vectorised and then summed across lanes. The stem's input is
//             the image and normally needs no gradient, but this kernel is kept correct and tested anyway.
// What it is not: an im2col + GEMM convolution (for Ci = 3 the im2col matrix would be 27 wide: too thin).
#include <omp.h>

#include <vector>

#include "engine/kernels/conv2d_ref.h"  // index4
#include "engine/kernels/epilogue_simd.h"
#include "engine/kernels/fast_kernels.h"
#include "engine/parallel.h"
#include "engine/simd.h"

namespace mriscan {
namespace {

// y[n, oh, :, :] for one output row. x (N, H, W, Ci), w (KH, KW, Ci, Co), y row (OW, Co).
void forward_row(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y, int n, int oh) {
  const int64_t Ci = p.in_c, Co = p.out_c;
  for (int ow = 0; ow < p.out_w; ++ow) {
    float* y_pixel = y + index4(n, oh, ow, 0, p.out_h, p.out_w, Co);  // (Co)
    for_each_chunk(Co, [&](int64_t co, int count) {
      FloatBatch acc = bias ? load_n(bias + co, count) : FloatBatch(0.0f);
      for (int kh = 0; kh < p.kernel_h; ++kh) {
        const int ih = oh * p.stride + kh - p.pad;
        if (ih < 0 || ih >= p.in_h) continue;
        for (int kw = 0; kw < p.kernel_w; ++kw) {
          const int iw = ow * p.stride + kw - p.pad;
          if (iw < 0 || iw >= p.in_w) continue;
          const float* x_pixel = x + index4(n, ih, iw, 0, p.in_h, p.in_w, Ci);    // (Ci)
          const float* w_tap = w + index4(kh, kw, 0, 0, p.kernel_w, Ci, Co);       // (Ci, Co)
          for (int64_t ci = 0; ci < Ci; ++ci)
            acc = xsimd::fma(FloatBatch(x_pixel[ci]), load_n(w_tap + ci * Co + co, count), acc);
        }
      }
      store_n(y_pixel + co, activate(p.activation, acc), count);
    });
  }
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

// partial (KH, KW, Ci, Co) += x * dy over one output row; partial_bias (Co) += dy over the row.
void backward_weight_row(const Conv2dParams& p, const float* x, const float* dy, float* partial,
                         float* partial_bias, int n, int oh) {
  const int64_t Ci = p.in_c, Co = p.out_c;
  for (int ow = 0; ow < p.out_w; ++ow) {
    const float* dy_pixel = dy + index4(n, oh, ow, 0, p.out_h, p.out_w, Co);  // (Co)
    for_each_chunk(Co, [&](int64_t co, int count) {
      store_n(partial_bias + co, load_n(partial_bias + co, count) + load_n(dy_pixel + co, count), count);
    });
    for (int kh = 0; kh < p.kernel_h; ++kh) {
      const int ih = oh * p.stride + kh - p.pad;
      if (ih < 0 || ih >= p.in_h) continue;
      for (int kw = 0; kw < p.kernel_w; ++kw) {
        const int iw = ow * p.stride + kw - p.pad;
        if (iw < 0 || iw >= p.in_w) continue;
        const float* x_pixel = x + index4(n, ih, iw, 0, p.in_h, p.in_w, Ci);  // (Ci)
        float* dw_tap = partial + index4(kh, kw, 0, 0, p.kernel_w, Ci, Co);    // (Ci, Co)
        for (int64_t ci = 0; ci < Ci; ++ci) {
          const FloatBatch xv(x_pixel[ci]);
          float* dw_row = dw_tap + ci * Co;  // (Co)
          for_each_chunk(Co, [&](int64_t co, int count) {
            store_n(dw_row + co, xsimd::fma(xv, load_n(dy_pixel + co, count), load_n(dw_row + co, count)), count);
          });
        }
      }
    }
  }
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

}  // namespace mriscan
