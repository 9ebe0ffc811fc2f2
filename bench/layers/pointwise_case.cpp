// The pointwise (1x1) comparison (comparison.h): mriscan's GEMM, called exactly as layers/pointwise_conv2d.cpp
// calls it in each direction, against oneDNN's 1x1 convolution on one MobileNetV2 shape, on the same random data;
// then each pair of results compared. MobileNetV2's 1x1 convs have no bias (batch norm follows), so neither side
// computes one.
//
// An NHWC activation is an (M, C) row-major matrix with M = N*H*W (docs/conventions.md). Work model (4 bytes a
// float), the same 2*M*C_in*C_out FLOP in each direction:
//   forward           y (M, C_out) = x (M, C_in) . w (C_in, C_out); bytes: x, w read, y written
//   backward data     dx (M, C_in) = dy (M, C_out) . w^T, stored (the first gradient of x); bytes: dy, w read,
//                     dx written
//   backward weights  dw (C_in, C_out) += x^T . dy; bytes: x, dy read, dw read and written (the layer adds into
//                     the gradient buffer)
// What it is not: a GEMM test (tests/engine/ compares the GEMM with the reference).
#include <algorithm>

#include "bench/layers/comparison.h"
#include "bench/layers/onednn_convolution.h"
#include "engine/kernels/dispatch.h"

namespace mriscan::layer_bench {

std::vector<Comparison> compare_pointwise(const shapes::PointwiseShape& shape, const CaseSettings& s) {
  const int m = s.batch * shape.h * shape.w, ci = shape.in_channels, co = shape.out_channels;  // M = N*H*W
  const size_t in = size_t(m) * ci, out = size_t(m) * co, weights = size_t(ci) * co;
  const std::vector<float> x = random_buffer(in, 4);        // (N, H, W, C_in) = (M, C_in)
  const std::vector<float> w = random_buffer(weights, 5);   // (C_in, C_out)
  const std::vector<float> dy = random_buffer(out, 6);      // (M, C_out)
  std::vector<float> y(out), y_onednn(out);                 // (M, C_out)
  std::vector<float> dx(in), dx_onednn(in);                 // (M, C_in)
  std::vector<float> dw(weights), dw_onednn(weights);       // (C_in, C_out)
  const ConvGeometry geometry{.batch = s.batch, .in_h = shape.h, .in_w = shape.w, .in_c = ci, .out_h = shape.h,
                              .out_w = shape.w, .out_c = co, .groups = 1, .kernel = 1, .stride = 1, .pad = 0};
  OnednnConvolution onednn(geometry, {.x = x.data(), .w = w.data(), .y = y_onednn.data(), .dy = dy.data(),
                                      .dx = dx_onednn.data()});
  const KernelTable& k = kernels();
  const double flops = 2.0 * double(m) * ci * co;

  Comparison forward{.layer = shape.name, .op = "pointwise.forward", .flops = flops,
                     .bytes = 4.0 * double(in + weights + out), .onednn_impl = onednn.forward_impl()};
  time_both(forward, s, {}, [&] { k.gemm({.m = m, .n = co, .k = ci}, x.data(), w.data(), y.data()); },
            [&] { onednn.forward(); });
  forward.max_rel_error = max_relative_error(y, y_onednn);

  Comparison data{.layer = shape.name, .op = "pointwise.backward_data", .flops = flops,
                  .bytes = 4.0 * double(out + weights + in), .onednn_impl = onednn.backward_data_impl()};
  time_both(
      data, s, {},
      [&] {
        k.gemm({.m = m, .n = ci, .k = co, .trans_b = true, .accumulate = false}, dy.data(), w.data(), dx.data());
      },
      [&] { onednn.backward_data(); });
  data.max_rel_error = max_relative_error(dx, dx_onednn);

  Comparison grad{.layer = shape.name, .op = "pointwise.backward_weights", .flops = flops,
                  .bytes = 4.0 * double(in + out + 2 * weights), .onednn_impl = onednn.backward_weights_impl()};
  time_both(
      grad, s, [&] { std::fill(dw.begin(), dw.end(), 0.0f); },
      [&] {
        k.gemm({.m = ci, .n = co, .k = m, .trans_a = true, .accumulate = true}, x.data(), dy.data(), dw.data());
      },
      [&] { onednn.backward_weights(); });
  onednn.weight_gradient(dw_onednn.data(), nullptr);
  grad.max_rel_error = max_relative_error(dw, dw_onednn);
  return {forward, data, grad};
}

}  // namespace mriscan::layer_bench
