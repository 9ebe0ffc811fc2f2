// Optimizer: the interface shared by SGD and Adam/AdamW.
//
// An optimizer is built from the model's named parameters (layers/layer.h) and, on `step()`, updates every
// parameter whose Var requires a gradient and has one (`var->grad.defined()`). Frozen parameters and
// parameters that received no gradient are left untouched, and their per-parameter state is not even
// allocated: state is created lazily on a parameter's first update, as in PyTorch, so unfreezing a block
// mid-training starts its moments (and Adam's bias correction) from zero.
//
// `state()` / `load_state()` export and import everything needed to resume a run exactly: the learning rate,
// the number of `step()` calls and the per-parameter tensors, named "<parameter name>.<slot>"
// ("features.0.0.weight.exp_avg"). They are plain F32 Tensors, so a trainer can store them in a safetensors
// file next to the weights (step count and learning rate in its metadata).
// What it is not: a gradient clipper, a scheduler (see reduce_lr_on_plateau.h) or a zero_grad (engine/tape.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "layers/layer.h"

namespace mriscan {

struct OptimizerState {
  float learning_rate = 0.0f;
  int64_t step_count = 0;                 // number of step() calls so far
  std::map<std::string, Tensor> tensors;  // "<param name>.<slot>" -> state tensor (deep copies)
};

// A per-parameter state slot: either a tensor of the parameter's shape, or a scalar (shape ()).
struct StateSlot {
  std::string name;
  bool scalar = false;
};

class Optimizer {
 public:
  Optimizer(std::vector<NamedParameter> params, float learning_rate);
  virtual ~Optimizer() = default;

  // Applies one update to every trainable parameter that has a gradient. Does not zero the gradients.
  void step();

  void set_learning_rate(float learning_rate) { learning_rate_ = learning_rate; }
  float learning_rate() const { return learning_rate_; }
  int64_t step_count() const { return step_count_; }
  const std::vector<NamedParameter>& parameters() const { return params_; }

  // Deep copies, so the caller may keep training and later roll back to the snapshot.
  OptimizerState state() const;
  // Replaces the whole state. Throws std::runtime_error naming the entry if it belongs to no parameter, has a
  // slot this optimizer does not know, or has the wrong shape; on error the optimizer is unchanged.
  void load_state(const OptimizerState& state);

 protected:
  // One update of parameter `index`; param and grad have the same shape. Called only when the update applies.
  virtual void update(size_t index, Tensor& param, const Tensor& grad) = 0;
  // The state slots this optimizer keeps per parameter (for export/import validation).
  virtual std::vector<StateSlot> state_slots() const = 0;

  // The slot's tensor for parameter `index`, allocated (zero-filled) on first use.
  Tensor& slot(size_t index, const std::string& slot_name);

  std::vector<NamedParameter> params_;
  float learning_rate_;
  int64_t step_count_ = 0;

 private:
  std::vector<std::map<std::string, Tensor>> slots_;  // per parameter: slot name -> tensor
};

}  // namespace mriscan
