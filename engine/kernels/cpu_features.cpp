// Reads CpuFeatures (cpu_features.h): GCC's __builtin_cpu_supports (CPUID, and XGETBV for the operating system's
// support of the AVX and AVX-512 register state; the x86-64-vN levels since GCC 12), sysconf for the cache
// sizes, /proc/cpuinfo for the model name.
#include "engine/kernels/cpu_features.h"

#include <unistd.h>

#include <fstream>

namespace mriscan {
namespace {

std::string read_model_name() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon != std::string::npos && colon + 2 <= line.size()) return line.substr(colon + 2);
  }
  return "unknown";
}

int64_t cache_bytes(int name, int64_t fallback) {
  const long bytes = ::sysconf(name);
  return bytes > 0 ? bytes : fallback;
}

CpuFeatures read_features() {
  CpuFeatures f;
  f.model_name = read_model_name();
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  f.x86_64_v3 = __builtin_cpu_supports("x86-64-v3");
  f.x86_64_v4 = __builtin_cpu_supports("x86-64-v4");
  f.avx512_bf16 = f.x86_64_v4 && __builtin_cpu_supports("avx512bf16");
#endif
  f.l1d_bytes = cache_bytes(_SC_LEVEL1_DCACHE_SIZE, int64_t(32) << 10);
  f.l2_bytes = cache_bytes(_SC_LEVEL2_CACHE_SIZE, int64_t(512) << 10);
  f.l3_bytes = cache_bytes(_SC_LEVEL3_CACHE_SIZE, int64_t(8) << 20);
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = read_features();
  return features;
}

}  // namespace mriscan
