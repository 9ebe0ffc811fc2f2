// Drift you can see: over the last `window` answers this replica gave, the share withheld (out of distribution),
// the class mix, the mean confidence and the mean prediction-set size, beside the same figures on the validation
// split that the model file records (training writes them; infer/conformal.h). A documented threshold on each
// marks drift, shown in /health's body (never its status: a drifting model still answers), /metrics and the UI.
//
// Thresholds (docs/drift.md derives them): with at least `min_answers` answers in the window, drift is marked when
//   * the class mix's total variation distance from validation's, 0.5 * sum_k |p_k - q_k|, exceeds 0.25;
//   * the withheld share exceeds validation's by more than 0.10;
//   * the mean confidence falls below validation's by more than 0.10;
//   * the mean set size exceeds validation's by more than 0.5 classes.
// The window restarts when the served version changes: another model has other reference figures.
// The figures are published every `min_answers` answers (a snapshot of the window then), not after each one: /health
// and /metrics need no token, and differences between two readings one answer apart would tell that answer's class.
// What it is not: a statistical test with a false-alarm rate (the thresholds are effect sizes), or shared across
// replicas (each watches its own traffic; the load balancer spreads it evenly).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mriscan {

// Validation's figures, from the model file's metadata; `known` false for a model trained before they existed.
struct DriftReference {
  bool known = false;
  std::vector<double> class_mix;  // (K) shares of the true classes on validation
  double withheld_share = 0.0, mean_confidence = 0.0;
  std::optional<double> mean_set_size;
};

struct DriftThresholds {
  int min_answers = 100;
  double class_mix_distance = 0.25, withheld_rise = 0.10, confidence_drop = 0.10, set_size_rise = 0.5;
};

struct DriftSnapshot {
  int64_t model_version = 0;
  size_t window = 0, answers = 0;
  double withheld_share = 0.0, mean_confidence = 0.0;
  std::optional<double> mean_set_size;  // none when the model has no prediction sets
  std::vector<std::string> class_names;  // (K)
  std::vector<double> class_mix;         // (K) of the answers that were not withheld
  std::optional<double> class_mix_distance;
  bool drift = false;
  std::vector<std::string> reasons;
  DriftReference reference;
  nlohmann::json to_json() const;
};

class DriftMonitor {
 public:
  explicit DriftMonitor(size_t window = 500, DriftThresholds thresholds = {});

  // One answer: withheld (out of distribution) or its class, confidence and set size (nullopt: no sets).
  void observe(int64_t model_version, bool withheld, int class_index, double confidence,
               std::optional<int> set_size);
  DriftSnapshot snapshot(int64_t model_version, const DriftReference& reference,
                         const std::vector<std::string>& class_names) const;

 private:
  struct Answer {
    bool withheld;
    int class_index;
    double confidence;
    std::optional<int> set_size;
  };
  size_t window_;
  DriftThresholds thresholds_;
  mutable std::mutex mutex_;
  int64_t model_version_ = 0;
  std::deque<Answer> answers_;    // the last `window_` answers
  std::deque<Answer> published_;  // the window as it was at the last publication
  size_t since_published_ = 0;
};

// Validation's figures as training records them in the model file's metadata (conformal.validation), the mean set
// size that of the sets for `alpha` ("0.05"); `known` false when absent.
DriftReference drift_reference(const nlohmann::json& metadata, size_t class_count, const std::string& alpha);

}  // namespace mriscan
