// Example: one MobileNetV2 inverted-residual block, forward and backward, on the fast and the reference kernels.
//
// The block (layers/inverted_residual.h): 1x1 expand 24 -> 144 channels, BN, ReLU6; 3x3 depthwise, BN, ReLU6;
// 1x1 project 144 -> 24, BN; plus the residual x + block(x). Its layers never call a kernel directly: they go
// through the table `kernels()` (engine/kernels/dispatch.h), the fast one (xsimd + OpenMP) or the reference one
// (plain loops). The table is chosen ONCE per process, from MRISCAN_KERNELS, so this program forks: the child sets
// MRISCAN_KERNELS=ref and runs the block on the reference kernels, the parent runs the same block (same seed: same
// weights, input and output gradient) on the fast ones and compares the output and every gradient. It prints the
// largest differences and the best time of 3 forwards and backwards on each table; fails (exit 1) above 1e-4.
//
// Read next: engine/kernels/dispatch.h (the table), layers/inverted_residual.cpp (the composition),
// engine/kernels/depthwise_ref.h then depthwise_simd.cpp (one kernel both ways), engine/tape.h (backward with a seed).
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
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
  size_t count = 0;
  float values[1 << 20];  // room for all of them (about 611k floats)
};

void run_block(Run& run) {
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
    run.count = 0;
    auto keep = [&run](const Tensor& t) {  // appends t's values
      std::copy_n(t.data(), t.numel(), run.values + run.count);
      run.count += t.numel();
    };
    keep(y->value);
    keep(x->grad);
    for (const NamedParameter& p : params) keep(p.var->grad);
  }
}

int main() {
  // The child: the reference kernels. Its Run lives in an anonymous MAP_SHARED mapping, which stays the same
  // memory in both processes after the fork, so the parent reads it once the child has exited.
  void* memory = mmap(nullptr, sizeof(Run), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return 1;
  Run& ref = *new (memory) Run;
  const pid_t child = fork();
  if (child == 0) {
    setenv("MRISCAN_KERNELS", "ref", 1);  // read by kernels() at its first call, inside run_block
    run_block(ref);
    _exit(kernels().name == "ref" ? 0 : 1);
  }
  int status = 1;
  if (child > 0) waitpid(child, &status, 0);
  if (status != 0) return std::printf("FAILED: the reference run (child process) did not complete\n"), 1;

  // The parent: the fast kernels (MRISCAN_KERNELS cleared, in case the caller set it to ref).
  unsetenv("MRISCAN_KERNELS");
  auto fast = std::make_unique<Run>();
  run_block(*fast);
  if (kernels().name != "simd" || fast->count != ref.count) return 1;
  std::printf("inverted residual 24 -> 144 -> 24, x (4, 56, 56, 24), training mode\n");
  std::printf("  ref   forward %7.2f ms  backward %7.2f ms  (kernel threads: 1)\n", ref.forward_ms, ref.backward_ms);
  std::printf("  simd  forward %7.2f ms  backward %7.2f ms  (kernel threads: %d)\n", fast->forward_ms,
              fast->backward_ms, num_threads());
  // Largest difference in each part of the values, relative to their size: max |fast - ref| / max(1, max |ref|).
  const size_t n = kShape.numel();  // y and dx both have x's shape
  double worst = 0.0;
  for (auto [name, begin, end] : {std::tuple{"output y", size_t(0), n}, std::tuple{"dL/dx", n, 2 * n},
                                  std::tuple{"parameter gradients", 2 * n, ref.count}}) {
    double difference = 0.0, scale = 1.0;
    for (size_t i = begin; i < end; ++i) {
      difference = std::max(difference, double(std::abs(fast->values[i] - ref.values[i])));
      scale = std::max(scale, double(std::abs(ref.values[i])));
    }
    std::printf("  %-20s max |fast - ref| %.2e, relative %.2e\n", name, difference, difference / scale);
    worst = std::max(worst, difference / scale);
  }
  std::printf(worst <= 1e-4 ? "OK (tolerance 1e-4)\n" : "FAILED (tolerance 1e-4)\n");
  return worst <= 1e-4 ? 0 : 1;
}
