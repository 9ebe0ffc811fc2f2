// Averaging the gradients of data-parallel training over all processes, overlapped with backward.
//
// Every process computes the gradient of the mean loss over its shard of the batch; with equal shards the
// gradient of the mean over the whole batch is their average, (1/N) sum_r grad_r. The trainable parameters are
// grouped into buckets of about `bucket_bytes`, in reverse order (the order backward completes them). After each
// backward node (Tape::set_after_backward_node), the reducer counts down the uses of the node's parameter inputs
// (counted in the recorded tape by prepare()); when every parameter of a bucket is complete, the bucket's
// gradients are packed into one buffer and its sum is started (Collective::start_allreduce_sum), so the
// communication of the late layers runs while the early layers' backward is still computing, as in PyTorch's
// DistributedDataParallel and Horovod. finish() waits for the sums and writes grad = sum / N back.
// What it is not: gradient compression or a parameter server; the parameters themselves are never sent (they
// stay identical because every process applies the same averaged gradient to the same weights).
#pragma once

#include <cstddef>
#include <unordered_map>
#include <vector>

#include "engine/collective.h"
#include "engine/tape.h"
#include "layers/layer.h"

namespace mriscan {

class GradientReducer {
 public:
  GradientReducer(Collective& world, const std::vector<NamedParameter>& trainable, size_t bucket_bytes = 4u << 20);

  // Call after the forward and before Tape::backward: counts each parameter's uses in the recorded nodes and
  // hooks the tape.
  void prepare(Tape& tape);
  // After Tape::backward: starts what has not started (parameters the loss did not reach), waits, and leaves
  // the averaged gradient in every parameter's grad.
  void finish();

  size_t num_buckets() const { return buckets_.size(); }
  int buckets_started_during_backward() const { return started_early_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    std::vector<float> buffer;   // (sum of their sizes)
    int waiting = 0;             // parameters of this bucket not yet complete
    bool started = false;
  };
  void on_node(const TapeNode& node);
  void start(Bucket& bucket);

  Collective& world_;
  std::vector<NamedParameter> params_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const Variable*, size_t> index_of_;  // parameter -> index in params_
  std::vector<size_t> bucket_of_;                         // (params_.size())
  std::vector<int> uses_left_;                            // (params_.size()): backward nodes still to come
  int started_early_ = 0;
  Tape* tape_ = nullptr;  // hooked between prepare() and finish()
};

}  // namespace mriscan
