// The machine's measured fused multiply-add peak for one kernel table's instruction set: the ceiling the
// benchmarks report GEMM throughput against (bench/), a measured figure rather than a datasheet's.
// What it is not: a kernel (nothing calls it on the model's path).
#pragma once

#include "engine/kernels/dispatch.h"

namespace mriscan {

// Floating-point operations of one fma_probe(steps) call of `table` (dispatch.h).
double fma_probe_flops(const KernelTable& table, int64_t steps);

// GFLOP/s of `threads` threads each running table.fma_probe: the median of `repeats` timed runs after a warm-up.
double measure_fma_peak_gflops(const KernelTable& table, int threads, int repeats = 5);

}  // namespace mriscan
