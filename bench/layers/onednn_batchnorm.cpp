// oneDNN's training-mode batch normalisation for one shape (onednn_batchnorm.h), oneDNN 2.x API.
#include "bench/layers/onednn_batchnorm.h"

#include "bench/layers/onednn_context.h"

namespace mriscan::layer_bench {

OnednnBatchNorm::OnednnBatchNorm(int batch, int h, int w, int channels, float eps, const BatchNormBuffers& buffers)
    : mean_(channels), variance_(channels), dgamma_(channels), dbeta_(channels) {
  using dnnl::memory;
  const memory::desc data_md = nhwc_desc(batch, h, w, channels);  // (N, H, W, C)
  const memory::desc channel_md({channels}, memory::data_type::f32, memory::format_tag::a);  // (C)
  const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  dnnl::engine& engine = cpu_engine();
  forward_pd_ = {{dnnl::prop_kind::forward_training, data_md, eps, flags}, engine};
  backward_pd_ = {{dnnl::prop_kind::backward, data_md, data_md, eps, flags}, engine, forward_pd_};
  forward_ = dnnl::batch_normalization_forward(forward_pd_);
  backward_ = dnnl::batch_normalization_backward(backward_pd_);

  const memory x = wrap(data_md, buffers.x), mean = wrap(channel_md, mean_.data()),
               variance = wrap(channel_md, variance_.data()), gamma = wrap(channel_md, buffers.gamma);
  forward_args_ = {{DNNL_ARG_SRC, x},
                   {DNNL_ARG_SCALE, gamma},
                   {DNNL_ARG_SHIFT, wrap(channel_md, buffers.beta)},
                   {DNNL_ARG_DST, wrap(data_md, buffers.y)},
                   {DNNL_ARG_MEAN, mean},
                   {DNNL_ARG_VARIANCE, variance}};
  backward_args_ = {{DNNL_ARG_SRC, x},
                    {DNNL_ARG_MEAN, mean},
                    {DNNL_ARG_VARIANCE, variance},
                    {DNNL_ARG_SCALE, gamma},
                    {DNNL_ARG_SHIFT, wrap(channel_md, buffers.beta)},
                    {DNNL_ARG_DIFF_DST, wrap(data_md, buffers.dy)},
                    {DNNL_ARG_DIFF_SRC, wrap(data_md, buffers.dx)},
                    {DNNL_ARG_DIFF_SCALE, wrap(channel_md, dgamma_.data())},
                    {DNNL_ARG_DIFF_SHIFT, wrap(channel_md, dbeta_.data())}};
}

void OnednnBatchNorm::forward() { execute(forward_, forward_args_); }

void OnednnBatchNorm::backward() { execute(backward_, backward_args_); }

}  // namespace mriscan::layer_bench
