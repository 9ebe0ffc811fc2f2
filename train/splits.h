// The data of a training run: training, validation and (optional) test samples. Validation is carved out of
// Training (stratified, seeded), never out of Testing; Testing is only ever evaluated, never used to choose.
// What it is not: the image loader (data/data_loader.h) or the folder scanner (data/dataset.h).
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "train/train_config.h"

namespace mriscan {

struct Splits {
  std::vector<std::string> class_names;
  std::vector<Sample> train, validation, test;
  std::vector<std::string> warnings;
};

// The first `cap` samples of each class, in order (cap <= 0: all of them).
std::vector<Sample> cap_per_class(const std::vector<Sample>& samples, int num_classes, int cap);

// Reads config.data_dir (a root with Training/ [Testing/], or a Training folder alone), splits off validation
// (config.val_fraction, config.seed), applies config.max_samples_per_class and appends
// config.extra_training_samples to the training split. Throws std::runtime_error on too few images or an extra
// sample with an invalid label.
Splits load_splits(const TrainConfig& config);

}  // namespace mriscan
