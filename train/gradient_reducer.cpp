// Bucketed, overlapped gradient averaging (see the header).
#include "train/gradient_reducer.h"

#include <algorithm>
#include <stdexcept>

namespace mriscan {

GradientReducer::GradientReducer(Collective& world, const std::vector<NamedParameter>& trainable, size_t bucket_bytes)
    : world_(world), params_(trainable), bucket_of_(trainable.size()), uses_left_(trainable.size(), 0) {
  // Reverse order: backward completes the last layers first, so their bucket can start first.
  Bucket current;
  size_t current_bytes = 0;
  for (size_t i = params_.size(); i-- > 0;) {
    index_of_[params_[i].var.get()] = i;
    current.params.push_back(i);
    current_bytes += static_cast<size_t>(params_[i].var->value.numel()) * sizeof(float);
    if (current_bytes >= bucket_bytes || i == 0) {
      buckets_.push_back(std::move(current));
      current = Bucket();
      current_bytes = 0;
    }
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    int64_t floats = 0;
    for (size_t i : buckets_[b].params) {
      bucket_of_[i] = b;
      floats += params_[i].var->value.numel();
    }
    buckets_[b].buffer.resize(static_cast<size_t>(floats));
  }
}

void GradientReducer::prepare(Tape& tape) {
  std::fill(uses_left_.begin(), uses_left_.end(), 0);
  for (const TapeNode& node : tape.nodes())
    for (const Var& input : node.inputs)
      if (auto found = index_of_.find(input.get()); found != index_of_.end()) ++uses_left_[found->second];
  for (Bucket& bucket : buckets_) {
    bucket.started = false;
    bucket.waiting = 0;
    for (size_t i : bucket.params) bucket.waiting += uses_left_[i] > 0 ? 1 : 0;
  }
  started_early_ = 0;
  tape_ = &tape;
  tape.set_after_backward_node([this](const TapeNode& node) { on_node(node); });
}

void GradientReducer::on_node(const TapeNode& node) {
  for (const Var& input : node.inputs) {
    auto found = index_of_.find(input.get());
    if (found == index_of_.end() || --uses_left_[found->second] != 0) continue;
    Bucket& bucket = buckets_[bucket_of_[found->second]];  // this parameter's gradient is now complete
    if (--bucket.waiting == 0 && !bucket.started) {
      start(bucket);
      ++started_early_;
    }
  }
  world_.poll();  // lets the transport progress the sums already started
}

void GradientReducer::start(Bucket& bucket) {
  float* out = bucket.buffer.data();
  for (size_t i : bucket.params) {
    const Variable& var = *params_[i].var;
    const int64_t n = var.value.numel();
    if (var.grad.defined())
      std::copy_n(var.grad.data(), n, out);
    else
      std::fill_n(out, n, 0.0f);  // not reached by this loss: contributes zero
    out += n;
  }
  world_.start_allreduce_sum(bucket.buffer.data(), static_cast<int64_t>(bucket.buffer.size()));
  bucket.started = true;
}

void GradientReducer::finish() {
  if (!tape_) throw std::logic_error("GradientReducer::finish without prepare");
  tape_->set_after_backward_node({});
  tape_ = nullptr;
  for (Bucket& bucket : buckets_)
    if (!bucket.started) start(bucket);
  world_.wait_all();
  const float inverse_world = 1.0f / static_cast<float>(world_.size());
  for (Bucket& bucket : buckets_) {
    const float* in = bucket.buffer.data();
    for (size_t i : bucket.params) {
      Tensor& grad = params_[i].var->grad_buffer();
      for (int64_t k = 0; k < grad.numel(); ++k) grad[k] = in[k] * inverse_world;
      in += grad.numel();
    }
  }
}

}  // namespace mriscan
