// The sliding window and the drift rule; see drift_monitor.h.
#include "server/drift_monitor.h"

#include <cmath>

namespace mriscan {

DriftMonitor::DriftMonitor(size_t window, DriftThresholds thresholds) : window_(window), thresholds_(thresholds) {}

void DriftMonitor::observe(int64_t model_version, bool withheld, int class_index, double confidence,
                           std::optional<int> set_size) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (model_version != model_version_) {
    answers_.clear(), published_.clear();
    model_version_ = model_version, since_published_ = 0;
  }
  answers_.push_back({withheld, class_index, confidence, set_size});
  if (answers_.size() > window_) answers_.pop_front();
  if (++since_published_ >= static_cast<size_t>(thresholds_.min_answers)) published_ = answers_, since_published_ = 0;
}

DriftSnapshot DriftMonitor::snapshot(int64_t model_version, const DriftReference& reference,
                                     const std::vector<std::string>& class_names) const {
  const size_t class_count = class_names.size();
  DriftSnapshot s;
  s.model_version = model_version, s.window = window_, s.reference = reference, s.class_names = class_names;
  s.class_mix.assign(class_count, 0.0);
  std::lock_guard<std::mutex> lock(mutex_);
  if (model_version != model_version_ || published_.empty()) return s;
  size_t withheld = 0, answered = 0, with_sets = 0;
  double confidence = 0.0, set_sizes = 0.0;
  for (const Answer& a : published_) {
    if (a.withheld) {
      ++withheld;
      continue;
    }
    ++answered;
    confidence += a.confidence;
    if (a.class_index >= 0 && static_cast<size_t>(a.class_index) < class_count) s.class_mix[a.class_index] += 1.0;
    if (a.set_size) ++with_sets, set_sizes += *a.set_size;
  }
  s.answers = published_.size();
  s.withheld_share = double(withheld) / s.answers;
  if (answered > 0) {
    s.mean_confidence = confidence / answered;
    for (double& share : s.class_mix) share /= answered;
  }
  if (with_sets > 0) s.mean_set_size = set_sizes / with_sets;
  if (!reference.known || s.answers < static_cast<size_t>(thresholds_.min_answers)) return s;
  // The rule of the header comment, each part with its reason.
  if (reference.class_mix.size() == class_count && answered > 0) {
    double distance = 0.0;
    for (size_t k = 0; k < class_count; ++k) distance += std::abs(s.class_mix[k] - reference.class_mix[k]);
    s.class_mix_distance = 0.5 * distance;
    if (*s.class_mix_distance > thresholds_.class_mix_distance) s.reasons.push_back("class mix");
  }
  if (s.withheld_share > reference.withheld_share + thresholds_.withheld_rise) s.reasons.push_back("withheld share");
  if (answered > 0 && s.mean_confidence < reference.mean_confidence - thresholds_.confidence_drop)
    s.reasons.push_back("mean confidence");
  if (s.mean_set_size && reference.mean_set_size &&
      *s.mean_set_size > *reference.mean_set_size + thresholds_.set_size_rise)
    s.reasons.push_back("mean set size");
  s.drift = !s.reasons.empty();
  return s;
}

nlohmann::json DriftSnapshot::to_json() const {
  auto by_class = [&](const std::vector<double>& shares) {
    nlohmann::json out = nlohmann::json::object();
    for (size_t k = 0; k < shares.size() && k < class_names.size(); ++k) out[class_names[k]] = shares[k];
    return out;
  };
  auto optional = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  nlohmann::json body = {{"window", window},
                         {"answers", answers},
                         {"withheld_share", withheld_share},
                         {"class_mix", by_class(class_mix)},
                         {"mean_confidence", mean_confidence},
                         {"mean_set_size", optional(mean_set_size)},
                         {"class_mix_distance", optional(class_mix_distance)},
                         {"drift", drift},
                         {"reasons", reasons}};
  body["reference"] = reference.known ? nlohmann::json{{"class_mix", by_class(reference.class_mix)},
                                                       {"withheld_share", reference.withheld_share},
                                                       {"mean_confidence", reference.mean_confidence},
                                                       {"mean_set_size", optional(reference.mean_set_size)}}
                                      : nlohmann::json();
  return body;
}

DriftReference drift_reference(const nlohmann::json& metadata, size_t class_count, const std::string& alpha) {
  DriftReference reference;
  const nlohmann::json* validation = nullptr;
  if (metadata.contains("conformal") && metadata["conformal"].is_object() &&
      metadata["conformal"].contains("validation"))
    validation = &metadata["conformal"]["validation"];
  if (!validation || !validation->is_object()) return reference;
  const nlohmann::json& v = *validation;
  if (!v.contains("class_mix") || !v["class_mix"].is_array() || v["class_mix"].size() != class_count ||
      !v.contains("mean_confidence") || !v["mean_confidence"].is_number())
    return reference;
  for (const nlohmann::json& share : v["class_mix"]) reference.class_mix.push_back(share.get<double>());
  reference.mean_confidence = v["mean_confidence"].get<double>();
  reference.withheld_share = v.value("withheld_share", 0.0);
  const nlohmann::json sizes = v.value("mean_set_size", nlohmann::json());  // per alpha ("0.05": 1.3)
  if (sizes.is_object() && sizes.contains(alpha) && sizes[alpha].is_number())
    reference.mean_set_size = sizes[alpha].get<double>();
  reference.known = true;
  return reference;
}

}  // namespace mriscan
