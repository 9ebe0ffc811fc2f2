// The one selection point for kernels.
//
// `kernels()` returns a table of function pointers: the fast (xsimd + OpenMP) variants where they exist, the
// reference ones otherwise. The fast kernels are compiled once per instruction set (CMakeLists.txt: the kernel
// sets, each in its own namespace mriscan::<set> with its own compiler flags, e.g. avx2, avx512, avx512_bf16), and
// the first call picks the highest set this CPU runs (cpu_features.h), as PyTorch's DispatchStub does; the rest of
// the program is compiled for a baseline CPU. The environment chooses otherwise for the whole process:
//   MRISCAN_ISA=avx2       a lower set than the CPU's best, to test and time it (never a higher one: an error)
//   MRISCAN_KERNELS=ref    the reference table, so a student can run the model on plain loops and a bug can be
//                          bisected in one command
// A ScopedKernelTable overrides either choice on one thread only (threads the kernels start themselves run the
// kernel they were handed; another thread calling kernels() does not see the override). Layers call kernels only
// through this table; the entries at the end (eval-mode BN backward, dropout, softmax cross-entropy) have no fast
// variant and point to the reference in every table.
// Signatures: see params.h for layouts and the overwrite/accumulate contract. Shape comments use
// M = N*H*W rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/kernels/params.h"

namespace mriscan {

struct KernelTable {
  std::string name;  // "ref", or the fast table's instruction set ("sse4_2", "avx2", "avx512", "avx512_bf16")
  int vector_width;  // floats per vector register of that set (1 for the reference)
  // True when the GEMM entries have a bf16 product of their own for MatmulPrecision::kBFloat16 (matmul_precision.h):
  // the reference (which rounds with bf16.h) and the avx512_bf16 set; the other sets fall back to the reference's.
  bool bf16_matmul;
  // The FMA peak probe (fma_peak.h): `kFmaProbeChains` independent chains of vector multiply-adds, `steps` each, on
  // the calling thread, 2 * vector_width * kFmaProbeChains * steps floating-point operations; returns a value
  // that depends on every one of them, so none can be optimised away.
  float (*fma_probe)(int64_t steps);

  // Dense KxK convolution (the stem). x (N, H, W, Ci), w (KH, KW, Ci, Co), bias (Co) or null, y (N, OH, OW, Co).
  // The forward applies p.activation after the bias (params.h); the backward kernels ignore it.
  void (*conv2d_forward)(const Conv2dParams&, const float* x, const float* w, const float* bias, float* y);
  void (*conv2d_backward_input)(const Conv2dParams&, const float* dy, const float* w, float* dx);
  void (*conv2d_backward_weight)(const Conv2dParams&, const float* x, const float* dy, float* dw, float* dbias);

  // Depthwise convolution. x (N, H, W, C), w (K, K, C), bias (C) or null, y (N, OH, OW, C).
  // The forward applies p.activation after the bias (params.h); the backward kernels ignore it.
  void (*depthwise_forward)(const DepthwiseParams&, const float* x, const float* w, const float* bias, float* y);
  void (*depthwise_backward_input)(const DepthwiseParams&, const float* dy, const float* w, float* dx);
  void (*depthwise_backward_weight)(const DepthwiseParams&, const float* x, const float* dy, float* dw, float* dbias);

  // Row-major GEMM; pointwise conv and linear are built on it. a, b, c per GemmParams. Both GEMM entries follow
  // matmul_precision() (matmul_precision.h): float32, or bf16 inputs with float32 sums.
  void (*gemm)(const GemmParams&, const float* a, const float* b, float* c);
  // The same product with an epilogue applied to each output tile while it is still in cache: the fused forward of
  // pointwise conv (+ folded BN + ReLU6) and of the linear layer, for inference. bias (n) or null.
  //   c(m, n) = act(op(a) . op(b) [+ c if accumulate] + bias(n))
  void (*gemm_bias_act)(const GemmParams&, const float* a, const float* b, const float* bias, Activation activation,
                        float* c);
  // The bf16 hand-off of the folded inference network under bf16 precision (models/folded_mobilenet_v2.cpp): a
  // depthwise conv whose output only feeds a bf16 product writes it already rounded to bf16 (y_bf16 (N, OH, OW,
  // C), the bits bf16.h's bf16_bits gives), and the product reads it as its A: gemm_bias_act under bf16 precision
  // with A (M, K) given as bf16, K even, p.trans_a false; whatever the precision setting. Both compute exactly
  // what the float32 output followed by the bf16 product computes (the rounding is the same one, done earlier),
  // with half the bytes written and read between them and no conversion in the product.
  void (*depthwise_forward_bf16)(const DepthwiseParams&, const float* x, const float* w, const float* bias,
                                 uint16_t* y_bf16);
  void (*gemm_bias_act_bf16_a)(const GemmParams&, const uint16_t* a_bf16, const float* b, const float* bias,
                               Activation activation, float* c);

  // Batch norm, training mode: per-channel batch mean and 1/sqrt(var + eps) (biased variance) are written to
  // mean (C) and inv_std (C); y = act(gamma * (x - mean) * inv_std + beta) with act = p.activation. x, y (M, C).
  void (*batchnorm_train_forward)(const BatchNormParams&, const float* x, const float* gamma, const float* beta,
                                  float* y, float* mean, float* inv_std);
  // Backward through the batch statistics: dx += inv_std*gamma*(dy - mean(dy) - xhat*mean(dy*xhat)) (stored, not
  // added, when !p.accumulate_dx), dgamma += sum(dy*xhat), dbeta += sum(dy). Any of dx, dgamma, dbeta may be null
  // (not needed). With p.activation, dy is the gradient of the forward's output z = act(y) and is first masked where
  // the activation is flat, judged on y = gamma*xhat + beta recomputed from x as the forward computed it (beta is
  // read only then): the output z is never read.
  void (*batchnorm_train_backward)(const BatchNormParams&, const float* dy, const float* x, const float* gamma,
                                   const float* beta, const float* mean, const float* inv_std, float* dx,
                                   float* dgamma, float* dbeta);
  // The pieces of the two kernels above, for synchronised batch norm, which adds per-process sums over processes
  // between them: the statistics alone, in double, mean (C) and m2 (C) = sum (x - mean)^2; the backward sums sum(dy)
  // (C) and sum(dy * xhat) (C), overwritten; and dx += gamma*inv_std*(dy - sum_dy/total_rows -
  // xhat*sum_dy_xhat/total_rows) from given sums.
  void (*batchnorm_statistics)(const BatchNormParams&, const float* x, double* mean, double* m2);
  // y = act(gamma * (x - mean) * inv_std + beta), subtracting first (x * scale + shift cancels when |mean| >> std).
  void (*batchnorm_normalize)(const BatchNormParams&, const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* inv_std, float* y);
  void (*batchnorm_backward_sums)(const BatchNormParams&, const float* dy, const float* x, const float* gamma,
                                  const float* beta, const float* mean, const float* inv_std, double* sum_dy,
                                  double* sum_dy_xhat);
  void (*batchnorm_backward_input)(const BatchNormParams&, const float* dy, const float* x, const float* gamma,
                                   const float* beta, const float* mean, const float* inv_std, const double* sum_dy,
                                   const double* sum_dy_xhat, double total_rows, float* dx);
  // Per-channel affine y = x * scale + shift (eval-mode BN with scale = gamma*inv_std, shift = beta - mean*scale).
  void (*channel_affine_forward)(int64_t rows, int channels, const float* x, const float* scale, const float* shift,
                                 float* y);

  // ReLU6: y = min(max(x, 0), 6); dx += dy where 0 < x < 6. n elements.
  void (*relu6_forward)(int64_t n, const float* x, float* y);
  void (*relu6_backward)(int64_t n, const float* x, const float* dy, float* dx);

  // Elementwise helpers: y = a + b; y += alpha * x; y *= alpha.
  void (*add_forward)(int64_t n, const float* a, const float* b, float* y);
  void (*axpy)(int64_t n, float alpha, const float* x, float* y);
  void (*scale)(int64_t n, float alpha, float* y);

  // Global average pool. x (N, H, W, C) -> y (N, C); backward dx += dy / (H*W).
  void (*global_avg_pool_forward)(const PoolParams&, const float* x, float* y);
  void (*global_avg_pool_backward)(const PoolParams&, const float* dy, float* dx);

  // Row bias: y(rows, cols) += bias(cols); and its gradient dbias(cols) += column sums of dy(rows, cols).
  void (*bias_add_rows)(int64_t rows, int cols, const float* bias, float* y);
  void (*bias_backward_rows)(int64_t rows, int cols, const float* dy, float* dbias);

  // Reference-only entries (no fast variant: frozen-BN backward is rare, the other two touch (N, C) or (B, K)).
  // Eval-mode BN backward, statistics constant: dx += dy*gamma*inv_std, dgamma += sum(dy*xhat), dbeta += sum(dy).
  void (*batchnorm_eval_backward)(const BatchNormParams&, const float* dy, const float* x, const float* mean,
                                  const float* inv_std, const float* gamma, float* dx, float* dgamma, float* dbeta);
  // Inverted dropout with a given keep mask (n): y = keep ? x / (1 - p) : 0; dx += keep ? dy / (1 - p) : 0.
  void (*dropout_forward)(int64_t n, float p, const uint8_t* keep, const float* x, float* y);
  void (*dropout_backward)(int64_t n, float p, const uint8_t* keep, const float* dy, float* dx);
  // Softmax cross-entropy over logits (B, K): writes probs (B, K), returns the mean (label-smoothed) loss; backward
  // dlogits += dloss * (probs - target) / B.
  float (*softmax_xent_forward)(const SoftmaxCrossEntropyParams&, const float* logits, const int* labels, float* probs);
  void (*softmax_xent_backward)(const SoftmaxCrossEntropyParams&, float dloss, const float* probs, const int* labels,
                                float* dlogits);
};

inline constexpr int kFmaProbeChains = 12;  // FMA latency (4 cycles) x 2 FMA ports, and some to spare

// The table in use: the calling thread's override if one is in scope, else the process's (chosen once, from
// MRISCAN_KERNELS=ref or fast_kernels(); thread-safe). Throws std::runtime_error, naming the sets this CPU runs,
// when MRISCAN_ISA names a set that is not compiled in or that this CPU cannot run.
const KernelTable& kernels();

// While alive, kernels() on this thread returns `table`: lets one process run the same layer on both tables
// (examples/mobilenet_block.cpp). Scopes nest; the destructor restores the previous choice.
class ScopedKernelTable {
 public:
  explicit ScopedKernelTable(const KernelTable& table);
  ~ScopedKernelTable();
  ScopedKernelTable(const ScopedKernelTable&) = delete;
  ScopedKernelTable& operator=(const ScopedKernelTable&) = delete;

 private:
  const KernelTable* previous_;
};
// The reference table, and the fast table of the process (the CPU's highest set, or MRISCAN_ISA's), for tests and
// benchmarks that compare them. fast_kernels() throws as kernels() does.
const KernelTable& reference_kernels();
const KernelTable& fast_kernels();
// Every fast table this CPU can run, lowest set first, whatever MRISCAN_ISA says: the kernel tests check each.
std::vector<const KernelTable*> runnable_fast_kernels();
// The names of the sets this binary has kernels for, lowest first.
std::vector<std::string> compiled_kernel_sets();

}  // namespace mriscan
