// Tensor and Shape implementation: aligned allocation, shape arithmetic, reshape views.
#include "engine/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
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

std::shared_ptr<float[]> allocate_aligned(int64_t count) {
  // Round the byte size up to a multiple of the alignment, as aligned_alloc requires.
  size_t bytes = static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(float);
  bytes = (bytes + 63) / 64 * 64;
  void* memory = std::aligned_alloc(64, bytes);
  if (!memory) throw std::bad_alloc();
  return std::shared_ptr<float[]>(static_cast<float*>(memory), [](float* p) { std::free(p); });
}

Tensor::Tensor(const Shape& shape) : storage_(allocate_aligned(shape.numel())), shape_(shape) {
  std::memset(storage_.get(), 0, sizeof(float) * shape.numel());
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
