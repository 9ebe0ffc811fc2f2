// Tape autograd at layer granularity.
//
// A `Var` is a node of the computation: its value, its gradient (allocated on first use) and whether anything
// upstream wants a gradient through it. Each layer's forward appends one `TapeNode` to the tape: the inputs, the
// output, and a closure that turns the output's gradient into the inputs' gradients. `Tape::backward` walks the
// nodes in reverse recording order (which is a valid reverse-topological order, so no graph search is needed).
//
// Conventions, all relied upon by the layers:
//  - Gradients ACCUMULATE (`+=`): a Var used twice (the residual fan-out) receives both contributions. Nothing is
//    zeroed implicitly: before each step the trainer drops the parameters' gradients (`var->grad = Tensor()`,
//    PyTorch's set_to_none), so a parameter the pass does not reach has none; `zero_grad` below keeps the buffers
//    and zeroes them instead. A Var with no gradient buffer yet may have its first contribution stored instead of
//    added (`grad_target`): the same sum, without zero-filling a buffer only to read the zeros back.
//  - A Var with `requires_grad == false` (the input image, a frozen parameter) never gets a gradient buffer and
//    backward closures skip computing it. An op whose inputs all need no gradient is not recorded at all, so a
//    frozen prefix costs no tape memory.
//  - Gradients can be taken with respect to any intermediate Var (Grad-CAM takes d score / d feature map): mark
//    it with `requires_grad = true` before it is consumed, then read `var->grad` after `backward`. If that Var is
//    itself the output of a recorded op, also set `keep_grad`, because:
//  - Liveness-planned memory: the gradient of an op's output is complete once that op's backward has run (every
//    consumer was recorded later, so its backward ran earlier), and nothing else reads it, so `backward` releases
//    it right there, together with the node's closure and references (what it saved for backward). So at most a
//    few activation gradients are alive at once instead of one per activation, and activations are freed as
//    backward passes them. Leaves (parameters, inputs made with make_var) are never an op's output and keep their
//    gradients. After `backward` the nodes are spent (their op names remain): `clear` the tape before the next step.
// What it is not: a general graph library; there is no double backward and no graph pruning.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace mriscan {

struct Variable {
  Tensor value;
  Tensor grad;  // undefined until something accumulates into it; same shape as value
  bool requires_grad = false;
  bool keep_grad = false;  // an op's output whose gradient the caller reads after backward (see above)

  // The gradient buffer, zero-initialised on first use.
  Tensor& grad_buffer();
  // The gradient buffer for a backward that writes every element of it: the existing one to add into, or, when no
  // gradient has reached this variable yet, a new uninitialised one with `first` set, so the kernel stores instead
  // of adding: no zero-fill pass and no read of those zeros (a value with one consumer is always first).
  struct GradTarget {
    float* data;
    bool first;
  };
  GradTarget grad_target();
};
using Var = std::shared_ptr<Variable>;

Var make_var(Tensor value, bool requires_grad = false);

// Time per op name, filled when a profile is attached to a tape (`mriscan bench --profile`). Forward time of an op
// is the wall time between the previous `record` (or `start`) and its own `record`, which works because every
// layer records right after computing its output; backward time is measured around each node's closure.
struct OpProfile {
  std::map<std::string, double> forward_seconds, backward_seconds;
  std::map<std::string, int64_t> calls;
  std::chrono::steady_clock::time_point last;
  void start() { last = std::chrono::steady_clock::now(); }
};

// One recorded op: what it read, what it produced, and how to send the output's gradient back.
struct TapeNode {
  std::string op_name;
  std::vector<Var> inputs;
  Var output;
  std::function<void()> backward;
};

class Tape {
 public:
  // When disabled (inference), `record` does nothing and layers may skip saving state for backward.
  bool enabled() const { return enabled_; }
  void set_enabled(bool enabled) { enabled_ = enabled; }

  // Appends one node. The output's requires_grad becomes "any input requires grad"; if none does, nothing is
  // recorded. `backward` must read `output->grad` and accumulate into `input->grad_buffer()` (or store through
  // `input->grad_target()` when it is the first) of the inputs that require a gradient.
  void record(std::string op_name, std::vector<Var> inputs, const Var& output, std::function<void()> backward);

  // Seeds d root / d root = 1 (root must have one element) and runs every recorded node in reverse.
  void backward(const Var& root);
  // Same, with an explicit seed gradient of root's shape (e.g. a one-hot class score for Grad-CAM).
  void backward(const Var& root, const Tensor& seed);

  // Attach (or detach with nullptr) a profile; call profile->start() right before the forward pass.
  void set_profile(OpProfile* profile) { profile_ = profile; }
  // Called after each node's backward has run (empty: none). Data-parallel training uses it to start the
  // all-reduce of gradients that are complete while backward goes on (train/gradient_reducer.h).
  void set_after_backward_node(std::function<void(const TapeNode&)> hook) { after_node_ = std::move(hook); }

  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }
  // The recorded ops in forward order. Besides backward, this lets tools read intermediate activations
  // (batch-norm calibration in models/imagenet_import.cpp reads every BN's input this way).
  const std::vector<TapeNode>& nodes() const { return nodes_; }

 private:
  std::vector<TapeNode> nodes_;
  bool enabled_ = true;
  OpProfile* profile_ = nullptr;
  std::function<void(const TapeNode&)> after_node_;
};

// Sets the gradients of the given Vars to zero, keeping the buffers (PyTorch's set_to_none=False). The trainer drops
// gradients instead (see the conventions above); tests use this.
void zero_grad(const std::vector<Var>& vars);

}  // namespace mriscan
