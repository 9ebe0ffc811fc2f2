// Finite-difference gradient checking in double, shared by the kernel and layer gradient tests.
//
// Usage: make a scalar loss L(x) = sum(f(x) * r) with fixed random r, compute the analytic dL/dx by running the
// backward kernel with dy = r, then compare against central differences (L(x + h e_i) - L(x - h e_i)) / 2h.
// What it is not: a check that works at non-differentiable points; keep inputs away from ReLU6's kinks.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace mriscan::testing {

inline std::vector<double> random_vector(size_t n, uint32_t seed, double low = -1.0, double high = 1.0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<double> v(n);
  for (double& value : v) value = dist(rng);
  return v;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0.0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

// Runs `backward(buffer)` on a buffer that starts at a random non-zero value and returns what it ADDED, so a
// backward kernel that overwrites instead of accumulating fails the check.
template <typename Backward>
std::vector<double> accumulated_gradient(size_t size, uint32_t seed, Backward backward) {
  const std::vector<double> start = random_vector(size, seed);
  std::vector<double> buffer = start;
  backward(buffer.data());
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] -= start[i];
  return buffer;
}

// Largest |analytic - numeric| / max(1, |analytic|, |numeric|) over all entries of `x`.
// `loss` must read `x` (which is perturbed in place and restored).
inline double max_gradient_error(const std::function<double()>& loss, std::vector<double>& x,
                                 const std::vector<double>& analytic, double step = 1e-6) {
  double worst = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + step;
    const double plus = loss();
    x[i] = saved - step;
    const double minus = loss();
    x[i] = saved;
    const double numeric = (plus - minus) / (2.0 * step);
    const double scale = std::max({1.0, std::abs(analytic[i]), std::abs(numeric)});
    worst = std::max(worst, std::abs(analytic[i] - numeric) / scale);
  }
  return worst;
}

}  // namespace mriscan::testing
