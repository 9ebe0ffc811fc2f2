// oneDNN's convolution primitives for one layer geometry (onednn_convolution.h), oneDNN 2.x API (op descriptors).
#include "bench/layers/onednn_convolution.h"

#include "bench/layers/onednn_context.h"

namespace mriscan::layer_bench {
namespace {

using dnnl::memory;
constexpr memory::data_type kF32 = memory::data_type::f32;

// oneDNN orders weight dims ([G,] O, I, KH, KW), I and O per group.
memory::dims weight_dims(const ConvGeometry& g) {
  if (g.groups > 1) return {g.groups, g.out_c / g.groups, g.in_c / g.groups, g.kernel, g.kernel};
  return {g.out_c, g.in_c, g.kernel, g.kernel};
}

// mriscan's (KH, KW, C_in / G, C_out), row-major, described by strides in oneDNN's dim order: the output channel
// (g * O/G + o) is fastest, then the input channel within its group, then KW, then KH.
memory::desc user_weights_desc(const ConvGeometry& g) {
  const memory::dim out_per_group = g.out_c / g.groups, in_per_group = g.in_c / g.groups;
  const memory::dim kw_stride = in_per_group * g.out_c, kh_stride = g.kernel * kw_stride;
  if (g.groups > 1)
    return memory::desc(weight_dims(g), kF32, memory::dims{out_per_group, 1, g.out_c, kh_stride, kw_stride});
  return memory::desc(weight_dims(g), kF32, memory::dims{1, g.out_c, kh_stride, kw_stride});
}

}  // namespace

OnednnConvolution::OnednnConvolution(const ConvGeometry& g, const ConvBuffers& buffers)
    : user_weights_desc_(user_weights_desc(g)), bias_desc_({g.out_c}, kF32, memory::format_tag::a) {
  const memory::desc x_md = nhwc_desc(g.batch, g.in_h, g.in_w, g.in_c);     // (N, H, W, C_in)
  const memory::desc y_md = nhwc_desc(g.batch, g.out_h, g.out_w, g.out_c);  // (N, OH, OW, C_out)
  const memory::desc any_weights(weight_dims(g), kF32, memory::format_tag::any);
  const memory::dims strides{g.stride, g.stride}, padding{g.pad, g.pad};
  const auto direct = dnnl::algorithm::convolution_direct;
  dnnl::engine& engine = cpu_engine();

  forward_pd_ = {{dnnl::prop_kind::forward_training, direct, x_md, any_weights, y_md, strides, padding, padding},
                 engine};
  backward_data_pd_ = {{direct, x_md, any_weights, y_md, strides, padding, padding}, engine, forward_pd_};
  if (g.bias_gradient)
    backward_weights_pd_ = {{direct, x_md, any_weights, bias_desc_, y_md, strides, padding, padding}, engine,
                            forward_pd_};
  else
    backward_weights_pd_ = {{direct, x_md, any_weights, y_md, strides, padding, padding}, engine, forward_pd_};
  forward_ = dnnl::convolution_forward(forward_pd_);
  backward_data_ = dnnl::convolution_backward_data(backward_data_pd_);
  backward_weights_ = dnnl::convolution_backward_weights(backward_weights_pd_);

  const memory user_weights = wrap(user_weights_desc_, buffers.w);
  const memory x = wrap(x_md, buffers.x), y = wrap(y_md, buffers.y);     // (N, H, W, C_in), (N, OH, OW, C_out)
  const memory dy = wrap(y_md, buffers.dy), dx = wrap(x_md, buffers.dx);  // (N, OH, OW, C_out), (N, H, W, C_in)
  forward_args_ = {{DNNL_ARG_SRC, x},
                   {DNNL_ARG_WEIGHTS, reorder_into(user_weights, forward_pd_.weights_desc())},
                   {DNNL_ARG_DST, y}};
  backward_data_args_ = {{DNNL_ARG_DIFF_DST, dy},
                         {DNNL_ARG_WEIGHTS, reorder_into(user_weights, backward_data_pd_.weights_desc())},
                         {DNNL_ARG_DIFF_SRC, dx}};
  backward_weights_args_ = {{DNNL_ARG_SRC, x},
                            {DNNL_ARG_DIFF_DST, dy},
                            {DNNL_ARG_DIFF_WEIGHTS, memory(backward_weights_pd_.diff_weights_desc(), engine)}};
  if (g.bias_gradient)
    backward_weights_args_[DNNL_ARG_DIFF_BIAS] = memory(backward_weights_pd_.diff_bias_desc(), engine);
}

void OnednnConvolution::forward() { execute(forward_, forward_args_); }

void OnednnConvolution::backward_data() { execute(backward_data_, backward_data_args_); }

void OnednnConvolution::backward_weights() { execute(backward_weights_, backward_weights_args_); }

void OnednnConvolution::weight_gradient(float* dw, float* dbias) const {
  reorder_to(backward_weights_args_.at(DNNL_ARG_DIFF_WEIGHTS), wrap(user_weights_desc_, dw));
  if (dbias) reorder_to(backward_weights_args_.at(DNNL_ARG_DIFF_BIAS), wrap(bias_desc_, dbias));
}

}  // namespace mriscan::layer_bench
