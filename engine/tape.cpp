// Tape implementation: recording, the reverse sweep, and the gradient shape check after each node.
#include "engine/tape.h"

#include <stdexcept>

namespace mriscan {

Tensor& Variable::grad_buffer() {
  if (!grad.defined()) grad = Tensor(value.shape());
  return grad;
}

Variable::GradTarget Variable::grad_target() {
  const bool first = !grad.defined();
  if (first) grad = Tensor::uninitialized(value.shape());
  return {grad.data(), first};
}

Var make_var(Tensor value, bool requires_grad) {
  auto var = std::make_shared<Variable>();
  var->value = std::move(value);
  var->requires_grad = requires_grad;
  return var;
}

void Tape::record(std::string op_name, std::vector<Var> inputs, const Var& output, std::function<void()> backward) {
  if (profile_) {
    const auto now = std::chrono::steady_clock::now();
    profile_->forward_seconds[op_name] += std::chrono::duration<double>(now - profile_->last).count();
    profile_->calls[op_name] += 1;
    profile_->last = now;
  }
  bool any_input_requires_grad = false;
  for (const Var& input : inputs) any_input_requires_grad |= input->requires_grad;
  output->requires_grad = output->requires_grad || any_input_requires_grad;
  if (!enabled_ || !any_input_requires_grad) return;
  nodes_.push_back({std::move(op_name), std::move(inputs), output, std::move(backward)});
}

void Tape::backward(const Var& root) {
  if (root->value.numel() != 1)
    throw std::invalid_argument("Tape::backward: root has shape " + root->value.shape().str() +
                                "; pass a seed gradient for a non-scalar root");
  Tensor seed(root->value.shape());
  seed.fill(1.0f);
  backward(root, seed);
}

void Tape::backward(const Var& root, const Tensor& seed) {
  if (seed.shape() != root->value.shape())
    throw std::invalid_argument("Tape::backward: seed shape " + seed.shape().str() + " != root shape " +
                                root->value.shape().str());
  Tensor& root_grad = root->grad_buffer();
  for (int64_t i = 0; i < seed.numel(); ++i) root_grad[i] += seed[i];

  for (auto node = nodes_.rbegin(); node != nodes_.rend(); ++node) {
    if (!node->output || !node->output->grad.defined()) continue;  // spent, or not on a path from the root
    if (profile_) {
      const auto start = std::chrono::steady_clock::now();
      node->backward();
      profile_->backward_seconds[node->op_name] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } else {
      node->backward();
    }
    for (const Var& input : node->inputs) {
      if (input->grad.defined() && input->grad.shape() != input->value.shape())
        throw std::logic_error("Tape::backward: op '" + node->op_name + "' produced a gradient of shape " +
                               input->grad.shape().str() + " for an input of shape " + input->value.shape().str());
    }
    if (after_node_) after_node_(*node);
    // The node is spent. Its output's gradient is complete and consumed: free it now. Its closure (the state it
    // saved for backward) and its references go too, so an activation is freed as soon as its producer and all
    // its consumers have run, unless the caller still holds its Var.
    if (!node->output->keep_grad) node->output->grad = Tensor();
    node->backward = nullptr;
    node->inputs.clear();
    node->output.reset();
  }
}

void zero_grad(const std::vector<Var>& vars) {
  for (const Var& var : vars)
    if (var->grad.defined()) var->grad.zero();
}

}  // namespace mriscan
