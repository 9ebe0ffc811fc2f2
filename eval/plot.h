// Charts for training reports, rendered to an RGB `Image` (write it with write_png from io/image_io.h):
// line charts (training history), a confusion-matrix heatmap, grouped bar charts (per-class precision/recall/F1),
// and captioned image grids (samples, Grad-CAM).
//
// What it is: fixed, legible layouts with no overlapping text (legends sit in their own row under the title,
// never on top of the data). What it is not: a general plotting library; there is no styling API beyond the
// fields below. Drawing (cairo) lives in io/plot_canvas.h.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/image_io.h"
#include "io/plot_canvas.h"

namespace mriscan {

struct LineSeries {
  std::string name;
  std::vector<double> x;  // empty: x = 1, 2, ..., y.size() (epochs)
  std::vector<double> y;  // non-finite values (and, on a log axis, values <= 0) leave a gap
  bool markers_only = false;  // a scatter: a dot at each point, no line between them
  std::optional<Color> color = std::nullopt;  // default: series_color(index of the series)
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<LineSeries> series;
  bool log_y = false;  // logarithmic y axis, ticks at 1, 2, 5 x 10^k (e.g. the learning rate)
  bool log_x = false;  // logarithmic x axis, likewise (a roofline: both axes logarithmic)
};

// Axes with "nice" ticks (1, 2, 5 x 10^k), light grid, one coloured line + markers per series (or dots alone for
// a markers_only series), legend row.
Image render_line_chart(const LineChart& chart, int width = 800, int height = 500);

// The per-epoch curves of a training run; any vector may be empty (that panel or series is left out).
struct TrainingCurves {
  std::vector<double> train_loss, val_loss;
  std::vector<double> train_accuracy, val_accuracy;
  std::vector<double> learning_rate;
};

// Loss | accuracy | learning rate (log axis) side by side, each panel `panel_width` x `height`.
Image render_training_history(const TrainingCurves& curves, int panel_width = 560, int height = 420);

struct BarChart {
  std::string title = {}, y_label = {};
  std::vector<std::string> groups;        // x categories, e.g. class names
  std::vector<std::string> series_names;  // bars within a group, e.g. {"precision", "recall", "F1"}
  std::vector<std::vector<double>> values;  // [series][group]
  double y_max = 0.0;  // 0: 1 when every value is in [0, 1], else a nice number above the maximum
};

// Grouped bars with value labels on top (when they fit) and a legend row.
Image render_bar_chart(const BarChart& chart, int width = 900, int height = 500);

// The confusion matrix (K, K) (rows = true class, columns = predicted) as a heatmap: each cell shows its count
// and the row percentage (the recall share), shaded by that percentage.
Image render_confusion_matrix(std::span<const int64_t> confusion, const std::vector<std::string>& class_names,
                              const std::string& title = "Confusion matrix");

struct GridCell {
  Image image;
  std::string caption;  // up to a few lines separated by '\n'
  Color caption_color = kTextColor;
};

// Thumbnails of `thumb_size` x `thumb_size` (aspect kept, letterboxed on black) in `columns` columns, each
// with its caption underneath; an optional title on top.
Image render_image_grid(const std::vector<GridCell>& cells, int columns, int thumb_size = 192,
                        const std::string& title = "");

// Places images side by side (top-aligned) on a white background.
Image tile_horizontally(const std::vector<Image>& images);

}  // namespace mriscan
