// BatchNorm2d: shape checks, the training- and eval-mode forwards that record a tape node, their backwards and
// the running-statistics update (formulas in the header).
#include "layers/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/kernels/dispatch.h"

namespace mriscan {

BatchNorm2d::BatchNorm2d(int channels, float eps, float momentum)
    : channels_(channels), eps_(eps), momentum_(momentum) {
  if (channels < 1 || !(eps > 0.0f) || !(momentum >= 0.0f && momentum <= 1.0f))
    throw std::invalid_argument("BatchNorm2d: bad configuration (channels " + std::to_string(channels) + ", eps " +
                                std::to_string(eps) + ", momentum " + std::to_string(momentum) + ")");
  Tensor gamma(Shape{channels});
  gamma.fill(1.0f);
  weight_ = make_var(gamma, /*requires_grad=*/true);
  bias_ = make_var(Tensor(Shape{channels}), /*requires_grad=*/true);
  running_mean_ = Tensor(Shape{channels});
  running_var_ = Tensor(Shape{channels});
  running_var_.fill(1.0f);
}

BatchNormParams BatchNorm2d::params_for(const Shape& s, Activation activation) const {
  if ((s.rank() != 4 && s.rank() != 2) || s[-1] != channels_)
    throw std::invalid_argument("BatchNorm2d: expected input (N, H, W, " + std::to_string(channels_) + ") or (N, " +
                                std::to_string(channels_) + "), got " + s.str());
  return {.rows = s.numel() / channels_, .channels = channels_, .eps = eps_, .activation = activation};
}

Var BatchNorm2d::forward(Tape& tape, const Var& x) {
  const BatchNormParams p = params_for(x->value.shape(), Activation::kNone);
  return training() ? forward_train(tape, x, p) : forward_eval(tape, x, p);
}

Var BatchNorm2d::forward_train_activated(Tape& tape, const Var& x, Activation activation) {
  if (!training()) throw std::logic_error("BatchNorm2d: the fused activation is a training-mode path");
  return forward_train(tape, x, params_for(x->value.shape(), activation));
}

// ---------------------------------------------------------------------------------------------------------------
// Training mode: batch statistics.

Var BatchNorm2d::forward_train(Tape& tape, const Var& x, const BatchNormParams& p) {
  if (world_ && world_->size() > 1) return forward_train_synced(tape, x, p);
  if (p.rows < 2)
    throw std::invalid_argument("BatchNorm2d: training mode needs more than one value per channel, got input " +
                                x->value.shape().str() + " (switch to eval mode for single samples)");
  // Outputs of the kernel, which overwrites them: y (M, C) viewed as x's shape; mean (C), inv_std (C) saved for
  // backward.
  Var y = make_var(Tensor::uninitialized(x->value.shape()));
  Tensor mean = Tensor::uninitialized(Shape{channels_}), inv_std = Tensor::uninitialized(Shape{channels_});
  kernels().batchnorm_train_forward(p, x->value.data(), weight_->value.data(), bias_->value.data(), y->value.data(),
                                    mean.data(), inv_std.data());
  update_running_stats(static_cast<double>(p.rows), mean, inv_std);
  tape.record("batch_norm", {x, weight_, bias_}, y,
              [this, x, y, p, mean, inv_std] { backward_train(x, y, p, mean, inv_std); });
  return y;
}

void BatchNorm2d::backward_train(const Var& x, const Var& y, BatchNormParams p, const Tensor& mean,
                                 const Tensor& inv_std) {
  float* dx = nullptr;  // (M, C) or null
  if (x->requires_grad) {
    const Variable::GradTarget target = x->grad_target();
    dx = target.data;
    p.accumulate_dx = !target.first;
  }
  float* dgamma = weight_->requires_grad ? weight_->grad_buffer().data() : nullptr;  // (C) or null
  float* dbeta = bias_->requires_grad ? bias_->grad_buffer().data() : nullptr;       // (C) or null
  kernels().batchnorm_train_backward(p, y->grad.data(), x->value.data(), weight_->value.data(), bias_->value.data(),
                                     mean.data(), inv_std.data(), dx, dgamma, dbeta);
}

void BatchNorm2d::update_running_stats(double rows, const Tensor& mean, const Tensor& inv_std) {
  // The kernel returns inv_std; the biased variance is 1 / inv_std^2 - eps (in double: no digits lost for any
  // variance that matters next to eps). PyTorch tracks the UNBIASED variance: times M / (M - 1).
  const double bessel = rows / (rows - 1.0);
  for (int c = 0; c < channels_; ++c) {
    const double s = inv_std[c];
    const double biased_var = std::max(0.0, 1.0 / (s * s) - static_cast<double>(eps_));
    running_mean_[c] = static_cast<float>((1.0 - momentum_) * running_mean_[c] + momentum_ * mean[c]);
    running_var_[c] = static_cast<float>((1.0 - momentum_) * running_var_[c] + momentum_ * biased_var * bessel);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Eval mode: running statistics, a fixed per-channel affine map.

Var BatchNorm2d::forward_eval(Tape& tape, const Var& x, const BatchNormParams& p) {
  // Snapshots of the statistics this forward used, so backward matches it even if the buffers change later.
  Tensor mean = running_mean_.clone();                                                 // (C)
  Tensor inv_std(Shape{channels_}), scale(Shape{channels_}), shift(Shape{channels_});  // (C) each
  for (int c = 0; c < channels_; ++c) {
    inv_std[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var_[c]) + eps_));
    scale[c] = weight_->value[c] * inv_std[c];
    shift[c] = bias_->value[c] - mean[c] * scale[c];
  }
  Var y = make_var(Tensor::uninitialized(x->value.shape()));  // (M, C) viewed as x's shape; overwritten
  kernels().channel_affine_forward(p.rows, channels_, x->value.data(), scale.data(), shift.data(), y->value.data());
  tape.record("batch_norm", {x, weight_, bias_}, y,
              [this, x, y, p, mean, inv_std] { backward_eval(x, y, p, mean, inv_std); });
  return y;
}

void BatchNorm2d::backward_eval(const Var& x, const Var& y, const BatchNormParams& p, const Tensor& mean,
                                const Tensor& inv_std) {
  // The statistics are constants here: dx = dy * gamma * inv_std, no batch terms (engine/kernels/batchnorm_ref.h).
  float* dx = x->requires_grad ? x->grad_buffer().data() : nullptr;                  // (M, C) or null
  float* dgamma = weight_->requires_grad ? weight_->grad_buffer().data() : nullptr;  // (C) or null
  float* dbeta = bias_->requires_grad ? bias_->grad_buffer().data() : nullptr;       // (C) or null
  kernels().batchnorm_eval_backward(p, y->grad.data(), x->value.data(), mean.data(), inv_std.data(),
                                    weight_->value.data(), dx, dgamma, dbeta);
}

void BatchNorm2d::collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) {
  out.push_back({prefix + "weight", weight_});
  out.push_back({prefix + "bias", bias_});
}

void BatchNorm2d::collect_buffers(const std::string& prefix, std::vector<NamedBuffer>& out) {
  out.push_back({prefix + "running_mean", running_mean_});
  out.push_back({prefix + "running_var", running_var_});
}

}  // namespace mriscan
