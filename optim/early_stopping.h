// EarlyStopping with Keras semantics (tf.keras.callbacks.EarlyStopping, mode "min", no baseline), monitoring
// the validation loss once per epoch:
//
//   wait += 1
//   if val_loss < best - min_delta:  best = val_loss, best_epoch = epoch, wait = 0   (a new best)
//   stop when wait >= patience (and not on the very first epoch)
//
// So with patience 3 and a best at epoch 4, epochs 5, 6, 7 without improvement stop training at epoch 7.
// `restore_best` is a flag for the caller: when stopping, reload the weights saved at best_epoch (the trainer's
// BestCheckpoint, optim/checkpoint.h, applies the same rule and keeps that file). This class never touches weights.
#pragma once

#include <nlohmann/json.hpp>

namespace mriscan {

struct EarlyStoppingOptions {
  int patience = 5;
  float min_delta = 0.0f;
  bool restore_best = true;
};

class EarlyStopping {
 public:
  explicit EarlyStopping(const EarlyStoppingOptions& options);

  // Call once per epoch; epochs are numbered 0, 1, 2, ... by call order. Returns true when training should stop.
  bool step(float val_loss);

  bool is_best() const { return is_best_; }  // whether the last step's value was a new best
  float best() const { return best_; }       // +inf before the first step
  int best_epoch() const { return best_epoch_; }  // -1 before the first step
  int epochs_seen() const { return epoch_; }
  int wait() const { return wait_; }
  bool stopped() const { return stopped_epoch_ >= 0; }
  int stopped_epoch() const { return stopped_epoch_; }  // -1 while running
  bool restore_best() const { return options_.restore_best; }

  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);  // throws std::runtime_error naming a missing field

 private:
  EarlyStoppingOptions options_;
  float best_;
  int best_epoch_ = -1;
  int epoch_ = 0;  // index of the next epoch
  int wait_ = 0;
  int stopped_epoch_ = -1;
  bool is_best_ = false;
};

}  // namespace mriscan
