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

EpochCallbacks::EpochCallbacks(const TrainConfig& config, std::string best_path, BestCheckpoint::WriteFn save_best)
    : plateau_(plateau_options(config)),
      early_stopping_(EarlyStoppingOptions{.patience = config.patience}),
      best_(std::move(best_path), std::move(save_best)) {}

bool EpochCallbacks::on_epoch_end(int epoch, float val_loss, Optimizer& optimizer) {
  // The checkpoint first: if saving fails (a full disk), the exception leaves the schedule and the stopper as they
  // were, and the resume file of the previous epoch still describes the run.
  const bool is_best = best_.observe(val_loss, epoch);
  optimizer.set_learning_rate(plateau_.step(val_loss, optimizer.learning_rate()));
  early_stopping_.step(val_loss);
  return is_best;
}

nlohmann::json EpochCallbacks::state() const {
  return {{"plateau", plateau_.state()}, {"early_stopping", early_stopping_.state()}, {"best", best_.state()}};
}

void EpochCallbacks::load_state(const nlohmann::json& state) {
  plateau_.load_state(state.at("plateau"));
  early_stopping_.load_state(state.at("early_stopping"));
  // Resume files written before the checkpoint's state was saved: the stopper tracked the same best (same rule).
  best_.load_state(state.contains("best") ? state.at("best") : state.at("early_stopping"));
}

}  // namespace mriscan
