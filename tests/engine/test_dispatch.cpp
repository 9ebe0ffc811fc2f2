// Tests of the kernel-table choice (engine/kernels/dispatch.h): a ScopedKernelTable overrides kernels() on its
// thread only, nests, and restores the previous choice when it ends.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "engine/kernels/dispatch.h"

using namespace mriscan;

TEST(KernelDispatch, ScopedTableOverridesThisThreadAndRestores) {
  const std::string process_choice = kernels().name;  // "simd", or "ref" under MRISCAN_KERNELS=ref
  {
    const ScopedKernelTable outer(reference_kernels());
    EXPECT_EQ(kernels().name, "ref");
    {
      const ScopedKernelTable inner(fast_kernels());
      EXPECT_EQ(kernels().name, "simd");
      std::string other_thread;
      std::thread([&] { other_thread = kernels().name; }).join();
      EXPECT_EQ(other_thread, process_choice);  // the override is this thread's alone
    }
    EXPECT_EQ(kernels().name, "ref");
  }
  EXPECT_EQ(kernels().name, process_choice);
}
