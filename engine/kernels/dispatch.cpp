// The one selection point: builds the reference table and one fast table per compiled instruction set, and picks
// one at first use (dispatch.h).
#include "engine/kernels/dispatch.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "engine/kernels/batchnorm_ref.h"
#include "engine/kernels/bf16.h"
#include "engine/kernels/conv2d_ref.h"
#include "engine/kernels/depthwise_ref.h"
#include "engine/kernels/dropout_ref.h"
#include "engine/kernels/cpu_features.h"
#include "engine/kernels/elementwise_ref.h"
#include "engine/kernels/gemm_ref.h"
#include "engine/kernels/matmul_precision.h"
#include "engine/kernels/pool_ref.h"
#include "engine/kernels/softmax_xent_ref.h"

// Each kernel set's one exported symbol (engine/kernels/kernel_table_simd.cpp, compiled once per set): fills the
// fast entries of a table that starts as a copy of the reference. CMakeLists.txt compiles the sets named here.
extern "C" {
void mriscan_kernels_baseline(mriscan::KernelTable* table);
#if defined(__x86_64__)
void mriscan_kernels_avx2(mriscan::KernelTable* table);
void mriscan_kernels_avx512(mriscan::KernelTable* table);
void mriscan_kernels_avx512_bf16(mriscan::KernelTable* table);
#endif
}

namespace mriscan {
namespace {

// The reference table's FMA probe: the same chains, one float each.
float fma_probe_reference(int64_t steps) {
  float acc[kFmaProbeChains];
  for (int i = 0; i < kFmaProbeChains; ++i) acc[i] = 1.0f + 1e-3f * float(i);
  for (int64_t step = 0; step < steps; ++step)
    for (int i = 0; i < kFmaProbeChains; ++i) acc[i] = std::fma(acc[i], 0.999999f, 1e-7f);
  float total = 0.0f;
  for (float a : acc) total += a;
  return total;
}

// The reference table's GEMM entries follow the matmul precision as the fast ones do.
void gemm_reference(const GemmParams& p, const float* a, const float* b, float* c) {
  if (matmul_precision() == MatmulPrecision::kBFloat16)
    gemm_bf16_ref<float>(p, a, b, nullptr, Activation::kNone, c);
  else
    gemm_ref<float>(p, a, b, c);
}

void gemm_bias_act_reference(const GemmParams& p, const float* a, const float* b, const float* bias,
                             Activation activation, float* c) {
  if (matmul_precision() == MatmulPrecision::kBFloat16)
    gemm_bf16_ref<float>(p, a, b, bias, activation, c);
  else
    gemm_bias_act_ref<float>(p, a, b, bias, activation, c);
}

// The hand-off's references: the float32 kernels, then the rounding (bf16.h) as a separate step.
void depthwise_forward_bf16_reference(const DepthwiseParams& p, const float* x, const float* w, const float* bias,
                                      uint16_t* y_bf16) {
  std::vector<float> y(size_t(p.batch) * p.out_h * p.out_w * p.channels);  // (N, OH, OW, C)
  depthwise_forward_ref<float>(p, x, w, bias, y.data());
  for (size_t i = 0; i < y.size(); ++i) y_bf16[i] = bf16_bits(y[i]);
}

void gemm_bias_act_bf16_a_reference(const GemmParams& p, const uint16_t* a_bf16, const float* b, const float* bias,
                                    Activation activation, float* c) {
  std::vector<float> a(size_t(p.m) * p.k);  // (M, K), exact: every bf16 value is a float
  for (size_t i = 0; i < a.size(); ++i) a[i] = bf16_to_float(a_bf16[i]);
  gemm_bf16_ref<float>(p, a.data(), b, bias, activation, c);
}

}  // namespace

const KernelTable& reference_kernels() {
  static const KernelTable table = {
      .name = "ref",
      .vector_width = 1,
      .bf16_matmul = true,
      .fma_probe = fma_probe_reference,
      .conv2d_forward = conv2d_forward_ref<float>,
      .conv2d_backward_input = conv2d_backward_input_ref<float>,
      .conv2d_backward_weight = conv2d_backward_weight_ref<float>,
      .depthwise_forward = depthwise_forward_ref<float>,
      .depthwise_backward_input = depthwise_backward_input_ref<float>,
      .depthwise_backward_weight = depthwise_backward_weight_ref<float>,
      .gemm = gemm_reference,
      .gemm_bias_act = gemm_bias_act_reference,
      .depthwise_forward_bf16 = depthwise_forward_bf16_reference,
      .gemm_bias_act_bf16_a = gemm_bias_act_bf16_a_reference,
      .batchnorm_train_forward = batchnorm_train_forward_ref<float>,
      .batchnorm_train_backward = batchnorm_train_backward_ref<float>,
      .batchnorm_statistics = batchnorm_statistics_ref<float>,
      .batchnorm_normalize = batchnorm_normalize_ref<float>,
      .batchnorm_backward_sums = batchnorm_backward_sums_ref<float>,
      .batchnorm_backward_input = batchnorm_backward_input_ref<float>,
      .channel_affine_forward = channel_affine_forward_ref<float>,
      .relu6_forward = relu6_forward_ref<float>,
      .relu6_backward = relu6_backward_ref<float>,
      .add_forward = add_forward_ref<float>,
      .axpy = axpy_ref<float>,
      .scale = scale_ref<float>,
      .global_avg_pool_forward = global_avg_pool_forward_ref<float>,
      .global_avg_pool_backward = global_avg_pool_backward_ref<float>,
      .bias_add_rows = bias_add_rows_ref<float>,
      .bias_backward_rows = bias_backward_rows_ref<float>,
      .batchnorm_eval_backward = batchnorm_eval_backward_ref<float>,
      .dropout_forward = dropout_forward_ref<float>,
      .dropout_backward = dropout_backward_ref<float>,
      .softmax_xent_forward = softmax_xent_forward_ref<float>,
      .softmax_xent_backward = softmax_xent_backward_ref<float>,
  };
  return table;
}

namespace {

// A compiled set: whether this CPU runs it, and its fill function.
struct KernelSet {
  bool (*runs)(const CpuFeatures&);
  void (*fill)(KernelTable*);
};

bool always(const CpuFeatures&) { return true; }

const std::vector<KernelSet>& kernel_sets() {  // lowest first
  static const std::vector<KernelSet> sets = {
      {always, mriscan_kernels_baseline},
#if defined(__x86_64__)
      {[](const CpuFeatures& f) { return f.x86_64_v3; }, mriscan_kernels_avx2},
      {[](const CpuFeatures& f) { return f.x86_64_v4; }, mriscan_kernels_avx512},
      {[](const CpuFeatures& f) { return f.avx512_bf16; }, mriscan_kernels_avx512_bf16},
#endif
  };
  return sets;
}

// Every compiled set's table, built once, in the order of kernel_sets(). Building runs no instruction of the set:
// the fill functions only store addresses.
const std::vector<KernelTable>& all_fast_tables() {
  static const std::vector<KernelTable> tables = [] {
    std::vector<KernelTable> built;
    for (const KernelSet& set : kernel_sets()) {
      KernelTable table = reference_kernels();
      set.fill(&table);
      built.push_back(table);
    }
    return built;
  }();
  return tables;
}

std::string joined(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

// The highest set this CPU runs, or the one MRISCAN_ISA names (which it must run).
const KernelTable& choose_fast_table() {
  const std::vector<const KernelTable*> runnable = runnable_fast_kernels();
  const char* forced = std::getenv("MRISCAN_ISA");
  if (!forced || !*forced) return *runnable.back();
  std::vector<std::string> runnable_names;
  for (const KernelTable* table : runnable) {
    if (table->name == forced) return *table;
    runnable_names.push_back(table->name);
  }
  const std::vector<std::string> compiled = compiled_kernel_sets();
  const bool is_compiled = std::find(compiled.begin(), compiled.end(), forced) != compiled.end();
  throw std::runtime_error("MRISCAN_ISA=" + std::string(forced) +
                           (is_compiled ? ": this CPU cannot run that instruction set; it runs "
                                        : ": not an instruction set of this build (" + joined(compiled) +
                                              "); this CPU runs ") +
                           joined(runnable_names));
}

}  // namespace

std::vector<const KernelTable*> runnable_fast_kernels() {
  std::vector<const KernelTable*> runnable;
  for (size_t i = 0; i < kernel_sets().size(); ++i)
    if (kernel_sets()[i].runs(cpu_features())) runnable.push_back(&all_fast_tables()[i]);
  return runnable;
}

std::vector<std::string> compiled_kernel_sets() {
  std::vector<std::string> names;
  for (const KernelTable& table : all_fast_tables()) names.push_back(table.name);
  return names;
}

const KernelTable& fast_kernels() {
  static const KernelTable& chosen = choose_fast_table();
  return chosen;
}

namespace {
thread_local const KernelTable* thread_override = nullptr;
}  // namespace

ScopedKernelTable::ScopedKernelTable(const KernelTable& table) : previous_(thread_override) {
  thread_override = &table;
}
ScopedKernelTable::~ScopedKernelTable() { thread_override = previous_; }

const KernelTable& kernels() {
  if (thread_override) return *thread_override;
  static const KernelTable& chosen = [] () -> const KernelTable& {
    const KernelTable& fast = fast_kernels();  // first, so that a bad MRISCAN_ISA is an error under ref too
    const char* forced = std::getenv("MRISCAN_KERNELS");
    if (forced && std::strcmp(forced, "ref") == 0) return reference_kernels();
    return fast;
  }();
  return chosen;
}

}  // namespace mriscan
