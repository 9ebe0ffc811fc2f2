// One convolution layer run by oneDNN, in the three directions training needs: forward, backward data (the input
// gradient) and backward weights (the weight gradient, and the bias gradient when asked for).
//
// What it is: oneDNN's primitives for one geometry, built once: activations NHWC (format tag nhwc) over the
// benchmark's buffers, weights in the format oneDNN picks for itself (format_tag::any), reordered from and to
// mriscan's layout once, outside anything timed: the fastest setting oneDNN offers a caller. Covers the depthwise
// (groups = channels) and pointwise (1x1) convolutions of MobileNetV2. What it is not: timing or checking
// (depthwise_case.cpp, pointwise_case.cpp do that), nor a general convolution API.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <string>
#include <unordered_map>

namespace mriscan::layer_bench {

struct ConvGeometry {
  int batch = 1, in_h = 0, in_w = 0, in_c = 0;
  int out_h = 0, out_w = 0, out_c = 0;
  int groups = 1;  // in_c for depthwise
  int kernel = 1, stride = 1, pad = 0;
  bool bias_gradient = false;  // backward weights also computes the bias gradient (C_out)
};

// The buffers the primitives read and write, all owned by the caller. Weights are in mriscan's layout, the
// dense conv's (KH, KW, C_in / groups, C_out) (engine/kernels/params.h): (KH, KW, C) for depthwise, (C_in, C_out)
// for pointwise. Any may be null when its direction is not used.
struct ConvBuffers {
  const float* x = nullptr;   // (N, H, W, C_in)
  const float* w = nullptr;   // (KH, KW, C_in / groups, C_out), read once by the constructor
  float* y = nullptr;         // (N, OH, OW, C_out)
  const float* dy = nullptr;  // (N, OH, OW, C_out)
  float* dx = nullptr;        // (N, H, W, C_in)
};

class OnednnConvolution {
 public:
  OnednnConvolution(const ConvGeometry& g, const ConvBuffers& buffers);

  // Each executes its primitive once and waits for it: what the benchmark times.
  void forward();           // y = conv(x, w)
  void backward_data();     // dx = conv_transpose(dy, w), overwritten
  void backward_weights();  // dw = x (*) dy, dbias = sums of dy, overwritten (kept inside, in oneDNN's layout)

  // The last backward_weights' results in mriscan's layouts: dw (KH, KW, C_in / groups, C_out), dbias (C_out) or
  // null. Reorders, untimed.
  void weight_gradient(float* dw, float* dbias) const;

  // oneDNN's name for the implementation it chose ("jit_dw:avx512_core", "gemm:jit", "ref:any", ...).
  std::string forward_impl() const { return forward_pd_.impl_info_str(); }
  std::string backward_data_impl() const { return backward_data_pd_.impl_info_str(); }
  std::string backward_weights_impl() const { return backward_weights_pd_.impl_info_str(); }

 private:
  dnnl::convolution_forward::primitive_desc forward_pd_;
  dnnl::convolution_backward_data::primitive_desc backward_data_pd_;
  dnnl::convolution_backward_weights::primitive_desc backward_weights_pd_;
  dnnl::convolution_forward forward_;
  dnnl::convolution_backward_data backward_data_;
  dnnl::convolution_backward_weights backward_weights_;
  // Each primitive's arguments, built once: NHWC memories over the caller's buffers, the weights reordered once
  // into each primitive's own format, and backward_weights' outputs in its format.
  std::unordered_map<int, dnnl::memory> forward_args_, backward_data_args_, backward_weights_args_;
  dnnl::memory::desc user_weights_desc_;  // mriscan's (KH, KW, C_in / groups, C_out)
  dnnl::memory::desc bias_desc_;          // (C_out)
};

}  // namespace mriscan::layer_bench
