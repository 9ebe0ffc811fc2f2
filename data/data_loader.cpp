// Worker threads, the bounded batch queue, inline mode and per-sample seeding of the DataLoader (see data_loader.h).
#include "data/data_loader.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "data/preprocess.h"
#include "data/random.h"
#include "engine/parallel.h"

namespace mriscan {

namespace {
// Stream id for the epoch permutation; sample streams use the sample index (always smaller).
constexpr uint64_t kOrderStream = UINT64_MAX;
}  // namespace

DataLoader::DataLoader(std::vector<Sample> samples, DataLoaderConfig config)
    : samples_(std::move(samples)), config_(std::move(config)) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("DataLoaderConfig." + what);
  };
  require(config_.batch_size >= 1, "batch_size must be >= 1, got " + std::to_string(config_.batch_size));
  require(config_.image_size >= 1, "image_size must be >= 1, got " + std::to_string(config_.image_size));
  require(config_.num_workers >= 0, "num_workers must be >= 0, got " + std::to_string(config_.num_workers));
  require(config_.prefetch_batches >= 1,
          "prefetch_batches must be >= 1, got " + std::to_string(config_.prefetch_batches));
  require(config_.shard_count >= 1 && config_.shard_index >= 0 && config_.shard_index < config_.shard_count,
          "shard_index must be in [0, shard_count), got " + std::to_string(config_.shard_index) + " of " +
              std::to_string(config_.shard_count));
  const int n = static_cast<int>(samples_.size()), b = config_.batch_size;
  num_batches_ = config_.drop_last ? n / b : (n + b - 1) / b;
}

DataLoader::~DataLoader() { stop_workers(); }

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  space_free_.notify_all();  // wake workers waiting for room; they see stop_ and return
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

void DataLoader::start_epoch(int epoch) {
  stop_workers();

  epoch_ = epoch;
  order_.resize(samples_.size());
  std::iota(order_.begin(), order_.end(), size_t{0});
  if (config_.shuffle) {
    std::mt19937 rng = derived_rng(config_.seed, static_cast<uint64_t>(epoch), kOrderStream);
    fisher_yates_shuffle(order_, rng);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    next_to_claim_ = next_to_consume_ = 0;
    ready_.clear();
    worker_error_ = nullptr;
    wait_seconds_ = 0.0;
    skipped_this_epoch_ = 0;
    stop_ = false;
  }
  const int workers = std::min(config_.num_workers, std::max(num_batches_, 0));
  for (int i = 0; i < workers; ++i) workers_.emplace_back(&DataLoader::worker_loop, this);
}

void DataLoader::worker_loop() {
  while (true) {
    int batch_index = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Bounded queue: only claim a batch within `prefetch_batches` of the one the consumer needs next.
      space_free_.wait(lock, [&] {
        return stop_ || next_to_claim_ >= num_batches_ ||
               next_to_claim_ < next_to_consume_ + config_.prefetch_batches;
      });
      if (stop_ || next_to_claim_ >= num_batches_) return;
      batch_index = next_to_claim_++;
    }
    Batch batch;
    std::exception_ptr error;
    try {
      batch = build_batch(batch_index, 1);
    } catch (...) {
      error = std::current_exception();  // never let an exception escape a thread (std::terminate)
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error && !worker_error_) worker_error_ = error;
      ready_[batch_index] = std::move(batch);
    }
    batch_ready_.notify_all();
    if (error) return;
  }
}

Batch DataLoader::build_batch(int batch_index, int threads) {
  // The whole batch's positions [batch_begin, batch_end), then this shard's equal part of them.
  const size_t batch_begin = static_cast<size_t>(batch_index) * config_.batch_size;
  const size_t batch_size = std::min(batch_begin + config_.batch_size, order_.size()) - batch_begin;
  const PositionRange shard = shard_range(batch_size, config_.shard_index, config_.shard_count);
  const size_t begin = batch_begin + shard.begin, end = batch_begin + shard.end;
  const int64_t s = config_.image_size;
  const int64_t per_image = s * s * 3;

  const int64_t count = static_cast<int64_t>(end - begin);
  // (B, S, S, 3): sample i in slot i, then the kept ones moved to the front; every kept slot is written
  Tensor images = Tensor::uninitialized(Shape{count, s, s, 3});
  std::vector<uint8_t> kept_slot(count, 0);  // (B)
  std::exception_ptr error;                  // the first non-image error: never let one escape the parallel region
  // A large JPEG is decoded at the smallest DCT scale that keeps both sides >= image_size, as `mriscan predict`
  // and the server decode it (io/jpeg_decode.h), so every path gives the model the same pixels.
  DecodeLimits limits = config_.limits;
  limits.min_decoded_side = config_.image_size;
#pragma omp parallel for num_threads(threads) schedule(dynamic) if (threads > 1)
  for (int64_t i = 0; i < count; ++i) {
    if (stop_) continue;
    const size_t sample_index = order_[begin + i];
    const Sample& sample = samples_[sample_index];
    try {
      Image image = load_image(sample.path, limits);
      std::mt19937 rng = derived_rng(config_.seed, static_cast<uint64_t>(epoch_), sample_index);
      image = augment(image, config_.augment, rng);
      preprocess(image, config_.image_size, images.data() + i * per_image);
      kept_slot[i] = 1;
    } catch (const ImageError& image_error) {
      record_skip(sample.path, image_error.what());
    } catch (...) {
#pragma omp critical(mriscan_data_loader_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);

  Batch batch;
  batch.index = batch_index;
  for (int64_t i = 0; i < count; ++i) {
    if (!kept_slot[i]) continue;
    const int64_t slot = static_cast<int64_t>(batch.labels.size());
    if (slot != i) std::memmove(images.data() + slot * per_image, images.data() + i * per_image,
                                sizeof(float) * per_image);
    const Sample& sample = samples_[order_[begin + i]];
    batch.labels.push_back(sample.label);
    batch.paths.push_back(sample.path);
  }
  const int64_t kept = static_cast<int64_t>(batch.labels.size());
  if (kept == images.dim(0)) {
    batch.images = images;
  } else if (kept > 0) {
    batch.images = Tensor(Shape{kept, s, s, 3});
    std::memcpy(batch.images.data(), images.data(), sizeof(float) * kept * per_image);
  }
  return batch;
}

void DataLoader::record_skip(const std::string& path, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++skipped_this_epoch_;
  if (skipped_paths_.insert(path).second) skipped_.push_back({path, reason});
}

std::optional<Batch> DataLoader::next() {
  if (epoch_ < 0) throw std::logic_error("DataLoader::next: call start_epoch(epoch) first");
  if (config_.num_workers == 0) {  // inline: build it here, on the kernel threads
    while (next_to_consume_ < num_batches_) {
      const auto started = std::chrono::steady_clock::now();
      Batch batch = build_batch(next_to_consume_++, num_threads());
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        wait_seconds_ += seconds;
      }
      if (!batch.labels.empty()) return batch;
    }
    return std::nullopt;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  while (next_to_consume_ < num_batches_) {
    const auto started = std::chrono::steady_clock::now();
    batch_ready_.wait(lock, [&] { return worker_error_ || ready_.count(next_to_consume_) > 0; });
    wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (worker_error_) std::rethrow_exception(worker_error_);

    auto found = ready_.find(next_to_consume_);
    Batch batch = std::move(found->second);
    ready_.erase(found);
    ++next_to_consume_;
    lock.unlock();
    space_free_.notify_all();  // a slot in the bounded queue opened
    if (!batch.labels.empty()) return batch;
    lock.lock();  // every file of this batch was skipped: move on to the next one
  }
  return std::nullopt;
}

double DataLoader::wait_seconds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return wait_seconds_;
}

std::vector<SkippedFile> DataLoader::skipped_files() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_;
}

int DataLoader::skipped_this_epoch() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return skipped_this_epoch_;
}

}  // namespace mriscan
