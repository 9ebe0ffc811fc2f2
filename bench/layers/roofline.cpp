// The roofline: measuring its two ceilings, placing mriscan's kernels under them, and drawing it with the line
// chart of eval/plot.h on log-log axes (roofline.h).
#include "bench/layers/roofline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/kernels/fma_peak.h"
#include "eval/plot.h"

namespace mriscan::layer_bench {

Roofs measure_roofs(const KernelTable& table, int threads, int repeats) {
  Roofs roofs;
  roofs.peak_gflops = measure_fma_peak_gflops(table, threads, repeats);
  // 2 x 256 MB: far beyond any last-level cache, so every pass streams from DRAM. axpy reads x and y and writes y.
  roofs.stream_elements = int64_t(1) << 26;
  const std::vector<float> x = random_buffer(size_t(roofs.stream_elements), 11);  // (n)
  std::vector<float> y(size_t(roofs.stream_elements), 0.0f);                      // (n)
  roofs.stream = time_calls(1, repeats, {}, [&] { table.axpy(roofs.stream_elements, 1e-3f, x.data(), y.data()); });
  roofs.bandwidth_gbs = 12.0 * double(roofs.stream_elements) / (roofs.stream.median_ms * 1e6);
  return roofs;
}

std::vector<RooflinePoint> roofline_points(const std::vector<Comparison>& rows, const Roofs& roofs) {
  std::vector<RooflinePoint> points;
  for (const Comparison& row : rows) {
    RooflinePoint p{.layer = row.layer, .op = row.op, .intensity = row.flops / row.bytes};
    p.gflops = row.flops / (row.mriscan.median_ms * 1e6);
    p.roof_gflops = std::min(roofs.peak_gflops, roofs.bandwidth_gbs * p.intensity);
    points.push_back(p);
  }
  return points;
}

Image render_roofline(const std::vector<RooflinePoint>& points, const Roofs& roofs, const std::string& title) {
  // The roof spans the kernels' intensities and the ridge, with room on both sides.
  double lo = roofs.ridge_intensity(), hi = roofs.ridge_intensity();
  for (const RooflinePoint& p : points) {
    lo = std::min(lo, p.intensity);
    hi = std::max(hi, p.intensity);
  }
  // From the decade below the lowest intensity to the one above the highest: the log axis's own ends.
  lo = std::pow(10.0, std::floor(std::log10(lo)));
  hi = std::pow(10.0, std::ceil(std::log10(hi)));
  char roof_name[96];
  std::snprintf(roof_name, sizeof roof_name, "roof: min(%.0f GFLOP/s, %.1f GB/s x intensity)", roofs.peak_gflops,
                roofs.bandwidth_gbs);
  LineChart chart;
  chart.title = title;
  chart.x_label = "arithmetic intensity (FLOP/byte)";
  chart.y_label = "GFLOP/s";
  chart.log_x = chart.log_y = true;
  LineSeries roof;
  roof.name = roof_name;
  roof.x = {lo, roofs.ridge_intensity(), hi};
  roof.y = {roofs.bandwidth_gbs * lo, roofs.peak_gflops, roofs.peak_gflops};
  roof.color = kBlack;
  chart.series.push_back(roof);
  // One scatter series per op, in the order the ops first appear (the table's order).
  for (const RooflinePoint& p : points) {
    auto same_op = [&](const LineSeries& s) { return s.name == p.op; };
    auto series = std::find_if(chart.series.begin() + 1, chart.series.end(), same_op);
    if (series == chart.series.end()) {
      LineSeries dots;
      dots.name = p.op;
      dots.markers_only = true;
      dots.color = series_color(static_cast<int>(chart.series.size()) - 1);
      series = chart.series.insert(chart.series.end(), dots);
    }
    series->x.push_back(p.intensity);
    series->y.push_back(p.gflops);
  }
  return render_line_chart(chart, 1200, 800);
}

}  // namespace mriscan::layer_bench
