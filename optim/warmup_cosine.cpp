// warmup_cosine_lr: see the header for the formula.
#include "optim/warmup_cosine.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace mriscan {

double warmup_cosine_lr(double base_lr, int64_t step, int64_t warmup_steps, int64_t total_steps) {
  step = std::clamp<int64_t>(step, 0, std::max<int64_t>(total_steps - 1, 0));
  if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  const double decay_steps = static_cast<double>(std::max<int64_t>(total_steps - warmup_steps, 1));
  const double progress = static_cast<double>(step - warmup_steps) / decay_steps;  // in [0, 1)
  return base_lr * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace mriscan
