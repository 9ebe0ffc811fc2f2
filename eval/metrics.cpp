// Classification metrics: the formulas declared in eval/metrics.h, computed in double.
#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace mriscan {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_inputs(const char* what, size_t probs_size, size_t num_labels, int num_classes) {
  if (num_classes <= 0) throw std::invalid_argument(std::string(what) + ": num_classes must be positive");
  if (probs_size != num_labels * static_cast<size_t>(num_classes))
    throw std::invalid_argument(std::string(what) + ": probs has " + std::to_string(probs_size) +
                                " values but labels has " + std::to_string(num_labels) + " entries for " +
                                std::to_string(num_classes) + " classes");
}

void check_label(const char* what, int label, size_t index, int num_classes) {
  if (label < 0 || label >= num_classes)
    throw std::invalid_argument(std::string(what) + ": label " + std::to_string(label) + " at index " +
                                std::to_string(index) + " is outside [0, " + std::to_string(num_classes) + ")");
}

double safe_divide(double num, double den) { return den > 0.0 ? num / den : 0.0; }

// NaN is not valid JSON; emit null so Python and JavaScript readers see "undefined".
nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

}  // namespace

std::vector<int> argmax_rows(std::span<const float> probs, int num_classes) {
  if (num_classes <= 0 || probs.size() % num_classes != 0)
    throw std::invalid_argument("argmax_rows: probs size " + std::to_string(probs.size()) +
                                " is not a multiple of num_classes " + std::to_string(num_classes));
  const size_t n = probs.size() / num_classes;
  std::vector<int> predicted(n);  // (N,)
  for (size_t i = 0; i < n; ++i) {
    const float* row = probs.data() + i * num_classes;
    predicted[i] = static_cast<int>(std::max_element(row, row + num_classes) - row);  // first max on ties
  }
  return predicted;
}

std::pair<double, double> wilson_interval(int64_t successes, int64_t trials, double z) {
  if (trials <= 0) return {0.0, 1.0};  // no data: the proportion can be anything
  if (successes < 0 || successes > trials)
    throw std::invalid_argument("wilson_interval: successes " + std::to_string(successes) + " not in [0, " +
                                std::to_string(trials) + "]");
  // Invert the score test |p_hat - p| <= z sqrt(p (1 - p) / n) for p: a quadratic whose roots are
  //   center +- half, center = (p_hat + z^2 / 2n) / (1 + z^2 / n),
  //   half = z / (1 + z^2 / n) * sqrt(p_hat (1 - p_hat) / n + z^2 / 4n^2).
  const double n = static_cast<double>(trials);
  const double p_hat = static_cast<double>(successes) / n;
  const double z2 = z * z;
  const double denom = 1.0 + z2 / n;
  const double center = (p_hat + z2 / (2.0 * n)) / denom;
  const double half = z / denom * std::sqrt(p_hat * (1.0 - p_hat) / n + z2 / (4.0 * n * n));
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

double roc_auc(std::span<const float> scores, std::span<const uint8_t> is_positive) {
  if (scores.size() != is_positive.size())
    throw std::invalid_argument("roc_auc: " + std::to_string(scores.size()) + " scores but " +
                                std::to_string(is_positive.size()) + " labels");
  const size_t n = scores.size();
  // Rank all scores ascending; a run of equal scores shares the mean of the ranks it spans (midrank).
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0.0;
  int64_t num_positive = 0;
  for (size_t start = 0; start < n;) {
    size_t end = start;
    while (end < n && scores[order[end]] == scores[order[start]]) ++end;
    const double midrank = 0.5 * static_cast<double>(start + 1 + end);  // mean of ranks start+1 .. end
    for (size_t j = start; j < end; ++j) {
      if (is_positive[order[j]]) {
        positive_rank_sum += midrank;
        ++num_positive;
      }
    }
    start = end;
  }
  const int64_t num_negative = static_cast<int64_t>(n) - num_positive;
  if (num_positive == 0 || num_negative == 0) return kNaN;
  // Mann-Whitney: U = (sum of positive ranks) - P (P + 1) / 2 counts the (positive, negative) pairs ordered
  // correctly, ties counting 1/2; AUC = U / (P * N_neg) is the probability a random positive outranks a
  // random negative.
  const double p = static_cast<double>(num_positive);
  const double u = positive_rank_sum - p * (p + 1.0) / 2.0;
  return u / (p * static_cast<double>(num_negative));
}

double log_loss(std::span<const float> probs, std::span<const int> labels, int num_classes) {
  check_inputs("log_loss", probs.size(), labels.size(), num_classes);
  if (labels.empty()) return 0.0;
  double total = 0.0;
  for (size_t i = 0; i < labels.size(); ++i) {
    check_label("log_loss", labels[i], i, num_classes);
    const double p_true = probs[i * num_classes + labels[i]];
    total -= std::log(std::clamp(p_true, 1e-12, 1.0));
  }
  return total / static_cast<double>(labels.size());
}

double expected_calibration_error(std::span<const float> probs, std::span<const int> labels, int num_classes,
                                  int num_bins) {
  check_inputs("expected_calibration_error", probs.size(), labels.size(), num_classes);
  if (num_bins <= 0) throw std::invalid_argument("expected_calibration_error: num_bins must be positive");
  if (labels.empty()) return 0.0;
  std::vector<int64_t> count(num_bins, 0);          // (B,) samples per bin
  std::vector<double> correct(num_bins, 0.0);       // (B,) correct predictions per bin
  std::vector<double> confidence(num_bins, 0.0);    // (B,) summed confidence per bin
  const std::vector<int> predicted = argmax_rows(probs, num_classes);
  for (size_t i = 0; i < labels.size(); ++i) {
    check_label("expected_calibration_error", labels[i], i, num_classes);
    const double c = probs[i * num_classes + predicted[i]];
    const int bin = std::clamp(static_cast<int>(c * num_bins), 0, num_bins - 1);
    count[bin] += 1;
    correct[bin] += predicted[i] == labels[i] ? 1.0 : 0.0;
    confidence[bin] += c;
  }
  // sum_b |acc_b - conf_b| * n_b / N = sum_b |correct_b - confidence_sum_b| / N.
  double ece = 0.0;
  for (int b = 0; b < num_bins; ++b) ece += std::abs(correct[b] - confidence[b]);
  return ece / static_cast<double>(labels.size());
}

Metrics compute_metrics(const Tensor& probs, std::span<const int> labels) {
  if (!probs.defined() || probs.shape().rank() != 2)
    throw std::invalid_argument("compute_metrics: probs must be a defined (N, K) tensor, got " +
                                (probs.defined() ? probs.shape().str() : std::string("undefined")));
  const int k = static_cast<int>(probs.dim(1));
  const int64_t n = probs.dim(0);
  if (static_cast<int64_t>(labels.size()) != n)
    throw std::invalid_argument("compute_metrics: probs " + probs.shape().str() + " but " +
                                std::to_string(labels.size()) + " labels");
  const std::span<const float> p(probs.data(), static_cast<size_t>(probs.numel()));  // (N, K)
  for (size_t i = 0; i < labels.size(); ++i) check_label("compute_metrics", labels[i], i, k);

  Metrics m;
  m.num_classes = k;
  m.num_samples = n;
  m.confusion.assign(static_cast<size_t>(k) * k, 0);
  const std::vector<int> predicted = argmax_rows(p, k);  // (N,)
  int64_t num_correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    m.confusion[labels[i] * k + predicted[i]] += 1;
    num_correct += predicted[i] == labels[i];
  }
  m.accuracy = safe_divide(static_cast<double>(num_correct), static_cast<double>(n));
  std::tie(m.accuracy_ci_low, m.accuracy_ci_high) = wilson_interval(num_correct, n);

  // Per class c: TP = confusion[c][c], column sum = everything predicted c, row sum = support.
  m.per_class.resize(k);
  std::vector<float> class_scores(n);      // (N,) p[:, c]
  std::vector<uint8_t> is_positive(n);     // (N,) labels == c
  double auc_sum = 0.0;
  int auc_count = 0;
  for (int c = 0; c < k; ++c) {
    int64_t true_positive = m.confusion[c * k + c], predicted_c = 0, support = 0;
    for (int j = 0; j < k; ++j) {
      predicted_c += m.confusion[j * k + c];
      support += m.confusion[c * k + j];
    }
    ClassScores& s = m.per_class[c];
    s.support = support;
    s.precision = safe_divide(static_cast<double>(true_positive), static_cast<double>(predicted_c));
    s.recall = safe_divide(static_cast<double>(true_positive), static_cast<double>(support));
    s.f1 = safe_divide(2.0 * s.precision * s.recall, s.precision + s.recall);
    for (int64_t i = 0; i < n; ++i) {
      class_scores[i] = p[i * k + c];
      is_positive[i] = labels[i] == c;
    }
    s.roc_auc = roc_auc(class_scores, is_positive);
    if (std::isfinite(s.roc_auc)) {
      auc_sum += s.roc_auc;
      ++auc_count;
    }
    m.macro.precision += s.precision / k;
    m.macro.recall += s.recall / k;
    m.macro.f1 += s.f1 / k;
    const double w = safe_divide(static_cast<double>(support), static_cast<double>(n));
    m.weighted.precision += w * s.precision;
    m.weighted.recall += w * s.recall;
    m.weighted.f1 += w * s.f1;
  }
  m.macro_roc_auc = auc_count > 0 ? auc_sum / auc_count : kNaN;
  m.log_loss = log_loss(p, labels, k);
  m.ece = expected_calibration_error(p, labels, k);
  return m;
}

nlohmann::json to_json(const Metrics& m, const std::vector<std::string>& class_names) {
  if (static_cast<int>(class_names.size()) != m.num_classes)
    throw std::invalid_argument("to_json(Metrics): " + std::to_string(class_names.size()) +
                                " class names for " + std::to_string(m.num_classes) + " classes");
  nlohmann::json confusion = nlohmann::json::array();
  for (int t = 0; t < m.num_classes; ++t) {
    nlohmann::json row = nlohmann::json::array();
    for (int p = 0; p < m.num_classes; ++p) row.push_back(m.confusion[t * m.num_classes + p]);
    confusion.push_back(row);
  }
  nlohmann::json classes = nlohmann::json::object();
  for (int c = 0; c < m.num_classes; ++c) {
    const ClassScores& s = m.per_class[c];
    classes[class_names[c]] = {{"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1},
                               {"support", s.support}, {"roc_auc", number_or_null(s.roc_auc)}};
  }
  auto averaged = [](const AveragedScores& a) {
    return nlohmann::json{{"precision", a.precision}, {"recall", a.recall}, {"f1", a.f1}};
  };
  return {{"num_samples", m.num_samples},
          {"accuracy", m.accuracy},
          {"accuracy_ci95", {m.accuracy_ci_low, m.accuracy_ci_high}},
          {"class_names", class_names},
          {"confusion_matrix", confusion},
          {"classes", classes},
          {"macro_avg", averaged(m.macro)},
          {"weighted_avg", averaged(m.weighted)},
          {"macro_roc_auc", number_or_null(m.macro_roc_auc)},
          {"log_loss", m.log_loss},
          {"ece", m.ece}};
}

std::string format_table(const Metrics& m, const std::vector<std::string>& class_names) {
  if (static_cast<int>(class_names.size()) != m.num_classes)
    throw std::invalid_argument("format_table: " + std::to_string(class_names.size()) + " class names for " +
                                std::to_string(m.num_classes) + " classes");
  int name_width = 12;
  for (const std::string& name : class_names) name_width = std::max(name_width, static_cast<int>(name.size()));
  std::ostringstream out;
  char line[256];
  auto auc_text = [](double auc) {
    if (!std::isfinite(auc)) return std::string("n/a");
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.4f", auc);
    return std::string(buf);
  };
  std::snprintf(line, sizeof line, "%-*s %9s %9s %9s %9s %9s\n", name_width, "", "precision", "recall", "f1",
                "support", "roc_auc");
  out << line;
  for (int c = 0; c < m.num_classes; ++c) {
    const ClassScores& s = m.per_class[c];
    std::snprintf(line, sizeof line, "%-*s %9.4f %9.4f %9.4f %9lld %9s\n", name_width, class_names[c].c_str(),
                  s.precision, s.recall, s.f1, static_cast<long long>(s.support), auc_text(s.roc_auc).c_str());
    out << line;
  }
  out << "\n";
  std::snprintf(line, sizeof line, "%-*s %9.4f %9.4f %9.4f %9lld %9s\n", name_width, "macro avg", m.macro.precision,
                m.macro.recall, m.macro.f1, static_cast<long long>(m.num_samples), auc_text(m.macro_roc_auc).c_str());
  out << line;
  std::snprintf(line, sizeof line, "%-*s %9.4f %9.4f %9.4f %9lld\n", name_width, "weighted avg",
                m.weighted.precision, m.weighted.recall, m.weighted.f1, static_cast<long long>(m.num_samples));
  out << line << "\n";
  std::snprintf(line, sizeof line, "accuracy  %.4f  (95%% Wilson CI %.4f - %.4f, n = %lld)\n", m.accuracy,
                m.accuracy_ci_low, m.accuracy_ci_high, static_cast<long long>(m.num_samples));
  out << line;
  std::snprintf(line, sizeof line, "log loss  %.4f\nECE       %.4f  (15 bins)\n\n", m.log_loss, m.ece);
  out << line;

  // Confusion matrix: rows = true class, columns = predicted class, headed by the first 10 chars of each name.
  out << "confusion matrix (rows = true, columns = predicted)\n";
  std::snprintf(line, sizeof line, "%-*s", name_width, "");
  out << line;
  for (const std::string& name : class_names) {
    std::snprintf(line, sizeof line, " %10.10s", name.c_str());
    out << line;
  }
  out << "\n";
  for (int t = 0; t < m.num_classes; ++t) {
    std::snprintf(line, sizeof line, "%-*s", name_width, class_names[t].c_str());
    out << line;
    for (int p = 0; p < m.num_classes; ++p) {
      std::snprintf(line, sizeof line, " %10lld", static_cast<long long>(m.confusion[t * m.num_classes + p]));
      out << line;
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace mriscan
