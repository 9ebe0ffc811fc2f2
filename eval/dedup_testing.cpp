// without_training_copies: the data check's de-duplicated Testing list applied to evaluated rows (see the header).
#include "eval/dedup_testing.h"

#include <filesystem>
#include <set>

#include "data/data_check.h"

namespace mriscan {

std::optional<InferenceOutput> without_training_copies(const InferenceOutput& test, const std::string& data_dir) {
  namespace fs = std::filesystem;
  const DataCheckReport report = run_data_check({.root = data_dir});
  if (report.training_split.empty() || report.testing_split.empty()) return std::nullopt;
  std::set<std::string> kept;
  for (int i : report.dedup_testing) kept.insert(fs::weakly_canonical(report.files[i].path).string());
  std::vector<size_t> rows;
  for (size_t i = 0; i < test.labels.size(); ++i)
    if (kept.count(fs::weakly_canonical(test.paths[i]).string())) rows.push_back(i);
  return select_rows(test, rows);
}

}  // namespace mriscan
