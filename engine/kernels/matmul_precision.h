// The precision of the GEMMs' multiplications (pointwise convolutions, the linear layer), chosen once per process,
// like PyTorch's torch.set_float32_matmul_precision:
//   kFloat32   products and sums in float32 (the default)
//   kBFloat16  op(A) and op(B) rounded to bfloat16 (bf16.h), products summed in float32 (AVX512-BF16's vdpbf16ps
//              multiplies two pairs per lane, twice the float32 FMA's work per instruction)
// kBFloat16 applies to every product: forward, input gradient and weight gradient. Tensors, weights, optimiser
// state and every other op stay float32: this is mixed precision for the matrix products only. Both kernel tables
// follow the setting (the reference rounds with bf16.h), so MRISCAN_KERNELS=ref still checks the fast path.
// What it is not: a per-layer or per-call setting.
#pragma once

#include <optional>
#include <string>

namespace mriscan {

enum class MatmulPrecision { kFloat32, kBFloat16 };

// True when the process's fast kernels (dispatch.h's fast_kernels(): the CPU's highest set, or MRISCAN_ISA's) have
// the bf16 GEMM: the avx512_bf16 set, on a CPU with AVX512-BF16.
bool bf16_matmul_supported();

// The process-wide setting, and one for the calling thread only that wins over it (as engine/parallel.h's thread
// budget: the server retrains on a worker thread in the run's precision while its predictions keep the server's).
// Both throw std::runtime_error with a clear message for kBFloat16 where it is not supported: never a silent
// fallback. The setting is read on the thread that calls a GEMM, before any of its parallel regions.
void set_matmul_precision(MatmulPrecision precision);
void set_thread_matmul_precision(std::optional<MatmulPrecision> precision);  // nullopt: follow the process again
MatmulPrecision matmul_precision();

// "fp32" | "bf16" (throws std::invalid_argument on anything else), and back.
MatmulPrecision parse_matmul_precision(const std::string& text);
const char* matmul_precision_name(MatmulPrecision precision);

}  // namespace mriscan
