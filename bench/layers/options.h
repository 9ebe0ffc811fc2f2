// The command line of mriscan_layer_bench: batch, repeats, which shapes, where to write the JSON and the PNG.
//
// What it is: a plain struct and its parser (--help prints the usage). What it is not: the measurement settings'
// meaning, which bench/layers/layer_bench.cpp and docs/roofline.md describe.
#pragma once

#include <optional>
#include <string>

namespace mriscan::layer_bench {

struct Options {
  int batch = 32;        // N of every (N, H, W, C) activation
  int warmup = 2;        // untimed calls before the timed ones (page faults, caches, oneDNN's first run)
  int repeats = 5;       // timed calls; the median is reported (at least 5)
  int threads = 0;       // 0: num_threads() (engine/parallel.h: OMP_NUM_THREADS or the physical cores)
  std::string filter;    // run only the layers whose name contains this (empty: all)
  bool quick = false;    // the smoke test's reduced set: batch 2, two shapes of each kind
  std::string json_path;  // empty: no JSON
  std::string png_path;   // empty: no roofline PNG
};

// Parses argv; returns nullopt after printing the usage (--help) or an error (exit code in *exit_code).
std::optional<Options> parse_options(int argc, char** argv, int* exit_code);

}  // namespace mriscan::layer_bench
