// Drawing primitives: rectangles, anti-aliased lines, stb_easy_font text and colour maps on an RGB Image.
#include "io/plot_canvas.h"

// Header-only with static functions (nothing to link); it turns a string into axis-aligned quads. We use
// only some of its static functions, so silence "defined but not used" for the header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

#include <algorithm>
#include <cmath>
#include <vector>

namespace mriscan {

Image make_canvas(int width, int height, Color background) {
  Image image(width, height);  // throws ImageError on non-positive sizes
  for (size_t i = 0; i < image.rgb.size(); i += 3) {
    image.rgb[i + 0] = background.r;
    image.rgb[i + 1] = background.g;
    image.rgb[i + 2] = background.b;
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

void fill_rect(Image& image, int x0, int y0, int x1, int y1, Color color, float alpha) {
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, image.width);
  y1 = std::min(y1, image.height);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) blend_pixel(image, x, y, color, alpha);
}

void stroke_rect(Image& image, int x0, int y0, int x1, int y1, Color color) {
  fill_rect(image, x0, y0, x1, y0 + 1, color);
  fill_rect(image, x0, y1 - 1, x1, y1, color);
  fill_rect(image, x0, y0, x0 + 1, y1, color);
  fill_rect(image, x1 - 1, y0, x1, y1, color);
}

void draw_line(Image& image, float x0, float y0, float x1, float y1, Color color, float width) {
  const float radius = 0.5f * width;
  const int bx0 = static_cast<int>(std::floor(std::min(x0, x1) - radius - 1));
  const int bx1 = static_cast<int>(std::ceil(std::max(x0, x1) + radius + 1));
  const int by0 = static_cast<int>(std::floor(std::min(y0, y1) - radius - 1));
  const int by1 = static_cast<int>(std::ceil(std::max(y0, y1) + radius + 1));
  const float dx = x1 - x0, dy = y1 - y0;
  const float length2 = dx * dx + dy * dy;
  for (int y = std::max(by0, 0); y <= std::min(by1, image.height - 1); ++y) {
    for (int x = std::max(bx0, 0); x <= std::min(bx1, image.width - 1); ++x) {
      // Distance from the pixel centre to the nearest point of the segment (projection clamped to [0, 1]).
      const float px = x + 0.5f - x0, py = y + 0.5f - y0;
      const float t = length2 > 0.0f ? std::clamp((px * dx + py * dy) / length2, 0.0f, 1.0f) : 0.0f;
      const float ex = px - t * dx, ey = py - t * dy;
      const float coverage = std::clamp(radius + 0.5f - std::sqrt(ex * ex + ey * ey), 0.0f, 1.0f);
      blend_pixel(image, x, y, color, coverage);
    }
  }
}

// ------------------------------------------------------------------------------------------------------------
// Text

namespace {

// stb_easy_font indexes a table by (char - 32): anything outside ' '..'~' would read out of bounds.
std::string printable(const std::string& text) {
  std::string out = text;
  for (char& ch : out)
    if (ch < 32 || ch > 126) ch = '?';
  return out;
}

// The glyph quads of `text` at the origin, unscaled, as (x0, y0, x1, y1) rectangles.
struct Quad {
  float x0, y0, x1, y1;
};

std::vector<Quad> text_quads(const std::string& text) {
  std::string s = printable(text);
  // stb writes 4 vertices of 16 bytes (x, y, z floats + RGBA) per quad; ~270 bytes per character on average,
  // so 600 per character is safe (it truncates rather than overflows anyway).
  std::vector<char> buffer(600 * (s.size() + 1));
  const int num_quads = stb_easy_font_print(0.0f, 0.0f, s.data(), nullptr, buffer.data(),
                                            static_cast<int>(buffer.size()));
  std::vector<Quad> quads(num_quads);
  for (int q = 0; q < num_quads; ++q) {
    const float* v0 = reinterpret_cast<const float*>(buffer.data() + q * 64);       // vertex 0: top-left
    const float* v2 = reinterpret_cast<const float*>(buffer.data() + q * 64 + 32);  // vertex 2: bottom-right
    quads[q] = {v0[0], v0[1], v2[0], v2[1]};
  }
  return quads;
}

}  // namespace

int text_width(const std::string& text, int scale) {
  std::string s = printable(text);
  // stb counts the advance of the last character too, which includes one column of spacing: drop it.
  return s.empty() ? 0 : (stb_easy_font_width(s.data()) - 1) * scale;
}

int text_height(int scale) { return 9 * scale; }  // rows 0..6 for capitals, 7..8 for descenders

void draw_text(Image& image, int x, int y, const std::string& text, Color color, int scale, Align align) {
  if (align == Align::kCenter) x -= text_width(text, scale) / 2;
  if (align == Align::kRight) x -= text_width(text, scale);
  for (const Quad& q : text_quads(text))
    fill_rect(image, x + static_cast<int>(q.x0) * scale, y + static_cast<int>(q.y0) * scale,
              x + static_cast<int>(q.x1) * scale, y + static_cast<int>(q.y1) * scale, color);
}

void draw_text_vertical(Image& image, int x, int y, const std::string& text, Color color, int scale) {
  // Rotate 90 degrees counter-clockwise: glyph (u, v) -> (x + v, y_bottom - u), with y_bottom chosen so that
  // the text is centred on y.
  const int y_bottom = y + text_width(text, scale) / 2;
  for (const Quad& q : text_quads(text)) {
    fill_rect(image, x + static_cast<int>(q.y0) * scale, y_bottom - static_cast<int>(q.x1) * scale,
              x + static_cast<int>(q.y1) * scale, y_bottom - static_cast<int>(q.x0) * scale, color);
  }
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
