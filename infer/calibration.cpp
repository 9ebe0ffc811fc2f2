// Temperature scaling: NLL of softmax(logits / T) and its golden-section minimisation over log T.
#include "infer/calibration.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace mriscan {

namespace {

void check_logits(const char* what, const Tensor& logits) {
  if (!logits.defined() || logits.shape().rank() != 2 || logits.dim(1) < 1)
    throw std::invalid_argument(std::string(what) + ": logits must be a defined (N, K) tensor, got " +
                                (logits.defined() ? logits.shape().str() : std::string("undefined")));
}

void check_temperature(const char* what, double temperature) {
  if (!(temperature > 0.0) || !std::isfinite(temperature))
    throw std::invalid_argument(std::string(what) + ": temperature must be finite and > 0, got " +
                                std::to_string(temperature));
}

// log sum_k exp(beta * z_k) with the maximum subtracted first, so exp never overflows.
double log_sum_exp_scaled(const float* z, int64_t k, double beta) {
  double max_z = beta * z[0];
  for (int64_t j = 1; j < k; ++j) max_z = std::max(max_z, beta * z[j]);
  double sum = 0.0;
  for (int64_t j = 0; j < k; ++j) sum += std::exp(beta * z[j] - max_z);
  return max_z + std::log(sum);
}

}  // namespace

double temperature_nll(const Tensor& logits, std::span<const int> labels, double temperature) {
  check_logits("temperature_nll", logits);
  check_temperature("temperature_nll", temperature);
  const int64_t n = logits.dim(0), k = logits.dim(1);
  if (static_cast<int64_t>(labels.size()) != n)
    throw std::invalid_argument("temperature_nll: logits " + logits.shape().str() + " but " +
                                std::to_string(labels.size()) + " labels");
  if (n == 0) throw std::invalid_argument("temperature_nll: no samples");
  const double beta = 1.0 / temperature;
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * k;  // (K,)
    if (labels[i] < 0 || labels[i] >= k)
      throw std::invalid_argument("temperature_nll: label " + std::to_string(labels[i]) + " at index " +
                                  std::to_string(i) + " is outside [0, " + std::to_string(k) + ")");
    // -log softmax(beta z)_y = logsumexp(beta z) - beta z_y
    total += log_sum_exp_scaled(z, k, beta) - beta * z[labels[i]];
  }
  return total / static_cast<double>(n);
}

TemperatureFit fit_temperature(const Tensor& logits, std::span<const int> labels) {
  const double lo_bound = std::log(0.01), hi_bound = std::log(100.0);
  auto nll_at = [&](double log_t) { return temperature_nll(logits, labels, std::exp(log_t)); };

  TemperatureFit fit;
  fit.nll_before = nll_at(0.0);

  // Golden-section search: keep a bracket [a, b] with two interior points c < d at the golden ratio, drop
  // the side whose interior point is worse; the bracket shrinks by 0.618 per step and each step reuses one
  // of the two previous evaluations. 60 steps shrink a width of ~9.2 to ~3e-12 in log T.
  const double inv_phi = (std::sqrt(5.0) - 1.0) / 2.0;  // 0.618...
  double a = lo_bound, b = hi_bound;
  double c = b - inv_phi * (b - a), d = a + inv_phi * (b - a);
  double f_c = nll_at(c), f_d = nll_at(d);
  int step = 0;
  for (; step < 200 && (b - a) > 1e-9; ++step) {
    if (f_c < f_d) {  // minimum lies in [a, d]
      b = d;
      d = c;
      f_d = f_c;
      c = b - inv_phi * (b - a);
      f_c = nll_at(c);
    } else {  // minimum lies in [c, b]
      a = c;
      c = d;
      f_c = f_d;
      d = a + inv_phi * (b - a);
      f_d = nll_at(d);
    }
  }
  const double log_t = 0.5 * (a + b);
  fit.temperature = std::exp(log_t);
  fit.nll_after = nll_at(log_t);
  fit.iterations = step;
  fit.at_bound = (log_t - lo_bound) < 1e-6 || (hi_bound - log_t) < 1e-6;
  return fit;
}

Tensor apply_temperature(const Tensor& logits, double temperature) {
  check_logits("apply_temperature", logits);
  check_temperature("apply_temperature", temperature);
  const int64_t n = logits.dim(0), k = logits.dim(1);
  const double beta = 1.0 / temperature;
  Tensor probs(logits.shape());  // (N, K)
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits.data() + i * k;  // (K,)
    float* p = probs.data() + i * k;         // (K,)
    const double lse = log_sum_exp_scaled(z, k, beta);
    for (int64_t j = 0; j < k; ++j) p[j] = static_cast<float>(std::exp(beta * z[j] - lse));
  }
  return probs;
}

}  // namespace mriscan
