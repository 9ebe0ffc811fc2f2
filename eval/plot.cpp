// Chart layouts: axes and ticks, line charts, bar charts, the confusion-matrix heatmap, canvas grids and the
// Grad-CAM overlay. Every layout measures its text first and sizes its margins from it, so labels never overlap.
#include "eval/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace mriscan {

namespace {

constexpr int kTextScale = 2;   // tick labels, legends, captions
constexpr int kTitleScale = 3;  // chart titles
constexpr int kPad = 12;        // generic spacing in pixels

// ------------------------------------------------------------------------------------------------------------
// Axes: value range -> pixel range, with tick positions and labels.

struct Axis {
  double lo = 0.0, hi = 1.0;  // in data units
  bool log = false;
  std::vector<double> ticks;
  std::vector<std::string> labels;

  // Fraction of the way from lo to hi, in linear or log10 space.
  double fraction(double v) const {
    return log ? (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo)) : (v - lo) / (hi - lo);
  }
};

// The "nice number" step: raw range / target rounded up to 1, 2 or 5 x 10^k (Heckbert, Graphics Gems 1990).
double nice_step(double range, int target_ticks) {
  const double raw = range / std::max(target_ticks, 1);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double residual = raw / magnitude;
  return magnitude * (residual <= 1.0 ? 1.0 : residual <= 2.0 ? 2.0 : residual <= 5.0 ? 5.0 : 10.0);
}

Axis linear_axis(double lo, double hi, int target_ticks, bool integer_ticks) {
  if (!(hi > lo)) {  // a flat series: open up a symmetric range around it
    const double half = lo == 0.0 ? 1.0 : 0.1 * std::abs(lo);
    lo -= half;
    hi += half;
  }
  double step = nice_step(hi - lo, target_ticks);
  if (integer_ticks) step = std::max(step, 1.0);
  Axis axis;
  axis.lo = std::floor(lo / step + 1e-9) * step;
  axis.hi = std::ceil(hi / step - 1e-9) * step;
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  for (double v = axis.lo; v <= axis.hi + 0.5 * step; v += step) {
    const double tick = std::abs(v) < 1e-12 * step ? 0.0 : v;  // no "-0.00"
    char label[32];
    std::snprintf(label, sizeof label, "%.*f", decimals, tick);
    axis.ticks.push_back(tick);
    axis.labels.push_back(label);
  }
  return axis;
}

// "0.01", "0.5", "100" when the whole axis stays near 1 (`plain`), else "5e-4", "1e-2" style throughout.
std::string log_tick_label(double mantissa, int exponent, bool plain) {
  char label[32];
  if (plain)
    std::snprintf(label, sizeof label, "%g", mantissa * std::pow(10.0, exponent));
  else
    std::snprintf(label, sizeof label, "%ge%d", mantissa, exponent);
  return label;
}

Axis log_axis(double lo, double hi) {
  int lo_exp = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int hi_exp = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (hi_exp <= lo_exp) hi_exp = lo_exp + 1;
  Axis axis;
  axis.log = true;
  axis.lo = std::pow(10.0, lo_exp);
  axis.hi = std::pow(10.0, hi_exp);
  // Few decades: label 1, 2, 5 in each; many decades: only the powers of ten.
  const bool dense = hi_exp - lo_exp <= 2;
  const bool plain = lo_exp >= -2 && hi_exp <= 3;
  for (int e = lo_exp; e <= hi_exp; ++e) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m != 1.0 && (!dense || e == hi_exp)) continue;
      axis.ticks.push_back(m * std::pow(10.0, e));
      axis.labels.push_back(log_tick_label(m, e, plain));
    }
  }
  return axis;
}

// The plot rectangle inside an canvas, and the mapping from data to pixels.
struct Frame {
  int left, top, right, bottom;  // pixel bounds of the plotting area
  Axis x, y;
  float px(double v) const { return static_cast<float>(left + x.fraction(v) * (right - left)); }
  float py(double v) const { return static_cast<float>(bottom - y.fraction(v) * (bottom - top)); }
};

int widest(const std::vector<std::string>& texts, int scale) {
  int w = 0;
  for (const std::string& t : texts) w = std::max(w, text_width(t, scale));
  return w;
}

// `text` shortened with a trailing ".." until it fits max_width pixels at `scale`.
std::string fit_text(const std::string& text, int max_width, int scale) {
  if (text_width(text, scale) <= max_width) return text;
  std::string cut = text;
  while (!cut.empty() && text_width(cut + "..", scale) > max_width) cut.pop_back();
  return cut + "..";
}

// Legend entries laid out left to right, wrapping to new rows; returns the height used. `draw` = false
// only measures.
struct LegendItem {
  std::string name;
  Color color;
  bool box = false;  // a filled square (bars) instead of a line with a marker
  bool dot = false;  // a marker alone (a scatter series)
};

int layout_legend(Canvas* canvas, const std::vector<LegendItem>& items, int x0, int y0, int max_width) {
  const int row_height = text_height(kTextScale) + 8, swatch = 28;
  int x = x0, y = y0;
  for (const LegendItem& item : items) {
    const int item_width = swatch + 8 + text_width(item.name, kTextScale);
    if (x > x0 && x + item_width > x0 + max_width) {
      x = x0;
      y += row_height;
    }
    if (canvas) {
      const int mid = y + text_height(kTextScale) / 2 - 1;
      if (item.box) {
        canvas->fill_rect(x + 6, mid - 8, x + swatch - 6, mid + 8, item.color);
      } else if (item.dot) {
        canvas->line(x + swatch / 2, mid, x + swatch / 2, mid, item.color, 9.0f);
      } else {
        canvas->line(x, mid, x + swatch, mid, item.color, 3.0f);
        canvas->fill_rect(x + swatch / 2 - 3, mid - 3, x + swatch / 2 + 4, mid + 4, item.color);
      }
      canvas->text(x + swatch + 8, y, item.name, kTextColor, kTextScale);
    }
    x += item_width + 2 * kPad;
  }
  return items.empty() ? 0 : y - y0 + row_height;
}

// Title, legend row(s), then margins sized from the tick labels; returns the plotting frame.
// `headroom` reserves pixels above the plotting area (the bar chart's value labels).
Frame layout_frame(Canvas& canvas, const std::string& title, const std::vector<LegendItem>& legend, const Axis& x,
                   const Axis& y, bool has_x_label, bool has_y_label, int headroom = 0) {
  int top = kPad;
  if (!title.empty()) {
    canvas.text(canvas.width / 2, top, title, kTextColor, kTitleScale, Align::kCenter);
    top += text_height(kTitleScale) + kPad;
  }
  const int legend_width = canvas.width - 2 * kPad;
  const int legend_height = layout_legend(nullptr, legend, 0, 0, legend_width);
  // Centre a single legend row; wrapped legends start at the left margin.
  int legend_x = kPad;
  if (legend_height <= text_height(kTextScale) + 8) {
    int used = 0;
    for (const LegendItem& item : legend) used += 28 + 8 + text_width(item.name, kTextScale) + 2 * kPad;
    legend_x = std::max(kPad, (canvas.width - used + 2 * kPad) / 2);
  }
  layout_legend(&canvas, legend, legend_x, top, legend_width);
  top += legend_height + kPad;

  Frame f;
  f.x = x;
  f.y = y;
  f.top = top + std::max(text_height(kTextScale) / 2, headroom);  // room for the top tick label's upper half
  f.left = kPad + (has_y_label ? text_height(kTextScale) + kPad : 0) + widest(y.labels, kTextScale) + 10;
  f.right = canvas.width - kPad - widest(x.labels, kTextScale) / 2 - 4;
  f.bottom = canvas.height - kPad - (has_x_label ? text_height(kTextScale) + kPad : 0) -
             text_height(kTextScale) - 10;
  if (f.right - f.left < 40 || f.bottom - f.top < 40)
    throw std::invalid_argument("plot: canvas too small for its labels (" + std::to_string(canvas.width) + "x" +
                                std::to_string(canvas.height) + ")");
  return f;
}

// Grid lines, axis lines, tick labels and axis labels.
void draw_axes(Canvas& canvas, const Frame& f, const std::string& x_label, const std::string& y_label,
               bool vertical_grid) {
  for (size_t i = 0; i < f.y.ticks.size(); ++i) {
    const int y = static_cast<int>(std::lround(f.py(f.y.ticks[i])));
    canvas.fill_rect(f.left, y, f.right, y + 1, kGridColor);
    canvas.text(f.left - 8, y - text_height(kTextScale) / 2 + 1, f.y.labels[i], kTextColor, kTextScale,
              Align::kRight);
  }
  for (size_t i = 0; i < f.x.ticks.size(); ++i) {
    const int x = static_cast<int>(std::lround(f.px(f.x.ticks[i])));
    if (vertical_grid) canvas.fill_rect(x, f.top, x + 1, f.bottom, kGridColor);
    canvas.fill_rect(x, f.bottom, x + 1, f.bottom + 5, kAxisColor);
    canvas.text(x, f.bottom + 8, f.x.labels[i], kTextColor, kTextScale, Align::kCenter);
  }
  canvas.fill_rect(f.left, f.top, f.left + 1, f.bottom + 1, kAxisColor);
  canvas.fill_rect(f.left, f.bottom, f.right + 1, f.bottom + 1, kAxisColor);
  if (!x_label.empty())
    canvas.text((f.left + f.right) / 2, canvas.height - kPad - text_height(kTextScale), x_label, kTextColor,
              kTextScale, Align::kCenter);
  if (!y_label.empty()) canvas.text_vertical(kPad, (f.top + f.bottom) / 2, y_label, kTextColor, kTextScale);
}

}  // namespace

// --------------------------------------------------------------------------------------------------------------
// Line chart

Image render_line_chart(const LineChart& chart, int width, int height) {
  // Data ranges over the drawable points (finite, and positive on a log axis).
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  bool integer_x = true;
  auto x_at = [](const LineSeries& s, size_t i) { return s.x.empty() ? static_cast<double>(i + 1) : s.x[i]; };
  auto drawable = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!chart.log_y || y > 0) && (!chart.log_x || x > 0);
  };
  for (const LineSeries& s : chart.series) {
    if (!s.x.empty() && s.x.size() != s.y.size())
      throw std::invalid_argument("render_line_chart: series '" + s.name + "' has " + std::to_string(s.x.size()) +
                                  " x values but " + std::to_string(s.y.size()) + " y values");
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = x_at(s, i);
      if (!drawable(x, s.y[i])) continue;
      x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, s.y[i]), y_hi = std::max(y_hi, s.y[i]);
      integer_x = integer_x && x == std::round(x);
    }
  }
  if (!(x_hi >= x_lo)) {  // nothing to draw: show an empty unit frame rather than failing
    x_lo = chart.log_x ? 0.1 : 0.0, x_hi = 1, y_lo = chart.log_y ? 0.1 : 0.0, y_hi = 1;
  }
  const Axis x_axis = chart.log_x ? log_axis(x_lo, x_hi) : linear_axis(x_lo, x_hi, 8, integer_x);
  const Axis y_axis = chart.log_y ? log_axis(y_lo, y_hi) : linear_axis(y_lo, y_hi, 6, false);

  Canvas canvas(width, height);
  std::vector<LegendItem> legend;
  auto color_of = [&](size_t i) { return chart.series[i].color.value_or(series_color(static_cast<int>(i))); };
  for (size_t i = 0; i < chart.series.size(); ++i)
    legend.push_back({chart.series[i].name, color_of(i), false, chart.series[i].markers_only});
  const Frame f = layout_frame(canvas, chart.title, legend, x_axis, y_axis, !chart.x_label.empty(),
                               !chart.y_label.empty());
  draw_axes(canvas, f, chart.x_label, chart.y_label, true);

  for (size_t k = 0; k < chart.series.size(); ++k) {
    const LineSeries& s = chart.series[k];
    const Color color = color_of(k);
    const bool markers = s.markers_only || s.y.size() <= 60;
    bool have_previous = false;
    float prev_x = 0, prev_y = 0;
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (!drawable(x_at(s, i), s.y[i])) {
        have_previous = false;  // a gap
        continue;
      }
      const float px = f.px(x_at(s, i)), py = f.py(s.y[i]);
      if (have_previous && !s.markers_only) canvas.line(prev_x, prev_y, px, py, color, 2.5f);
      if (markers) canvas.line(px, py, px, py, color, s.markers_only ? 10.0f : 7.0f);  // a zero-length capsule: a dot
      prev_x = px, prev_y = py, have_previous = true;
    }
  }
  return canvas.to_image();
}

Image render_training_history(const TrainingCurves& c, int panel_width, int height) {
  std::vector<Image> panels;
  auto add = [](LineChart& chart, const char* name, const std::vector<double>& y) {
    if (!y.empty()) chart.series.push_back({name, {}, y});
  };
  LineChart loss{"Loss", "epoch", "cross-entropy", {}, false};
  add(loss, "train", c.train_loss);
  add(loss, "validation", c.val_loss);
  LineChart accuracy{"Accuracy", "epoch", "accuracy", {}, false};
  add(accuracy, "train", c.train_accuracy);
  add(accuracy, "validation", c.val_accuracy);
  LineChart lr{"Learning rate", "epoch", "learning rate", {}, true};
  add(lr, "lr", c.learning_rate);
  for (const LineChart* chart : {&loss, &accuracy, &lr})
    if (!chart->series.empty()) panels.push_back(render_line_chart(*chart, panel_width, height));
  if (panels.empty()) throw std::invalid_argument("render_training_history: every curve is empty");
  return tile_horizontally(panels);
}

// --------------------------------------------------------------------------------------------------------------
// Grouped bar chart

Image render_bar_chart(const BarChart& chart, int width, int height) {
  const size_t num_groups = chart.groups.size(), num_series = chart.series_names.size();
  if (num_groups == 0 || num_series == 0 || chart.values.size() != num_series)
    throw std::invalid_argument("render_bar_chart: need groups, series names and values [series][group]; got " +
                                std::to_string(num_groups) + " groups, " + std::to_string(num_series) +
                                " names, " + std::to_string(chart.values.size()) + " value rows");
  double max_value = 0.0;
  bool unit_range = true;
  for (const std::vector<double>& row : chart.values) {
    if (row.size() != num_groups)
      throw std::invalid_argument("render_bar_chart: a value row has " + std::to_string(row.size()) +
                                  " entries for " + std::to_string(num_groups) + " groups");
    for (double v : row) {
      if (!std::isfinite(v)) continue;
      max_value = std::max(max_value, v);
      unit_range = unit_range && v >= 0.0 && v <= 1.0;
    }
  }
  const double y_max = chart.y_max > 0.0 ? chart.y_max : unit_range ? 1.0 : std::max(max_value, 1e-12);
  const Axis y_axis = linear_axis(0.0, y_max, 5, false);
  // The x axis is categorical: one unit per group, ticks at group centres carrying the group names.
  Axis x_axis;
  x_axis.lo = 0.0;
  x_axis.hi = static_cast<double>(num_groups);
  for (size_t g = 0; g < num_groups; ++g) {
    x_axis.ticks.push_back(g + 0.5);
    x_axis.labels.push_back(chart.groups[g]);
  }

  Canvas canvas(width, height);
  std::vector<LegendItem> legend;
  for (size_t s = 0; s < num_series; ++s)
    legend.push_back({chart.series_names[s], series_color(static_cast<int>(s)), true});
  const Frame f = layout_frame(canvas, chart.title, legend, x_axis, y_axis, false, !chart.y_label.empty(),
                               text_height(kTextScale) + 6);
  draw_axes(canvas, f, "", chart.y_label, false);

  const float group_width = static_cast<float>(f.right - f.left) / num_groups;
  const float bar_width = 0.8f * group_width / num_series;
  for (size_t g = 0; g < num_groups; ++g) {
    for (size_t s = 0; s < num_series; ++s) {
      const double v = chart.values[s][g];
      if (!std::isfinite(v)) continue;
      const int x0 = static_cast<int>(std::lround(f.left + g * group_width + 0.1f * group_width + s * bar_width));
      const int x1 = static_cast<int>(std::lround(x0 + bar_width)) - 2;  // 2 px between neighbouring bars
      const int y0 = static_cast<int>(std::lround(f.py(std::clamp(v, 0.0, y_axis.hi))));
      canvas.fill_rect(x0, y0, x1, f.bottom, series_color(static_cast<int>(s)));
      // The value above the bar, at the largest scale that fits its width.
      char label[32];
      std::snprintf(label, sizeof label, unit_range ? "%.2f" : "%.3g", v);
      for (int scale : {kTextScale, 1}) {
        if (text_width(label, scale) <= x1 - x0 + 4) {
          canvas.text((x0 + x1) / 2, y0 - text_height(scale) - 3, label, kTextColor, scale, Align::kCenter);
          break;
        }
      }
    }
  }
  return canvas.to_image();
}

// --------------------------------------------------------------------------------------------------------------
// Confusion matrix heatmap

Image render_confusion_matrix(std::span<const int64_t> confusion, const std::vector<std::string>& class_names,
                              const std::string& title) {
  const int k = static_cast<int>(class_names.size());
  if (k == 0 || confusion.size() != static_cast<size_t>(k) * k)
    throw std::invalid_argument("render_confusion_matrix: " + std::to_string(confusion.size()) +
                                " counts for " + std::to_string(k) + " class names (need K * K)");
  const int label_h = text_height(kTextScale);
  // Cells grow with the class names up to 200 px; longer column labels are shortened (row labels are not).
  const int cell = std::clamp(widest(class_names, kTextScale) + 2 * kPad, 120, 200);
  const int left = kPad + label_h + kPad + widest(class_names, kTextScale) + kPad;  // "true" + row labels
  const int top = kPad + text_height(kTitleScale) + kPad + label_h + 2 * kPad;     // title + subtitle
  const int width = left + k * cell + 2 * kPad;
  const int height = top + k * cell + 10 + label_h + kPad + label_h + 2 * kPad;  // column labels + "predicted"
  Canvas canvas(width, height);

  const int grid_center_x = left + k * cell / 2;
  canvas.text(grid_center_x, kPad, title, kTextColor, kTitleScale, Align::kCenter);
  canvas.text(grid_center_x, kPad + text_height(kTitleScale) + kPad, "shade = share of the true class",
            kAxisColor, kTextScale, Align::kCenter);
  for (int t = 0; t < k; ++t) {
    int64_t row_total = 0;
    for (int p = 0; p < k; ++p) row_total += confusion[t * k + p];
    for (int p = 0; p < k; ++p) {
      const int64_t count = confusion[t * k + p];
      const double share = row_total > 0 ? static_cast<double>(count) / row_total : 0.0;
      const Color fill = blues_color(static_cast<float>(share));
      const int x0 = left + p * cell, y0 = top + t * cell;
      canvas.fill_rect(x0, y0, x0 + cell, y0 + cell, fill);
      canvas.stroke_rect(x0, y0, x0 + cell + 1, y0 + cell + 1, kWhite);
      const Color ink = luminance(fill) < 0.5f ? kWhite : kTextColor;
      char percent[32];
      std::snprintf(percent, sizeof percent, "%.1f%%", 100.0 * share);
      const int block = text_height(kTitleScale) + 8 + label_h;  // count above, percentage below
      const int ty = y0 + (cell - block) / 2;
      canvas.text(x0 + cell / 2, ty, std::to_string(count), ink, kTitleScale, Align::kCenter);
      canvas.text(x0 + cell / 2, ty + text_height(kTitleScale) + 8, percent, ink, kTextScale, Align::kCenter);
    }
    canvas.text(left - kPad, top + t * cell + (cell - label_h) / 2, class_names[t], kTextColor, kTextScale,
              Align::kRight);
  }
  for (int p = 0; p < k; ++p)
    canvas.text(left + p * cell + cell / 2, top + k * cell + 10, fit_text(class_names[p], cell - 8, kTextScale),
              kTextColor, kTextScale, Align::kCenter);
  canvas.text(grid_center_x, top + k * cell + 10 + label_h + kPad, "predicted", kTextColor, kTextScale,
            Align::kCenter);
  canvas.text_vertical(kPad, top + k * cell / 2, "true", kTextColor, kTextScale);
  return canvas.to_image();
}

// --------------------------------------------------------------------------------------------------------------
// Image grid, tiling and the heat overlay

Image render_image_grid(const std::vector<GridCell>& cells, int columns, int thumb_size, const std::string& title) {
  if (cells.empty() || columns <= 0 || thumb_size <= 0)
    throw std::invalid_argument("render_image_grid: need cells, columns > 0 and thumb_size > 0");
  // Caption lines per cell, and one text scale for all captions: 2, widening the cells up to 1.6 x the thumbnail
  // when a caption needs it; beyond that, 1.
  std::vector<std::vector<std::string>> lines(cells.size());
  size_t max_lines = 0;
  int caption_width = 0;
  for (size_t i = 0; i < cells.size(); ++i) {
    std::istringstream in(cells[i].caption);
    for (std::string line; std::getline(in, line);) lines[i].push_back(line);
    max_lines = std::max(max_lines, lines[i].size());
    caption_width = std::max(caption_width, widest(lines[i], kTextScale));
  }
  const int caption_scale = caption_width <= thumb_size * 8 / 5 ? kTextScale : 1;
  const int line_h = text_height(caption_scale) + 4;
  const int slot_w = caption_scale == kTextScale ? std::max(thumb_size, caption_width) : thumb_size;
  const int cell_w = slot_w + kPad, cell_h = thumb_size + 6 + static_cast<int>(max_lines) * line_h + kPad;
  const int rows = (static_cast<int>(cells.size()) + columns - 1) / columns;
  const int cols = std::min(columns, static_cast<int>(cells.size()));
  const int title_h = title.empty() ? 0 : text_height(kTitleScale) + kPad;
  Canvas canvas(kPad + cols * cell_w, kPad + title_h + rows * cell_h);
  if (!title.empty()) canvas.text(canvas.width / 2, kPad, title, kTextColor, kTitleScale, Align::kCenter);

  for (size_t i = 0; i < cells.size(); ++i) {
    const int x0 = kPad + static_cast<int>(i % columns) * cell_w + (slot_w - thumb_size) / 2;
    const int y0 = kPad + title_h + static_cast<int>(i / columns) * cell_h;
    canvas.fill_rect(x0, y0, x0 + thumb_size, y0 + thumb_size, kBlack);
    const Image& src = cells[i].image;
    if (!src.empty()) {
      // Fit the longer side to thumb_size, centre the other (letterbox).
      const double s = static_cast<double>(thumb_size) / std::max(src.width, src.height);
      const int w = std::max(1, static_cast<int>(std::lround(src.width * s)));
      const int h = std::max(1, static_cast<int>(std::lround(src.height * s)));
      const Image thumb = resize_bilinear(src, w, h);
      canvas.paste(thumb, x0 + (thumb_size - w) / 2, y0 + (thumb_size - h) / 2);
    }
    for (size_t l = 0; l < lines[i].size(); ++l)
      canvas.text(x0 + thumb_size / 2, y0 + thumb_size + 6 + static_cast<int>(l) * line_h, lines[i][l],
                cells[i].caption_color, caption_scale, Align::kCenter);
  }
  return canvas.to_image();
}

Image tile_horizontally(const std::vector<Image>& images) {
  if (images.empty()) throw std::invalid_argument("tile_horizontally: no images");
  int width = 0, height = 0;
  for (const Image& im : images) width += im.width, height = std::max(height, im.height);
  Image out(width, height);
  std::fill(out.rgb.begin(), out.rgb.end(), uint8_t{255});  // white where an canvas is shorter than the tallest
  int x0 = 0;
  for (const Image& im : images) {
    for (int y = 0; y < im.height; ++y) std::copy_n(im.pixel(0, y), 3 * im.width, out.pixel(x0, y));
    x0 += im.width;
  }
  return out;
}

}  // namespace mriscan
