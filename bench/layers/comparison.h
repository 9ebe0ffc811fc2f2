// One row of mriscan_layer_bench: a mriscan kernel and the oneDNN primitive computing the same op of one
// MobileNetV2 layer on the same data, their times, the work model, and how far apart their results are.
// Declares the three comparisons, one file each: depthwise_case.cpp, pointwise_case.cpp, batchnorm_case.cpp.
//
// What it is: the vocabulary the cases, the report and the roofline share. What it is not: the kernels (mriscan's
// come from kernels(), engine/kernels/dispatch.h; oneDNN's from onednn_convolution.h, onednn_batchnorm.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "bench/layers/measure.h"
#include "bench/mobilenet_v2_shapes.h"

namespace mriscan::layer_bench {

struct Comparison {
  std::string layer;  // the shape's name in bench/mobilenet_v2_shapes.h
  std::string op;     // "<kind>.<direction>", e.g. "depthwise.backward_weights": one colour on the roofline
  Timing mriscan{}, onednn{};
  // The work model (docs/roofline.md; each case states its own): FLOPs the op must do, and the minimal bytes it
  // must move between memory and the core, each input read and each output written once.
  double flops = 0.0, bytes = 0.0;
  double max_rel_error = 0.0;  // the largest over the op's outputs (measure.h: max_relative_error)
  std::string onednn_impl;     // the implementation oneDNN chose (impl_info_str)
};

struct CaseSettings {
  int batch = 32, warmup = 2, repeats = 5;
};

// Times both sides of one row with the settings' warm-up and repeats, mriscan first. `mriscan_prepare` (untimed,
// may be empty) runs before each mriscan call: the zeroing of a gradient its kernel adds into (oneDNN overwrites).
inline void time_both(Comparison& row, const CaseSettings& s, const std::function<void()>& mriscan_prepare,
                      const std::function<void()>& mriscan_call, const std::function<void()>& onednn_call) {
  row.mriscan = time_calls(s.warmup, s.repeats, mriscan_prepare, mriscan_call);
  row.onednn = time_calls(s.warmup, s.repeats, nullptr, onednn_call);
}

// Forward, backward data, backward weights (+ bias) of a 3x3, pad 1 depthwise convolution of this shape.
std::vector<Comparison> compare_depthwise(const shapes::DepthwiseShape& shape, const CaseSettings& settings);
// Forward, backward data, backward weights of a 1x1 convolution (mriscan: one GEMM each, as the layer calls it).
std::vector<Comparison> compare_pointwise(const shapes::PointwiseShape& shape, const CaseSettings& settings);
// Training-mode batch norm forward and backward over (N, h, w, C) of this shape: the batch norm after the block's
// 1x1 expansion, which runs at the depthwise layer's input size and channels.
std::vector<Comparison> compare_batchnorm(const shapes::DepthwiseShape& shape, const CaseSettings& settings);

}  // namespace mriscan::layer_bench
