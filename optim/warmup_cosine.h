// The warm-up + cosine learning-rate schedule (Goyal et al. 2017 for the warm-up, Loshchilov & Hutter 2017's
// SGDR without restarts for the decay), as a pure function of the optimizer step:
//
//   warm-up, s < W:       lr(s) = base * (s + 1) / W
//   decay,   W <= s < T:  lr(s) = base * (1 + cos(pi * (s - W) / (T - W))) / 2
//
// with W warm-up steps and T steps in all. The warm-up keeps Adam's first updates small while its second-moment
// estimate is still noisy and the new classifier's gradients are large; the decay ends near zero, so the last
// epochs settle instead of bouncing. Being a function of the step alone, a resumed run recomputes it exactly.
// What it is not: an optimizer or a callback; the trainer calls it before every step (set_learning_rate).
#pragma once

#include <cstdint>

namespace mriscan {

// The learning rate of step `step` (0-based) out of `total_steps`, after `warmup_steps` of linear warm-up.
// Steps past the end keep the last value; warmup_steps >= total_steps is warm-up only.
double warmup_cosine_lr(double base_lr, int64_t step, int64_t warmup_steps, int64_t total_steps);

}  // namespace mriscan
