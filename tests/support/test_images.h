// Test images and files, shared by the io/ and data/ tests: generated images (smooth blobs like bright
// structures on a dark background, noise), writers for JPEG/PNG/raw bytes, and the message of a thrown error.
// What it is not: real scans (tests that need those read ../shared: tests/support/server_fixture.h).
#pragma once

#include <gtest/gtest.h>

#include <stb_image_write.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "io/image_io.h"
#include "tests/support/temp_dir.h"

namespace mriscan::test_images {

namespace fs = std::filesystem;

// Smooth pattern that differs per `seed`: a few Gaussian blobs, like bright structures on a dark background.
inline Image blobs_image(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  Image image(w, h);
  std::vector<std::array<double, 4>> blobs;  // (x, y, radius, brightness)
  for (int k = 0; k < 4; ++k)
    blobs.push_back({double(rng() % w), double(rng() % h), 3.0 + rng() % (w / 3), 80.0 + rng() % 170});
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      double v = 10.0;
      for (const auto& b : blobs) {
        const double d2 = (x - b[0]) * (x - b[0]) + (y - b[1]) * (y - b[1]);
        v += b[3] * std::exp(-d2 / (2 * b[2] * b[2]));
      }
      for (int c = 0; c < 3; ++c) image.pixel(x, y)[c] = static_cast<uint8_t>(std::min(255.0, v + c * 5));
    }
  return image;
}

inline Image noise_image(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  Image image(w, h);
  for (uint8_t& v : image.rgb) v = static_cast<uint8_t>(rng());
  return image;
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

inline void write_jpeg(const std::string& path, const Image& image, int quality = 90) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(stbi_write_jpg(path.c_str(), image.width, image.height, 3, image.rgb.data(), quality));
}

inline void write_image_png(const std::string& path, const Image& image) {
  fs::create_directories(fs::path(path).parent_path());
  write_png(path, image);
}

inline std::string error_of(const std::function<void()>& run) {
  try {
    run();
  } catch (const std::exception& error) {
    return error.what();
  }
  return "";
}
}  // namespace mriscan::test_images
