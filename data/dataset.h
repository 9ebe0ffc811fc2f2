// Datasets on disk: a split folder of class folders (`Training/glioma/*.jpg`, ...) turned into labelled samples,
// a reproducible stratified train/validation split, and the location of the shared data folder.
//
// What it is: file listing and labelling only; no pixels are read here (see data/data_loader.h). Listing order
// is fully deterministic (class folders and files sorted by name), and the split uses our own Fisher-Yates on
// std::mt19937 (data/random.h), so the same seed gives the same validation set on every machine.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mriscan {

struct Sample {
  std::string path;  // full path of the image file
  int label = -1;    // index into Dataset::class_names
};

struct Dataset {
  std::string root;                      // the split folder that was scanned
  std::vector<std::string> class_names;  // label -> name
  std::vector<Sample> samples;           // sorted by label, then file name
  std::vector<std::string> warnings;     // empty class folders, skipped non-image files, ...

  std::vector<int> class_counts() const;  // (K)
};

// True for .jpg .jpeg .png .bmp, any letter case.
bool is_image_file(const std::string& path);

// Lists split_dir/<class>/<image>. Class names are the sorted sub-folder names, or exactly `class_names` when given
// (then a folder not in the list is an error naming it, and a listed class without a folder is a warning).
// Throws std::runtime_error naming the folder if split_dir does not exist or has no class folders.
Dataset scan_dataset(const std::string& split_dir, const std::vector<std::string>& class_names = {});

// Per class: shuffle that class's samples with the seed, put round(n * val_fraction) in validation (at least one
// when the class has >= 2 samples and val_fraction > 0, and never the whole class). Returns {train, validation},
// each in the input order. val_fraction must be in [0, 1).
std::pair<std::vector<Sample>, std::vector<Sample>> stratified_split(const std::vector<Sample>& samples,
                                                                     int num_classes, double val_fraction,
                                                                     uint32_t seed);

// The read-only shared folder: $MRISCAN_SHARED if set, else <repo root>/../shared (repo root = the compile-time
// MRISCAN_SOURCE_DIR). Throws std::runtime_error "mriscan: cannot find the shared data folder ..." when missing.
std::string find_shared_dir();

// find_shared_dir() + "/data/brain-tumor-mri", checked to exist.
std::string default_dataset_dir();

}  // namespace mriscan
