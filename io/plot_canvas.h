// Drawing primitives for the plots in eval/plot.h: filled rectangles, anti-aliased lines, bitmap text and
// colour maps, all painting into an 8-bit RGB `Image` (io/image_io.h).
//
// What it is: the few operations a chart needs, clipped to the image so callers never index out of bounds.
// What it is not: a general 2-D graphics library (no paths, no fonts beyond stb_easy_font's one bitmap face,
// no alpha channel: "alpha" arguments blend onto what is already there).
//
// Coordinates are pixels, x to the right and y down, origin at the top-left corner of the image.
#pragma once

#include <cstdint>
#include <string>

#include "io/image_io.h"

namespace mriscan {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
};

inline constexpr Color kWhite{255, 255, 255};
inline constexpr Color kBlack{0, 0, 0};
inline constexpr Color kTextColor{40, 40, 40};
inline constexpr Color kGridColor{225, 225, 225};
inline constexpr Color kAxisColor{90, 90, 90};

// A blank canvas filled with one colour.
Image make_canvas(int width, int height, Color background = kWhite);

// out = (1 - alpha) * out + alpha * color at one pixel; ignored outside the image.
void blend_pixel(Image& image, int x, int y, Color color, float alpha);

// Fills [x0, x1) x [y0, y1), clipped to the image.
void fill_rect(Image& image, int x0, int y0, int x1, int y1, Color color, float alpha = 1.0f);

// One-pixel outline of the rectangle [x0, x1) x [y0, y1).
void stroke_rect(Image& image, int x0, int y0, int x1, int y1, Color color);

// Anti-aliased segment of the given width: a pixel's coverage is how far its centre lies inside the
// capsule of radius width/2 around the segment, clamped to [0, 1] (a one-pixel soft edge).
void draw_line(Image& image, float x0, float y0, float x1, float y1, Color color, float width = 1.0f);

// --- Text: stb_easy_font's 5x7-ish bitmap face, magnified by an integer `scale` (2 is comfortable). ---

enum class Align { kLeft, kCenter, kRight };

// Width and height in pixels of (single-line) text at `scale`. The height covers capitals and descenders.
int text_width(const std::string& text, int scale);
int text_height(int scale);

// Draws text whose top edge is at y; x is the left edge, centre or right edge depending on `align`.
// Characters outside printable ASCII are drawn as '?'.
void draw_text(Image& image, int x, int y, const std::string& text, Color color, int scale,
               Align align = Align::kLeft);

// Text rotated 90 degrees counter-clockwise (reads bottom to top), centred vertically on y; x is its left edge.
void draw_text_vertical(Image& image, int x, int y, const std::string& text, Color color, int scale);

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
