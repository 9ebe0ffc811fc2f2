// Drawing through cairo: the Canvas's surface and context, text in DejaVu Sans, and the colour maps.
#include "io/plot_canvas.h"

#include <cairo/cairo.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "io/utf8.h"

namespace mriscan {

namespace {

constexpr double kFontPixelsPerScale = 6.5;

void set_color(cairo_t* cr, Color color, double alpha = 1.0) {
  cairo_set_source_rgba(cr, color.r / 255.0, color.g / 255.0, color.b / 255.0, alpha);
}

void select_font(cairo_t* cr, int scale) {
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, kFontPixelsPerScale * scale);
}

// A context on a 1 x 1 surface, one per thread, for measuring text outside any canvas.
cairo_t* measuring_context() {
  struct Scratch {
    cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t* cr = cairo_create(surface);
    ~Scratch() {
      cairo_destroy(cr);
      cairo_surface_destroy(surface);
    }
  };
  thread_local Scratch scratch;
  return scratch.cr;
}

double font_ascent(cairo_t* cr, int scale) {
  select_font(cr, scale);
  cairo_font_extents_t extents;
  cairo_font_extents(cr, &extents);
  return extents.ascent;
}

}  // namespace

int text_width(const std::string& text, int scale) {
  cairo_t* cr = measuring_context();
  select_font(cr, scale);
  cairo_text_extents_t extents;
  cairo_text_extents(cr, printable_utf8(text).c_str(), &extents);
  return static_cast<int>(std::ceil(extents.x_advance));
}

int text_height(int scale) {
  cairo_t* cr = measuring_context();
  select_font(cr, scale);
  cairo_font_extents_t extents;
  cairo_font_extents(cr, &extents);
  return static_cast<int>(std::ceil(extents.ascent + extents.descent));
}

Canvas::Canvas(int w, int h, Color background) : width(w), height(h) {
  if (w <= 0 || h <= 0)
    throw ImageError("canvas size must be positive, got " + std::to_string(w) + "x" + std::to_string(h));
  surface_ = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cr_ = cairo_create(surface_);
  if (cairo_status(cr_) != CAIRO_STATUS_SUCCESS) {
    cairo_destroy(cr_);
    cairo_surface_destroy(surface_);
    throw ImageError("cannot create a " + std::to_string(w) + "x" + std::to_string(h) + " canvas (cairo)");
  }
  set_color(cr_, background);
  cairo_paint(cr_);
}

Canvas::~Canvas() {
  cairo_destroy(cr_);
  cairo_surface_destroy(surface_);
}

void Canvas::fill_rect(int x0, int y0, int x1, int y1, Color color, float alpha) {
  if (x1 <= x0 || y1 <= y0) return;
  cairo_rectangle(cr_, x0, y0, x1 - x0, y1 - y0);
  set_color(cr_, color, alpha);
  cairo_fill(cr_);
}

void Canvas::stroke_rect(int x0, int y0, int x1, int y1, Color color) {
  if (x1 <= x0 || y1 <= y0) return;
  // A one-pixel line centred half a pixel inside the edge covers exactly the edge pixels.
  cairo_rectangle(cr_, x0 + 0.5, y0 + 0.5, x1 - x0 - 1, y1 - y0 - 1);
  set_color(cr_, color);
  cairo_set_line_width(cr_, 1.0);
  cairo_stroke(cr_);
}

void Canvas::line(float x0, float y0, float x1, float y1, Color color, float width) {
  set_color(cr_, color);
  if (x0 == x1 && y0 == y1) {
    cairo_arc(cr_, x0, y0, 0.5 * width, 0.0, 2.0 * std::numbers::pi);
    cairo_fill(cr_);
    return;
  }
  cairo_set_line_width(cr_, width);
  cairo_set_line_cap(cr_, CAIRO_LINE_CAP_ROUND);
  cairo_move_to(cr_, x0, y0);
  cairo_line_to(cr_, x1, y1);
  cairo_stroke(cr_);
}

void Canvas::text(int x, int y, const std::string& text, Color color, int scale, Align align) {
  if (align == Align::kCenter) x -= text_width(text, scale) / 2;
  if (align == Align::kRight) x -= text_width(text, scale);
  cairo_move_to(cr_, x, y + font_ascent(cr_, scale));  // select_font happens in font_ascent
  set_color(cr_, color);
  cairo_show_text(cr_, printable_utf8(text).c_str());
  cairo_new_path(cr_);
}

void Canvas::text_vertical(int x, int y, const std::string& text, Color color, int scale) {
  cairo_save(cr_);
  // Rotated text: its baseline runs up the canvas at x + ascent, starting half its width below y.
  cairo_translate(cr_, x + font_ascent(cr_, scale), y + text_width(text, scale) / 2.0);
  cairo_rotate(cr_, -std::numbers::pi / 2);
  cairo_move_to(cr_, 0, 0);
  set_color(cr_, color);
  cairo_show_text(cr_, printable_utf8(text).c_str());
  cairo_new_path(cr_);
  cairo_restore(cr_);
}

// cairo's RGB24 pixels are native-endian 32-bit words 0x00RRGGBB, rows `stride` bytes apart.
void Canvas::paste(const Image& image, int x, int y) {
  cairo_surface_flush(surface_);
  unsigned char* data = cairo_image_surface_get_data(surface_);
  const int stride = cairo_image_surface_get_stride(surface_);
  for (int row = std::max(0, -y); row < image.height && y + row < height; ++row) {
    auto* out = reinterpret_cast<uint32_t*>(data + static_cast<size_t>(y + row) * stride);
    for (int col = std::max(0, -x); col < image.width && x + col < width; ++col) {
      const uint8_t* p = image.pixel(col, row);
      out[x + col] = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
    }
  }
  cairo_surface_mark_dirty(surface_);
}

Image Canvas::to_image() const {
  if (cairo_status(cr_) != CAIRO_STATUS_SUCCESS)
    throw ImageError(std::string("drawing failed (cairo: ") + cairo_status_to_string(cairo_status(cr_)) + ")");
  cairo_surface_flush(surface_);
  const unsigned char* data = cairo_image_surface_get_data(surface_);
  const int stride = cairo_image_surface_get_stride(surface_);
  Image image(width, height);
  for (int y = 0; y < height; ++y) {
    const auto* row = reinterpret_cast<const uint32_t*>(data + static_cast<size_t>(y) * stride);
    for (int x = 0; x < width; ++x) {
      uint8_t* p = image.pixel(x, y);
      p[0] = static_cast<uint8_t>(row[x] >> 16), p[1] = static_cast<uint8_t>(row[x] >> 8),
      p[2] = static_cast<uint8_t>(row[x]);
    }
  }
  return image;
}

void blend_pixel(Image& image, int x, int y, Color color, float alpha) {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height || alpha <= 0.0f) return;
  alpha = std::min(alpha, 1.0f);
  uint8_t* p = image.pixel(x, y);
  const uint8_t src[3] = {color.r, color.g, color.b};
  for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>(std::lround((1.0f - alpha) * p[c] + alpha * src[c]));
}

// ------------------------------------------------------------------------------------------------------------
// Colours

namespace {
uint8_t to_byte(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f)); }
}  // namespace

Color turbo_color(float t) {
  t = std::clamp(t, 0.0f, 1.0f);
  // Degree-5 polynomial per channel, coefficients c0..c5 from Ruofei Du's approximation of Turbo.
  static constexpr float kRed[6] = {0.13572138f, 4.61539260f, -42.66032258f, 132.13108234f, -152.94239396f,
                                    59.28637943f};
  static constexpr float kGreen[6] = {0.09140261f, 2.19418839f, 4.84296658f, -14.18503333f, 4.27729857f,
                                      2.82956604f};
  static constexpr float kBlue[6] = {0.10667330f, 12.64194608f, -60.58204836f, 110.36276771f, -89.90310912f,
                                     27.34824973f};
  auto poly = [t](const float* c) {  // Horner's rule
    float v = c[5];
    for (int i = 4; i >= 0; --i) v = v * t + c[i];
    return v;
  };
  return {to_byte(poly(kRed)), to_byte(poly(kGreen)), to_byte(poly(kBlue))};
}

Color blues_color(float t) {
  t = std::clamp(t, 0.0f, 1.0f);
  constexpr Color kLight{247, 251, 255}, kDark{8, 48, 107};
  auto mix = [t](uint8_t a, uint8_t b) { return static_cast<uint8_t>(std::lround(a + t * (b - a))); };
  return {mix(kLight.r, kDark.r), mix(kLight.g, kDark.g), mix(kLight.b, kDark.b)};
}

Color series_color(int index) {
  static constexpr Color kTab10[10] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},
                                       {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                       {188, 189, 34},  {23, 190, 207}};
  return kTab10[((index % 10) + 10) % 10];
}

float luminance(Color c) { return (0.2126f * c.r + 0.7152f * c.g + 0.0722f * c.b) / 255.0f; }

}  // namespace mriscan
