// Optimizer base: the step loop over parameters and the generic state export/import.
#include "optim/optimizer.h"

#include <stdexcept>

namespace mriscan {

Optimizer::Optimizer(std::vector<NamedParameter> params, float learning_rate)
    : params_(std::move(params)), learning_rate_(learning_rate), slots_(params_.size()) {
  for (const NamedParameter& p : params_)
    if (!p.var || !p.var->value.defined())
      throw std::invalid_argument("Optimizer: parameter '" + p.name + "' has no value");
}

void Optimizer::step() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Variable& var = *params_[i].var;
    // Frozen, or unused by this forward pass: nothing to do (and no state gets allocated).
    if (!var.requires_grad || !var.grad.defined()) continue;
    if (var.grad.shape() != var.value.shape())
      throw std::runtime_error("Optimizer: gradient of '" + params_[i].name + "' has shape " +
                               var.grad.shape().str() + " but the parameter has " + var.value.shape().str());
    update(i, var.value, var.grad);
  }
  ++step_count_;
}

Tensor& Optimizer::slot(size_t index, const std::string& slot_name) {
  Tensor& t = slots_[index][slot_name];
  if (!t.defined()) {
    bool scalar = false;
    for (const StateSlot& s : state_slots())
      if (s.name == slot_name) scalar = s.scalar;
    t = Tensor(scalar ? Shape{} : params_[index].var->value.shape());
  }
  return t;
}

OptimizerState Optimizer::state() const {
  OptimizerState out;
  out.learning_rate = learning_rate_;
  out.step_count = step_count_;
  for (size_t i = 0; i < params_.size(); ++i)
    for (const auto& [slot_name, tensor] : slots_[i]) out.tensors[params_[i].name + "." + slot_name] = tensor.clone();
  return out;
}

void Optimizer::load_state(const OptimizerState& state) {
  // Resolve and check every entry first, so a bad state leaves the optimizer unchanged.
  struct Target {
    size_t index;
    std::string slot_name;
    Shape shape;
  };
  std::map<std::string, Target> targets;  // "<param>.<slot>" -> where it goes
  for (size_t i = 0; i < params_.size(); ++i)
    for (const StateSlot& s : state_slots())
      targets[params_[i].name + "." + s.name] = {i, s.name, s.scalar ? Shape{} : params_[i].var->value.shape()};

  std::vector<std::map<std::string, Tensor>> new_slots(params_.size());
  for (const auto& [name, tensor] : state.tensors) {
    auto it = targets.find(name);
    if (it == targets.end())
      throw std::runtime_error("Optimizer::load_state: entry '" + name + "' matches no parameter and slot");
    if (tensor.shape() != it->second.shape)
      throw std::runtime_error("Optimizer::load_state: entry '" + name + "' has shape " + tensor.shape().str() +
                               ", expected " + it->second.shape.str());
    new_slots[it->second.index][it->second.slot_name] = tensor.clone();
  }
  // Slots absent from the state become "not yet allocated", exactly as they were in the saved run.
  slots_ = std::move(new_slots);
  learning_rate_ = state.learning_rate;
  step_count_ = state.step_count;
}

}  // namespace mriscan
