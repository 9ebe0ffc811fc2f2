// The table and the JSON document of mriscan_layer_bench (report.h).
#include "bench/layers/report.h"

namespace mriscan::layer_bench {
namespace {

double gflops(const Comparison& row) { return row.flops / (row.mriscan.median_ms * 1e6); }
double gbytes_per_s(const Comparison& row) { return row.bytes / (row.mriscan.median_ms * 1e6); }
double ratio(const Comparison& row) { return row.onednn.median_ms / row.mriscan.median_ms; }

nlohmann::json timing_json(const Timing& t) { return {{"median_ms", t.median_ms}, {"runs_ms", t.runs_ms}}; }

}  // namespace

void print_table(std::FILE* out, const RunInfo& info, const std::vector<Comparison>& rows, const Roofs& roofs) {
  std::fprintf(out, "CPU: %s\n", info.cpu_model.c_str());
  std::fprintf(out, "mriscan kernel table: %s | oneDNN %s, ISA %s | %d threads, batch %d, NHWC fp32\n",
               info.kernel_table.c_str(), info.onednn_version.c_str(), info.onednn_isa.c_str(), info.threads,
               info.batch);
  std::fprintf(out, "median of %d calls after %d warm-up; ratio = oneDNN ms / mriscan ms (> 1: mriscan faster)\n",
               info.repeats, info.warmup);
  std::fprintf(out, "roofs: FMA peak %.1f GFLOP/s, memory bandwidth %.1f GB/s (ridge at %.1f FLOP/byte)\n\n",
               roofs.peak_gflops, roofs.bandwidth_gbs, roofs.ridge_intensity());
  std::fprintf(out, "%-20s %-28s %10s %10s %7s %9s %8s %9s  %s\n", "layer", "op", "mriscan ms", "oneDNN ms", "ratio",
               "GFLOP/s", "GB/s", "max rel", "oneDNN impl");
  for (const Comparison& row : rows)
    std::fprintf(out, "%-20s %-28s %10.3f %10.3f %7.2f %9.1f %8.1f %9.1e  %s\n", row.layer.c_str(), row.op.c_str(),
                 row.mriscan.median_ms, row.onednn.median_ms, ratio(row), gflops(row), gbytes_per_s(row),
                 row.max_rel_error, row.onednn_impl.c_str());
}

nlohmann::json report_json(const RunInfo& info, const std::vector<Comparison>& rows, const Roofs& roofs,
                           const std::vector<RooflinePoint>& points) {
  nlohmann::json j;
  j["machine"] = {{"cpu_model", info.cpu_model},
                  {"kernel_table", info.kernel_table},
                  {"onednn_version", info.onednn_version},
                  {"onednn_isa", info.onednn_isa},
                  {"threads", info.threads}};
  j["settings"] = {{"batch", info.batch}, {"warmup", info.warmup}, {"repeats", info.repeats},
                   {"layout", "NHWC"}, {"dtype", "float32"}, {"tolerance", info.tolerance}};
  j["rows"] = nlohmann::json::array();
  for (const Comparison& row : rows)
    j["rows"].push_back({{"layer", row.layer},
                         {"op", row.op},
                         {"mriscan", timing_json(row.mriscan)},
                         {"onednn", timing_json(row.onednn)},
                         {"ratio_onednn_over_mriscan", ratio(row)},
                         {"flops", row.flops},
                         {"bytes", row.bytes},
                         {"mriscan_gflops", gflops(row)},
                         {"mriscan_gbytes_per_s", gbytes_per_s(row)},
                         {"max_rel_error", row.max_rel_error},
                         {"within_tolerance", row.max_rel_error <= info.tolerance},
                         {"onednn_impl", row.onednn_impl}});
  nlohmann::json roof_points = nlohmann::json::array();
  for (const RooflinePoint& p : points)
    roof_points.push_back({{"layer", p.layer}, {"op", p.op}, {"intensity_flop_per_byte", p.intensity},
                           {"gflops", p.gflops}, {"roof_gflops", p.roof_gflops}, {"fraction_of_roof", p.fraction()}});
  j["roofline"] = {{"peak_gflops", roofs.peak_gflops},
                   {"bandwidth_gbytes_per_s", roofs.bandwidth_gbs},
                   {"ridge_flop_per_byte", roofs.ridge_intensity()},
                   {"stream_elements", roofs.stream_elements},
                   {"stream", timing_json(roofs.stream)},
                   {"points", roof_points}};
  j["correct"] = mismatches(rows, info.tolerance).empty();
  return j;
}

std::vector<const Comparison*> mismatches(const std::vector<Comparison>& rows, double tolerance) {
  std::vector<const Comparison*> bad;
  for (const Comparison& row : rows)
    if (!(row.max_rel_error <= tolerance)) bad.push_back(&row);  // NaN counts as a mismatch
  return bad;
}

}  // namespace mriscan::layer_bench
