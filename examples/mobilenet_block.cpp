// Example: one MobileNetV2 inverted-residual block, forward and backward, on the fast and the reference kernels.
//
// The block (layers/inverted_residual.h): 1x1 expand 24 -> 144 channels, BN, ReLU6; 3x3 depthwise, BN, ReLU6;
// 1x1 project 144 -> 24, BN; plus the residual x + block(x). Its layers never call a kernel directly: they go
// through the table `kernels()` (engine/kernels/dispatch.h), the fast one (xsimd + OpenMP) or the reference one
// (plain loops). This program runs the same block (same seed: same weights, input and output gradient) once under
// each table, choosing it with a ScopedKernelTable, and compares the output and every gradient. It prints the
// largest differences and the best time of 3 forwards and backwards on each table; fails (exit 1) above 1e-4.
//
// Read next: engine/kernels/dispatch.h (the table), layers/inverted_residual.cpp (the composition),
// engine/kernels/depthwise_ref.h then depthwise_simd.cpp (one kernel both ways), engine/tape.h (backward with a seed).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <tuple>
#include <vector>

#include "engine/kernels/dispatch.h"
#include "engine/parallel.h"
#include "layers/init.h"
#include "layers/inverted_residual.h"

using namespace mriscan;

const Shape kShape{4, 56, 56, 24};  // x and y (N, H, W, C): a batch of features.3's input

// What one run leaves: its best times of 3, and the output y, then dL/dx, then each parameter's gradient.
struct Run {
  double forward_ms = 1e9, backward_ms = 1e9;
  std::vector<float> values;
};

Run run_block(const KernelTable& table) {
  const ScopedKernelTable use(table);  // every layer's kernels() call on this thread returns `table`
  Run run;
  std::mt19937 rng(7);
  InvertedResidual block(/*in=*/24, /*out=*/24, /*stride=*/1, /*expand_ratio=*/6, rng);  // in training mode
  std::vector<NamedParameter> params;
  block.collect_parameters("", params);
  Var x = make_var(Tensor(kShape), /*requires_grad=*/true);  // (N, H, W, C)
  fill_normal(x->value, 1.0f, rng);
  Tensor dy(kShape);  // (N, H, W, C): the gradient of some loss with respect to the block's output
  fill_normal(dy, 1.0f, rng);

  for (int i = 0; i < 3; ++i) {
    x->grad = Tensor();  // gradients accumulate: drop the previous run's
    for (const NamedParameter& p : params) p.var->grad = Tensor();
    Tape tape;
    const auto t0 = std::chrono::steady_clock::now();
    Var y = block.forward(tape, x);  // (N, H, W, C); 7 nodes on the tape
    const auto t1 = std::chrono::steady_clock::now();
    tape.backward(y, dy);  // seeds dL/dy = dy and runs the nodes in reverse
    const auto t2 = std::chrono::steady_clock::now();
    run.forward_ms = std::min(run.forward_ms, std::chrono::duration<double, std::milli>(t1 - t0).count());
    run.backward_ms = std::min(run.backward_ms, std::chrono::duration<double, std::milli>(t2 - t1).count());
    run.values.clear();
    auto keep = [&run](const Tensor& t) { run.values.insert(run.values.end(), t.data(), t.data() + t.numel()); };
    keep(y->value);
    keep(x->grad);
    for (const NamedParameter& p : params) keep(p.var->grad);
  }
  return run;
}

int main() {
  const Run ref = run_block(reference_kernels());
  const Run fast = run_block(fast_kernels());
  if (fast.values.size() != ref.values.size()) return 1;
  std::printf("inverted residual 24 -> 144 -> 24, x (4, 56, 56, 24), training mode\n");
  std::printf("  ref   forward %7.2f ms  backward %7.2f ms  (kernel threads: %d)\n", ref.forward_ms, ref.backward_ms,
              num_threads());
  std::printf("  %-5s forward %7.2f ms  backward %7.2f ms  (kernel threads: %d)\n", fast_kernels().name.c_str(),
              fast.forward_ms, fast.backward_ms, num_threads());
  // Largest difference in each part of the values, relative to their size: max |fast - ref| / max(1, max |ref|).
  const size_t n = kShape.numel();  // y and dx both have x's shape
  double worst = 0.0;
  for (auto [name, begin, end] : {std::tuple{"output y", size_t(0), n}, std::tuple{"dL/dx", n, 2 * n},
                                  std::tuple{"parameter gradients", 2 * n, ref.values.size()}}) {
    double difference = 0.0, scale = 1.0;
    for (size_t i = begin; i < end; ++i) {
      difference = std::max(difference, double(std::abs(fast.values[i] - ref.values[i])));
      scale = std::max(scale, double(std::abs(ref.values[i])));
    }
    std::printf("  %-20s max |fast - ref| %.2e, relative %.2e\n", name, difference, difference / scale);
    worst = std::max(worst, difference / scale);
  }
  std::printf(worst <= 1e-4 ? "OK (tolerance 1e-4)\n" : "FAILED (tolerance 1e-4)\n");
  return worst <= 1e-4 ? 0 : 1;
}
