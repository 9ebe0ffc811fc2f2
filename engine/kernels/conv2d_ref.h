// Reference dense KxK convolution (the MobileNetV2 stem): plain loops, templated on the scalar type so the
// gradient tests can run it in double.
//
//   forward:  y[n,oh,ow,co] = act(bias[co] + sum_{kh,kw,ci} x[n, oh*s+kh-p, ow*s+kw-p, ci] * w[kh,kw,ci,co])
//             act = p.activation (params.h), the identity unless a fused inference forward asks for ReLU6
//   dx:       dx[n, oh*s+kh-p, ow*s+kw-p, ci] += sum_co dy[n,oh,ow,co] * w[kh,kw,ci,co]   (scatter through the taps)
//   dw:       dw[kh,kw,ci,co] += sum_{n,oh,ow} x[n, oh*s+kh-p, ow*s+kw-p, ci] * dy[n,oh,ow,co]
//   dbias:    dbias[co] += sum_{n,oh,ow} dy[n,oh,ow,co]
// Taps that fall into the zero padding contribute nothing and are skipped.
// Layouts: x (N, H, W, Ci), w (KH, KW, Ci, Co), bias (Co), y (N, OH, OW, Co). Forward overwrites y; the backward
// kernels accumulate (`+=`) into dx, dw, dbias; a null bias / dbias means "no bias".
// What it is not: fast, threaded, or grouped (depthwise has its own kernel, depthwise_ref.h).
#pragma once

#include <cstdint>

#include "engine/kernels/elementwise_ref.h"  // activate_ref
#include "engine/kernels/params.h"

namespace mriscan {

// Row-major offset of element (i0, i1, i2, i3) in a 4-D array of shape (_, d1, d2, d3): used for both the
// (N, H, W, C) activations and the (KH, KW, Ci, Co) weights. Shared with depthwise_ref.h.
inline int64_t index4(int64_t i0, int64_t i1, int64_t i2, int64_t i3, int64_t d1, int64_t d2, int64_t d3) {
  return ((i0 * d1 + i1) * d2 + i2) * d3 + i3;
}

template <typename T>
void conv2d_forward_ref(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  for (int n = 0; n < p.batch; ++n)
    for (int oh = 0; oh < p.out_h; ++oh)
      for (int ow = 0; ow < p.out_w; ++ow) {
        T* y_pixel = y + index4(n, oh, ow, 0, p.out_h, p.out_w, p.out_c);  // (Co)
        for (int co = 0; co < p.out_c; ++co) y_pixel[co] = bias ? bias[co] : T(0);
        for (int kh = 0; kh < p.kernel_h; ++kh) {
          const int ih = oh * p.stride + kh - p.pad;
          if (ih < 0 || ih >= p.in_h) continue;
          for (int kw = 0; kw < p.kernel_w; ++kw) {
            const int iw = ow * p.stride + kw - p.pad;
            if (iw < 0 || iw >= p.in_w) continue;
            const T* x_pixel = x + index4(n, ih, iw, 0, p.in_h, p.in_w, p.in_c);  // (Ci)
            const T* w_tap = w + index4(kh, kw, 0, 0, p.kernel_w, p.in_c, p.out_c);  // (Ci, Co)
            for (int ci = 0; ci < p.in_c; ++ci)
              for (int co = 0; co < p.out_c; ++co) y_pixel[co] += x_pixel[ci] * w_tap[ci * p.out_c + co];
          }
        }
        for (int co = 0; co < p.out_c; ++co) y_pixel[co] = activate_ref(p.activation, y_pixel[co]);
      }
}

// Same loop nest as the forward; the `+=` goes from dy back into dx through the same taps.
template <typename T>
void conv2d_backward_input_ref(const Conv2dParams& p, const T* dy, const T* w, T* dx) {
  for (int n = 0; n < p.batch; ++n)
    for (int oh = 0; oh < p.out_h; ++oh)
      for (int ow = 0; ow < p.out_w; ++ow) {
        const T* dy_pixel = dy + index4(n, oh, ow, 0, p.out_h, p.out_w, p.out_c);  // (Co)
        for (int kh = 0; kh < p.kernel_h; ++kh) {
          const int ih = oh * p.stride + kh - p.pad;
          if (ih < 0 || ih >= p.in_h) continue;
          for (int kw = 0; kw < p.kernel_w; ++kw) {
            const int iw = ow * p.stride + kw - p.pad;
            if (iw < 0 || iw >= p.in_w) continue;
            T* dx_pixel = dx + index4(n, ih, iw, 0, p.in_h, p.in_w, p.in_c);            // (Ci)
            const T* w_tap = w + index4(kh, kw, 0, 0, p.kernel_w, p.in_c, p.out_c);  // (Ci, Co)
            for (int ci = 0; ci < p.in_c; ++ci)
              for (int co = 0; co < p.out_c; ++co) dx_pixel[ci] += dy_pixel[co] * w_tap[ci * p.out_c + co];
          }
        }
      }
}

// Same loop nest again; each tap's weight gradient collects x * dy over every output position it touched.
template <typename T>
void conv2d_backward_weight_ref(const Conv2dParams& p, const T* x, const T* dy, T* dw, T* dbias) {
  for (int n = 0; n < p.batch; ++n)
    for (int oh = 0; oh < p.out_h; ++oh)
      for (int ow = 0; ow < p.out_w; ++ow) {
        const T* dy_pixel = dy + index4(n, oh, ow, 0, p.out_h, p.out_w, p.out_c);  // (Co)
        if (dbias)
          for (int co = 0; co < p.out_c; ++co) dbias[co] += dy_pixel[co];
        for (int kh = 0; kh < p.kernel_h; ++kh) {
          const int ih = oh * p.stride + kh - p.pad;
          if (ih < 0 || ih >= p.in_h) continue;
          for (int kw = 0; kw < p.kernel_w; ++kw) {
            const int iw = ow * p.stride + kw - p.pad;
            if (iw < 0 || iw >= p.in_w) continue;
            const T* x_pixel = x + index4(n, ih, iw, 0, p.in_h, p.in_w, p.in_c);  // (Ci)
            T* dw_tap = dw + index4(kh, kw, 0, 0, p.kernel_w, p.in_c, p.out_c);    // (Ci, Co)
            for (int ci = 0; ci < p.in_c; ++ci)
              for (int co = 0; co < p.out_c; ++co) dw_tap[ci * p.out_c + co] += x_pixel[ci] * dy_pixel[co];
          }
        }
      }
}

}  // namespace mriscan
