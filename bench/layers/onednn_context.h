// oneDNN as mriscan_layer_bench uses it: one CPU engine and stream for the process, memories over the benchmark's
// own buffers, a one-off reorder, and what oneDNN says about itself (version, the instruction set it dispatches to).
//
// What it is: the shared plumbing of onednn_convolution.cpp and onednn_batchnorm.cpp (oneDNN 2.x API). What it
// is not: a wrapper hiding oneDNN; the primitives are built in those files with oneDNN's own types.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <string>
#include <unordered_map>

namespace mriscan::layer_bench {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

// Executes `primitive` on the stream and waits for it to finish: one timed call.
void execute(const dnnl::primitive& primitive, const std::unordered_map<int, dnnl::memory>& args);

// A memory over a buffer the benchmark owns (oneDNN does not copy it, and writes it only where it is an output).
dnnl::memory wrap(const dnnl::memory::desc& desc, const float* data);

// `from` reordered into a new memory of layout `to` (executed and waited for: outside any timed region), or `from`
// itself when the layouts are the same.
dnnl::memory reorder_into(const dnnl::memory& from, const dnnl::memory::desc& to);
// Copies `from` into an existing memory of another layout (executed and waited for).
void reorder_to(const dnnl::memory& from, const dnnl::memory& to);

// dnnl::memory::dims of an NHWC activation (N, H, W, C): oneDNN orders dims N, C, H, W and takes the layout from
// the format tag nhwc (acdb).
dnnl::memory::desc nhwc_desc(int n, int h, int w, int c);

// oneDNN's version ("2.6.3") and the instruction set its JIT kernels use on this CPU (get_effective_cpu_isa).
std::string onednn_version();
std::string onednn_isa();

}  // namespace mriscan::layer_bench
