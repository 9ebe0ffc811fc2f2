// Tests of io/jpeg_decode: the pixels equal PIL's (tests/golden/jpeg_pil.json, written by
// tests/golden/make_golden_jpeg.py), DCT-scaled decoding keeps both sides at or above the requested size, and a
// progressive file with more scans than kMaxJpegScans is refused while a legitimate many-scan file decodes.
#include <gtest/gtest.h>

#include <cstdio>  // jpeglib.h needs size_t and FILE declared before it
#include <fstream>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <nlohmann/json.hpp>

#include "io/image_io.h"
#include "io/jpeg_decode.h"
#include "tests/support/test_images.h"

using namespace mriscan;
using namespace mriscan::test_images;

namespace {

std::vector<uint8_t> from_base64(const std::string& text) {
  static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<uint8_t> out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const size_t value = alphabet.find(c);
    if (value == std::string::npos) continue;  // '=' padding, newlines
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) out.push_back(static_cast<uint8_t>(buffer >> (bits -= 8)));
  }
  return out;
}

// A (size x size) YCbCr progressive JPEG whose scan script gives every AC coefficient of every component its own
// first scan and two refinement scans: 3 x (2 + 63 x 3) = 573 scans, all legitimate. With `components` = 1 the
// same script on a grayscale image gives 191 scans.
std::vector<uint8_t> many_scan_jpeg(int size, int components) {
  std::vector<jpeg_scan_info> scans;
  for (int c = 0; c < components; ++c) {
    scans.push_back({1, {c}, 0, 0, 0, 1});  // DC first, then its refinement
    scans.push_back({1, {c}, 0, 0, 1, 0});
    for (int k = 1; k < 64; ++k) {
      scans.push_back({1, {c}, k, k, 0, 2});
      scans.push_back({1, {c}, k, k, 2, 1});
      scans.push_back({1, {c}, k, k, 1, 0});
    }
  }
  jpeg_compress_struct info{};
  jpeg_error_mgr errors{};
  info.err = jpeg_std_error(&errors);
  jpeg_create_compress(&info);
  unsigned char* buffer = nullptr;
  unsigned long length = 0;
  jpeg_mem_dest(&info, &buffer, &length);
  info.image_width = info.image_height = static_cast<JDIMENSION>(size);
  info.input_components = components;
  info.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&info);
  info.scan_info = scans.data();
  info.num_scans = static_cast<int>(scans.size());
  jpeg_start_compress(&info, TRUE);
  const Image pattern = blobs_image(size, size, 5);  // (H, W, 3)
  std::vector<uint8_t> row(static_cast<size_t>(size) * components);
  while (info.next_scanline < info.image_height) {
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < components; ++c) row[x * components + c] = pattern.pixel(x, info.next_scanline)[c];
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&info, rows, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::vector<uint8_t> bytes(buffer, buffer + length);
  std::free(buffer);
  return bytes;
}

}  // namespace

TEST(JpegDecode, PixelsEqualPils) {
  std::ifstream in(std::string(MRISCAN_SOURCE_DIR) + "/tests/golden/jpeg_pil.json");
  ASSERT_TRUE(in) << "tests/golden/jpeg_pil.json missing: /usr/bin/python3 tests/golden/make_golden_jpeg.py";
  const nlohmann::json golden = nlohmann::json::parse(in);
  ASSERT_EQ(golden["cases"].size(), 4u);
  for (const nlohmann::json& c : golden["cases"]) {
    const std::vector<uint8_t> jpeg = from_base64(c["jpeg"]), rgb = from_base64(c["rgb"]);
    const Image image = decode_image(jpeg.data(), jpeg.size(), {}, c["name"]);
    EXPECT_EQ(image.width, c["width"].get<int>()) << c["name"];
    EXPECT_EQ(image.height, c["height"].get<int>()) << c["name"];
    EXPECT_EQ(image.rgb, rgb) << c["name"] << ": not the pixels PIL decodes";
  }
}

TEST(JpegDecode, DctScalingKeepsBothSidesAtLeastTheRequestedSize) {
  TempDir dir;
  write_jpeg(dir / "big.jpg", blobs_image(900, 500, 6), 90);
  const std::vector<uint8_t> bytes = read_file_bytes(dir / "big.jpg");
  const Image full = decode_image(bytes.data(), bytes.size());
  EXPECT_EQ(full.width, 900);
  EXPECT_EQ(full.height, 500);
  // 1/2 -> 450 x 250, 1/4 -> 225 x 125, 1/8 -> 113 x 63 (libjpeg rounds up); the largest reduction that keeps
  // both sides >= min_side wins, and none at all when even 1/2 is too small.
  const struct {
    int min_side, width, height;
  } cases[] = {{224, 450, 250}, {100, 225, 125}, {60, 113, 63}, {251, 900, 500}, {0, 900, 500}};
  for (const auto& c : cases) {
    DecodeLimits limits;
    limits.min_decoded_side = c.min_side;
    const Image scaled = decode_image(bytes.data(), bytes.size(), limits);
    EXPECT_EQ(scaled.width, c.width) << "min side " << c.min_side;
    EXPECT_EQ(scaled.height, c.height) << "min side " << c.min_side;
  }
}

TEST(JpegDecode, TooManyProgressiveScansAreRefusedAndLegitimateOnesDecode) {
  const std::vector<uint8_t> gray = many_scan_jpeg(16, 1);  // 191 scans
  const Image image = decode_image(gray.data(), gray.size(), {}, "gray");
  EXPECT_EQ(image.width, 16);
  const std::vector<uint8_t> colour = many_scan_jpeg(16, 3);  // 573 scans
  ASSERT_GT(573, kMaxJpegScans);
  const std::string message = error_of([&] { decode_image(colour.data(), colour.size(), {}, "upload-3"); });
  EXPECT_NE(message.find("refusing to decode upload-3: progressive JPEG with more than 500 scans"), std::string::npos)
      << message;
}
