// The audit row, drift observation and review offer of each answer; see answer_record.h.
#include "server/answer_record.h"

namespace mriscan {
namespace {

// The set of the server's level (class indices; the Classifier puts it first), when the model has conformal scores
// and the answer was not withheld (a withheld answer shows no set, as it shows no class).
std::optional<std::vector<int>> prediction_set(const Prediction& prediction) {
  if (prediction.out_of_distribution || prediction.prediction_sets.empty()) return std::nullopt;
  return prediction.prediction_sets.front().classes;
}

}  // namespace

nlohmann::json prediction_set_names(const Prediction& prediction, const std::vector<std::string>& class_names) {
  std::optional<std::vector<int>> set = prediction_set(prediction);
  if (!set) return nullptr;
  nlohmann::json names = nlohmann::json::array();
  for (int k : *set) names.push_back(class_names.at(k));
  return names;
}

void record_answers(ServerContext& context, const std::string& route, const std::string& request_id,
                    const ActiveModel& model, const std::vector<AnsweredScan>& scans) {
  const std::string at = utc_now_iso8601_ms();
  const auto& names = model.classifier->class_names();
  for (const AnsweredScan& scan : scans) {
    const Prediction& p = *scan.prediction;
    const nlohmann::json set = prediction_set_names(p, names);
    const std::optional<size_t> set_size = set.is_array() ? std::optional<size_t>(set.size()) : std::nullopt;
    const std::string answer = p.out_of_distribution ? "" : p.class_name;
    context.audit.record({at, request_id, route, context.replica, model.number, scan.input_sha256, answer,
                          p.out_of_distribution, set, p.confidence});
    context.drift.observe(model.number, p.out_of_distribution, p.class_index, p.confidence,
                          set_size ? std::optional<int>(static_cast<int>(*set_size)) : std::nullopt);
    const std::string reason = context.reviews.reason_for(p.out_of_distribution, p.confidence, set_size);
    if (!reason.empty() && scan.image)
      context.reviews.offer({at, request_id, model.number, answer, p.out_of_distribution, set, p.confidence, reason,
                             *scan.image});
  }
}

}  // namespace mriscan
