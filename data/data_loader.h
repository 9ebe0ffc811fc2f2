// DataLoader: turns a list of samples into preprocessed batches, prepared by worker threads ahead of the consumer.
//
// Per epoch: the sample order is a Fisher-Yates permutation seeded by (seed, epoch) (or the input order with shuffle
// = false); batch b is positions [b * B, (b + 1) * B) of that order (or this process's shard of them). Workers claim
// batch indices from a counter and decode -> augment -> preprocess each sample; the consumer takes batches strictly
// in order. At most `prefetch_batches` batches are claimed ahead of the consumer (a bounded queue), so memory stays
// bounded and the training step does not wait as long as the workers keep up; time it does wait is measured
// (wait_seconds()).
//
// Determinism: a sample's augmentation uses an engine derived from (seed, epoch, sample index) (data/random.h),
// never a shared engine, so batches are bit-identical whatever the thread count or timing.
// Robustness: an unreadable or corrupt image (ImageError) is skipped, recorded in skipped_files() and the batch is
// delivered one sample short; it never stops the run. Any other exception in a worker is rethrown by next().
// The destructor (and start_epoch) stop and join the workers, also when the consumer stopped mid-epoch.
// Inline mode (num_workers = 0): no background threads; next() builds the batch itself, its samples split over the
// engine's kernel threads (OpenMP, engine/parallel.h). When those threads already use every core, a background
// worker can only run by taking a core from them mid-kernel, and the other kernel thread then waits for it at the
// next barrier: the step loses about twice the worker's CPU time. Inline, it loses that time divided by the
// threads (docs/results/2026-12-05-pytorch-comparison.md has the measurement). The batches are the same in both
// modes, bit for bit.
// What it is not: a dataset listing (data/dataset.h) or a cache; every epoch decodes the files again.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "data/augment.h"
#include "data/dataset.h"
#include "engine/tensor.h"
#include "io/image_io.h"

namespace mriscan {

struct Batch {
  Tensor images;                   // (B, S, S, 3) preprocessed; B can be below batch_size (last batch, skipped files)
  std::vector<int> labels;         // (B)
  std::vector<std::string> paths;  // (B)
  int index = 0;                   // batch number within the epoch
};

// Part `index` of `count` near-equal contiguous parts of positions [0, n): [n*index/count, n*(index+1)/count).
// How data-parallel ranks split a batch (here and in the frozen-prefix cache) and an evaluation list.
struct PositionRange {
  size_t begin = 0, end = 0;
};
inline PositionRange shard_range(size_t n, int index, int count) {
  return {n * static_cast<size_t>(index) / static_cast<size_t>(count),
          n * static_cast<size_t>(index + 1) / static_cast<size_t>(count)};
}

struct DataLoaderConfig {
  int batch_size = 32;
  int image_size = 224;
  bool shuffle = true;
  bool drop_last = false;    // drop the final partial batch (by position, before any skipped files)
  int num_workers = 2;       // >= 0; 0: inline mode
  int prefetch_batches = 3;  // batches claimed ahead of the consumer, >= 1
  uint32_t seed = 42;
  AugmentConfig augment{.enabled = false};  // evaluation default; the trainer enables it for the training split
  DecodeLimits limits{};
  // Data-parallel training: this process takes the shard_index-th of shard_count equal parts of every batch
  // (positions [b*B + i*B/n, b*B + (i+1)*B/n) of the epoch's order), so all shards together are the batch one
  // process would see. The order, and each sample's augmentation, do not depend on the sharding.
  int shard_index = 0;
  int shard_count = 1;
};

struct SkippedFile {
  std::string path;
  std::string reason;  // the ImageError message
};

class DataLoader {
 public:
  // Throws std::invalid_argument naming the field for a bad configuration.
  DataLoader(std::vector<Sample> samples, DataLoaderConfig config);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Stops any running epoch, then starts producing the batches of `epoch`.
  void start_epoch(int epoch);
  // The next batch of the current epoch, or nullopt at its end. Blocks while the workers are behind.
  std::optional<Batch> next();

  int batches_per_epoch() const { return num_batches_; }
  size_t size() const { return samples_.size(); }
  const DataLoaderConfig& config() const { return config_; }
  // Seconds next() spent blocked since start_epoch (the "data wait" the trainer reports); inline, the seconds it
  // spent building batches.
  double wait_seconds() const;
  // Every file skipped so far (each path once, first reason), and the number of skips in the current epoch.
  std::vector<SkippedFile> skipped_files() const;
  int skipped_this_epoch() const;

 private:
  void worker_loop();
  // Decodes, augments and preprocesses the batch's samples, on `threads` kernel threads (1: this thread alone).
  Batch build_batch(int batch_index, int threads);
  void record_skip(const std::string& path, const std::string& reason);
  void stop_workers();

  const std::vector<Sample> samples_;
  const DataLoaderConfig config_;

  // Current epoch, written only by start_epoch while no worker runs (thread start publishes it to workers).
  int epoch_ = -1;
  std::vector<size_t> order_;  // (num samples) permutation of sample indices
  int num_batches_ = 0;  // fixed by the sample count and batch_size

  mutable std::mutex mutex_;            // guards everything below
  std::condition_variable batch_ready_;  // worker -> consumer
  std::condition_variable space_free_;   // consumer -> workers
  int next_to_claim_ = 0;                // next batch index a worker will build
  int next_to_consume_ = 0;              // next batch index next() returns
  std::map<int, Batch> ready_;           // built, not yet consumed
  std::exception_ptr worker_error_;
  double wait_seconds_ = 0.0;
  std::vector<SkippedFile> skipped_;
  std::set<std::string> skipped_paths_;
  int skipped_this_epoch_ = 0;

  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
};

}  // namespace mriscan
