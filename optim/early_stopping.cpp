// EarlyStopping: the Keras on_epoch_end logic (see the header for the rules).
#include "optim/early_stopping.h"

#include <limits>
#include <stdexcept>
#include <string>

#include "optim/reduce_lr_on_plateau.h"  // best_to_json / best_from_json

namespace mriscan {

EarlyStopping::EarlyStopping(const EarlyStoppingOptions& options)
    : options_(options), best_(std::numeric_limits<float>::infinity()) {
  if (options.patience < 0) throw std::invalid_argument("EarlyStopping: patience must be >= 0");
  if (options.min_delta < 0.0f) throw std::invalid_argument("EarlyStopping: min_delta must be >= 0");
}

bool EarlyStopping::step(float val_loss) {
  const int epoch = epoch_++;
  wait_ += 1;
  is_best_ = val_loss < best_ - options_.min_delta;
  if (is_best_) {
    best_ = val_loss;
    best_epoch_ = epoch;
    wait_ = 0;
  }
  // Keras also requires epoch > 0, so patience 0 never stops on the first epoch.
  if (wait_ >= options_.patience && epoch > 0) {
    if (stopped_epoch_ < 0) stopped_epoch_ = epoch;
    return true;
  }
  return false;
}

nlohmann::json EarlyStopping::state() const {
  return {{"best", best_to_json(best_)}, {"best_epoch", best_epoch_}, {"epoch", epoch_},
          {"wait", wait_},               {"stopped_epoch", stopped_epoch_}, {"is_best", is_best_}};
}

void EarlyStopping::load_state(const nlohmann::json& state) {
  for (const char* field : {"best", "best_epoch", "epoch", "wait", "stopped_epoch", "is_best"})
    if (!state.contains(field)) throw std::runtime_error(std::string("EarlyStopping state: missing field '") + field + "'");
  best_ = best_from_json(state["best"]);
  best_epoch_ = state["best_epoch"].get<int>();
  epoch_ = state["epoch"].get<int>();
  wait_ = state["wait"].get<int>();
  stopped_epoch_ = state["stopped_epoch"].get<int>();
  is_best_ = state["is_best"].get<bool>();
}

}  // namespace mriscan
