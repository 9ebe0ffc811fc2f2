// ReduceLROnPlateau: the Keras on_epoch_end logic, step for step (see the header for the rules).
#include "optim/reduce_lr_on_plateau.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace mriscan {

ReduceLROnPlateau::ReduceLROnPlateau(const ReduceLROnPlateauOptions& options)
    : options_(options), best_(std::numeric_limits<float>::infinity()) {
  if (!(options.factor > 0.0f && options.factor < 1.0f))
    throw std::invalid_argument("ReduceLROnPlateau: factor must be in (0, 1), got " + std::to_string(options.factor));
  if (options.patience < 0 || options.cooldown < 0)
    throw std::invalid_argument("ReduceLROnPlateau: patience and cooldown must be >= 0");
  if (options.min_lr < 0.0f || options.min_delta < 0.0f)
    throw std::invalid_argument("ReduceLROnPlateau: min_lr and min_delta must be >= 0");
}

float ReduceLROnPlateau::step(float val_loss, float current_lr) {
  float lr = current_lr;
  if (in_cooldown()) {
    cooldown_counter_ -= 1;
    wait_ = 0;
  }
  if (val_loss < best_ - options_.min_delta) {
    best_ = val_loss;
    wait_ = 0;
  } else if (!in_cooldown()) {
    wait_ += 1;
    if (wait_ >= options_.patience && current_lr > options_.min_lr) {
      lr = std::max(current_lr * options_.factor, options_.min_lr);
      cooldown_counter_ = options_.cooldown;
      wait_ = 0;
    }
  }
  return lr;
}

nlohmann::json best_to_json(float best) {
  if (std::isinf(best)) return nullptr;
  return best;
}

float best_from_json(const nlohmann::json& value) {
  if (value.is_null()) return std::numeric_limits<float>::infinity();
  if (!value.is_number()) throw std::runtime_error("state field 'best' must be a number or null");
  return value.get<float>();
}

nlohmann::json ReduceLROnPlateau::state() const {
  return {{"best", best_to_json(best_)}, {"wait", wait_}, {"cooldown_counter", cooldown_counter_}};
}

void ReduceLROnPlateau::load_state(const nlohmann::json& state) {
  for (const char* field : {"best", "wait", "cooldown_counter"})
    if (!state.contains(field)) throw std::runtime_error(std::string("ReduceLROnPlateau state: missing field '") + field + "'");
  if (!state["wait"].is_number_integer() || !state["cooldown_counter"].is_number_integer())
    throw std::runtime_error("ReduceLROnPlateau state: 'wait' and 'cooldown_counter' must be integers");
  best_ = best_from_json(state["best"]);
  wait_ = state["wait"].get<int>();
  cooldown_counter_ = state["cooldown_counter"].get<int>();
}

}  // namespace mriscan
