// Tests of DICOM decoding (io/dicom_image.h, io/dicom_structure.h, io/dicom_window.h) on files made at test time
// by tests/io/make_dicom_fixtures.py from one synthetic grey image: every accepted kind gives the pixels its window
// maps back to (8/12/16 bits, signed and unsigned, MONOCHROME1/2, rescale, LINEAR/LINEAR_EXACT/SIGMOID windows, a
// VOI LUT, the percentile window, implicit/explicit VR, big endian, each compressed transfer syntax), the refused
// kinds are 415 naming what they are, malformed files are ImageError naming the problem (before any allocation of
// their declared sizes), the decode budget is charged, and no message quotes an element's value.
// What it is not: the server's routes with DICOM (tests/server/test_dicom_routes.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <set>

#include "io/decode_budget.h"
#include "io/dicom_structure.h"
#include "io/dicom_window.h"
#include "io/image_io.h"
#include "tests/support/dicom_fixtures.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_images.h"

using namespace mriscan;
using namespace mriscan::test_dicom;

namespace {

// 64 x 48 with every grey level: a diagonal ramp, a white and a black block.
Image source_image() {
  Image image(64, 48);
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x) {
      uint8_t v = static_cast<uint8_t>((x * 4 + y * 2) % 256);
      if (y >= 10 && y < 20 && x >= 10 && x < 30) v = 255;
      if (y >= 30 && y < 40 && x >= 5 && x < 15) v = 0;
      uint8_t* p = image.pixel(x, y);
      p[0] = p[1] = p[2] = v;
    }
  return image;
}

const DicomFixtures& fixtures() {
  static TempDir dir("dicom_fixtures");
  static DicomFixtures made(source_image(), dir.path.string());
  return made;
}

class DicomImage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fixtures().ok()) GTEST_SKIP() << fixtures().reason();
  }
  static const DicomFixture& fixture(const std::string& name) {
    const DicomFixture* f = fixtures().find(name);
    if (f == nullptr) throw std::runtime_error("no fixture " + name);
    return *f;
  }
  // Decodes the fixture and compares with its expected pixels.
  static void expect_decodes_as_expected(const DicomFixture& f) {
    SCOPED_TRACE(f.name);
    Image decoded;
    ASSERT_NO_THROW(decoded = load_image(f.file)) << test_images::error_of([&] { load_image(f.file); });
    const Image expected = read_pgm(f.expected);
    ASSERT_EQ(decoded.width, expected.width);
    ASSERT_EQ(decoded.height, expected.height);
    int largest = 0;
    double sum = 0;
    for (size_t i = 0; i < decoded.rgb.size(); ++i) {
      const int difference = std::abs(decoded.rgb[i] - expected.rgb[i]);
      largest = std::max(largest, difference);
      sum += difference;
    }
    EXPECT_LE(largest, f.max_difference);
    EXPECT_LE(sum / decoded.rgb.size(), f.max_difference == 0 ? 0.0 : std::max(f.mean_difference, 1.0));
    for (size_t i = 0; i < decoded.rgb.size(); i += 3)  // grey: R = G = B
      ASSERT_TRUE(decoded.rgb[i] == decoded.rgb[i + 1] && decoded.rgb[i] == decoded.rgb[i + 2]);
  }
  static void expect_decodes_as_expected(const std::string& name) { expect_decodes_as_expected(fixture(name)); }
  // The message of a refused fixture, checking the kind of error.
  static std::string refusal(const std::string& name) {
    const DicomFixture& f = fixture(name);
    try {
      load_image(f.file);
    } catch (const UnsupportedImageFormat& error) {
      EXPECT_TRUE(f.unsupported) << name << ": refused as a format, expected malformed: " << error.what();
      return error.what();
    } catch (const ImageError& error) {
      EXPECT_FALSE(f.unsupported) << name << ": refused as malformed, expected a format: " << error.what();
      return error.what();
    }
    ADD_FAILURE() << name << " decoded";
    return "";
  }
};

TEST_F(DicomImage, EightBitWithoutWindowIsShownAsStored) { expect_decodes_as_expected("sc8"); }

TEST_F(DicomImage, SignedAndUnsignedAtEightTwelveAndSixteenBits) {
  for (const char* name : {"mr8_signed", "mr12_unsigned", "mr12_signed", "mr16_window"})
    expect_decodes_as_expected(name);
}

TEST_F(DicomImage, RescaleSlopeAndInterceptComeBeforeTheWindow) { expect_decodes_as_expected("mr16_signed_rescale"); }

TEST_F(DicomImage, ImplicitVrAndBigEndian) {
  for (const char* name : {"mr16_implicit", "mr16_big_endian", "mr16_voi_lut_big_endian"})
    expect_decodes_as_expected(name);
}

TEST_F(DicomImage, Monochrome1IsInverted) { expect_decodes_as_expected("mr16_monochrome1"); }

TEST_F(DicomImage, WindowFunctionsVoiLutAndPercentileWindow) {
  for (const char* name : {"mr16_linear_exact", "mr16_sigmoid", "mr16_voi_lut", "mr16_percentile"})
    expect_decodes_as_expected(name);
}

TEST_F(DicomImage, EveryCompressedTransferSyntax) {
  std::set<std::string> syntaxes;
  for (const DicomFixture& f : fixtures().all())
    if (!f.syntax.empty() && !f.expected.empty()) {
      expect_decodes_as_expected(f);
      syntaxes.insert(f.syntax);
    }
  if (syntaxes.empty()) GTEST_SKIP() << "gdcmconv (libgdcm-tools) is missing: no compressed files were made";
  const std::set<std::string> wanted = {
      "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
      "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",
      "1.2.840.10008.1.2.5"};
  EXPECT_EQ(syntaxes, wanted);
}

TEST_F(DicomImage, OtherTransferSyntaxesAre415NamingThem) {
  EXPECT_NE(refusal("mpeg2").find("1.2.840.10008.1.2.4.100 (MPEG2 Main Profile / Main Level)"), std::string::npos);
  EXPECT_NE(refusal("deflated").find("1.2.840.10008.1.2.1.99 (Deflated Explicit VR Little Endian)"),
            std::string::npos);
  EXPECT_NE(refusal("rgb").find("3 samples per pixel"), std::string::npos);
}

TEST_F(DicomImage, MultiFrameObjectsAreRefusedNamingTheFrameCount) {
  EXPECT_NE(refusal("multi_frame").find("3 frames"), std::string::npos);
}

TEST_F(DicomImage, MalformedFilesNameTheProblem) {
  for (const DicomFixture& f : fixtures().all()) {
    if (f.error.empty() || f.unsupported) continue;
    const std::string message = refusal(f.name);
    EXPECT_NE(message.find(f.error), std::string::npos) << f.name << ": " << message;
  }
  EXPECT_NE(refusal("gigabyte_element").find("(0009,1010) declares 1073741824 bytes"), std::string::npos);
  EXPECT_NE(refusal("deep_sequence").find("nested deeper than 8 levels"), std::string::npos);
  EXPECT_NE(refusal("absurd_dimensions").find("limit"), std::string::npos);
}

// Every prefix of a valid file is refused cleanly (ImageError), never decoded from bytes that are not there.
TEST_F(DicomImage, EveryTruncationIsRefused) {
  for (const char* name : {"sc8", "mr16_big_endian", "mr16_voi_lut", "jpegls_lossless"}) {
    if (fixtures().find(name) == nullptr) continue;
    const std::vector<uint8_t> bytes = read_file_bytes(fixture(name).file);
    for (size_t size = 1; size < bytes.size(); size += 1 + size / 64)
      EXPECT_THROW(decode_image(bytes.data(), size, {}, "prefix"), ImageError) << name << " cut at " << size;
  }
}

TEST_F(DicomImage, LimitsAndBudgetAreAppliedBeforeDecoding) {
  const std::vector<uint8_t> bytes = read_file_bytes(fixture("mr16_window").file);
  const std::string small = test_images::error_of(
      [&] { decode_image(bytes.data(), bytes.size(), {.max_pixels = 1000, .max_side = 4096}, "x"); });
  EXPECT_NE(small.find("64x48 pixels"), std::string::npos) << small;
  DecodeBudget budget(5000);
  decode_image(bytes.data(), bytes.size(), {}, "x", &budget);
  EXPECT_EQ(budget.spent(), 64 * 48);  // rows x columns x 1 sample
  EXPECT_THROW(decode_image(bytes.data(), bytes.size(), {}, "x", &budget), DecodeBudgetExceeded);
}

// Messages name tags and numbers; an identifying value never appears, even from a damaged file.
TEST_F(DicomImage, MessagesNeverQuoteValues) {
  const DicomFixture& f = fixture("identified");
  expect_decodes_as_expected(f);
  std::vector<uint8_t> bytes = read_file_bytes(f.file);
  std::vector<std::string> messages;
  for (size_t size = 132; size < bytes.size(); size += 97)
    messages.push_back(test_images::error_of([&] { decode_image(bytes.data(), size, {}, "upload"); }));
  for (size_t at = 132; at + 4 < bytes.size(); at += 211) {  // each a different corruption
    std::vector<uint8_t> damaged = bytes;
    damaged[at] ^= 0xFF;
    messages.push_back(test_images::error_of([&] { decode_image(damaged.data(), damaged.size(), {}, "upload"); }));
  }
  for (const std::string& message : messages)
    for (const std::string& marker : f.markers) ASSERT_EQ(message.find(marker), std::string::npos) << message;
}

// ---------------------------------------------------------------------------------------------------------------
// The window arithmetic alone (PS3.3 C.11.2.1.2 and C.11.2.1.3).

TEST(DicomWindow, LinearWindowEdgesFollowTheStandard) {
  const VoiWindow w{2048.0, 4096.0, VoiWindow::Function::kLinear};
  // Edges at c - 0.5 -/+ (w - 1) / 2 = 0 and 4095: 0 and below black, above 4095 white.
  EXPECT_EQ(apply_window(0.0, w), 0.0);
  EXPECT_EQ(apply_window(4095.5, w), 255.0);
  EXPECT_NEAR(apply_window(2047.5, w), 127.5, 1e-9);  // the middle
  const VoiWindow narrowest{100.0, 1.0, VoiWindow::Function::kLinear};  // a threshold at c - 0.5
  EXPECT_EQ(apply_window(99.5, narrowest), 0.0);
  EXPECT_EQ(apply_window(99.6, narrowest), 255.0);
  EXPECT_FALSE((VoiWindow{0.0, 0.5, VoiWindow::Function::kLinear}.valid()));
  EXPECT_TRUE((VoiWindow{0.0, 0.5, VoiWindow::Function::kLinearExact}.valid()));
}

TEST(DicomWindow, TableChoosesWindowThenLutThenIdentityThenPercentile) {
  GreyLevelPipeline p;
  p.bits_stored = 8;
  EXPECT_EQ(voi_choice(p), VoiChoice::kIdentity);
  p.intercept = -10.0;
  EXPECT_EQ(voi_choice(p), VoiChoice::kPercentile);
  p.lut = VoiLut{0, 8, std::vector<uint16_t>(256, 0)};
  EXPECT_EQ(voi_choice(p), VoiChoice::kLut);
  p.window = VoiWindow{128.0, 0.0, VoiWindow::Function::kLinear};  // invalid: ignored
  EXPECT_EQ(voi_choice(p), VoiChoice::kLut);
  p.window->width = 256.0;
  EXPECT_EQ(voi_choice(p), VoiChoice::kWindow);
}

TEST(DicomWindow, PercentileWindowIgnoresOutliersAndAFlatImageIsBlack) {
  GreyLevelPipeline p;
  p.bits_stored = 12;
  std::vector<uint64_t> histogram(4096, 0);
  histogram[100] = 1;      // a cold outlier, below the 0.5th percentile
  histogram[1000] = 500;
  histogram[2000] = 497;
  histogram[4000] = 2;     // hot outliers, above the 99.5th
  const GreyLevelTable table = grey_level_table(p, histogram);
  EXPECT_EQ(table(100), 0);
  EXPECT_EQ(table(1000), 0);
  EXPECT_EQ(table(2000), 255);
  EXPECT_EQ(table(1500), 128);  // ((1500 - 1500) / 1000 + 0.5) * 255 = 127.5, rounded up
  EXPECT_EQ(table(4000), 255);
  std::vector<uint64_t> flat(4096, 0);
  flat[7] = 10;
  EXPECT_EQ(grey_level_table(p, flat)(7), 0);
}

}  // namespace
