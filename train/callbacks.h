// The end-of-epoch decisions of a run, on the validation loss: BestCheckpoint (save the best model so far),
// ReduceLROnPlateau (the next learning rate, under the plateau schedule) and EarlyStopping (whether to go on), in that
// order, with their state as one JSON object for the resume file. Keras calls these callbacks; here they are three
// objects from optim/. What it is not: the optimizer step or the validation pass (train/trainer.cpp).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "optim/checkpoint.h"
#include "optim/early_stopping.h"
#include "optim/optimizer.h"
#include "optim/reduce_lr_on_plateau.h"
#include "train/train_config.h"

namespace mriscan {

class EpochCallbacks {
 public:
  // `save_best(tmp_path, epoch)` writes the model file of the best epoch (BestCheckpoint publishes it at
  // best_path). Without `write_files` (every rank but 0 of a data-parallel run) nothing is written; the same
  // rule still tells which epoch is best.
  EpochCallbacks(const TrainConfig& config, std::string best_path, BestCheckpoint::WriteFn save_best,
                 bool write_files = true);

  // After epoch `epoch` (0-based) with validation loss `val_loss`: saves a new best, sets the optimizer's next
  // learning rate, and counts towards early stopping. Returns true when this epoch was a new best.
  bool on_epoch_end(int epoch, float val_loss, Optimizer& optimizer);

  bool should_stop() const { return early_stopping_.stopped(); }
  int best_epoch() const { return early_stopping_.best_epoch(); }  // 0-based, -1 before the first
  const std::string& best_path() const { return best_path_; }

  nlohmann::json state() const;  // {"plateau", "early_stopping", "best"}
  void load_state(const nlohmann::json& state);

 private:
  ReduceLROnPlateau plateau_;
  bool plateau_sets_lr_;  // lr_schedule "plateau"; under "cosine" the trainer sets the rate every step
  EarlyStopping early_stopping_;
  std::string best_path_;
  std::optional<BestCheckpoint> best_;  // empty without write_files
};

}  // namespace mriscan
