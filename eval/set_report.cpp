// set_report: coverage, set size and singleton share of conformal sets on labelled scans (see the header).
#include "eval/set_report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "eval/metrics.h"
#include "infer/calibration.h"

namespace mriscan {

InferenceOutput answered_rows(const InferenceOutput& out, const OodCheck* ood) {
  std::vector<size_t> rows;
  if (!ood) {
    for (size_t i = 0; i < out.labels.size(); ++i) rows.push_back(i);
    return select_rows(out, rows);
  }
  const std::vector<OodVerdict> verdicts = ood->check(out.features, out.statistics);
  for (size_t i = 0; i < verdicts.size(); ++i)
    if (!verdicts[i].out_of_distribution) rows.push_back(i);
  return select_rows(out, rows);
}

nlohmann::json set_report(const ConformalSets& sets, const InferenceOutput& scans, double temperature,
                          const OodCheck* ood, const std::vector<double>& alphas) {
  const InferenceOutput answered = answered_rows(scans, ood);
  nlohmann::json report = {{"images", scans.labels.size()},
                           {"answered", answered.labels.size()},
                           {"calibration_scans", sets.n()},
                           {"levels", nlohmann::json::object()}};
  if (answered.labels.empty()) return report;
  const Tensor probabilities = apply_temperature(answered.logits, temperature);  // (A, K)
  for (double alpha : alphas) {
    const double qhat = sets.threshold(alpha);
    const SetSummary s = summarize_sets(probabilities, answered.labels, qhat);
    const auto [low, high] = wilson_interval(s.covered, s.n);
    report["levels"][alpha_key(alpha)] = {
        {"qhat", std::isfinite(qhat) ? nlohmann::json(qhat) : nlohmann::json(nullptr)},
        {"coverage", s.coverage},
        {"coverage_ci95", {low, high}},
        // 1 - alpha <= P(Y in C) < 1 - alpha + 1/(n + 1) (docs/conformal.md, section 2)
        {"guarantee", {1.0 - alpha, std::min(1.0, 1.0 - alpha + 1.0 / static_cast<double>(sets.n() + 1))}},
        {"mean_set_size", s.mean_size},
        {"singleton_share", s.singleton_share},
        {"empty_share", s.empty_share}};
  }
  return report;
}

std::string format_set_table(const nlohmann::json& report) {
  std::ostringstream out;
  out << "prediction sets on " << report.value("answered", 0) << " answered of " << report.value("images", 0)
      << " images (thresholds from " << report.value("calibration_scans", 0) << " validation scans)\n"
      << "  level   qhat      coverage  (95% CI)          guaranteed        mean size  singletons  empty\n";
  const nlohmann::json& levels = report.at("levels");
  for (auto it = levels.rbegin(); it != levels.rend(); ++it) {  // keys ascend ("0.01", "0.05"): 95% first
    const std::string& key = it.key();
    const nlohmann::json& level = it.value();
    auto pct = [&](const char* name, int i = -1) {
      return 100.0 * (i < 0 ? level[name] : level[name][i]).get<double>();
    };
    const double qhat = level["qhat"].is_null() ? INFINITY : level["qhat"].get<double>();
    char line[200];
    std::snprintf(line, sizeof line,
                  "  %-6s  %-8.4g  %6.2f%%   (%6.2f-%6.2f%%)  [%6.2f, %6.2f%%)  %9.3f  %9.2f%%  %5.2f%%\n",
                  key.c_str(), qhat, pct("coverage"), pct("coverage_ci95", 0), pct("coverage_ci95", 1),
                  pct("guarantee", 0), pct("guarantee", 1), level["mean_set_size"].get<double>(),
                  pct("singleton_share"), pct("empty_share"));
    out << line;
  }
  return out.str();
}

}  // namespace mriscan
