// ood_report: verdicts on scans and generated negatives, tallied (see the header).
#include "eval/ood_report.h"

#include <algorithm>
#include <cstdio>

#include "data/synthetic_negatives.h"
#include "infer/calibration.h"

namespace mriscan {

namespace {

// The temperature-scaled top probability of every row of logits (N, K).
std::vector<float> top_confidences(const Tensor& logits, double temperature) {
  const Tensor probs = apply_temperature(logits, temperature);  // (N, K)
  const int64_t k = probs.dim(1);
  std::vector<float> top;
  for (int64_t i = 0; i < probs.dim(0); ++i)
    top.push_back(*std::max_element(probs.data() + i * k, probs.data() + (i + 1) * k));
  return top;
}

nlohmann::json distribution(std::vector<float> values) {
  if (values.empty()) return {{"count", 0}};
  std::sort(values.begin(), values.end());
  auto at = [&](double q) { return values[static_cast<size_t>(q * static_cast<double>(values.size() - 1) + 0.5)]; };
  double sum = 0.0;
  for (float v : values) sum += v;
  return {
      {"count", values.size()}, {"mean", sum / values.size()}, {"p05", at(0.05)}, {"p50", at(0.5)}, {"p95", at(0.95)}};
}

// The statistic a reason line names ("colourfulness 0.31 above 0.04" -> "colourfulness"; "features ..." -> "features").
std::string reason_kind(const std::string& reason) { return reason.substr(0, reason.find(' ')); }

}  // namespace

nlohmann::json ood_report(MobileNetV2& model, const OodCheck& check, double temperature, int image_size,
                          const std::map<std::string, const InferenceOutput*>& scans, int negatives_per_kind) {
  nlohmann::json report;
  report["target_rate"] = check.target_rate();
  report["feature_threshold"] = check.features().threshold();
  if (check.inputs())
    for (int i = 0; i < ImageStatistics::kCount; ++i)
      report["input_ranges"][ImageStatistics::kNames[i]] = {check.inputs()->lower(i), check.inputs()->upper(i)};
  std::map<std::string, std::vector<float>> confidence;  // "scans_flagged", ... -> values

  for (const auto& [name, out] : scans) {
    const std::vector<OodVerdict> verdicts = check.check(out->features, out->statistics);
    const std::vector<float> top = top_confidences(out->logits, temperature);
    int flagged = 0;
    for (size_t i = 0; i < verdicts.size(); ++i) {
      flagged += verdicts[i].out_of_distribution;
      confidence[verdicts[i].out_of_distribution ? "scans_flagged" : "scans_unflagged"].push_back(top[i]);
    }
    report["scans"][name] = {{"images", verdicts.size()},
                             {"flagged", flagged},
                             {"rate", verdicts.empty() ? 0.0 : double(flagged) / verdicts.size()}};
  }

  for (NegativeKind kind : all_negative_kinds()) {
    std::vector<Image> images;
    for (int seed = 0; seed < negatives_per_kind; ++seed) images.push_back(make_negative(kind, seed, image_size));
    const InferenceOutput out = run_inference_on_images(model, images, image_size);
    const std::vector<OodVerdict> verdicts = check.check(out.features, out.statistics);
    const std::vector<float> top = top_confidences(out.logits, temperature);
    int flagged = 0;
    nlohmann::json reasons = nlohmann::json::object();
    for (size_t i = 0; i < verdicts.size(); ++i) {
      flagged += verdicts[i].out_of_distribution;
      for (const std::string& reason : verdicts[i].reasons)
        reasons[reason_kind(reason)] = reasons.value(reason_kind(reason), 0) + 1;
      confidence[verdicts[i].out_of_distribution ? "negatives_flagged" : "negatives_unflagged"].push_back(top[i]);
    }
    report["negatives"][negative_kind_name(kind)] = {{"images", verdicts.size()},
                                                     {"flagged", flagged},
                                                     {"rate", double(flagged) / verdicts.size()},
                                                     {"reasons", reasons}};
  }
  for (const char* key : {"scans_unflagged", "scans_flagged", "negatives_unflagged", "negatives_flagged"})
    report["confidence"][key] = distribution(confidence[key]);
  return report;
}

std::string format_ood_table(const nlohmann::json& report) {
  char line[160];
  std::snprintf(line, sizeof line, "out-of-distribution check (thresholds chosen to flag %.1f%% of validation scans)\n",
                100.0 * report.value("target_rate", 0.0));
  std::string text = std::string(line) + "  input                images  flagged    rate\n";
  auto row = [&](const std::string& name, const nlohmann::json& r) {
    std::snprintf(line, sizeof line, "  %-20s %6d  %7d  %5.1f%%\n", name.c_str(), r.value("images", 0),
                  r.value("flagged", 0), 100.0 * r.value("rate", 0.0));
    text += line;
  };
  if (report.contains("scans"))
    for (const auto& [name, r] : report["scans"].items()) row("scans: " + name, r);
  if (report.contains("negatives"))
    for (const auto& [name, r] : report["negatives"].items()) row(name, r);
  text += "  top-class confidence    count   mean    p05    p50    p95\n";
  for (const auto& [name, d] : report["confidence"].items()) {
    if (d.value("count", 0) == 0) continue;
    std::snprintf(line, sizeof line, "  %-22s %6d  %5.3f  %5.3f  %5.3f  %5.3f\n", name.c_str(), d.value("count", 0),
                  d.value("mean", 0.0), d.value("p05", 0.0), d.value("p50", 0.0), d.value("p95", 0.0));
    text += line;
  }
  return text;
}

}  // namespace mriscan
