// Tests for engine/tensor.h's allocation: alignment (64 bytes; 2 MB for buffers of 2 MB and more, which the
// allocator asks the kernel to back with huge pages), reuse of freed buffers by size, and that a recycled buffer
// of either kind holds every value written to it.
#include <gtest/gtest.h>

#include <cstdint>

#include "engine/tensor.h"

namespace mriscan {
namespace {

constexpr int64_t kHugePage = int64_t(2) << 20;  // bytes

uintptr_t address(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.data()); }

TEST(TensorAllocator, SmallBuffersAre64ByteAlignedAndLargeOnesStartOnA2MbPage) {
  for (int64_t count : {1, 15, 16, 1000, 524287}) {  // up to just under 2 MB of floats
    const Tensor t = Tensor::uninitialized(Shape{count});
    EXPECT_EQ(address(t) % 64, 0u) << count;
  }
  for (int64_t count : {524288, 524289, 3 * 524288 + 7, 32 * 112 * 112 * 96 / 16}) {  // 2 MB and more
    const Tensor t = Tensor::uninitialized(Shape{count});
    EXPECT_EQ(address(t) % kHugePage, 0u) << count;
  }
}

TEST(TensorAllocator, FreedBuffersAreReusedBySizeAndHoldWhatIsWritten) {
  for (int64_t count : {int64_t{1000}, int64_t{3 * 524288 + 7}}) {
    uintptr_t first = 0;
    {
      Tensor t = Tensor::uninitialized(Shape{count});
      first = address(t);
      for (int64_t i = 0; i < count; ++i) t[i] = static_cast<float>(i);
      EXPECT_EQ(t[count - 1], static_cast<float>(count - 1));  // the last float of a rounded-up buffer is ours
    }
    const Tensor again = Tensor::uninitialized(Shape{count});  // the same size: the buffer just freed
    EXPECT_EQ(address(again), first) << count;
    const Tensor zeroed(Shape{count});  // another of that size, zero-filled even though it may be recycled
    for (int64_t i = 0; i < count; i += 4099) ASSERT_EQ(zeroed[i], 0.0f) << i;
  }
}

}  // namespace
}  // namespace mriscan
