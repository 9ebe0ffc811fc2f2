// The batch-norm comparison (comparison.h): mriscan's training-mode batch norm kernels against oneDNN's batch
// normalisation (forward training with use_scale | use_shift, and backward) on one (N, H, W, C) shape, on the
// same random data; then each pair of results compared: y, the batch mean and 1/sqrt(var + eps) of the forward,
// dx, dgamma and dbeta of the backward (each side's backward uses its own forward's statistics). No fused
// activation on either side.
//
// Work model (n = N*H*W*C elements, 4 bytes a float). The statistics (forward) and the sums over dy (backward)
// need every row before the first output element can be written, so over data larger than the cache the inputs
// are read twice: the minimal traffic of a two-pass kernel. Per-channel vectors (C) are left out.
//   forward   6n FLOP: sum and sum of squares (3), then (x - mean) * scale + shift (3);
//             bytes: x read twice, y written (12n)
//   backward  11n FLOP: sum(dy), xhat, sum(dy * xhat) (5), then xhat, dy - mean(dy) - xhat * mean(dy * xhat),
//             times gamma * inv_std (6); bytes: x and dy read twice, dx written (stored: the first gradient of x)
//             (20n)
// What it is not: a test of the formulas (tests/layers/ checks them against PyTorch and finite differences).
#include <algorithm>
#include <cmath>

#include "bench/layers/comparison.h"
#include "bench/layers/onednn_batchnorm.h"
#include "engine/kernels/dispatch.h"

namespace mriscan::layer_bench {

std::vector<Comparison> compare_batchnorm(const shapes::DepthwiseShape& shape, const CaseSettings& s) {
  BatchNormParams p{.rows = int64_t(s.batch) * shape.h * shape.w,  // M = N*H*W
                    .channels = shape.channels,
                    .eps = 1e-5f,
                    .accumulate_dx = false};  // dx stored, as for the first gradient of x (oneDNN overwrites)
  const size_t c = size_t(p.channels), n = size_t(p.rows) * c;
  const std::vector<float> x = random_buffer(n, 7, -1.0f, 3.0f);         // (N, H, W, C), mean near 1
  const std::vector<float> gamma = random_buffer(c, 8, 0.5f, 1.5f);      // (C)
  const std::vector<float> beta = random_buffer(c, 9, -0.5f, 0.5f);      // (C)
  const std::vector<float> dy = random_buffer(n, 10);                    // (N, H, W, C)
  std::vector<float> y(n), y_onednn(n), dx(n), dx_onednn(n);             // (N, H, W, C) each
  std::vector<float> mean(c), inv_std(c), dgamma(c), dbeta(c);           // (C) each
  OnednnBatchNorm onednn(s.batch, shape.h, shape.w, shape.channels, p.eps,
                         {.x = x.data(), .gamma = gamma.data(), .beta = beta.data(), .y = y_onednn.data(),
                          .dy = dy.data(), .dx = dx_onednn.data()});
  const KernelTable& k = kernels();

  Comparison forward{.layer = shape.name, .op = "batchnorm.forward_training", .flops = 6.0 * double(n),
                     .bytes = 12.0 * double(n), .onednn_impl = onednn.forward_impl()};
  time_both(
      forward, s, {},
      [&] {
        k.batchnorm_train_forward(p, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), inv_std.data());
      },
      [&] { onednn.forward(); });
  std::vector<float> inv_std_onednn(c);  // (C) from oneDNN's biased variance
  for (size_t i = 0; i < c; ++i) inv_std_onednn[i] = 1.0f / std::sqrt(onednn.variance()[i] + p.eps);
  forward.max_rel_error = std::max({max_relative_error(y, y_onednn), max_relative_error(mean, onednn.mean()),
                                    max_relative_error(inv_std, inv_std_onednn)});

  Comparison backward{.layer = shape.name, .op = "batchnorm.backward", .flops = 11.0 * double(n),
                      .bytes = 20.0 * double(n), .onednn_impl = onednn.backward_impl()};
  auto zero_gradients = [&] {
    std::fill(dgamma.begin(), dgamma.end(), 0.0f);
    std::fill(dbeta.begin(), dbeta.end(), 0.0f);
  };
  time_both(backward, s, zero_gradients,
            [&] {
              k.batchnorm_train_backward(p, dy.data(), x.data(), gamma.data(), beta.data(), mean.data(),
                                         inv_std.data(), dx.data(), dgamma.data(), dbeta.data());
            },
            [&] { onednn.backward(); });
  backward.max_rel_error = std::max({max_relative_error(dx, dx_onednn), max_relative_error(dgamma, onednn.dgamma()),
                                     max_relative_error(dbeta, onednn.dbeta())});
  return {forward, backward};
}

}  // namespace mriscan::layer_bench
