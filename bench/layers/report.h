// What mriscan_layer_bench reports: the per-layer table on stdout and every figure as one JSON document, with the
// machine and the settings they were measured with.
//
// What it is: formatting only; the numbers come from the comparisons (comparison.h) and the roofline
// (roofline.h). What it is not: a results page (measured figures go to docs/results/, dated, by hand).
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/layers/comparison.h"
#include "bench/layers/roofline.h"

namespace mriscan::layer_bench {

struct RunInfo {
  std::string cpu_model;       // /proc/cpuinfo's "model name"
  std::string kernel_table;    // kernels().name: the instruction set of mriscan's kernel table in use
  std::string onednn_version;  // "2.6.3"
  std::string onednn_isa;      // the instruction set oneDNN's JIT uses here
  int threads = 0, batch = 0, warmup = 0, repeats = 0;
  double tolerance = 0.0;      // max_relative_error allowed per row (measure.h)
};

// The header lines (machine, settings, roofs) and one line per row: layer, op, both medians, the ratio
// oneDNN / mriscan (> 1: mriscan faster), mriscan's GFLOP/s and GB/s, the error.
void print_table(std::FILE* out, const RunInfo& info, const std::vector<Comparison>& rows, const Roofs& roofs);

nlohmann::json report_json(const RunInfo& info, const std::vector<Comparison>& rows, const Roofs& roofs,
                           const std::vector<RooflinePoint>& points);

// The rows whose results differ by more than the tolerance (empty: every check passed).
std::vector<const Comparison*> mismatches(const std::vector<Comparison>& rows, double tolerance);

}  // namespace mriscan::layer_bench
