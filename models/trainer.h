// Trainer: the fine-tuning loop behind `mriscan train` and the server's background retraining.
//
// Reads like llm.c's main: for each epoch, for each batch: forward -> loss -> zero_grad -> backward -> optimizer
// step; then validation, ReduceLROnPlateau, EarlyStopping and best-checkpoint saving on validation loss. After
// training: temperature scaling and the OOD detector are fitted on the validation split, the best model is written
// to RUNDIR/model.safetensors with its metadata, and the test split (if given) is evaluated once, never used to
// choose anything. Every epoch's state is checkpointed to RUNDIR/resume/ so `resume` continues exactly.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/dataset.h"

namespace mriscan {

struct TrainConfig {
  std::string data_dir;      // dataset root with Training/ (and optionally Testing/), or a Training folder
  std::string weights;       // initial weights (imported ImageNet backbone or a previous model); empty = random
  std::string out_dir;       // RUNDIR
  std::string resume_dir;    // continue this run (ignores the fields above except epochs)
  int epochs = 15;
  int batch_size = 32;
  int image_size = 224;
  float width_mult = 1.0f;
  std::string optimizer = "adamw";  // adamw | adam | sgd
  double learning_rate = 1e-3;
  double weight_decay = 1e-4;
  double label_smoothing = 0.1;
  int frozen_blocks = 0;      // features.0 .. features.(k-1) frozen
  bool cache_frozen = false;  // compute the frozen prefix once per image (requires augment == false)
  bool augment = true;
  double val_fraction = 0.15;
  int patience = 5;           // EarlyStopping
  int lr_patience = 3;        // ReduceLROnPlateau
  double lr_factor = 0.5;
  uint32_t seed = 42;
  int threads = 0;            // 0 = all cores
  int max_samples_per_class = 0;  // 0 = all (quick runs and tests)
  std::vector<Sample> extra_training_samples;  // uploads (server), appended to the training split
  bool evaluate_test = true;
};

struct TrainProgress {
  std::string phase;  // "train", "validate", "calibrate", "test", "done"
  int epoch = 0, epochs = 0;
  int batch = 0, batches = 0;
  double loss = 0.0, accuracy = 0.0;  // running averages of this epoch
  double images_per_second = 0.0;
  double eta_seconds = 0.0;
  double learning_rate = 0.0;
  nlohmann::json epoch_summary = {};  // set at the end of an epoch (train/val loss, accuracy, lr, seconds)
};

struct TrainResult {
  std::string model_path;      // RUNDIR/model.safetensors (best on validation)
  nlohmann::json metrics;      // {"validation": {...}, "test": {...}, "history": [...], ...}
  bool cancelled = false;
};

using ProgressCallback = std::function<void(const TrainProgress&)>;

// Throws std::runtime_error with a clear message on bad configuration or data. `cancel` is polled between
// batches; when set, training stops, nothing is registered, and result.cancelled is true.
TrainResult train_model(const TrainConfig& config, const ProgressCallback& progress = {},
                        const std::atomic<bool>* cancel = nullptr);

}  // namespace mriscan
