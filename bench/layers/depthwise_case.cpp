// The depthwise 3x3 comparison (comparison.h): mriscan's depthwise kernels against oneDNN's grouped convolution
// (groups = channels, pad 1, stride 1 or 2) on one MobileNetV2 shape, forward, backward data and backward weights
// with the bias gradient, on the same random data; then each pair of results compared.
//
// Work model (outputs = N*OH*OW*C, inputs = N*H*W*C, 4 bytes a float):
//   forward           2*9*outputs FLOP (one multiply-add per tap, the padded border's taps counted too);
//                     bytes: x read, w read, y written
//   backward data     2*9*outputs FLOP; bytes: dy read, w read, dx written (stored: the first gradient of x)
//   backward weights  2*9*outputs + outputs FLOP (the bias gradient's sums); bytes: x and dy read, dw (3, 3, C)
//                     and dbias (C) read and written (mriscan adds into them, as the layer does)
// What it is not: a test of the kernels against the reference (tests/engine/ does that); here both libraries
// are fast, and the check only makes sure they computed the same thing before their times are compared.
#include <algorithm>

#include "bench/layers/comparison.h"
#include "bench/layers/onednn_convolution.h"
#include "engine/kernels/dispatch.h"

namespace mriscan::layer_bench {

std::vector<Comparison> compare_depthwise(const shapes::DepthwiseShape& shape, const CaseSettings& s) {
  DepthwiseParams p = shapes::depthwise_params(shape, s.batch);
  p.accumulate_dx = false;  // dx stored, as for the first gradient of x (oneDNN overwrites)
  const size_t c = size_t(p.channels), taps = 9 * c;
  const size_t in = size_t(p.batch) * p.in_h * p.in_w * c, out = size_t(p.batch) * p.out_h * p.out_w * c;
  const std::vector<float> x = random_buffer(in, 1);     // (N, H, W, C)
  const std::vector<float> w = random_buffer(taps, 2);   // (3, 3, C)
  const std::vector<float> dy = random_buffer(out, 3);   // (N, OH, OW, C)
  std::vector<float> y(out), y_onednn(out);              // (N, OH, OW, C)
  std::vector<float> dx(in), dx_onednn(in);              // (N, H, W, C)
  std::vector<float> dw(taps), dw_onednn(taps);          // (3, 3, C)
  std::vector<float> dbias(c), dbias_onednn(c);          // (C)
  const ConvGeometry geometry{.batch = p.batch, .in_h = p.in_h, .in_w = p.in_w, .in_c = p.channels,
                              .out_h = p.out_h, .out_w = p.out_w, .out_c = p.channels, .groups = p.channels,
                              .kernel = 3, .stride = p.stride, .pad = 1, .bias_gradient = true};
  OnednnConvolution onednn(geometry, {.x = x.data(), .w = w.data(), .y = y_onednn.data(), .dy = dy.data(),
                                      .dx = dx_onednn.data()});
  const KernelTable& k = kernels();
  const double tap_flops = 2.0 * 9 * double(out);

  Comparison forward{.layer = shape.name, .op = "depthwise.forward", .flops = tap_flops,
                     .bytes = 4.0 * double(in + taps + out), .onednn_impl = onednn.forward_impl()};
  time_both(forward, s, {}, [&] { k.depthwise_forward(p, x.data(), w.data(), nullptr, y.data()); },
            [&] { onednn.forward(); });
  forward.max_rel_error = max_relative_error(y, y_onednn);

  Comparison data{.layer = shape.name, .op = "depthwise.backward_data", .flops = tap_flops,
                  .bytes = 4.0 * double(out + taps + in), .onednn_impl = onednn.backward_data_impl()};
  time_both(data, s, {}, [&] { k.depthwise_backward_input(p, dy.data(), w.data(), dx.data()); },
            [&] { onednn.backward_data(); });
  data.max_rel_error = max_relative_error(dx, dx_onednn);

  Comparison weights{.layer = shape.name, .op = "depthwise.backward_weights", .flops = tap_flops + double(out),
                     .bytes = 4.0 * double(in + out + 2 * (taps + c)), .onednn_impl = onednn.backward_weights_impl()};
  auto zero_gradients = [&] {
    std::fill(dw.begin(), dw.end(), 0.0f);
    std::fill(dbias.begin(), dbias.end(), 0.0f);
  };
  time_both(weights, s, zero_gradients,
            [&] { k.depthwise_backward_weight(p, x.data(), dy.data(), dw.data(), dbias.data()); },
            [&] { onednn.backward_weights(); });
  onednn.weight_gradient(dw_onednn.data(), dbias_onednn.data());
  weights.max_rel_error = std::max(max_relative_error(dw, dw_onednn), max_relative_error(dbias, dbias_onednn));
  return {forward, data, weights};
}

}  // namespace mriscan::layer_bench
