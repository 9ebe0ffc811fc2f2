// BestCheckpoint: keep the file of the best epoch so far, judged by a monitored value where lower is better
// (the validation loss), in the spirit of Keras' ModelCheckpoint(save_best_only=True).
//
//   improvement:  value < best - min_delta   -> save, best = value, best_epoch = epoch
//
// Saving is atomic: the writer gets a temporary "<path>.tmp.<pid>.<n>", the result is fsynced and renamed over <path>
// (io/atomic_file.h), so a crash mid-save keeps the previous best intact. The trainer writes a model file there.
//
// Also here: the training state (weights, buffers, optimizer state and the callbacks' JSON) as one safetensors
// file, for an exact resume:
//   tensors   "param.<name>", "buffer.<name>" (engine layouts), "optim.<name>.<slot>" (OptimizerState)
//   metadata  "trainer_state": the caller's JSON plus optimizer_step_count and optimizer_learning_rate
// One file, so a kill mid-write never pairs the weights of one epoch with the optimizer state of another.
// What it is not: a training loop or an early stopper (see early_stopping.h); restoring the best weights is the
// caller's (the trainer loads best.safetensors at the end).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/layer.h"
#include "optim/optimizer.h"

namespace mriscan {

class BestCheckpoint {
 public:
  // `write` receives the temporary path and the epoch being saved, and must create the file there (throwing on
  // failure).
  using WriteFn = std::function<void(const std::string& tmp_path, int epoch)>;

  BestCheckpoint(std::string path, WriteFn write, float min_delta = 0.0f);

  // Call once per epoch. Returns true when `value` is a new best and the file was written. A write failure
  // throws and leaves both the previous file and the best value unchanged.
  bool observe(float value, int epoch);

  // Whether observe() would save this value, without saving.
  bool is_improvement(float value) const { return value < best_ - min_delta_; }

  const std::string& path() const { return path_; }
  bool has_best() const { return best_epoch_ >= 0; }
  float best() const { return best_; }  // +inf before the first save
  int best_epoch() const { return best_epoch_; }  // -1 before the first save

  nlohmann::json state() const;  // {"best", "best_epoch"}
  void load_state(const nlohmann::json& state);

 private:
  std::string path_;
  WriteFn write_;
  float min_delta_;
  float best_;
  int best_epoch_ = -1;
};

// Writes the training state described above to `path` atomically.
void save_training_state(const std::string& path, const std::vector<NamedParameter>& params,
                         const std::vector<NamedBuffer>& buffers, const OptimizerState& optimizer,
                         const nlohmann::json& trainer_state);

// Reads it back: fills params (var->value) and buffers in place and returns the optimizer state and the caller's
// JSON. Throws std::runtime_error naming the file and the tensor when one is missing or mis-shaped; everything is
// checked before anything is written, so a failed load changes nothing.
struct TrainingState {
  OptimizerState optimizer;
  nlohmann::json trainer_state;
};
TrainingState load_training_state(const std::string& path, const std::vector<NamedParameter>& params,
                                  const std::vector<NamedBuffer>& buffers);

}  // namespace mriscan
