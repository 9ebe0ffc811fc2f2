// Tests of io/image_io and io/jpeg_decode: decoding PNG and JPEG (grayscale and alpha), JPEG pixels equal to PIL's,
// DCT-scaled decoding, clear errors on corrupt data (a JPEG on which stb read out of bounds among them) and on too
// many progressive scans, the size limits checked from the header before any pixel is allocated, and the
// half-pixel bilinear resize with its box prefilter.
#include <gtest/gtest.h>

#include <cstring>

#include <stb_image_write.h>

#include <filesystem>
#include <string>
#include <vector>

#include "io/image_io.h"
#include "io/jpeg_decode.h"
#include "tests/support/test_images.h"

namespace fs = std::filesystem;
using namespace mriscan;
using namespace mriscan::test_images;

// ---------------------------------------------------------------------------------------------------------------
TEST(DataImageIo, DecodesRgbPngAndJpeg) {
  TempDir dir;
  const Image original = blobs_image(40, 30, 1);
  write_image_png(dir / "a.png", original);
  write_jpeg(dir / "a.jpg", original, 95);
  const Image png = load_image(dir / "a.png");
  EXPECT_EQ(png.width, 40);
  EXPECT_EQ(png.height, 30);
  EXPECT_EQ(png.rgb, original.rgb);  // PNG is lossless
  const Image jpg = load_image(dir / "a.jpg");
  ASSERT_EQ(jpg.rgb.size(), original.rgb.size());
  double error = 0;
  for (size_t i = 0; i < jpg.rgb.size(); ++i) error += std::abs(jpg.rgb[i] - original.rgb[i]);
  EXPECT_LT(error / jpg.rgb.size(), 4.0);  // lossy, but close
}

TEST(DataImageIo, GrayscaleIsReplicatedAndAlphaCompositedOnBlack) {
  TempDir dir;
  const uint8_t gray[4] = {0, 80, 160, 255};  // (2, 2, 1)
  ASSERT_TRUE(stbi_write_png((dir / "g.png").c_str(), 2, 2, 1, gray, 2));
  const Image g = load_image(dir / "g.png");
  ASSERT_EQ(g.rgb.size(), 12u);
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(g.rgb[i * 3 + c], gray[i]);

  const uint8_t rgba[12] = {200, 100, 50, 255, 200, 100, 50, 0, 200, 100, 50, 128};  // (1, 3, 4)
  ASSERT_TRUE(stbi_write_png((dir / "a.png").c_str(), 3, 1, 4, rgba, 12));
  const Image a = load_image(dir / "a.png");
  EXPECT_EQ((std::vector<uint8_t>{a.rgb[0], a.rgb[1], a.rgb[2]}), (std::vector<uint8_t>{200, 100, 50}));  // opaque
  EXPECT_EQ((std::vector<uint8_t>{a.rgb[3], a.rgb[4], a.rgb[5]}), (std::vector<uint8_t>{0, 0, 0}));  // transparent
  EXPECT_EQ(a.rgb[6], 100);  // 200 * 128 / 255 = 100.4
  EXPECT_EQ(a.rgb[7], 50);
}

TEST(DataImageIo, CorruptDataThrowsImageErrorWithReasonAndName) {
  TempDir dir;
  write_jpeg(dir / "ok.jpg", blobs_image(64, 64, 2));
  std::vector<uint8_t> bytes = read_file_bytes(dir / "ok.jpg");
  bytes.resize(bytes.size() / 2);  // truncated in the middle of the entropy-coded data
  write_bytes(dir / "truncated.jpg", bytes);
  std::string message = error_of([&] { load_image(dir / "truncated.jpg"); });
  EXPECT_NE(message.find("truncated.jpg"), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  EXPECT_THROW(load_image(dir / "truncated.jpg"), ImageError);

  std::mt19937 rng(3);
  std::vector<uint8_t> random(2000);
  for (uint8_t& b : random) b = static_cast<uint8_t>(rng());
  message = error_of([&] { decode_image(random.data(), random.size(), {}, "upload-7"); });
  EXPECT_NE(message.find("cannot decode upload-7"), std::string::npos) << message;
  EXPECT_THROW(decode_image(random.data(), random.size()), ImageError);

  EXPECT_NE(error_of([] { decode_image(nullptr, 0); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([&] { load_image(dir / "missing.png"); }).find("missing.png"), std::string::npos);
}

TEST(DataImageIo, CorruptJpegThatCrashedStbIsRefusedByStrictLibjpeg) {
  // Found by tests/fuzz/fuzz_image_decode (2026-12-04): a JPEG with a few flipped bits after its quantisation
  // tables; Debian's stb_image read out of bounds on it (SEGV under ASan). Strict libjpeg-turbo refuses it.
  const std::string path = std::string(MRISCAN_SOURCE_DIR) + "/tests/io/fixtures/fuzz_stb_out_of_bounds.jpg";
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  ASSERT_EQ(bytes.size(), 640u);
  const std::string message = error_of([&] { decode_image(bytes.data(), bytes.size(), {}, "upload-9"); });
  EXPECT_NE(message.find("cannot decode upload-9: corrupt JPEG (libjpeg: "), std::string::npos) << message;

  // A clean JPEG decodes.
  TempDir dir;
  write_jpeg(dir / "ok.jpg", blobs_image(48, 40, 4), 90);
  const std::vector<uint8_t> ok = read_file_bytes(dir / "ok.jpg");
  EXPECT_EQ(decode_image(ok.data(), ok.size()).width, 48);
  // One flipped byte in the entropy-coded data of that clean file is refused, not decoded into garbage.
  std::vector<uint8_t> flipped = ok;
  flipped[flipped.size() - 40] ^= 0xFF;
  EXPECT_THROW(decode_image(flipped.data(), flipped.size(), {}, "flipped.jpg"), ImageError);
}

TEST(DataImageIo, OnlyJpegPngAndDicomReachADecoder) {
  // BMP, GIF and PSD decoders exist in Debian's stb_image; none of them may see client bytes.
  const std::vector<std::pair<std::string, std::string>> others = {
      {"bmp", "BM" + std::string(60, '\0')},
      {"gif", std::string("GIF89a\x01\x00\x01\x00\x80\x00\x00", 13) + std::string(30, '\0')},
      {"psd", std::string("8BPS\x00\x01", 6) + std::string(40, '\0')},
      {"text", "a plain text file"}};
  for (const auto& [name, bytes] : others) {
    const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
    EXPECT_THROW(decode_image(data, bytes.size(), {}, name), UnsupportedImageFormat) << name;
    const std::string message = error_of([&] { decode_image(data, bytes.size(), {}, name); });
    EXPECT_NE(message.find("JPEG, PNG or DICOM"), std::string::npos) << message;
  }
}

TEST(DataImageIo, PngChunkClaimingMoreThanTheFileIsRefusedBeforeStbAllocates) {
  // Found by tests/fuzz/fuzz_image_decode: a 5x7 grey PNG whose second IDAT declares 0x65000000 bytes made
  // stb_image realloc 2 GB before noticing the data was not there.
  const std::string base64 = "iVBORw0KGgoAAAANSUhEUgAAAAUAAAAHCAAAAADlzNgyAAAAMklEQVR4nGNg5hKUkGcQEJdT1WGQVdE2smTQMrSwd2Mwt3P1CWZw8Q6KTGAIjIhPywUAdGAmB6l9l2JlAAAASURBVHiuYII=";
  std::vector<uint8_t> png;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : base64) {
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* found = std::strchr(alphabet, c);
    if (c == '=' || !found) break;
    buffer = (buffer << 6) | static_cast<uint32_t>(found - alphabet);
    bits += 6;
    if (bits >= 8) png.push_back(static_cast<uint8_t>(buffer >> (bits -= 8)));
  }
  ASSERT_EQ(png.size(), 107u);
  const std::string message = error_of([&] { decode_image(png.data(), png.size(), {}, "fuzzed.png"); });
  EXPECT_NE(message.find("chunk is longer than the file"), std::string::npos) << message;
  // The same image without the bogus chunk (cut after the first IDAT, plus IEND) decodes.
  std::vector<uint8_t> valid(png.begin(), png.begin() + 95);
  const uint8_t iend[] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  valid.insert(valid.end(), std::begin(iend), std::end(iend));
  EXPECT_NO_THROW(decode_image(valid.data(), valid.size()));
}

TEST(DataImageIo, OversizedHeaderIsRejectedBeforeDecoding) {
  // A PNG header claiming 16000 x 16000 x 24 bit (768 MB of pixels) with no pixel data at all.
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (uint32_t side : {16000u, 16000u})
    for (int shift = 24; shift >= 0; shift -= 8) png.push_back(static_cast<uint8_t>(side >> shift));
  for (uint8_t v : {8, 2, 0, 0, 0, 0, 0, 0, 0}) png.push_back(v);  // 8-bit RGB, then a (wrong) CRC
  const std::string message = error_of([&] { decode_image(png.data(), png.size(), {}, "bomb.png"); });
  EXPECT_NE(message.find("refusing to decode bomb.png"), std::string::npos) << message;
  EXPECT_NE(message.find("16000x16000"), std::string::npos) << message;

  // A real, valid PNG above a (test-lowered) pixel limit.
  const std::vector<uint8_t> valid = encode_png(blobs_image(64, 64, 4));
  EXPECT_THROW(decode_image(valid.data(), valid.size(), DecodeLimits{.max_pixels = 1000}), ImageError);
  EXPECT_THROW(decode_image(valid.data(), valid.size(), DecodeLimits{.max_side = 63}), ImageError);
  EXPECT_NO_THROW(decode_image(valid.data(), valid.size(), DecodeLimits{.max_pixels = 4096, .max_side = 64}));
}

// ---------------------------------------------------------------------------------------------------------------
TEST(DataResize, GradientFollowsHalfPixelBilinear) {
  Image row(8, 1);  // values 0, 10, ..., 70
  for (int x = 0; x < 8; ++x) row.pixel(x, 0)[0] = row.pixel(x, 0)[1] = row.pixel(x, 0)[2] = 10 * x;
  // 2x down: src_x = (x + 0.5) * 2 - 0.5 = 0.5, 2.5, 4.5, 6.5 -> midpoints of neighbours.
  const Image down = resize_bilinear(row, 4, 1);
  EXPECT_EQ((std::vector<int>{down.rgb[0], down.rgb[3], down.rgb[6], down.rgb[9]}), (std::vector<int>{5, 25, 45, 65}));

  Image two(2, 1);  // 0, 100
  for (int c = 0; c < 3; ++c) two.pixel(1, 0)[c] = 100;
  // 2x up: src_x = (x + 0.5) / 2 - 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
  const Image up = resize_bilinear(two, 4, 1);
  EXPECT_EQ((std::vector<int>{up.rgb[0], up.rgb[3], up.rgb[6], up.rgb[9]}), (std::vector<int>{0, 25, 75, 100}));

  Image wide(30, 1);  // 8 * x; 10x down uses the box prefilter: block means 36, 116, 196
  for (int x = 0; x < 30; ++x) wide.pixel(x, 0)[0] = wide.pixel(x, 0)[1] = wide.pixel(x, 0)[2] = 8 * x;
  const Image box = resize_bilinear(wide, 3, 1);
  EXPECT_EQ((std::vector<int>{box.rgb[0], box.rgb[3], box.rgb[6]}), (std::vector<int>{36, 116, 196}));

  const Image same = resize_bilinear(wide, 30, 1);
  EXPECT_EQ(same.rgb, wide.rgb);
}
