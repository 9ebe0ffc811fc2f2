// Batch normalisation in training mode run by oneDNN: the forward with batch statistics and a learned scale and
// shift (normalization_flags use_scale | use_shift), and the backward to the input, scale and shift.
//
// What it is: the two primitives for one (N, H, W, C) shape, built once over the benchmark's NHWC buffers, with
// their per-channel statistics and gradients kept inside. What it is not: timing or checking (batchnorm_case.cpp),
// nor a fused activation (mriscan's ReLU6 fusion has no oneDNN counterpart; both run without one here).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <string>
#include <unordered_map>
#include <vector>

namespace mriscan::layer_bench {

struct BatchNormBuffers {
  const float* x = nullptr;      // (N, H, W, C)
  const float* gamma = nullptr;  // (C)
  const float* beta = nullptr;   // (C)
  float* y = nullptr;            // (N, H, W, C)
  const float* dy = nullptr;     // (N, H, W, C)
  float* dx = nullptr;           // (N, H, W, C)
};

class OnednnBatchNorm {
 public:
  OnednnBatchNorm(int batch, int h, int w, int channels, float eps, const BatchNormBuffers& buffers);

  // Each executes its primitive once and waits for it: what the benchmark times.
  void forward();   // y = gamma * (x - mean) / sqrt(var + eps) + beta; mean, var (biased) of this batch kept
  void backward();  // dx, dgamma, dbeta from dy and the last forward's statistics, overwritten

  // The last forward's statistics and the last backward's parameter gradients, each (C).
  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& variance() const { return variance_; }
  const std::vector<float>& dgamma() const { return dgamma_; }
  const std::vector<float>& dbeta() const { return dbeta_; }

  std::string forward_impl() const { return forward_pd_.impl_info_str(); }
  std::string backward_impl() const { return backward_pd_.impl_info_str(); }

 private:
  std::vector<float> mean_, variance_, dgamma_, dbeta_;  // (C) each, the memories below point into them
  dnnl::batch_normalization_forward::primitive_desc forward_pd_;
  dnnl::batch_normalization_backward::primitive_desc backward_pd_;
  dnnl::batch_normalization_forward forward_;
  dnnl::batch_normalization_backward backward_;
  std::unordered_map<int, dnnl::memory> forward_args_, backward_args_;
};

}  // namespace mriscan::layer_bench
