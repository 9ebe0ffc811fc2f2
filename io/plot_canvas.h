// Drawing for the plots in eval/plot.h, through cairo: a Canvas (an RGB surface) with filled and outlined
// rectangles, antialiased lines and dots, text in a real font (DejaVu Sans from fontconfig, antialiased), and
// pasted images; then the colour maps the plots and the Grad-CAM overlay use.
//
// What it is: the few operations a chart needs, in the pixel units and integer text scales the chart layouts
// were written for, so eval/plot.cpp never sees a cairo type. What it is not: a general 2-D graphics API (cairo
// is that), nor image decoding or resizing (io/image_io.h).
//
// Coordinates are pixels, x to the right and y down, origin at the top-left corner. Integer rectangle edges lie
// on pixel boundaries, so rectangles and one-pixel rules stay crisp while lines and text are antialiased.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "io/image_io.h"

typedef struct _cairo cairo_t;
typedef struct _cairo_surface cairo_surface_t;

namespace mriscan {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
};

inline constexpr Color kWhite{255, 255, 255};
inline constexpr Color kBlack{0, 0, 0};
inline constexpr Color kTextColor{40, 40, 40};
inline constexpr Color kGridColor{225, 225, 225};
inline constexpr Color kAxisColor{90, 90, 90};

enum class Align { kLeft, kCenter, kRight };

class Canvas {
 public:
  // A canvas filled with one colour; throws ImageError on non-positive sizes.
  Canvas(int width, int height, Color background = kWhite);
  ~Canvas();
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;

  const int width, height;

  // Fills [x0, x1) x [y0, y1); `alpha` < 1 blends onto what is there.
  void fill_rect(int x0, int y0, int x1, int y1, Color color, float alpha = 1.0f);
  // One-pixel outline just inside the rectangle [x0, x1) x [y0, y1).
  void stroke_rect(int x0, int y0, int x1, int y1, Color color);
  // A segment of the given width with round caps; a zero-length one is a dot of that diameter.
  void line(float x0, float y0, float x1, float y1, Color color, float width = 1.0f);
  // Text whose top edge is at y; x is its left edge, centre or right edge depending on `align`.
  void text(int x, int y, const std::string& text, Color color, int scale, Align align = Align::kLeft);
  // Text rotated 90 degrees counter-clockwise (reads bottom to top), centred on y; x is its left edge.
  void text_vertical(int x, int y, const std::string& text, Color color, int scale);
  // Copies `image` with its top-left corner at (x, y), clipped to the canvas.
  void paste(const Image& image, int x, int y);

  Image to_image() const;  // (H, W, 3)

 private:
  cairo_surface_t* surface_;
  cairo_t* cr_;
};

// Text size: `scale` 1 is a small label, 2 a comfortable one, 3 a title (a font of 6.5 px per scale step).
// Width in pixels of single-line text, and the height of a line (ascent + descent) at that scale. Characters
// that are control characters or malformed UTF-8 are drawn (and measured) as '?'.
int text_width(const std::string& text, int scale);
int text_height(int scale);

// out = (1 - alpha) * out + alpha * color at one pixel of an Image; ignored outside it (the Grad-CAM overlay).
void blend_pixel(Image& image, int x, int y, Color color, float alpha);

// --- Colours. ---

// Turbo (Mikhailov 2019), a perceptually smoothed rainbow, t in [0, 1] (clamped), through the published
// polynomial approximation by Ruofei Du. Used for Grad-CAM heat because it stays readable on gray MRI.
Color turbo_color(float t);

// Sequential white -> dark blue ramp (the end points of matplotlib's "Blues"), t in [0, 1] (clamped).
Color blues_color(float t);

// Categorical palette (Tableau 10) for series; wraps around after 10.
Color series_color(int index);

// Relative luminance in [0, 1]; used to pick black or white text on a coloured cell.
float luminance(Color color);

}  // namespace mriscan
