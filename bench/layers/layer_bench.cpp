// mriscan_layer_bench: mriscan's kernels against oneDNN's primitives (the library under PyTorch's CPU
// convolutions) on every MobileNetV2 layer shape (bench/mobilenet_v2_shapes.h), in one process, on the same data:
// depthwise 3x3 and pointwise 1x1 convolutions forward, backward data and backward weights, and training-mode
// batch norm forward and backward, NHWC fp32, both libraries on the same OpenMP thread count. Every mriscan result
// is checked against oneDNN's (a mismatch is an error exit, 1). Then the roofline: this machine's FMA peak and
// memory bandwidth, and where each mriscan kernel sits under them (roofline.h). docs/roofline.md says how to read
// the output.
//
//   build/mriscan_layer_bench [--batch 32] [--json out.json] [--png roofline.png] [--filter 14x14] [--quick]
//
// What it is: the driver (options, order, output). What it is not: a place for figures (docs/results/), nor the
// kernel-by-kernel reference-vs-fast benchmark (bench/bench_kernels.cpp, mriscan_bench).
#include <omp.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/layers/comparison.h"
#include "bench/layers/onednn_context.h"
#include "bench/layers/options.h"
#include "bench/layers/report.h"
#include "bench/layers/roofline.h"
#include "engine/kernels/cpu_features.h"
#include "engine/kernels/dispatch.h"
#include "engine/parallel.h"

namespace mriscan::layer_bench {
namespace {

bool selected(const Options& o, const std::string& layer, size_t index) {
  if (o.quick && index >= 2) return false;  // the smoke test: two shapes of each kind
  return o.filter.empty() || layer.find(o.filter) != std::string::npos;
}

std::vector<Comparison> run_comparisons(const Options& o) {
  const CaseSettings settings{.batch = o.batch, .warmup = o.warmup, .repeats = o.repeats};
  std::vector<Comparison> rows;
  auto append = [&](std::vector<Comparison> more) { rows.insert(rows.end(), more.begin(), more.end()); };
  for (size_t i = 0; i < shapes::kDepthwise.size(); ++i) {
    const shapes::DepthwiseShape& shape = shapes::kDepthwise[i];
    if (!selected(o, shape.name, i)) continue;
    std::fprintf(stderr, "depthwise and batch norm %s ...\n", shape.name);
    append(compare_depthwise(shape, settings));
    append(compare_batchnorm(shape, settings));
  }
  for (size_t i = 0; i < shapes::kPointwise.size(); ++i) {
    const shapes::PointwiseShape& shape = shapes::kPointwise[i];
    if (!selected(o, shape.name, i)) continue;
    std::fprintf(stderr, "pointwise %s ...\n", shape.name);
    append(compare_pointwise(shape, settings));
  }
  return rows;
}

std::string roofline_title(const RunInfo& info) {
  return "Roofline: " + info.cpu_model + ", mriscan kernels " + info.kernel_table + ", " +
         std::to_string(info.threads) + " threads, batch " + std::to_string(info.batch);
}

int run(const Options& o) {
  if (o.threads > 0) set_num_threads(o.threads);
  omp_set_num_threads(num_threads());  // oneDNN (OpenMP runtime) starts its teams with omp_get_max_threads()
  const RunInfo info{.cpu_model = cpu_features().model_name, .kernel_table = kernels().name,
                     .onednn_version = onednn_version(), .onednn_isa = onednn_isa(), .threads = num_threads(),
                     .batch = o.batch, .warmup = o.warmup, .repeats = o.repeats, .tolerance = kTolerance};
  const std::vector<Comparison> rows = run_comparisons(o);
  if (rows.empty()) {
    std::fprintf(stderr, "mriscan_layer_bench: no layer matches --filter '%s'\n", o.filter.c_str());
    return 2;
  }
  std::fprintf(stderr, "roofline: FMA peak and memory bandwidth ...\n");
  const Roofs roofs = measure_roofs(kernels(), num_threads(), o.repeats);
  const std::vector<RooflinePoint> points = roofline_points(rows, roofs);
  print_table(stdout, info, rows, roofs);
  if (!o.json_path.empty()) {
    std::ofstream json(o.json_path);
    json << report_json(info, rows, roofs, points).dump(2) << "\n";
    if (!json) throw std::runtime_error("cannot write " + o.json_path);
  }
  if (!o.png_path.empty())
    write_png(o.png_path, render_roofline(points, roofs, roofline_title(info)));
  const std::vector<const Comparison*> bad = mismatches(rows, kTolerance);
  for (const Comparison* row : bad)
    std::fprintf(stderr, "MISMATCH %s %s: max relative error %.3g > %.0e\n", row->layer.c_str(), row->op.c_str(),
                 row->max_rel_error, kTolerance);
  std::printf("\ncorrectness: %s (%zu of %zu rows within max relative error %.0e of oneDNN's results)\n",
              bad.empty() ? "passed" : "FAILED", rows.size() - bad.size(), rows.size(), kTolerance);
  return bad.empty() ? 0 : 1;
}

}  // namespace
}  // namespace mriscan::layer_bench

int main(int argc, char** argv) {
  int exit_code = 0;
  const auto options = mriscan::layer_bench::parse_options(argc, argv, &exit_code);
  if (!options) return exit_code;
  try {
    return mriscan::layer_bench::run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mriscan_layer_bench: %s\n", e.what());
    return 1;
  }
}
