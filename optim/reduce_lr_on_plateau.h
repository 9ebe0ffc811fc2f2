// ReduceLROnPlateau with Keras semantics (tf.keras.callbacks.ReduceLROnPlateau, mode "min"), monitoring the
// validation loss once per epoch:
//
//   improvement:  val_loss < best - min_delta   -> best = val_loss, wait = 0
//   cooldown:     while cooldown_counter > 0, each epoch decrements it and resets wait (no waiting counts)
//   otherwise:    wait += 1; when wait >= patience and lr > min_lr:
//                   lr = max(lr * factor, min_lr), wait = 0, cooldown_counter = cooldown
//
// As in Keras, the cooldown check comes first in an epoch, so the epoch that ends a cooldown can already count
// towards patience, and a reduction never happens while lr is already at min_lr.
// What it is not: an optimizer; `step` returns the new lr and the caller applies it (set_learning_rate).
#pragma once

#include <nlohmann/json.hpp>

namespace mriscan {

struct ReduceLROnPlateauOptions {
  float factor = 0.1f;    // new_lr = lr * factor, in (0, 1)
  int patience = 10;      // epochs without improvement before a reduction
  int cooldown = 0;       // epochs after a reduction during which waiting does not count
  float min_lr = 0.0f;    // lower bound of the learning rate
  float min_delta = 1e-4f;  // an improvement must beat best by more than this
};

class ReduceLROnPlateau {
 public:
  explicit ReduceLROnPlateau(const ReduceLROnPlateauOptions& options);

  // Call once per epoch with that epoch's validation loss and the lr used for it; returns the lr to use next.
  float step(float val_loss, float current_lr);

  float best() const { return best_; }  // +inf before the first step
  int wait() const { return wait_; }
  int cooldown_counter() const { return cooldown_counter_; }
  bool in_cooldown() const { return cooldown_counter_ > 0; }

  // The mutable state only ({"best", "wait", "cooldown_counter"}); options come from the constructor.
  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);  // throws std::runtime_error naming a missing/invalid field

 private:
  ReduceLROnPlateauOptions options_;
  float best_;
  int wait_ = 0;
  int cooldown_counter_ = 0;
};

// JSON cannot hold infinities: a best of +inf ("nothing seen yet") is written as null and read back as +inf.
nlohmann::json best_to_json(float best);
float best_from_json(const nlohmann::json& value);

}  // namespace mriscan
