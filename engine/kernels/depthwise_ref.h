// Reference depthwise convolution: each channel is convolved with its own KxK filter and channels never mix.
// Plain loops, templated on the scalar type so the gradient tests can run it in double.
//
//   forward:  y[n,oh,ow,c] = act(bias[c] + sum_{kh,kw} x[n, oh*s+kh-p, ow*s+kw-p, c] * w[kh,kw,c])
//             act = p.activation (params.h), the identity unless a fused inference forward asks for ReLU6
//   dx:       dx[n, oh*s+kh-p, ow*s+kw-p, c] += dy[n,oh,ow,c] * w[kh,kw,c]    (scatter dy through the same taps)
//   dw:       dw[kh,kw,c] += sum_{n,oh,ow} x[n, oh*s+kh-p, ow*s+kw-p, c] * dy[n,oh,ow,c]
//   dbias:    dbias[c] += sum_{n,oh,ow} dy[n,oh,ow,c]
// Taps that fall into the zero padding contribute nothing and are skipped.
// Layouts: x (N, H, W, C), w (K, K, C), bias (C), y (N, OH, OW, C). Forward overwrites y; the backward kernels
// accumulate (`+=`) into dx, dw, dbias (dx is stored instead when !p.accumulate_dx); a null bias / dbias means
// "no bias".
// What it is not: fast or threaded (depthwise_simd.cpp is: it splits the work by rows, see there why not by
// channel blocks).
#pragma once

#include <algorithm>
#include <cstdint>

#include "engine/kernels/conv2d_ref.h"  // index4
#include "engine/kernels/elementwise_ref.h"  // activate_ref
#include "engine/kernels/params.h"

namespace mriscan {

template <typename T>
void depthwise_forward_ref(const DepthwiseParams& p, const T* x, const T* w, const T* bias, T* y) {
  const int C = p.channels;
  for (int n = 0; n < p.batch; ++n)
    for (int oh = 0; oh < p.out_h; ++oh)
      for (int ow = 0; ow < p.out_w; ++ow) {
        T* y_pixel = y + index4(n, oh, ow, 0, p.out_h, p.out_w, C);  // (C)
        for (int c = 0; c < C; ++c) y_pixel[c] = bias ? bias[c] : T(0);
        for (int kh = 0; kh < p.kernel; ++kh) {
          const int ih = oh * p.stride + kh - p.pad;
          if (ih < 0 || ih >= p.in_h) continue;
          for (int kw = 0; kw < p.kernel; ++kw) {
            const int iw = ow * p.stride + kw - p.pad;
            if (iw < 0 || iw >= p.in_w) continue;
            const T* x_pixel = x + index4(n, ih, iw, 0, p.in_h, p.in_w, C);  // (C)
            const T* w_tap = w + (static_cast<int64_t>(kh) * p.kernel + kw) * C;  // (C)
            for (int c = 0; c < C; ++c) y_pixel[c] += x_pixel[c] * w_tap[c];
          }
        }
        for (int c = 0; c < C; ++c) y_pixel[c] = activate_ref(p.activation, y_pixel[c]);
      }
}

// Same loop nest as the forward; the `+=` goes from dy back into dx through the same taps.
template <typename T>
void depthwise_backward_input_ref(const DepthwiseParams& p, const T* dy, const T* w, T* dx) {
  const int C = p.channels;
  if (!p.accumulate_dx) std::fill(dx, dx + int64_t(p.batch) * p.in_h * p.in_w * C, T(0));  // stored, not added
  for (int n = 0; n < p.batch; ++n)
    for (int oh = 0; oh < p.out_h; ++oh)
      for (int ow = 0; ow < p.out_w; ++ow) {
        const T* dy_pixel = dy + index4(n, oh, ow, 0, p.out_h, p.out_w, C);  // (C)
        for (int kh = 0; kh < p.kernel; ++kh) {
          const int ih = oh * p.stride + kh - p.pad;
          if (ih < 0 || ih >= p.in_h) continue;
          for (int kw = 0; kw < p.kernel; ++kw) {
            const int iw = ow * p.stride + kw - p.pad;
            if (iw < 0 || iw >= p.in_w) continue;
            T* dx_pixel = dx + index4(n, ih, iw, 0, p.in_h, p.in_w, C);          // (C)
            const T* w_tap = w + (static_cast<int64_t>(kh) * p.kernel + kw) * C;  // (C)
            for (int c = 0; c < C; ++c) dx_pixel[c] += dy_pixel[c] * w_tap[c];
          }
        }
      }
}

// Same loop nest again; each tap's weight gradient collects x * dy over every output position it touched.
template <typename T>
void depthwise_backward_weight_ref(const DepthwiseParams& p, const T* x, const T* dy, T* dw, T* dbias) {
  const int C = p.channels;
  for (int n = 0; n < p.batch; ++n)
    for (int oh = 0; oh < p.out_h; ++oh)
      for (int ow = 0; ow < p.out_w; ++ow) {
        const T* dy_pixel = dy + index4(n, oh, ow, 0, p.out_h, p.out_w, C);  // (C)
        if (dbias)
          for (int c = 0; c < C; ++c) dbias[c] += dy_pixel[c];
        for (int kh = 0; kh < p.kernel; ++kh) {
          const int ih = oh * p.stride + kh - p.pad;
          if (ih < 0 || ih >= p.in_h) continue;
          for (int kw = 0; kw < p.kernel; ++kw) {
            const int iw = ow * p.stride + kw - p.pad;
            if (iw < 0 || iw >= p.in_w) continue;
            const T* x_pixel = x + index4(n, ih, iw, 0, p.in_h, p.in_w, C);  // (C)
            T* dw_tap = dw + (static_cast<int64_t>(kh) * p.kernel + kw) * C;  // (C)
            for (int c = 0; c < C; ++c) dw_tap[c] += x_pixel[c] * dy_pixel[c];
          }
        }
      }
}

}  // namespace mriscan
