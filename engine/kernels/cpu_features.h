// What this CPU offers the kernels: which instruction sets it can execute (as CPUID and the operating system
// report them) and the sizes of its caches, read once.
//
// What it is: the facts the kernel tables are chosen from (dispatch.cpp) and that the kernels size their cache
// blocks with. What it is not: the choice itself (dispatch.h), nor the start-up check of the instructions the
// rest of the binary was compiled for (tools/cpu_check.cpp).
#pragma once

#include <cstdint>
#include <string>

namespace mriscan {

struct CpuFeatures {
  std::string model_name;  // /proc/cpuinfo's "model name" (what lscpu prints), or "unknown"
  // Every extension of the level, as the kernel sets are compiled with -march=x86-64-v3 / -v4 and the compiler may use
  // any of them (not only the vector ones: BMI2's shlx, LZCNT, MOVBE appear in scalar code).
  bool x86_64_v3 = false;  // AVX, AVX2, FMA, BMI1, BMI2, F16C, LZCNT, MOVBE (and x86-64-v2)
  bool x86_64_v4 = false;  // AVX-512 F, BW, DQ, VL and CD (and x86-64-v3)
  bool avx512_bf16 = false;
  // Data cache sizes per core (L3: the whole cache); a fallback of 32 KiB / 512 KiB / 8 MiB where the operating
  // system reports none (some virtual machines).
  int64_t l1d_bytes = 0, l2_bytes = 0, l3_bytes = 0;
};

// Read on the first call (thread-safe), the same object afterwards.
const CpuFeatures& cpu_features();

}  // namespace mriscan
