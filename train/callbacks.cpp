// EpochCallbacks: best checkpoint, plateau schedule and early stopping, in that order (see the header).
#include "train/callbacks.h"

namespace mriscan {

namespace {

ReduceLROnPlateauOptions plateau_options(const TrainConfig& config) {
  ReduceLROnPlateauOptions options;
  options.factor = static_cast<float>(config.lr_factor);
  options.patience = config.lr_patience;
  options.min_lr = 1e-6f;
  return options;
}

}  // namespace

EpochCallbacks::EpochCallbacks(const TrainConfig& config, std::string best_path, BestCheckpoint::WriteFn save_best,
                               bool write_files)
    : plateau_(plateau_options(config)),
      plateau_sets_lr_(config.lr_schedule == "plateau"),
      early_stopping_(EarlyStoppingOptions{.patience = config.patience}),
      best_path_(std::move(best_path)) {
  if (write_files) best_.emplace(best_path_, std::move(save_best));
}

bool EpochCallbacks::on_epoch_end(int epoch, float val_loss, Optimizer& optimizer) {
  // The checkpoint first: if saving fails (a full disk), the exception leaves the schedule and the stopper as they
  // were, and the resume file of the previous epoch still describes the run.
  if (best_) best_->observe(val_loss, epoch);
  if (plateau_sets_lr_) optimizer.set_learning_rate(plateau_.step(val_loss, optimizer.learning_rate()));
  early_stopping_.step(val_loss);
  return early_stopping_.is_best();  // the checkpoint's rule (value < best, min_delta 0), applied by the stopper
}

nlohmann::json EpochCallbacks::state() const {
  nlohmann::json state = {{"plateau", plateau_.state()}, {"early_stopping", early_stopping_.state()}};
  if (best_) state["best"] = best_->state();
  return state;
}

void EpochCallbacks::load_state(const nlohmann::json& state) {
  plateau_.load_state(state.at("plateau"));
  early_stopping_.load_state(state.at("early_stopping"));
  // Resume files written before the checkpoint's state was saved: the stopper tracked the same best (same rule).
  if (best_) best_->load_state(state.contains("best") ? state.at("best") : state.at("early_stopping"));
}

}  // namespace mriscan
