// Tensor and Shape implementation: aligned allocation, shape arithmetic, reshape views.
#include "engine/tensor.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <sstream>
#include <stdexcept>

namespace mriscan {

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  if (dims.size() > kMaxRank) throw std::invalid_argument("Shape: rank > 4 is not supported");
  rank_ = static_cast<int>(dims.size());
  for (int i = 0; i < rank_; ++i) {
    if (dims[i] < 0) throw std::invalid_argument("Shape: negative dimension");
    dims_[i] = dims[i];
  }
}

int64_t Shape::operator[](int axis) const {
  if (axis < 0) axis += rank_;
  if (axis < 0 || axis >= rank_) throw std::out_of_range("Shape: axis out of range for " + str());
  return dims_[axis];
}

int64_t Shape::numel() const {
  int64_t count = 1;
  for (int i = 0; i < rank_; ++i) count *= dims_[i];
  return count;
}

std::string Shape::str() const {
  std::ostringstream out;
  out << "(";
  for (int i = 0; i < rank_; ++i) out << (i ? ", " : "") << dims_[i];
  out << ")";
  return out.str();
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[i] != other.dims_[i]) return false;
  return true;
}

namespace {

// A caching allocator (the idea of PyTorch's allocators): freed buffers are kept, keyed by their byte size, and
// handed out again. A training step allocates the same sizes in the same order every time, so from the second
// step on no memory comes from the operating system: no mmap/munmap of large blocks, no page faults on fresh
// pages. This is the activation/gradient arena of the engine, without changing any layer's code.
// Thread-safe; the cache is never destroyed (buffers may be released during static destruction).
class BufferCache {
 public:
  float* acquire(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = free_.find(bytes);
      if (found != free_.end() && !found->second.empty()) {
        float* buffer = found->second.back();
        found->second.pop_back();
        cached_bytes_ -= bytes;
        return buffer;
      }
    }
    if (bytes < kHugePageBytes) {
      void* memory = std::aligned_alloc(64, bytes);
      if (!memory) throw std::bad_alloc();
      return static_cast<float*>(memory);
    }
    // Large buffers (activations of a batch: up to 154 MB) in 2 MB pages where the kernel offers transparent huge
    // pages on request (Debian's default, "madvise"): the memory-bound kernels stream several of them at once, and
    // with 4 KB pages each stream needs a new TLB entry every 64 cache lines. A batch-32 training step measured
    // 1.1x faster (docs/memory_plan.md; measured in docs/results/2026-12-04-memory.md). Without THP, madvise fails
    // and the buffer stays in 4 KB pages.
    const size_t rounded = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;  // aligned_alloc's rule
    void* memory = std::aligned_alloc(kHugePageBytes, rounded);
    if (!memory) throw std::bad_alloc();
    madvise(memory, rounded, MADV_HUGEPAGE);
    return static_cast<float*>(memory);
  }

  void release(float* buffer, size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_bytes_ + bytes > kMaxCachedBytes) {  // bound the cache; beyond it, give memory back
      std::free(buffer);
      return;
    }
    free_[bytes].push_back(buffer);
    cached_bytes_ += bytes;
  }

  void trim() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [bytes, buffers] : free_)
      for (float* buffer : buffers) std::free(buffer);
    free_.clear();
    cached_bytes_ = 0;
  }

 private:
  static constexpr size_t kMaxCachedBytes = size_t(8) << 30;  // 8 GiB
  static constexpr size_t kHugePageBytes = size_t(2) << 20;  // x86-64's large page
  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<float*>> free_;
  size_t cached_bytes_ = 0;
};

BufferCache& buffer_cache() {
  static BufferCache* cache = new BufferCache();  // intentionally leaked, see above
  return *cache;
}

}  // namespace

std::shared_ptr<float[]> allocate_aligned(int64_t count) {
  // Round the byte size up to a multiple of the alignment, as aligned_alloc requires.
  size_t bytes = static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(float);
  bytes = (bytes + 63) / 64 * 64;
  float* buffer = buffer_cache().acquire(bytes);
  return std::shared_ptr<float[]>(buffer, [bytes](float* p) { buffer_cache().release(p, bytes); });
}

void release_cached_buffers() { buffer_cache().trim(); }

Tensor::Tensor(const Shape& shape) : storage_(allocate_aligned(shape.numel())), shape_(shape) {
  std::memset(storage_.get(), 0, sizeof(float) * shape.numel());
}

Tensor Tensor::uninitialized(const Shape& shape) {
  Tensor tensor;
  tensor.storage_ = allocate_aligned(shape.numel());
  tensor.shape_ = shape;
  return tensor;
}

Tensor::Tensor(const Shape& shape, const std::vector<float>& values) : Tensor(shape) {
  if (static_cast<int64_t>(values.size()) != shape.numel())
    throw std::invalid_argument("Tensor: " + std::to_string(values.size()) + " values for shape " + shape.str());
  std::copy(values.begin(), values.end(), storage_.get());
}

Tensor Tensor::reshape(const Shape& shape) const {
  if (shape.numel() != numel())
    throw std::invalid_argument("Tensor::reshape: " + shape_.str() + " -> " + shape.str() + " changes the size");
  Tensor view = *this;
  view.shape_ = shape;
  return view;
}

Tensor Tensor::clone() const {
  Tensor copy(shape_);
  if (defined()) std::memcpy(copy.data(), data(), sizeof(float) * numel());
  return copy;
}

void Tensor::fill(float value) { std::fill(data(), data() + numel(), value); }

}  // namespace mriscan
