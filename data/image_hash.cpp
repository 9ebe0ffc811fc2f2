// The 64-bit DCT perceptual hash of an image and its normalised thumbnail (see image_hash.h).
#include "data/image_hash.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <numbers>
#include <vector>

namespace mriscan {

uint64_t perceptual_hash(const Image& image) {
  constexpr int kN = 32, kK = 8;  // thumbnail side, kept frequencies per axis
  const std::vector<float> gray = to_grayscale(resize_bilinear(image, kN, kN));  // (32, 32)

  // DCT-II basis (unnormalised; scale does not change the comparison with the median):
  //   basis[u][x] = cos(pi * (2x + 1) * u / (2N))
  static const std::array<std::array<double, kN>, kK> basis = [] {
    std::array<std::array<double, kN>, kK> b{};
    for (int u = 0; u < kK; ++u)
      for (int x = 0; x < kN; ++x) b[u][x] = std::cos(std::numbers::pi * (2 * x + 1) * u / (2.0 * kN));
    return b;
  }();

  // coefficient[u][v] = sum_y sum_x basis[u][y] * gray[y][x] * basis[v][x], as two passes: rows, then columns.
  std::array<std::array<double, kK>, kN> row_pass{};  // (32 rows y, 8 frequencies v)
  for (int y = 0; y < kN; ++y)
    for (int v = 0; v < kK; ++v) {
      double sum = 0.0;
      for (int x = 0; x < kN; ++x) sum += gray[y * kN + x] * basis[v][x];
      row_pass[y][v] = sum;
    }
  std::array<double, kK * kK> coefficients{};  // (8 u, 8 v)
  for (int u = 0; u < kK; ++u)
    for (int v = 0; v < kK; ++v) {
      double sum = 0.0;
      for (int y = 0; y < kN; ++y) sum += basis[u][y] * row_pass[y][v];
      coefficients[u * kK + v] = sum;
    }

  std::array<double, kK * kK> sorted = coefficients;
  std::sort(sorted.begin(), sorted.end());
  const double median = 0.5 * (sorted[31] + sorted[32]);
  uint64_t hash = 0;
  for (int i = 0; i < kK * kK; ++i)
    if (coefficients[i] > median) hash |= uint64_t{1} << i;
  return hash;
}

std::vector<float> normalized_thumbnail(const Image& image) {
  std::vector<float> thumbnail = to_grayscale(resize_bilinear(image, 32, 32));  // (32, 32)
  const double mean = std::accumulate(thumbnail.begin(), thumbnail.end(), 0.0) / thumbnail.size();
  double norm = 0.0;
  for (float& v : thumbnail) {
    v = static_cast<float>(v - mean);
    norm += static_cast<double>(v) * v;
  }
  norm = std::sqrt(norm);
  for (float& v : thumbnail) v = norm > 1e-6 ? static_cast<float>(v / norm) : 0.0f;
  return thumbnail;
}

float thumbnail_correlation(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) throw std::invalid_argument("thumbnail_correlation: thumbnails differ in size");
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0f);
}

}  // namespace mriscan
