// Where an epoch's training batches come from: the image loader at the epoch's resolution, or the frozen-prefix
// cache (whose batches already hold the prefix's output). train/epoch.h takes any BatchSource, so a test can feed
// it batches of its own. What it is not: a loader (data/data_loader.h) or the cache (train/frozen_prefix_cache.h).
#pragma once

#include <optional>

#include "data/data_loader.h"
#include "train/frozen_prefix_cache.h"

namespace mriscan {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int batches_per_epoch() const = 0;
  virtual void start_epoch(int epoch) = 0;
  // The next batch of the started epoch; false at its end.
  virtual bool next(Batch& batch) = 0;
  // True when batch.images is the frozen prefix's output (N, h, w, c) rather than images (N, S, S, 3).
  virtual bool holds_prefix_output() const { return false; }
  // Seconds next() waited for data since start_epoch (the loader's; none for data already in memory).
  virtual double wait_seconds() const { return 0.0; }
};

// Decoded, augmented and preprocessed images: a DataLoader's batches.
class LoaderBatches final : public BatchSource {
 public:
  explicit LoaderBatches(DataLoader& loader) : loader_(loader) {}
  int batches_per_epoch() const override { return loader_.batches_per_epoch(); }
  void start_epoch(int epoch) override { loader_.start_epoch(epoch); }
  bool next(Batch& batch) override {
    std::optional<Batch> next = loader_.next();
    if (next) batch = std::move(*next);
    return next.has_value();
  }
  double wait_seconds() const override { return loader_.wait_seconds(); }

 private:
  DataLoader& loader_;
};

// The frozen prefix's cached output, reshuffled every epoch (FrozenPrefixCache::batch).
class CachedBatches final : public BatchSource {
 public:
  CachedBatches(const FrozenPrefixCache& cache, int batch_size) : cache_(cache), batch_size_(batch_size) {}
  int batches_per_epoch() const override { return cache_.batches_per_epoch(batch_size_); }
  void start_epoch(int epoch) override { epoch_ = epoch, index_ = 0; }
  bool next(Batch& batch) override { return cache_.batch(epoch_, index_++, batch_size_, batch); }
  bool holds_prefix_output() const override { return true; }

 private:
  const FrozenPrefixCache& cache_;
  int batch_size_;
  int epoch_ = 0, index_ = 0;  // the batch next() returns
};

}  // namespace mriscan
