// Trainer: the fine-tuning loop behind `mriscan train` and the server's background retraining.
//
// Reads like llm.c's main: for each epoch, for each batch: forward -> loss -> gradients set to none -> backward ->
// optimizer step; then validation and the end-of-epoch callbacks on the validation loss (train/callbacks.h:
// ReduceLROnPlateau, EarlyStopping, the best checkpoint RUNDIR/best.safetensors). After training, the best model
// is calibrated and written with its metrics (train/final_model.h). Every epoch's state is saved to
// RUNDIR/resume/state.safetensors (optim/checkpoint.h) so `--resume` continues exactly. With --ema, a moving
// average of the weights (optim/weight_average.h) is updated after every step, and it is the average that is
// validated, checkpointed and kept.
// The pieces: train/train_config.h (the settings), train/training_run.h (preparing a run: data, model, optimizer,
// resume and the optional steps), train/epoch.h (one epoch's steps), train/splits.h (the data),
// train/frozen_prefix_cache.h, train/final_model.h.
#pragma once

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/train_config.h"

namespace mriscan {

struct TrainProgress {
  // "cache" (filling the frozen-prefix cache), "train", "epoch" (its end), "calibrate", "test", "done"
  std::string phase;
  int epoch = 0, epochs = 0;
  int batch = 0, batches = 0;
  double loss = 0.0, accuracy = 0.0;  // running averages of this epoch
  double images_per_second = 0.0;
  double eta_seconds = 0.0;
  double learning_rate = 0.0;
  nlohmann::json epoch_summary = {};  // set at the end of an epoch (train/val loss, accuracy, lr, seconds)
};

struct TrainResult {
  std::string model_path;  // RUNDIR/model.safetensors (best on validation)
  nlohmann::json metrics;  // {"validation": {...}, "test": {...}, "history": [...], ...}
  bool cancelled = false;
  // Sum of every parameter and buffer after the last epoch, before the best epoch's weights are loaded (in
  // double): the same on every process of a data-parallel run, which is how the tests check that they agree.
  double weights_checksum = 0.0;
};

using ProgressCallback = std::function<void(const TrainProgress&)>;

// Throws std::runtime_error with a clear message on bad configuration or data. `cancel` is polled between
// batches; when set, training stops, nothing is registered, and result.cancelled is true.
TrainResult train_model(const TrainConfig& config, const ProgressCallback& progress = {},
                        const std::atomic<bool>* cancel = nullptr);

}  // namespace mriscan
