// Synchronised batch norm: training-mode statistics over the rows of every process of a data-parallel run.
//
// Forward: each process computes its own statistics in double (mean_r and m2_r = sum (x - mean_r)^2 over its M_r
// rows), then the per-channel totals are added over processes (Chan et al.'s combination):
//   M = sum_r M_r,   mean = sum_r M_r mean_r / M,   var = sum_r (m2_r + M_r mean_r^2) / M - mean^2
// (in double, the E[x^2] - E[x]^2 step loses ~|mean|^2 / var * 1e-16 relative: harmless for any activation), and
// y = gamma * (x - mean) * inv_std + beta as the local kernel computes it (subtracting first).
// Backward: the two sums sum(dy) and sum(dy * xhat) are added over processes and divided by M, the same formula
// as the local kernel (engine/kernels/batchnorm_ref.h). dgamma and dbeta keep this process's sums: the trainer
// averages every gradient over processes afterwards (train/gradient_reducer.h), and with equal shards that is
// the gradient of the whole batch. What it is not: a numerically different algorithm from the local one.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/kernels/dispatch.h"
#include "layers/batch_norm.h"

namespace mriscan {

Var BatchNorm2d::forward_train_synced(Tape& tape, const Var& x, const BatchNormParams& p) {
  const int C = channels_;
  std::vector<double> local_mean(C, 0.0), local_m2(C, 0.0);  // (C), (C): this process's (none: zeros)
  if (p.rows > 0) kernels().batchnorm_statistics(p, x->value.data(), local_mean.data(), local_m2.data());
  // totals = [M_r mean_r (C), m2_r + M_r mean_r^2 (C), M_r]
  const double rows = static_cast<double>(p.rows);
  std::vector<double> totals(2 * C + 1);
  for (int c = 0; c < C; ++c) {
    totals[c] = rows * local_mean[c];
    totals[C + c] = local_m2[c] + rows * local_mean[c] * local_mean[c];
  }
  totals[2 * C] = rows;
  world_->allreduce_sum(totals.data(), static_cast<int64_t>(totals.size()));
  const double total_rows = totals[2 * C];
  if (total_rows < 2)
    throw std::invalid_argument("BatchNorm2d: training mode needs more than one value per channel over all processes");
  Tensor mean = Tensor::uninitialized(Shape{C}), inv_std = Tensor::uninitialized(Shape{C});  // (C), (C)
  for (int c = 0; c < C; ++c) {
    const double global_mean = totals[c] / total_rows;
    const double global_var = std::max(0.0, totals[C + c] / total_rows - global_mean * global_mean);
    mean[c] = static_cast<float>(global_mean);
    inv_std[c] = static_cast<float>(1.0 / std::sqrt(global_var + static_cast<double>(eps_)));
  }
  Var y = make_var(Tensor::uninitialized(x->value.shape()));  // (M, C) viewed as x's shape; overwritten
  kernels().batchnorm_normalize(p, x->value.data(), weight_->value.data(), bias_->value.data(), mean.data(),
                                inv_std.data(), y->value.data());
  update_running_stats(total_rows, mean, inv_std);
  tape.record("batch_norm", {x, weight_, bias_}, y, [this, x, y, p, mean, inv_std, total_rows] {
    backward_train_synced(x, y, p, mean, inv_std, total_rows);
  });
  return y;
}

void BatchNorm2d::backward_train_synced(const Var& x, const Var& y, const BatchNormParams& p, const Tensor& mean,
                                        const Tensor& inv_std, double total_rows) {
  const int C = channels_;
  std::vector<double> sums(2 * C);  // [sum(dy) (C), sum(dy * xhat) (C)]: this process's, then everyone's
  kernels().batchnorm_backward_sums(p, y->grad.data(), x->value.data(), weight_->value.data(), bias_->value.data(),
                                    mean.data(), inv_std.data(), sums.data(), sums.data() + C);
  for (int c = 0; c < C; ++c) {
    if (bias_->requires_grad) bias_->grad_buffer()[c] += static_cast<float>(sums[c]);
    if (weight_->requires_grad) weight_->grad_buffer()[c] += static_cast<float>(sums[C + c]);
  }
  world_->allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  if (x->requires_grad) {
    const Variable::GradTarget dx = x->grad_target();  // (M, C)
    BatchNormParams input_params = p;
    input_params.accumulate_dx = !dx.first;
    kernels().batchnorm_backward_input(input_params, y->grad.data(), x->value.data(), weight_->value.data(),
                                       bias_->value.data(), mean.data(), inv_std.data(), sums.data(), sums.data() + C,
                                       total_rows, dx.data);
  }
}

}  // namespace mriscan
