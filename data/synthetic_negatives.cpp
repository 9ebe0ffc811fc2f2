// Generated non-MRI pictures (see the header): a small raster painter (rectangles, discs, lines, text) and one
// function per kind.
#include "data/synthetic_negatives.h"

#include <stb/stb_easy_font.h>
#include <stb/stb_perlin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <stdexcept>

#include "data/random.h"

namespace mriscan {

namespace {

using Rgb = std::array<float, 3>;  // each in [0, 1]

// A float canvas (H, W, 3), converted to an Image at the end.
struct Canvas {
  int size;
  std::vector<float> rgb;  // (H, W, 3)
  explicit Canvas(int size, Rgb background) : size(size), rgb(static_cast<size_t>(size) * size * 3) {
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = background[i % 3];
  }
  void set(int x, int y, Rgb c, float alpha = 1.0f) {
    if (x < 0 || y < 0 || x >= size || y >= size) return;
    float* p = &rgb[(static_cast<size_t>(y) * size + x) * 3];
    for (int k = 0; k < 3; ++k) p[k] = p[k] * (1.0f - alpha) + c[k] * alpha;
  }
  void rect(float x0, float y0, float x1, float y1, Rgb c) {
    for (int y = std::max(0, int(y0)); y < std::min(size, int(y1)); ++y)
      for (int x = std::max(0, int(x0)); x < std::min(size, int(x1)); ++x) set(x, y, c);
  }
  void outline(float x0, float y0, float x1, float y1, float width, Rgb c) {
    rect(x0, y0, x1, y0 + width, c);
    rect(x0, y1 - width, x1, y1, c);
    rect(x0, y0, x0 + width, y1, c);
    rect(x1 - width, y0, x1, y1, c);
  }
  void disc(float cx, float cy, float r, Rgb c) {
    for (int y = std::max(0, int(cy - r)); y <= std::min(size - 1, int(cy + r)); ++y)
      for (int x = std::max(0, int(cx - r)); x <= std::min(size - 1, int(cx + r)); ++x)
        if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) set(x, y, c);
  }
  void line(float x0, float y0, float x1, float y1, float width, Rgb c) {
    const int steps = static_cast<int>(std::hypot(x1 - x0, y1 - y0)) + 1;
    for (int i = 0; i <= steps; ++i) {
      const float t = static_cast<float>(i) / steps;
      disc(x0 + t * (x1 - x0), y0 + t * (y1 - y0), width / 2, c);
    }
  }
  // stb_easy_font's glyphs are axis-aligned quads, about 7 units tall; `scale` enlarges them.
  void text(float x, float y, float scale, const std::string& s, Rgb c) {
    static thread_local std::vector<char> buffer(64 * 1024);
    std::string copy = s;
    const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer.data(), static_cast<int>(buffer.size()));
    const float* v = reinterpret_cast<const float*>(buffer.data());  // 4 vertices of (x, y, z, colour) per quad
    for (int q = 0; q < quads; ++q) {
      const float* quad = v + q * 16;
      rect(x + quad[0] * scale, y + quad[1] * scale, x + quad[8] * scale, y + quad[9] * scale, c);
    }
  }
  void greyscale() {
    for (size_t i = 0; i < rgb.size(); i += 3) {
      const float g = 0.299f * rgb[i] + 0.587f * rgb[i + 1] + 0.114f * rgb[i + 2];
      rgb[i] = rgb[i + 1] = rgb[i + 2] = g;
    }
  }
  Image image() const {
    Image out(size, size);
    for (size_t i = 0; i < rgb.size(); ++i)
      out.rgb[i] = static_cast<uint8_t>(std::lround(std::clamp(rgb[i], 0.0f, 1.0f) * 255.0f));
    return out;
  }
};

struct Random {
  std::mt19937 rng;
  float uniform(float lo, float hi) { return static_cast<float>(uniform_range(rng, lo, hi)); }
  int integer(int lo, int hi) { return lo + static_cast<int>(uniform_index(rng, static_cast<uint32_t>(hi - lo + 1))); }
  Rgb colour(float lo = 0.0f, float hi = 1.0f) { return {uniform(lo, hi), uniform(lo, hi), uniform(lo, hi)}; }
  std::string words(int count) {
    static const char* kWords[] = {"the",    "patient", "report",   "results", "data",  "model",   "value",
                                   "system", "file",    "settings", "open",    "save",  "total",   "page",
                                   "figure", "table",   "review",   "status",  "error", "network", "input",
                                   "output", "summary", "notes",    "2026"};
    std::string s;
    for (int i = 0; i < count; ++i) s += std::string(i ? " " : "") + kWords[integer(0, 24)];
    return s;
  }
};

Rgb mix(Rgb a, Rgb b, float t) {
  return {a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t};
}

Image photograph(Random& r, int s, int variant) {
  if (variant == 3) {  // a close-up texture: bark, stone, foliage
    Canvas c(s, {0, 0, 0});
    const Rgb a = r.colour(0.1f, 0.6f), b = r.colour(0.4f, 1.0f);
    const float z = r.uniform(0, 100), scale = r.uniform(3, 10) / s;
    for (int y = 0; y < s; ++y)
      for (int x = 0; x < s; ++x)
        c.set(x, y, mix(a, b, 0.5f + 0.5f * stb_perlin_turbulence_noise3(x * scale, y * scale, z, 2.0f, 0.5f, 5)));
    return c.image();
  }
  Canvas c(s, {0, 0, 0});
  const float horizon = s * r.uniform(0.35f, 0.65f);
  const Rgb sky_top = r.integer(0, 3) == 0 ? Rgb{0.9f, 0.5f, 0.3f} : Rgb{0.2f, 0.4f, 0.85f};
  const Rgb sky_bottom = {0.85f, 0.9f, 0.95f};
  const Rgb ground = r.integer(0, 1) ? Rgb{0.25f, 0.5f, 0.2f} : Rgb{0.55f, 0.45f, 0.3f};
  const float z = r.uniform(0, 100);
  for (int y = 0; y < s; ++y)
    for (int x = 0; x < s; ++x) {
      if (y < horizon) {
        c.set(x, y, mix(sky_top, sky_bottom, y / horizon));
      } else {
        const float n = stb_perlin_fbm_noise3(x * 0.05f, y * 0.08f, z, 2.0f, 0.5f, 4);
        c.set(x, y, mix(ground, {ground[0] * 0.5f, ground[1] * 0.5f, ground[2] * 0.5f}, 0.5f + 0.5f * n));
      }
    }
  c.disc(r.uniform(0.1f, 0.9f) * s, horizon * r.uniform(0.2f, 0.6f), s * r.uniform(0.04f, 0.08f), {1.0f, 0.95f, 0.7f});
  for (int t = r.integer(1, 4); t > 0; --t) {  // trees
    const float x = r.uniform(0.05f, 0.95f) * s, y = horizon + r.uniform(0.0f, 0.2f) * s,
                h = s * r.uniform(0.1f, 0.25f);
    c.rect(x - 3, y - h * 0.4f, x + 3, y + 4, {0.35f, 0.2f, 0.1f});
    c.disc(x, y - h * 0.6f, h * 0.35f, {0.1f, r.uniform(0.3f, 0.5f), 0.1f});
  }
  if (variant == 1) {  // a house
    const float x = r.uniform(0.2f, 0.6f) * s, w = s * 0.25f, y = horizon + 0.05f * s;
    c.rect(x, y - w * 0.6f, x + w, y + w * 0.2f, r.colour(0.5f, 0.9f));
    for (int k = 0; k < w / 2; ++k)
      c.rect(x + k, y - w * 0.6f - (w / 2 - k) * 0.6f, x + w - k, y - w * 0.6f, {0.6f, 0.15f, 0.1f});
    c.rect(x + w * 0.4f, y - w * 0.25f, x + w * 0.6f, y + w * 0.2f, {0.3f, 0.2f, 0.1f});
  }
  if (variant == 2) c.greyscale();  // a black-and-white photograph: colour alone does not give it away
  return c.image();
}

Image screenshot(Random& r, int s, int variant) {
  const bool dark = variant % 2 == 1;
  const Rgb background = dark ? Rgb{0.12f, 0.12f, 0.13f} : Rgb{0.96f, 0.96f, 0.97f};
  const Rgb ink = dark ? Rgb{0.85f, 0.85f, 0.85f} : Rgb{0.1f, 0.1f, 0.12f};
  const Rgb accent = r.colour(0.2f, 0.9f);
  Canvas c(s, background);
  c.rect(0, 0, s, s * 0.08f, dark ? Rgb{0.2f, 0.2f, 0.22f} : accent);  // title bar
  c.text(6, 4, 1.5f, r.words(3), dark ? ink : Rgb{1, 1, 1});
  for (int k = 0; k < 3; ++k) c.disc(s - 10 - 12 * k, s * 0.04f, 4, {0.9f - 0.3f * k, 0.3f + 0.3f * k, 0.3f});
  const float sidebar = s * r.uniform(0.2f, 0.3f);
  c.rect(0, s * 0.08f, sidebar, s, dark ? Rgb{0.16f, 0.16f, 0.18f} : Rgb{0.9f, 0.9f, 0.92f});
  for (int k = 0; k < 10; ++k) c.text(6, s * 0.12f + 14 * k, 1.0f, r.words(2), ink);
  float y = s * 0.12f;
  while (y < s * 0.9f) {
    if (r.integer(0, 4) == 0) {  // a button row or an embedded picture
      c.rect(sidebar + 10, y, sidebar + 60, y + 14, accent);
      c.text(sidebar + 14, y + 3, 1.0f, "OK", {1, 1, 1});
      y += 22;
    } else {
      c.text(sidebar + 10, y, 1.0f, r.words(r.integer(3, 7)), ink);
      y += 12;
    }
  }
  return c.image();
}

Image diagram(Random& r, int s, int variant) {
  const bool colour = variant % 2 == 0;
  Canvas c(s, {1, 1, 1});
  const int boxes = r.integer(3, 6);
  std::vector<std::array<float, 2>> centres;
  for (int b = 0; b < boxes; ++b) {
    const float cx = s * (0.2f + 0.6f * (b % 2)) + r.uniform(-10, 10), cy = s * (0.12f + 0.8f * b / boxes);
    centres.push_back({cx, cy + 12});
  }
  for (size_t b = 1; b < centres.size(); ++b)  // arrows first, boxes drawn over their ends
    c.line(centres[b - 1][0], centres[b - 1][1], centres[b][0], centres[b][1], 2, {0.2f, 0.2f, 0.2f});
  for (const auto& [cx, cy] : centres) {
    const float w = s * 0.16f, h = 14;
    if (colour) c.rect(cx - w, cy - h, cx + w, cy + h, r.colour(0.6f, 1.0f));
    c.outline(cx - w, cy - h, cx + w, cy + h, 2, {0, 0, 0});
    c.text(cx - w + 6, cy - 4, 1.0f, r.words(2), {0, 0, 0});
  }
  return c.image();
}

Image document(Random& r, int s, int variant) {
  const bool scanned = variant % 2 == 1;
  Canvas c(s, scanned ? Rgb{0.88f, 0.87f, 0.84f} : Rgb{1, 1, 1});
  c.text(12, 10, 2.0f, r.words(3), {0, 0, 0});
  float y = 36;
  const bool table = r.integer(0, 2) == 0;
  while (y < s - 16) {
    if (table && y > s * 0.5f && y < s * 0.5f + 12) {
      for (int row = 0; row < 4; ++row)
        for (int col = 0; col < 3; ++col) {
          c.outline(12 + col * (s - 24) / 3.0f, y + row * 14, 12 + (col + 1) * (s - 24) / 3.0f, y + (row + 1) * 14, 1,
                    {0, 0, 0});
          c.text(16 + col * (s - 24) / 3.0f, y + row * 14 + 3, 1.0f, r.words(1), {0, 0, 0});
        }
      y += 64;
      continue;
    }
    c.text(12, y, 1.0f, r.words(r.integer(6, 9)), {0.05f, 0.05f, 0.05f});
    y += r.integer(0, 5) == 0 ? 18 : 10;
  }
  if (scanned) {
    for (float& v : c.rgb) v = std::clamp(v + r.uniform(-0.06f, 0.06f), 0.0f, 1.0f);
  }
  return c.image();
}

Image pattern(Random& r, int s, int variant) {
  switch (variant) {
    case 0:
      return Canvas(s, {0, 0, 0}).image();  // blank black
    case 1:
      return Canvas(s, {1, 1, 1}).image();  // blank white
    case 2: {
      float g = r.uniform(0.2f, 0.8f);
      return Canvas(s, {g, g, g}).image();
    }          // blank grey
    case 3: {  // colour noise
      Canvas c(s, {0, 0, 0});
      for (float& v : c.rgb) v = r.uniform(0, 1);
      return c.image();
    }
    case 4: {  // grey noise
      Canvas c(s, {0, 0, 0});
      for (size_t i = 0; i < c.rgb.size(); i += 3) c.rgb[i] = c.rgb[i + 1] = c.rgb[i + 2] = r.uniform(0, 1);
      return c.image();
    }
    case 5: {  // linear gradient between two colours
      Canvas c(s, {0, 0, 0});
      const Rgb a = r.colour(), b = r.colour();
      for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x) c.set(x, y, mix(a, b, (x + y) / (2.0f * s)));
      return c.image();
    }
    case 6: {  // radial grey gradient on black: a bright blob in the middle, as dark at the frame as a scan
      Canvas c(s, {0, 0, 0});
      const float radius = s * r.uniform(0.3f, 0.45f);
      for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x) {
          const float d = std::hypot(x - s / 2.0f, y - s / 2.0f) / radius, g = std::max(0.0f, 1.0f - d);
          c.set(x, y, {g, g, g});
        }
      return c.image();
    }
    case 7: {  // checkerboard
      Canvas c(s, {0, 0, 0});
      const int cell = r.integer(8, 32);
      for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x)
          if ((x / cell + y / cell) % 2) c.set(x, y, {1, 1, 1});
      return c.image();
    }
    case 8: {  // stripes
      Canvas c(s, r.colour());
      const Rgb other = r.colour();
      const int period = r.integer(6, 30);
      for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x)
          if (x % period < period / 2) c.set(x, y, other);
      return c.image();
    }
    default: {  // grey shapes on black
      Canvas c(s, {0, 0, 0});
      for (int k = r.integer(2, 6); k > 0; --k) {
        const float g = r.uniform(0.3f, 1.0f);
        if (r.integer(0, 1))
          c.disc(r.uniform(0.2f, 0.8f) * s, r.uniform(0.2f, 0.8f) * s, r.uniform(0.05f, 0.2f) * s, {g, g, g});
        else
          c.rect(r.uniform(0.15f, 0.6f) * s, r.uniform(0.15f, 0.6f) * s, r.uniform(0.6f, 0.85f) * s,
                 r.uniform(0.6f, 0.85f) * s, {g, g, g});
      }
      return c.image();
    }
  }
}

}  // namespace

const std::vector<NegativeKind>& all_negative_kinds() {
  static const std::vector<NegativeKind> kinds = {NegativeKind::kPhotograph, NegativeKind::kScreenshot,
                                                  NegativeKind::kDiagram, NegativeKind::kDocument,
                                                  NegativeKind::kPattern};
  return kinds;
}

std::string negative_kind_name(NegativeKind kind) {
  switch (kind) {
    case NegativeKind::kPhotograph:
      return "photograph";
    case NegativeKind::kScreenshot:
      return "screenshot";
    case NegativeKind::kDiagram:
      return "diagram";
    case NegativeKind::kDocument:
      return "document";
    case NegativeKind::kPattern:
      return "pattern";
  }
  return "unknown";
}

Image make_negative(NegativeKind kind, uint32_t seed, int size) {
  if (size < 32) throw std::invalid_argument("make_negative: size must be >= 32");
  Random r{std::mt19937(static_cast<uint32_t>(splitmix64(seed * 8u + static_cast<uint32_t>(kind))))};
  switch (kind) {
    case NegativeKind::kPhotograph:
      return photograph(r, size, static_cast<int>(seed % 4));
    case NegativeKind::kScreenshot:
      return screenshot(r, size, static_cast<int>(seed % 2));
    case NegativeKind::kDiagram:
      return diagram(r, size, static_cast<int>(seed % 2));
    case NegativeKind::kDocument:
      return document(r, size, static_cast<int>(seed % 2));
    case NegativeKind::kPattern:
      return pattern(r, size, static_cast<int>(seed % 10));
  }
  throw std::invalid_argument("make_negative: unknown kind");
}

}  // namespace mriscan
