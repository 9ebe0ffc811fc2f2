// Listing a split folder, the stratified split, and finding the shared data folder (see dataset.h).
#include "data/dataset.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <stdexcept>

#include "data/random.h"

namespace fs = std::filesystem;

namespace mriscan {

std::vector<int> Dataset::class_counts() const {
  std::vector<int> counts(class_names.size(), 0);
  for (const Sample& sample : samples) counts.at(sample.label)++;
  return counts;
}

bool is_image_file(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

namespace {

std::vector<fs::path> sorted_entries(const fs::path& dir) {
  std::vector<fs::path> entries;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) entries.push_back(entry.path());
  std::sort(entries.begin(), entries.end());  // directory order is filesystem-dependent; sorting makes it ours
  return entries;
}

bool is_hidden(const fs::path& path) { return path.filename().string().rfind('.', 0) == 0; }

}  // namespace

Dataset scan_dataset(const std::string& split_dir, const std::vector<std::string>& class_names) {
  std::error_code error;
  if (!fs::is_directory(split_dir, error))
    throw std::runtime_error("dataset folder '" + split_dir + "' does not exist or is not a folder");

  Dataset dataset;
  dataset.root = split_dir;
  std::vector<std::string> folders;  // class folders present on disk, sorted
  for (const fs::path& entry : sorted_entries(split_dir)) {
    if (is_hidden(entry)) dataset.warnings.push_back("ignored hidden entry " + entry.string());
    else if (fs::is_directory(entry)) folders.push_back(entry.filename().string());
    else dataset.warnings.push_back("ignored file outside class folders: " + entry.string());
  }
  if (folders.empty())
    throw std::runtime_error("dataset folder '" + split_dir +
                             "' has no class folders (expected <split>/<class>/<image files>)");

  if (class_names.empty()) {
    dataset.class_names = folders;
  } else {
    dataset.class_names = class_names;
    const std::set<std::string> known(class_names.begin(), class_names.end());
    for (const std::string& folder : folders)
      if (!known.count(folder))
        throw std::runtime_error("unknown class folder '" + (fs::path(split_dir) / folder).string() +
                                 "' (the model's classes are fixed; expected one of the known class names)");
  }

  for (int label = 0; label < static_cast<int>(dataset.class_names.size()); ++label) {
    const fs::path class_dir = fs::path(split_dir) / dataset.class_names[label];
    if (!fs::is_directory(class_dir)) {
      dataset.warnings.push_back("class '" + dataset.class_names[label] + "' has no folder in " + split_dir);
      continue;
    }
    int images = 0, skipped = 0;
    std::string example_skipped;
    for (const fs::path& entry : sorted_entries(class_dir)) {
      // Hidden entries (.DS_Store, .ipynb_checkpoints/ with a copy of an image) are not samples, but are reported.
      if (!is_hidden(entry) && fs::is_regular_file(entry) && is_image_file(entry.string())) {
        dataset.samples.push_back({entry.string(), label});
        ++images;
      } else {
        if (skipped++ == 0) example_skipped = entry.filename().string();
      }
    }
    if (skipped > 0)
      dataset.warnings.push_back("skipped " + std::to_string(skipped) + " non-image or hidden entries in " +
                                 class_dir.string() + " (e.g. '" + example_skipped + "')");
    if (images == 0) dataset.warnings.push_back("class folder " + class_dir.string() + " has no images");
  }
  return dataset;
}

std::pair<std::vector<Sample>, std::vector<Sample>> stratified_split(const std::vector<Sample>& samples,
                                                                     int num_classes, double val_fraction,
                                                                     uint32_t seed) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0))
    throw std::invalid_argument("stratified_split: val_fraction must be in [0, 1), got " +
                                std::to_string(val_fraction));
  std::vector<std::vector<size_t>> by_class(num_classes);  // sample indices per class, in input order
  for (size_t i = 0; i < samples.size(); ++i) {
    const int label = samples[i].label;
    if (label < 0 || label >= num_classes)
      throw std::invalid_argument("stratified_split: sample '" + samples[i].path + "' has label " +
                                  std::to_string(label) + ", expected 0.." + std::to_string(num_classes - 1));
    by_class[label].push_back(i);
  }

  std::mt19937 rng(seed);  // one stream, classes visited in label order: fully determined by the seed
  std::vector<bool> is_val(samples.size(), false);
  for (std::vector<size_t>& indices : by_class) {
    const size_t n = indices.size();
    size_t n_val = static_cast<size_t>(std::llround(n * val_fraction));
    if (val_fraction > 0.0 && n >= 2) n_val = std::max<size_t>(n_val, 1);
    if (n_val >= n) n_val = n > 0 ? n - 1 : 0;  // keep at least one training sample per class
    fisher_yates_shuffle(indices, rng);
    for (size_t k = 0; k < n_val; ++k) is_val[indices[k]] = true;
  }

  std::pair<std::vector<Sample>, std::vector<Sample>> split;
  for (size_t i = 0; i < samples.size(); ++i) (is_val[i] ? split.second : split.first).push_back(samples[i]);
  return split;
}

std::string find_shared_dir() {
  std::error_code error;
  if (const char* env = std::getenv("MRISCAN_SHARED"); env != nullptr && *env != '\0') {
    if (!fs::is_directory(env, error))
      throw std::runtime_error(std::string("mriscan: cannot find the shared data folder: MRISCAN_SHARED='") + env +
                               "' is not a folder");
    return env;
  }
#ifdef MRISCAN_SOURCE_DIR
  const fs::path candidate = fs::weakly_canonical(fs::path(MRISCAN_SOURCE_DIR) / ".." / "shared", error);
  if (!error && fs::is_directory(candidate, error)) return candidate.string();
  const std::string looked = candidate.string();
#else
  const std::string looked = "(no MRISCAN_SOURCE_DIR compiled in)";
#endif
  throw std::runtime_error("mriscan: cannot find the shared data folder (looked for " + looked +
                           ", i.e. ../shared next to the repository); set MRISCAN_SHARED to its path");
}

std::string default_dataset_dir() {
  const fs::path dir = fs::path(find_shared_dir()) / "data" / "brain-tumor-mri";
  std::error_code error;
  if (!fs::is_directory(dir, error))
    throw std::runtime_error("mriscan: the shared folder has no dataset at " + dir.string());
  return dir.string();
}

}  // namespace mriscan
