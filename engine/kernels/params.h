// Parameter structs for every kernel. Kernels take raw pointers plus one of these, passed by const reference.
// Layouts (engine layouts; the weight files hold PyTorch layouts and models/weights_io converts on load):
//   activations      (N, H, W, C)
//   stem / KxK conv   weight (KH, KW, C_in, C_out), bias (C_out)
//   depthwise conv   weight (KH, KW, C), bias (C)
//   pointwise conv   weight (C_in, C_out)       -- y(M, C_out) = x(M, C_in) . w, with M = N*H*W
//   linear           weight (in, out), bias (out)
// Kernel contract: forward kernels OVERWRITE their output; backward kernels ACCUMULATE (`+=`) into gradients,
// matching the tape's convention, except where a flag says to store: the depthwise and batch-norm input gradients
// are stored over dx when `accumulate_dx` is false, and the GEMM stores C when `accumulate` is false (the first
// gradient to reach a value: Variable::grad_target, engine/tape.h). A null bias / dbias pointer means "no bias".
// Epilogues (the fused inference path, models/folded_mobilenet_v2.h): the forward kernels of the stem conv and the
// depthwise conv apply `activation` after the bias, while the output is still in registers; the pointwise path has
// its own table entry, gemm_bias_act (dispatch.h). Training never sets it on a conv: the conv backward kernels are
// the gradients of the conv alone. Training fuses the activation into batch norm instead (BatchNormParams).
#pragma once

#include <cstdint>

namespace mriscan {

// Output size of a convolution along one axis: floor((in + 2*pad - kernel) / stride) + 1.
constexpr int conv_output_size(int in, int kernel, int stride, int pad) { return (in + 2 * pad - kernel) / stride + 1; }

// The output columns [begin, end) of a convolution whose `kernel` taps all fall inside the input row (no column
// padding there): the fast kernels read them without bounds checks and take a checked path for the rest.
struct InteriorColumns {
  int begin, end;
};
constexpr InteriorColumns interior_columns(int in_w, int out_w, int kernel, int stride, int pad) {
  const int first = (pad + stride - 1) / stride;  // first ow with ow*s - pad >= 0
  const int begin = first < out_w ? first : out_w;
  const int last = in_w - kernel + pad;  // ow*s <= last keeps tap kernel-1 inside
  const int end = last < 0 ? 0 : (last / stride + 1 < out_w ? last / stride + 1 : out_w);
  return {begin, end > begin ? end : begin};
}

// Elementwise activation applied in a forward kernel's epilogue, after the bias:
//   kNone   y = y                      (the kernel's plain output)
//   kReLU6  y = min(max(y, 0), 6)      (MobileNetV2's ConvBNReLU6 units)
enum class Activation { kNone, kReLU6 };

struct Conv2dParams {
  int batch = 1;
  int in_h = 0, in_w = 0, in_c = 0;
  int out_h = 0, out_w = 0, out_c = 0;
  int kernel_h = 3, kernel_w = 3;
  int stride = 1, pad = 0;
  Activation activation = Activation::kNone;  // forward only: y = act(conv + bias)
};

struct DepthwiseParams {
  int batch = 1;
  int in_h = 0, in_w = 0, channels = 0;
  int out_h = 0, out_w = 0;
  int kernel = 3;  // square kernel
  int stride = 1, pad = 1;
  Activation activation = Activation::kNone;  // forward only: y = act(conv + bias)
  // The backward's input gradient: added into dx (true), or stored over it (false: dx holds nothing yet), as in
  // BatchNormParams.
  bool accumulate_dx = true;
};

// C(m, n) = op(A)(m, k) . op(B)(k, n)  [+ C if accumulate]; all row-major.
// op(A) = A if !trans_a (A is (m, k)) else A^T (A is (k, m)); likewise for B.
// gemm_bias_act (dispatch.h) reads the same params and adds a per-column bias and an activation to the result.
struct GemmParams {
  int m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  bool accumulate = false;
};

// Per-channel statistics over `rows` = N*H*W rows of `channels` values.
// activation (training mode, the fused BN + ReLU6 of MobileNetV2's ConvBNReLU6 units): the forward writes
// z = act(y) instead of y, and the backward first masks dz to the gradient of y (dy = dz where the activation is
// not flat: 0 < y < 6, y recomputed from x), so the pre-activation y is never stored and z never read back.
struct BatchNormParams {
  int64_t rows = 0;
  int channels = 0;
  float eps = 1e-5f;
  Activation activation = Activation::kNone;
  // The backward's input gradient: added into dx (true), or stored over it (false: dx holds nothing yet, so neither
  // a zero-fill nor a read of those zeros is needed; Variable::grad_target says when).
  bool accumulate_dx = true;
};

struct PoolParams {
  int batch = 1, h = 0, w = 0, channels = 0;
};

struct SoftmaxCrossEntropyParams {
  int batch = 0, classes = 0;
  float label_smoothing = 0.0f;  // target = (1 - s) * one_hot + s / classes
};

}  // namespace mriscan
