// oneDNN's engine, stream, memories and reorders for mriscan_layer_bench (onednn_context.h).
#include "bench/layers/onednn_context.h"

#include <cstdio>

namespace mriscan::layer_bench {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  static dnnl::stream stream(cpu_engine());
  return stream;
}

void execute(const dnnl::primitive& primitive, const std::unordered_map<int, dnnl::memory>& args) {
  primitive.execute(cpu_stream(), args);
  cpu_stream().wait();
}

dnnl::memory wrap(const dnnl::memory::desc& desc, const float* data) {
  return dnnl::memory(desc, cpu_engine(), const_cast<float*>(data));
}

dnnl::memory reorder_into(const dnnl::memory& from, const dnnl::memory::desc& to) {
  if (from.get_desc() == to) return from;
  dnnl::memory out(to, cpu_engine());
  reorder_to(from, out);
  return out;
}

void reorder_to(const dnnl::memory& from, const dnnl::memory& to) {
  dnnl::memory src = from, dst = to;  // handles: copies share the same memory
  dnnl::reorder(src, dst).execute(cpu_stream(), src, dst);
  cpu_stream().wait();
}

dnnl::memory::desc nhwc_desc(int n, int h, int w, int c) {
  return dnnl::memory::desc({n, c, h, w}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nhwc);
}

std::string onednn_version() {
  const dnnl::version_t* v = dnnl::version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

std::string onednn_isa() {
  using dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case cpu_isa::sse41: return "sse41";
    case cpu_isa::avx: return "avx";
    case cpu_isa::avx2: return "avx2";
    case cpu_isa::avx2_vnni: return "avx2_vnni";
    case cpu_isa::avx512_mic: return "avx512_mic";
    case cpu_isa::avx512_mic_4ops: return "avx512_mic_4ops";
    case cpu_isa::avx512_core: return "avx512_core";
    case cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case cpu_isa::all: return "all";
  }
  char unknown[32];
  std::snprintf(unknown, sizeof unknown, "isa 0x%x", static_cast<unsigned>(dnnl::get_effective_cpu_isa()));
  return unknown;
}

}  // namespace mriscan::layer_bench
