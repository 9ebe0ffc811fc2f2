// The process-wide GEMM precision (matmul_precision.h).
#include "engine/kernels/matmul_precision.h"

#include <atomic>
#include <stdexcept>

#include "engine/kernels/dispatch.h"

namespace mriscan {
namespace {
std::atomic<MatmulPrecision> g_precision{MatmulPrecision::kFloat32};
thread_local std::optional<MatmulPrecision> t_precision;

void check_supported(MatmulPrecision precision) {
  if (precision == MatmulPrecision::kBFloat16 && !bf16_matmul_supported())
    throw std::runtime_error("bf16 precision needs a CPU with AVX512-BF16 (vdpbf16ps); the kernels in use are " +
                             fast_kernels().name + ": use --precision fp32");
}
}  // namespace

bool bf16_matmul_supported() { return fast_kernels().bf16_matmul; }

void set_matmul_precision(MatmulPrecision precision) {
  check_supported(precision);
  g_precision.store(precision);
}

void set_thread_matmul_precision(std::optional<MatmulPrecision> precision) {
  if (precision) check_supported(*precision);
  t_precision = precision;
}

MatmulPrecision matmul_precision() { return t_precision ? *t_precision : g_precision.load(std::memory_order_relaxed); }

MatmulPrecision parse_matmul_precision(const std::string& text) {
  if (text == "fp32") return MatmulPrecision::kFloat32;
  if (text == "bf16") return MatmulPrecision::kBFloat16;
  throw std::invalid_argument("precision must be fp32 or bf16, not '" + text + "'");
}

const char* matmul_precision_name(MatmulPrecision precision) {
  return precision == MatmulPrecision::kBFloat16 ? "bf16" : "fp32";
}

}  // namespace mriscan
