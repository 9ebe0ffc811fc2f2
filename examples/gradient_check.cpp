// Example: checking a backward pass against finite differences, here batch norm in training mode.
//
// Every kernel in engine/kernels/*_ref.h is a template on its scalar type, so it runs in double as well as float.
// In double a central difference (L(x + h) - L(x - h)) / 2h is accurate to ~1e-9, enough to check a hand-written
// backward to many digits. To check a layer with output y = f(x), take the scalar loss L = sum(y * r) with a fixed
// random r: then dL/dy = r, so the backward kernel run with dy = r must give dL/dx, dL/dgamma and dL/dbeta.
// Batch norm is the instructive case: the batch mean and variance depend on every x, so dx has two extra terms. The
// program also runs the eval-mode backward (statistics treated as constants) on the same batch to show the check
// catching a gradient that is plausible but wrong. Fails (exit 1) if the real backward is off by more than 1e-6 or
// the wrong one is not caught.
//
// Read next: engine/kernels/batchnorm_ref.h (the formulas, and the kernels used here), engine/kernels/params.h
// (BatchNormParams and the overwrite / accumulate contract), layers/batch_norm.cpp (the layer calling them).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "engine/kernels/batchnorm_ref.h"

using namespace mriscan;

std::vector<double> random_values(size_t n, std::mt19937& rng, double low, double high) {
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<double> v(n);
  for (double& value : v) value = dist(rng);
  return v;
}

int main() {
  // x (N, H, W, C) = (2, 3, 3, 4): batch norm sees it as M = N*H*W = 18 rows of C = 4 channels.
  const BatchNormParams p{.rows = 2 * 3 * 3, .channels = 4, .eps = 1e-5f};
  const size_t n = size_t(p.rows) * p.channels;
  std::mt19937 rng(1);
  std::vector<double> x = random_values(n, rng, -1.0, 2.0);               // (M, C)
  std::vector<double> gamma = random_values(p.channels, rng, 0.5, 1.5);  // (C)
  std::vector<double> beta = random_values(p.channels, rng, -1.0, 1.0);  // (C)
  const std::vector<double> r = random_values(n, rng, -1.0, 1.0);        // (M, C), the fixed dL/dy

  // L = sum(y * r), y = batchnorm(x); also leaves the batch mean (C) and inv_std (C) for the backward.
  std::vector<double> y(n), mean(p.channels), inv_std(p.channels);
  auto loss = [&] {
    batchnorm_train_forward_ref<double>(p, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), inv_std.data());
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) sum += y[i] * r[i];
    return sum;
  };

  // Analytic gradients: one backward call with dy = r. Backward kernels ADD into their outputs, so start at zero.
  loss();
  const std::vector<double> batch_mean = mean, batch_inv_std = inv_std;
  std::vector<double> dx(n, 0.0), dgamma(p.channels, 0.0), dbeta(p.channels, 0.0);
  batchnorm_train_backward_ref<double>(p, r.data(), x.data(), gamma.data(), beta.data(), batch_mean.data(),
                                       batch_inv_std.data(), dx.data(), dgamma.data(), dbeta.data());

  // Numeric gradient of L with respect to each entry of `values`, compared with `analytic`:
  // returns max |analytic - numeric| / max(1, |analytic|, |numeric|).
  auto check = [&](std::vector<double>& values, const std::vector<double>& analytic) {
    const double h = 1e-6;
    double worst = 0.0;
    for (size_t i = 0; i < values.size(); ++i) {
      const double saved = values[i];
      values[i] = saved + h;
      const double plus = loss();
      values[i] = saved - h;
      const double minus = loss();
      values[i] = saved;
      const double numeric = (plus - minus) / (2 * h);
      const double scale = std::max({1.0, std::abs(analytic[i]), std::abs(numeric)});
      worst = std::max(worst, std::abs(analytic[i] - numeric) / scale);
    }
    return worst;
  };
  const double tolerance = 1e-6;
  const double error_x = check(x, dx), error_gamma = check(gamma, dgamma), error_beta = check(beta, dbeta);
  std::printf("batch norm (training), x (2, 3, 3, 4), max relative error vs finite differences:\n");
  std::printf("  dx      %.2e\n  dgamma  %.2e\n  dbeta   %.2e\n", error_x, error_gamma, error_beta);

  // A plausible mistake: the eval-mode backward, which treats mean and inv_std as constants.
  std::vector<double> wrong_dx(n, 0.0);
  batchnorm_eval_backward_ref<double>(p, r.data(), x.data(), batch_mean.data(), batch_inv_std.data(), gamma.data(),
                                      wrong_dx.data(), nullptr, nullptr);
  const double error_wrong = check(x, wrong_dx);
  std::printf("  dx without the batch-statistics terms: %.2e (the check catches it)\n", error_wrong);

  const bool ok = std::max({error_x, error_gamma, error_beta}) < tolerance && error_wrong > 100 * tolerance;
  std::printf(ok ? "OK (tolerance %.0e)\n" : "FAILED (tolerance %.0e)\n", tolerance);
  return ok ? 0 : 1;
}
