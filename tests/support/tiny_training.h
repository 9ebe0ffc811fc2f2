// The tiny training run the trainer tests share: real scans from ../shared, 10 per class, MobileNetV2 width 0.35
// at 64x64, batch 8, no Testing evaluation. Seconds per epoch, yet every stage of the pipeline runs.
// What it is not: a recipe (see README for the measured one).
#pragma once

#include <string>

#include "train/train_config.h"

namespace mriscan {

inline TrainConfig tiny_training(const std::string& data_dir, const std::string& out_dir, int epochs) {
  TrainConfig config;
  config.data_dir = data_dir;
  config.out_dir = out_dir;
  config.epochs = epochs;
  config.batch_size = 8;
  config.image_size = 64;
  config.width_mult = 0.35f;
  config.max_samples_per_class = 10;
  config.val_fraction = 0.3;
  config.seed = 7;
  config.evaluate_test = false;
  return config;
}

}  // namespace mriscan
