// Tensor: a shape of rank <= 4 and a shared, 64-byte-aligned, contiguous row-major float buffer.
//
// What it is: the one container for activations `(N, H, W, C)`, weights (engine layouts, see docs/conventions.md) and
// gradients. Copies are shallow (they share storage); `clone()` copies data; `reshape()` is the only view.
// What it is not: a strided tensor, a dtype-generic tensor, or an op library. Kernels never see a Tensor:
// they take raw pointers plus a params struct (engine/kernels/params.h).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace mriscan {

// Up to four dimensions, outermost first. Rank 0 is a scalar with one element.
class Shape {
 public:
  static constexpr int kMaxRank = 4;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);

  int rank() const { return rank_; }
  int64_t operator[](int axis) const;  // negative axes count from the end
  int64_t numel() const;
  std::vector<int64_t> dims() const { return {dims_.begin(), dims_.begin() + rank_}; }
  std::string str() const;  // "(2, 64, 64, 3)"
  bool operator==(const Shape& other) const;
  bool operator!=(const Shape& other) const { return !(*this == other); }

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

class Tensor {
 public:
  Tensor() = default;                          // undefined: no storage
  explicit Tensor(const Shape& shape);         // zero-filled
  Tensor(const Shape& shape, const std::vector<float>& values);
  // Storage with unspecified contents (a recycled buffer, not zeroed): for outputs a kernel overwrites entirely.
  static Tensor uninitialized(const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  int64_t dim(int axis) const { return shape_[axis]; }
  float* data() { return storage_.get(); }
  const float* data() const { return storage_.get(); }
  float& operator[](int64_t i) { return storage_.get()[i]; }
  float operator[](int64_t i) const { return storage_.get()[i]; }

  Tensor reshape(const Shape& shape) const;  // same storage, same element count
  Tensor clone() const;                      // deep copy
  void fill(float value);
  void zero() { fill(0.0f); }
  std::vector<float> to_vector() const { return {data(), data() + numel()}; }
  bool shares_storage_with(const Tensor& other) const { return storage_ == other.storage_; }

 private:
  std::shared_ptr<float[]> storage_;
  Shape shape_;
};

// 64-byte-aligned float allocation (one AVX-512 vector, one cache line); from 2 MB on, 2 MB-aligned and in huge
// pages where the kernel offers them (tensor.cpp says why). Freed buffers go back to a cache of buffers keyed by
// size and are reused, so steady-state training allocates nothing from the OS.
std::shared_ptr<float[]> allocate_aligned(int64_t count);
// Returns every cached free buffer to the OS (e.g. after training, before serving).
void release_cached_buffers();

}  // namespace mriscan
