// Tests of io/jpeg_decode: the pixels equal PIL's (tests/golden/jpeg_pil.json, written by
// tests/golden/make_golden_jpeg.py), DCT-scaled decoding keeps both sides at or above the requested size, and a
// progressive file with more scans than kMaxJpegScans is refused while a legitimate many-scan file decodes.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/image_io.h"
#include "io/jpeg_decode.h"
#include "tests/support/progressive_jpeg.h"
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
  // Every AC coefficient of every component in its own first scan and two refinement scans: 191 scans for
  // grayscale, 573 for colour, all legitimate.
  const Image pattern = blobs_image(16, 16, 5);
  const std::vector<uint8_t> gray = progressive_jpeg(pattern, 1, 3);  // 191 scans
  const Image image = decode_image(gray.data(), gray.size(), {}, "gray");
  EXPECT_EQ(image.width, 16);
  const std::vector<uint8_t> colour = progressive_jpeg(pattern, 3, 3);  // 573 scans
  ASSERT_GT(573, kMaxJpegScans);
  const std::string message = error_of([&] { decode_image(colour.data(), colour.size(), {}, "upload-3"); });
  EXPECT_NE(message.find("refusing to decode upload-3: progressive JPEG with more than 500 scans"), std::string::npos)
      << message;
}
