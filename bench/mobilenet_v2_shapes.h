// MobileNetV2's real layer shapes at 224x224 (width 1.0), shared by the kernel benchmarks (bench_kernels.cpp) and
// the per-layer comparison with oneDNN (layers/). Derived from the (t, c, n, s) table: each depthwise layer's input
// size, channels and stride, and each pointwise GEMM's spatial size and channel counts (distinct shapes only).
#pragma once

#include <array>

#include "engine/kernels/params.h"

namespace mriscan::shapes {

struct DepthwiseShape {
  const char* name;
  int h, w, channels, stride;  // input (h, w, channels); output h / stride
};

inline constexpr std::array<DepthwiseShape, 10> kDepthwise = {{
    {"b1_112x112x32_s1", 112, 112, 32, 1},
    {"b2_112x112x96_s2", 112, 112, 96, 2},
    {"b3_56x56x144_s1", 56, 56, 144, 1},
    {"b4_56x56x144_s2", 56, 56, 144, 2},
    {"b5_28x28x192_s1", 28, 28, 192, 1},
    {"b7_28x28x192_s2", 28, 28, 192, 2},
    {"b8_14x14x384_s1", 14, 14, 384, 1},
    {"b12_14x14x576_s1", 14, 14, 576, 1},
    {"b14_14x14x576_s2", 14, 14, 576, 2},
    {"b15_7x7x960_s1", 7, 7, 960, 1},
}};

// The 3x3, pad 1 depthwise layer of this shape at this batch.
inline DepthwiseParams depthwise_params(const DepthwiseShape& shape, int batch) {
  return {.batch = batch,
          .in_h = shape.h,
          .in_w = shape.w,
          .channels = shape.channels,
          .out_h = conv_output_size(shape.h, 3, shape.stride, 1),
          .out_w = conv_output_size(shape.w, 3, shape.stride, 1),
          .kernel = 3,
          .stride = shape.stride,
          .pad = 1};
}

struct PointwiseShape {
  const char* name;
  int h, w, in_channels, out_channels;  // GEMM: (N*h*w, in) x (in, out)
};

inline constexpr std::array<PointwiseShape, 11> kPointwise = {{
    {"112x112_32to16", 112, 112, 32, 16},
    {"112x112_16to96", 112, 112, 16, 96},
    {"56x56_24to144", 56, 56, 24, 144},
    {"56x56_144to24", 56, 56, 144, 24},
    {"28x28_32to192", 28, 28, 32, 192},
    {"28x28_192to32", 28, 28, 192, 32},
    {"14x14_64to384", 14, 14, 64, 384},
    {"14x14_384to64", 14, 14, 384, 64},
    {"14x14_96to576", 14, 14, 96, 576},
    {"7x7_160to960", 7, 7, 160, 960},
    {"7x7_320to1280", 7, 7, 320, 1280},
}};

}  // namespace mriscan::shapes
