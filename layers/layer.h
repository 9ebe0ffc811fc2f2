// Layer: the interface every layer and block implements.
//
// A layer owns its parameters (trainable Vars) and buffers (plain tensors such as BN running statistics), each
// with a torchvision-style name relative to the layer ("weight", "running_mean", "conv.1.0.weight", ...).
// `forward` computes the output and records the backward on the tape (see engine/tape.h). Each concrete layer
// keeps its `backward` function directly below its `forward`, with the formulas in the file's header comment.
// Train/eval mode and freezing are plain state here; what is not here: optimisation, file IO.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/collective.h"
#include "engine/tape.h"

namespace mriscan {

struct NamedParameter {
  std::string name;
  Var var;  // var->value in engine layout; var->requires_grad == false when frozen
};

struct NamedBuffer {
  std::string name;
  Tensor tensor;  // shares storage with the layer's buffer: writing into it updates the layer
};

class Layer {
 public:
  virtual ~Layer() = default;

  // x (N, H, W, C) or (N, F) depending on the layer; returns a new Var.
  virtual Var forward(Tape& tape, const Var& x) = 0;

  // Appends this layer's parameters and buffers, names prefixed with `prefix` ("features.3.conv.0.0.").
  virtual void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) { (void)prefix; (void)out; }
  virtual void collect_buffers(const std::string& prefix, std::vector<NamedBuffer>& out) { (void)prefix; (void)out; }

  // Training mode affects batch norm (batch statistics, running averages) and dropout.
  virtual void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }
  // The processes of a data-parallel run whose batches share batch-norm statistics (layers/batch_norm.h); layers
  // without batch statistics ignore it, composites pass it on.
  virtual void set_collective(Collective* world) { (void)world; }

 protected:
  bool training_ = true;
};

}  // namespace mriscan
