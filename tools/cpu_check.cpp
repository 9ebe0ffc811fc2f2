// The start-up check that this CPU has the instructions the baseline code was compiled for. Everything outside the
// kernel sets is built for x86-64-v2 by default (CMakeLists.txt), for this machine with MRISCAN_NATIVE, or for the
// -march a packager chose, and the compiler may use those instructions anywhere. Run on an older CPU, such a
// binary would die of SIGILL at some arbitrary point. Instead, before any other code of ours runs (a constructor
// with the earliest priority, compiled for baseline x86-64), this compares the extensions the compiler was told
// to assume with what CPUID reports, and exits with a message naming the missing ones. Tested under QEMU's
// user-mode emulator (tests/tools/cli_test.py), whose CPU lacks some extensions of recent CPUs (which ones depends
// on the QEMU version: 7.2 has AVX2 but no AVX-512 or VPCLMULQDQ).
// What it is not: the kernels' choice of instruction set, made at run time from the same CPUID facts
// (engine/kernels/dispatch.h); that one never refuses, it picks the highest set the CPU runs.
#include <unistd.h>

#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
namespace {

#define MRISCAN_BASELINE __attribute__((target("arch=x86-64")))

MRISCAN_BASELINE void write_text(const char* text) {
  if (::write(2, text, std::strlen(text)) < 0) return;
}

// Each test is guarded by the macro the compiler defines when it may use that extension: every extension of
// x86-64-v2 to -v4 and those of later Xeons (VNNI, BF16, VBMI, FP16, ...) that GCC can emit. Each function appends
// the names CPUID does not report to `missing` and returns the new count.

// x86-64-v2 and -v3 (SSSE3 to BMI2), and the AES, carry-less multiply and Galois-field extensions.
MRISCAN_BASELINE int find_missing_up_to_v3(const char** missing, int count) {
#ifdef __SSSE3__
  if (!__builtin_cpu_supports("ssse3")) missing[count++] = "ssse3";
#endif
#ifdef __SSE4_1__
  if (!__builtin_cpu_supports("sse4.1")) missing[count++] = "sse4.1";
#endif
#ifdef __SSE4_2__
  if (!__builtin_cpu_supports("sse4.2")) missing[count++] = "sse4.2";
#endif
#ifdef __POPCNT__
  if (!__builtin_cpu_supports("popcnt")) missing[count++] = "popcnt";
#endif
#ifdef __AVX__
  if (!__builtin_cpu_supports("avx")) missing[count++] = "avx";
#endif
#ifdef __AVX2__
  if (!__builtin_cpu_supports("avx2")) missing[count++] = "avx2";
#endif
#ifdef __FMA__
  if (!__builtin_cpu_supports("fma")) missing[count++] = "fma";
#endif
#ifdef __BMI__
  if (!__builtin_cpu_supports("bmi")) missing[count++] = "bmi";
#endif
#ifdef __BMI2__
  if (!__builtin_cpu_supports("bmi2")) missing[count++] = "bmi2";
#endif
#ifdef __AES__
  if (!__builtin_cpu_supports("aes")) missing[count++] = "aes";
#endif
#ifdef __PCLMUL__
  if (!__builtin_cpu_supports("pclmul")) missing[count++] = "pclmul";
#endif
#ifdef __GFNI__
  if (!__builtin_cpu_supports("gfni")) missing[count++] = "gfni";
#endif
#ifdef __VPCLMULQDQ__
  if (!__builtin_cpu_supports("vpclmulqdq")) missing[count++] = "vpclmulqdq";
#endif
  return count;
}

// x86-64-v4 (AVX-512 F, BW, DQ, VL, CD) and the AVX-512 extensions of later CPUs.
MRISCAN_BASELINE int find_missing_avx512(const char** missing, int count) {
#ifdef __AVX512F__
  if (!__builtin_cpu_supports("avx512f")) missing[count++] = "avx512f";
#endif
#ifdef __AVX512BW__
  if (!__builtin_cpu_supports("avx512bw")) missing[count++] = "avx512bw";
#endif
#ifdef __AVX512DQ__
  if (!__builtin_cpu_supports("avx512dq")) missing[count++] = "avx512dq";
#endif
#ifdef __AVX512VL__
  if (!__builtin_cpu_supports("avx512vl")) missing[count++] = "avx512vl";
#endif
#ifdef __AVX512CD__
  if (!__builtin_cpu_supports("avx512cd")) missing[count++] = "avx512cd";
#endif
#ifdef __AVX512VNNI__
  if (!__builtin_cpu_supports("avx512vnni")) missing[count++] = "avx512vnni";
#endif
#ifdef __AVX512BF16__
  if (!__builtin_cpu_supports("avx512bf16")) missing[count++] = "avx512bf16";
#endif
#ifdef __AVX512VBMI__
  if (!__builtin_cpu_supports("avx512vbmi")) missing[count++] = "avx512vbmi";
#endif
#ifdef __AVX512VBMI2__
  if (!__builtin_cpu_supports("avx512vbmi2")) missing[count++] = "avx512vbmi2";
#endif
#ifdef __AVX512IFMA__
  if (!__builtin_cpu_supports("avx512ifma")) missing[count++] = "avx512ifma";
#endif
#ifdef __AVX512BITALG__
  if (!__builtin_cpu_supports("avx512bitalg")) missing[count++] = "avx512bitalg";
#endif
#ifdef __AVX512VPOPCNTDQ__
  if (!__builtin_cpu_supports("avx512vpopcntdq")) missing[count++] = "avx512vpopcntdq";
#endif
#ifdef __AVX512FP16__
  if (!__builtin_cpu_supports("avx512fp16")) missing[count++] = "avx512fp16";
#endif
  return count;
}

__attribute__((constructor(101))) MRISCAN_BASELINE void refuse_missing_cpu_features() {
  __builtin_cpu_init();
  const char* missing[26];
  int count = find_missing_up_to_v3(missing, 0);
  count = find_missing_avx512(missing, count);
  if (count == 0) return;
  write_text(
      "mriscan: this binary was compiled for CPU instructions that this "
      "CPU lacks:");
  for (int i = 0; i < count; ++i) {
    write_text(" ");
    write_text(missing[i]);
  }
  write_text(
      ".\nmriscan: rebuild it without MRISCAN_NATIVE or a -march of your own "
      "(scripts/build.sh: the default x86-64-v2 baseline runs on every x86-64 CPU since 2009, "
      "with kernels chosen at run time).\n");
  _exit(1);
}

}  // namespace
#endif
