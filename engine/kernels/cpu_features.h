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
  bool avx2_fma = false;   // AVX2 and FMA: x86-64-v3's vector part
  bool avx512 = false;     // AVX-512 F, BW, DQ, VL and CD: x86-64-v4
  bool avx512_bf16 = false;
  // Data cache sizes per core (L3: the whole cache); a fallback of 32 KiB / 512 KiB / 8 MiB where the operating
  // system reports none (some virtual machines).
  int64_t l1d_bytes = 0, l2_bytes = 0, l3_bytes = 0;
};

// Read on the first call (thread-safe), the same object afterwards.
const CpuFeatures& cpu_features();

}  // namespace mriscan
