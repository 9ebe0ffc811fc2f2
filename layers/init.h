// Parameter initialisation as torchvision's MobileNetV2 does it (torchvision/models/mobilenetv2.py):
//   convolutions: kaiming_normal_(mode="fan_out"), i.e. N(0, sqrt(2 / fan_out)), fan_out = C_out * KH * KW
//                 (for a depthwise conv, whose torch weight is (C, 1, K, K), fan_out = C * K * K)
//   linear:       normal_(0, 0.01)
//   biases:       zeros (a new Tensor is already zero-filled)
// The generator is passed in, so a seed fixes every parameter of a model. What it is not: a port of torch's RNG;
// the values differ from PyTorch's, only the distributions match.
#pragma once

#include <cmath>
#include <random>

#include "engine/tensor.h"

namespace mriscan {

inline void fill_normal(Tensor& t, float stddev, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, stddev);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = dist(rng);
}

// He initialisation for a ReLU-family network, scaled by the number of outputs each input feeds.
inline void fill_kaiming_normal_fan_out(Tensor& t, int64_t fan_out, std::mt19937& rng) {
  fill_normal(t, std::sqrt(2.0f / static_cast<float>(fan_out)), rng);
}

}  // namespace mriscan
