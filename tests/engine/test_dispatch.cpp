// Tests of the kernel-table choice (engine/kernels/dispatch.h): one fast table per kernel set this CPU runs, each
// replacing every fast entry; the highest set by default, MRISCAN_ISA and MRISCAN_KERNELS choosing otherwise, an
// unknown or unsupported set refused with a clear message; a ScopedKernelTable overriding kernels() on its thread
// only. (That no set's instructions run on a CPU without them: tests/tools/check_kernel_sets.py and the CLI test
// under QEMU.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "engine/kernels/dispatch.h"
#include "tests/support/kernel_compare.h"

using namespace mriscan;
using mriscan::testing::for_each_fast_table;

TEST(KernelDispatch, ScopedTableOverridesThisThreadAndRestores) {
  const std::string process_choice = kernels().name;  // a kernel set, or "ref" under MRISCAN_KERNELS=ref
  {
    const ScopedKernelTable outer(reference_kernels());
    EXPECT_EQ(kernels().name, "ref");
    {
      const ScopedKernelTable inner(*runnable_fast_kernels().front());
      EXPECT_EQ(kernels().name, runnable_fast_kernels().front()->name);
      std::string other_thread;
      std::thread([&] { other_thread = kernels().name; }).join();
      EXPECT_EQ(other_thread, process_choice);  // the override is this thread's alone
    }
    EXPECT_EQ(kernels().name, "ref");
  }
  EXPECT_EQ(kernels().name, process_choice);
}

TEST(KernelDispatch, EveryFastTableReplacesEveryFastEntry) {
  const KernelTable& ref = reference_kernels();
  EXPECT_EQ(ref.name, "ref");
  ASSERT_FALSE(runnable_fast_kernels().empty());
  if (!std::getenv("MRISCAN_ISA")) {
    EXPECT_EQ(fast_kernels().name, runnable_fast_kernels().back()->name);
  }
  for_each_fast_table([&](const KernelTable& fast) {
    EXPECT_NE(fast.name, "ref");
    EXPECT_GE(fast.vector_width, 4);
    EXPECT_NE(fast.fma_probe, ref.fma_probe);
    EXPECT_NE(fast.conv2d_forward, ref.conv2d_forward);
    EXPECT_NE(fast.conv2d_backward_input, ref.conv2d_backward_input);
    EXPECT_NE(fast.conv2d_backward_weight, ref.conv2d_backward_weight);
    EXPECT_NE(fast.depthwise_forward, ref.depthwise_forward);
    EXPECT_NE(fast.depthwise_backward_input, ref.depthwise_backward_input);
    EXPECT_NE(fast.depthwise_backward_weight, ref.depthwise_backward_weight);
    EXPECT_NE(fast.gemm, ref.gemm);
    EXPECT_NE(fast.gemm_bias_act, ref.gemm_bias_act);
    EXPECT_NE(fast.batchnorm_train_forward, ref.batchnorm_train_forward);
    EXPECT_NE(fast.batchnorm_train_backward, ref.batchnorm_train_backward);
    EXPECT_NE(fast.channel_affine_forward, ref.channel_affine_forward);
    EXPECT_NE(fast.relu6_forward, ref.relu6_forward);
    EXPECT_NE(fast.relu6_backward, ref.relu6_backward);
    EXPECT_NE(fast.add_forward, ref.add_forward);
    EXPECT_NE(fast.axpy, ref.axpy);
    EXPECT_NE(fast.scale, ref.scale);
    EXPECT_NE(fast.global_avg_pool_forward, ref.global_avg_pool_forward);
    EXPECT_NE(fast.global_avg_pool_backward, ref.global_avg_pool_backward);
    EXPECT_NE(fast.bias_add_rows, ref.bias_add_rows);
    EXPECT_NE(fast.bias_backward_rows, ref.bias_backward_rows);
    EXPECT_NE(fast.batchnorm_statistics, ref.batchnorm_statistics);
    EXPECT_NE(fast.batchnorm_normalize, ref.batchnorm_normalize);
    EXPECT_NE(fast.batchnorm_backward_sums, ref.batchnorm_backward_sums);
    EXPECT_NE(fast.batchnorm_backward_input, ref.batchnorm_backward_input);
    EXPECT_NE(fast.depthwise_forward_bf16, ref.depthwise_forward_bf16);
    // The bf16 hand-off's product: the set's own only where it has the bf16 GEMM, else the reference's.
    EXPECT_EQ(fast.gemm_bias_act_bf16_a == ref.gemm_bias_act_bf16_a, !fast.bf16_matmul);
  });
  // Each set's table is its own: no two runnable sets share a kernel.
  const auto runnable = runnable_fast_kernels();
  for (size_t i = 1; i < runnable.size(); ++i) EXPECT_NE(runnable[i]->gemm, runnable[i - 1]->gemm);
}

// Each set was compiled with its own flags, whatever the baseline's: its vector width and bf16 GEMM say so (a set
// that inherited -march=native would report another width), and its FMA probe runs.
TEST(KernelDispatch, EachSetIsCompiledForItsInstructionSet) {
  for_each_fast_table([](const KernelTable& fast) {
    const int expected_width = fast.name == "sse4_2" ? 4 : fast.name == "avx2" ? 8
                             : fast.name.rfind("avx512", 0) == 0 ? 16 : fast.vector_width;  // "baseline": any
    EXPECT_EQ(fast.vector_width, expected_width);
    EXPECT_EQ(fast.bf16_matmul, fast.name == "avx512_bf16");
    EXPECT_GT(fast.fma_probe(1000), 0.0f);
  });
}

// The sets a CPU runs are a prefix of those compiled (each set needs the one below it).
TEST(KernelDispatch, RunnableSetsAreTheCompiledOnesThisCpuHas) {
  const auto compiled = compiled_kernel_sets();
  const auto runnable = runnable_fast_kernels();
  ASSERT_LE(runnable.size(), compiled.size());
  for (size_t i = 0; i < runnable.size(); ++i) EXPECT_EQ(runnable[i]->name, compiled[i]);
}

// kernels() chooses once per process, so each choice is checked in a fresh child process ("threadsafe" death
// tests re-execute this binary and run only the statement).
TEST(KernelDispatch, EnvironmentSelectsTheTable) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("MRISCAN_KERNELS", "ref", 1);
        unsetenv("MRISCAN_ISA");
        std::exit(kernels().name == "ref" ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
  const std::string highest = runnable_fast_kernels().back()->name, lowest = runnable_fast_kernels().front()->name;
  EXPECT_EXIT(
      {
        unsetenv("MRISCAN_KERNELS");
        unsetenv("MRISCAN_ISA");
        std::exit(kernels().name == highest ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        unsetenv("MRISCAN_KERNELS");  // the children inherit the suite's environment (scripts/test.sh runs it under ref)
        setenv("MRISCAN_ISA", lowest.c_str(), 1);
        std::exit(kernels().name == lowest && fast_kernels().name == lowest ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// A set that is not compiled in, or that the CPU lacks, is an error naming what this CPU runs.
TEST(KernelDispatch, UnknownOrUnsupportedSetIsAClearError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string highest = runnable_fast_kernels().back()->name;
  EXPECT_EXIT(
      {
        setenv("MRISCAN_KERNELS", "ref", 1);  // refused under ref as well: kernels() validates MRISCAN_ISA first
        setenv("MRISCAN_ISA", "avx9000", 1);
        try {
          kernels();
        } catch (const std::runtime_error& e) {
          const std::string message = e.what();
          std::exit(message.find("not an instruction set of this build") != std::string::npos &&
                            message.find(highest) != std::string::npos
                        ? 0
                        : 2);
        }
        std::exit(1);
      },
      ::testing::ExitedWithCode(0), "");
  const auto compiled = compiled_kernel_sets();
  if (runnable_fast_kernels().size() == compiled.size()) GTEST_SKIP() << "this CPU runs every compiled set";
  const std::string missing = compiled.back();
  EXPECT_EXIT(
      {
        unsetenv("MRISCAN_KERNELS");
        setenv("MRISCAN_ISA", missing.c_str(), 1);
        try {
          kernels();
        } catch (const std::runtime_error& e) {
          std::exit(std::string(e.what()).find("cannot run") != std::string::npos ? 0 : 2);
        }
        std::exit(1);
      },
      ::testing::ExitedWithCode(0), "");
}
