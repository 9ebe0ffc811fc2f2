// FrozenPrefixCache: one pass of the frozen prefix over the data, then batches served from memory.
#include "train/frozen_prefix_cache.h"

#include <cstring>
#include <numeric>

#include "data/random.h"
#include "models/folded_mobilenet_v2.h"

namespace mriscan {

FrozenPrefixCache::FrozenPrefixCache(MobileNetV2& model, const std::vector<Sample>& samples,
                                     const FrozenPrefixOptions& options, const std::function<void(int, int)>& progress)
    : seed_(options.seed), shard_index_(options.shard_index), shard_count_(options.shard_count) {
  DataLoaderConfig loader_options;  // no shuffle, no augmentation
  loader_options.batch_size = options.batch_size;
  loader_options.image_size = options.image_size;
  loader_options.shuffle = false;
  DataLoader loader(samples, loader_options);
  loader.start_epoch(0);
  const int total = loader.batches_per_epoch();
  // Frozen blocks are in eval mode (running statistics), so the prefix is a fixed function of the image; it runs
  // folded, as the trainer runs it without a cache (train/trainer.cpp).
  const FoldedMobileNetV2 prefix(model);
  std::vector<Tensor> chunks;
  int64_t rows = 0;
  int done = 0;
  while (std::optional<Batch> next = loader.next()) {
    const Batch& batch = *next;
    chunks.push_back(prefix.forward_blocks(batch.images, 0, options.frozen_blocks));  // (B, h, w, C)
    rows += chunks.back().dim(0);
    labels_.insert(labels_.end(), batch.labels.begin(), batch.labels.end());
    paths_.insert(paths_.end(), batch.paths.begin(), batch.paths.end());
    if (progress) progress(++done, total);
  }
  if (chunks.empty()) throw std::runtime_error("FrozenPrefixCache: no readable training images");
  const Shape& s = chunks.front().shape();
  activations_ = Tensor::uninitialized(Shape{rows, s[1], s[2], s[3]});  // every row is copied below
  float* destination = activations_.data();
  for (const Tensor& chunk : chunks) {
    std::memcpy(destination, chunk.data(), sizeof(float) * chunk.numel());
    destination += chunk.numel();
  }
}

int FrozenPrefixCache::batches_per_epoch(int batch_size) const {
  const int n = static_cast<int>(labels_.size());
  return n > batch_size ? n / batch_size : 1;  // drop the last partial batch, as the image loader does
}

bool FrozenPrefixCache::batch(int epoch, int index, int batch_size, Batch& batch) const {
  const int n = static_cast<int>(labels_.size());
  if (index >= batches_per_epoch(batch_size)) return false;
  // The permutation depends only on (seed, epoch): a resumed run sees the same batches.
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng = derived_rng(seed_, static_cast<uint64_t>(epoch), /*stream=*/0xCAC4E);
  fisher_yates_shuffle(order, rng);
  // The whole batch's rows [batch_begin, batch_begin + whole), then this shard's equal part of them.
  const int batch_begin = index * batch_size, whole = std::min(batch_size, n - batch_begin);
  const PositionRange shard = shard_range(static_cast<size_t>(whole), shard_index_, shard_count_);
  const int begin = batch_begin + static_cast<int>(shard.begin);
  const int count = static_cast<int>(shard.end - shard.begin);
  const int64_t row = activations_.numel() / n;
  const Shape& s = activations_.shape();
  batch.images = Tensor::uninitialized(Shape{count, s[1], s[2], s[3]});  // (B, h, w, c), every row copied
  batch.labels.resize(count);
  batch.paths.resize(count);
  for (int i = 0; i < count; ++i) {
    const int source = order[begin + i];
    std::memcpy(batch.images.data() + i * row, activations_.data() + source * row, sizeof(float) * row);
    batch.labels[i] = labels_[source];
    batch.paths[i] = paths_[source];
  }
  return true;
}

}  // namespace mriscan
