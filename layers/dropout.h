// Dropout: inverted dropout (Srivastava et al. 2014) with a seeded, reproducible mask; MobileNetV2's
// classifier.0, on the pooled (N, 1280) features. Any input shape.
//
// Training mode with drop probability p > 0, keep[i] ~ Bernoulli(1 - p) drawn fresh for every forward:
//   forward:  y  = keep ? x / (1 - p) : 0          (scaled so E[y] = x: evaluation then needs no rescaling)
//   backward: dx += keep ? dy / (1 - p) : 0        (the same mask, saved in the tape closure)
// Eval mode, or p == 0: the identity; forward returns x itself and records nothing (the gradient then reaches x
// directly). Masks come from std::mt19937's raw output (fixed by the C++ standard, unlike the distributions), so
// a seed gives the same masks with any standard library; `reseed` restarts the stream (the trainer reseeds per
// epoch so a resumed run repeats its masks). What it is not: spatial (channel) dropout; no parameters.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "layers/layer.h"

namespace mriscan {

class Dropout : public Layer {
 public:
  // 0 <= p < 1, else std::invalid_argument.
  explicit Dropout(float p, uint32_t seed = 0);

  // x (any shape) -> y, same shape (x itself in eval mode or when p == 0).
  Var forward(Tape& tape, const Var& x) override;

  void reseed(uint32_t seed) { rng_.seed(seed); }
  float p() const { return p_; }

 private:
  // keep (numel of x): 1 with probability 1 - p, from the layer's generator.
  std::vector<uint8_t> draw_mask(int64_t n);
  void backward(const Var& x, const Var& y, const std::vector<uint8_t>& keep);

  float p_;
  std::mt19937 rng_;
};

}  // namespace mriscan
