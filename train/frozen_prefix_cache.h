// Cached activations of a frozen prefix, the fast path for fine-tuning the tail of the network.
//
// When features.0 .. features.(k-1) are frozen and training images are not augmented, the prefix maps each image
// to the same activation in every epoch, so it can be computed once: every later epoch runs only the trainable
// tail (forward and backward). The trade-off is explicit: no augmentation (the cache would be stale) and memory of
// N * h * w * c floats (at 224x224 with 14 frozen blocks: 14x14x96 floats = 75 KB per image, 360 MB for 4,800
// images). The trainer refuses `--cache-frozen` with augmentation on.
#pragma once

#include <functional>
#include <vector>

#include "data/data_loader.h"
#include "models/mobilenet_v2.h"

namespace mriscan {

struct FrozenPrefixOptions {
  int frozen_blocks = 0;  // the prefix: features.0 .. features.(frozen_blocks - 1)
  int image_size = 224;
  int batch_size = 32;    // of the one pass that fills the cache
  uint32_t seed = 42;     // of the per-epoch shuffle
  int shard_index = 0;    // data-parallel: batch() returns this shard of every batch (as DataLoaderConfig)
  int shard_count = 1;
};

class FrozenPrefixCache {
 public:
  // Runs the frozen prefix over every sample once. progress(done, total) per batch.
  FrozenPrefixCache(MobileNetV2& model, const std::vector<Sample>& samples, const FrozenPrefixOptions& options,
                    const std::function<void(int, int)>& progress);

  int batches_per_epoch(int batch_size) const;
  // Batch `index` of `epoch`: a seeded shuffle of the cached rows (same order for the same seed and epoch).
  // batch.images is (B, h, w, c): the prefix's output, to be fed to forward_blocks(frozen_blocks, ...).
  bool batch(int epoch, int index, int batch_size, Batch& batch) const;

 private:
  Tensor activations_;  // (N, h, w, c)
  std::vector<int> labels_;
  std::vector<std::string> paths_;
  uint32_t seed_;
  int shard_index_, shard_count_;
};

}  // namespace mriscan
