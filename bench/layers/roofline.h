// The roofline of this machine for mriscan's kernels: the two ceilings measured here (the FMA peak and the
// streaming memory bandwidth, on the benchmark's thread count), each kernel's arithmetic intensity and achieved
// GFLOP/s from the per-layer comparisons, and the chart.
//
// What it is: min(peak, bandwidth * intensity) as the attainable GFLOP/s of an op whose work model
// (comparison.h, docs/roofline.md) does `flops` and moves `bytes`; a kernel's distance below it says how much its
// implementation leaves on the table. What it is not: a cache-aware roofline (one memory roof, DRAM), nor a
// statement about oneDNN's kernels (the table compares those by time).
#pragma once

#include <string>
#include <vector>

#include "bench/layers/comparison.h"
#include "engine/kernels/dispatch.h"
#include "io/image_io.h"

namespace mriscan::layer_bench {

struct Roofs {
  double peak_gflops = 0.0;     // measure_fma_peak_gflops (engine/kernels/fma_peak.h)
  double bandwidth_gbs = 0.0;   // y += alpha * x over arrays far larger than the last-level cache: 12 bytes/element
  int64_t stream_elements = 0;  // n of that probe
  Timing stream;                // its timed calls
  double ridge_intensity() const { return peak_gflops / bandwidth_gbs; }  // FLOP/byte where the roofs meet
};

// Both ceilings on `threads` threads, each the median of `repeats` timed runs after an untimed one: the FMA probe
// of the table's instruction set, and table.axpy over 64M floats (two 256 MB arrays).
Roofs measure_roofs(const KernelTable& table, int threads, int repeats);

struct RooflinePoint {
  std::string layer, op;
  double intensity = 0.0;     // FLOP/byte of the work model
  double gflops = 0.0;        // achieved by mriscan's kernel: flops / median time
  double roof_gflops = 0.0;   // min(peak, bandwidth * intensity)
  double fraction() const { return gflops / roof_gflops; }
};

std::vector<RooflinePoint> roofline_points(const std::vector<Comparison>& rows, const Roofs& roofs);

// Log-log axes (intensity, GFLOP/s), the roof, one dot per kernel coloured by its op, `title` on top.
Image render_roofline(const std::vector<RooflinePoint>& points, const Roofs& roofs, const std::string& title);

}  // namespace mriscan::layer_bench
