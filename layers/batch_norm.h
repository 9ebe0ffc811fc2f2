// BatchNorm2d: per-channel batch normalisation (Ioffe & Szegedy 2015) with PyTorch's semantics and torchvision's
// names, on (N, H, W, C) or (N, C) inputs, viewed as M = numel / C rows of C values.
//
// Training mode (batch statistics; engine/kernels/batchnorm_ref.h has the per-row formulas):
//   mean, var  = per-channel mean and BIASED variance of the M rows;  inv_std = 1 / sqrt(var + eps)
//   y          = gamma * (x - mean) * inv_std + beta
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * M / (M - 1)     (UNBIASED, as PyTorch)
//   dx        += gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat))      (through the batch statistics)
//   dgamma    += sum(dy * xhat),   dbeta += sum(dy)
// The running statistics are updated on every training-mode forward, whether or not the tape records (as PyTorch
// does); M must be at least 2, since one row has no variance.
// Eval mode (running statistics, a fixed affine map per channel):
//   scale = gamma / sqrt(running_var + eps),  shift = beta - running_mean * scale,   y = x * scale + shift
//   dx    += dy * scale,   dgamma += sum(dy * xhat) with xhat = (x - running_mean) / sqrt(running_var + eps),
//   dbeta += sum(dy)
// Parameters "weight" (gamma, C) = 1 and "bias" (beta, C) = 0; buffers "running_mean" (C) = 0 and "running_var"
// (C) = 1 (torchvision's init). The tape node is named "batch_norm" with inputs {x, weight, bias} (the ImageNet
// calibration in models/imagenet_import.cpp reads x and keys on weight). The closure calls the mode's backward,
// which skips every gradient nobody needs; the eval backward is the table's reference-only batchnorm_eval_backward.
// What it is not: a fused conv+BN (inference folds BN into the conv before it: models/folded_conv.h);
// Synchronised (set_collective with more than one process: data-parallel training): the training-mode mean and
// variance, and the two backward sums, are those of the rows of every process together (layers/batch_norm_sync.cpp),
// so N processes with B/N images each compute what one process computes with B.
// num_batches_tracked is not kept; the layer must outlive the tape it recorded on.
#pragma once

#include <string>
#include <vector>

#include "engine/kernels/params.h"
#include "layers/layer.h"

namespace mriscan {

class BatchNorm2d : public Layer {
 public:
  explicit BatchNorm2d(int channels, float eps = 1e-5f, float momentum = 0.1f);

  // x (N, H, W, C) or (N, C) -> y, same shape.
  Var forward(Tape& tape, const Var& x) override;
  // Training mode only: z = act(y) in one node, the pre-activation y never stored (the fused BN + ReLU6 of
  // ConvBn; engine/kernels/batchnorm_ref.h has the masked backward). The tape node is still "batch_norm".
  Var forward_train_activated(Tape& tape, const Var& x, Activation activation);
  void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) override;
  void collect_buffers(const std::string& prefix, std::vector<NamedBuffer>& out) override;

  int channels() const { return channels_; }
  float eps() const { return eps_; }
  float momentum() const { return momentum_; }
  const Var& weight() const { return weight_; }     // gamma (C)
  const Var& bias() const { return bias_; }         // beta (C)
  Tensor& running_mean() { return running_mean_; }  // (C)
  Tensor& running_var() { return running_var_; }    // (C)
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  // The processes whose batches share statistics in training mode; nullptr or a world of one: this batch alone.
  void set_collective(Collective* world) override { world_ = world; }

 private:
  BatchNormParams params_for(const Shape& s, Activation activation) const;  // validates the shape
  Var forward_train(Tape& tape, const Var& x, const BatchNormParams& p);
  // Gradients of one training-mode forward, given the batch statistics it used.
  void backward_train(const Var& x, const Var& y, BatchNormParams p, const Tensor& mean, const Tensor& inv_std);
  Var forward_eval(Tape& tape, const Var& x, const BatchNormParams& p);
  // Gradients of one eval-mode forward, given the running statistics it used (snapshots, see forward_eval).
  void backward_eval(const Var& x, const Var& y, const BatchNormParams& p, const Tensor& mean, const Tensor& inv_std);
  // The same over the rows of every process (world_->size() > 1).
  Var forward_train_synced(Tape& tape, const Var& x, const BatchNormParams& p);
  void backward_train_synced(const Var& x, const Var& y, const BatchNormParams& p, const Tensor& mean,
                             const Tensor& inv_std, double total_rows);
  // running = (1 - momentum) * running + momentum * batch statistic; `rows` gives the unbiased variance.
  void update_running_stats(double rows, const Tensor& mean, const Tensor& inv_std);

  int channels_;
  float eps_, momentum_;
  Var weight_;           // gamma (C)
  Var bias_;             // beta (C)
  Tensor running_mean_;  // (C)
  Tensor running_var_;   // (C)
  Collective* world_ = nullptr;
};

}  // namespace mriscan
