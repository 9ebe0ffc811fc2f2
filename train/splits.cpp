// Training / validation / test samples of a run (see the header).
#include "train/splits.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

namespace mriscan {

namespace fs = std::filesystem;

std::vector<Sample> cap_per_class(const std::vector<Sample>& samples, int num_classes, int cap) {
  if (cap <= 0) return samples;
  std::vector<int> taken(num_classes, 0);
  std::vector<Sample> kept;
  for (const Sample& s : samples)
    if (taken[s.label]++ < cap) kept.push_back(s);
  return kept;
}

Splits load_splits(const TrainConfig& config) {
  const fs::path root(config.data_dir);
  const bool has_split_folders = fs::is_directory(root / "Training");
  Dataset training = scan_dataset((has_split_folders ? root / "Training" : root).string());
  Splits splits;
  splits.class_names = training.class_names;
  splits.warnings = training.warnings;
  const int k = static_cast<int>(splits.class_names.size());
  // Cap after splitting, so quick runs keep the stratification; the cap uses the split seed's order.
  auto [train, validation] = stratified_split(training.samples, k, config.val_fraction, config.seed);
  const int val_cap = config.max_samples_per_class > 0
                          ? std::max(1, static_cast<int>(config.max_samples_per_class * config.val_fraction))
                          : 0;
  splits.train = cap_per_class(train, k, config.max_samples_per_class);
  splits.validation = cap_per_class(validation, k, val_cap);
  for (const Sample& extra : config.extra_training_samples) {
    if (extra.label < 0 || extra.label >= k) throw std::runtime_error("extra sample with invalid label: " + extra.path);
    splits.train.push_back(extra);
  }
  if (config.evaluate_test && has_split_folders && fs::is_directory(root / "Testing"))
    splits.test = cap_per_class(scan_dataset((root / "Testing").string(), splits.class_names).samples, k,
                                config.max_samples_per_class);
  if (splits.train.empty() || splits.validation.empty())
    throw std::runtime_error("not enough images in " + config.data_dir + " for a training and a validation split");
  return splits;
}

}  // namespace mriscan
