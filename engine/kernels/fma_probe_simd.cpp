// One kernel set's FMA peak probe (dispatch.h's fma_probe, measured by fma_peak.h) and its vector width: compiled
// with the set's flags, like the kernels.
#include "engine/kernels/dispatch.h"
#include "engine/kernels/fast_kernels.h"
#include "engine/simd.h"

namespace mriscan::MRISCAN_ISA {

const int vector_width = kVectorWidth;

float fma_probe(int64_t steps) {
  FloatBatch acc[kFmaProbeChains];  // (chains, V)
  for (int i = 0; i < kFmaProbeChains; ++i) acc[i] = FloatBatch(1.0f + 1e-3f * float(i));
  const FloatBatch a(0.999999f), b(1e-7f);
  for (int64_t step = 0; step < steps; ++step)
#pragma GCC unroll 12
    for (int i = 0; i < kFmaProbeChains; ++i) acc[i] = xsimd::fma(acc[i], a, b);
  FloatBatch total(0.0f);
  for (int i = 0; i < kFmaProbeChains; ++i) total += acc[i];
  return xsimd::hadd(total);
}

}  // namespace mriscan::MRISCAN_ISA
