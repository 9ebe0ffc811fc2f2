// Tests of io/decode_budget.h and the decoders' charges: exact pixel-scans for baseline JPEG, PNG and a
// many-scan progressive JPEG, refusal from the header before decoding, a hostile progressive file stopped at the
// first scan that does not fit, and one budget shared by the files of a request.
#include <gtest/gtest.h>

#include "io/decode_budget.h"
#include "io/image_io.h"
#include "tests/support/progressive_jpeg.h"
#include "tests/support/test_images.h"

using namespace mriscan;
using namespace mriscan::test_images;

namespace {

std::vector<uint8_t> baseline_jpeg(const TempDir& dir, int size) {
  write_jpeg(dir / "scan.jpg", blobs_image(size, size, 3), 90);
  return read_file_bytes(dir / "scan.jpg");
}

}  // namespace

TEST(DecodeBudget, ChargesUpToTheLimitAndNothingBeyond) {
  DecodeBudget budget(100);
  EXPECT_TRUE(budget.try_charge(60));
  EXPECT_FALSE(budget.try_charge(41));
  EXPECT_EQ(budget.spent(), 60);  // a refused charge costs nothing
  EXPECT_TRUE(budget.try_charge(40));
  EXPECT_FALSE(budget.try_charge(1));
  EXPECT_FALSE(budget.try_charge(-5));
  EXPECT_EQ(budget.spent(), 100);
  EXPECT_THROW(DecodeBudget(0), std::invalid_argument);
}

TEST(DecodeBudget, BaselineJpegAndPngCostOnePassOverTheirSamples) {
  TempDir dir;
  const std::vector<uint8_t> jpeg = baseline_jpeg(dir, 224);  // YCbCr, one interleaved scan
  DecodeBudget budget(1'000'000'000);
  decode_image(jpeg.data(), jpeg.size(), {}, "scan", &budget);
  EXPECT_EQ(budget.spent(), 224 * 224 * 3);

  const std::vector<uint8_t> png = encode_png(blobs_image(30, 20, 1));  // RGB
  DecodeBudget png_budget(1'000'000'000);
  decode_image(png.data(), png.size(), {}, "png", &png_budget);
  EXPECT_EQ(png_budget.spent(), 30 * 20 * 3);
}

TEST(DecodeBudget, ProgressiveJpegPaysForEveryScan) {
  const std::vector<uint8_t> jpeg = progressive_jpeg(blobs_image(16, 16, 5), 1, 3);  // 191 one-component scans
  DecodeBudget budget(1'000'000'000);
  const Image image = decode_image(jpeg.data(), jpeg.size(), {}, "progressive", &budget);
  EXPECT_EQ(image.width, 16);
  EXPECT_EQ(budget.spent(), 16 * 16 * 191);
}

TEST(DecodeBudget, HostileProgressiveJpegStopsAtTheFirstScanThatDoesNotFit) {
  const std::vector<uint8_t> jpeg = progressive_jpeg(Image(2000, 2000), 1, 7);  // 443 scans of 4 M pixel-scans
  DecodeBudget budget(256'000'000);
  try {
    decode_image(jpeg.data(), jpeg.size(), {.min_decoded_side = 224}, "hostile.jpg", &budget);
    FAIL() << "decoded a file that costs 1.77 G pixel-scans under a budget of 256 M";
  } catch (const DecodeBudgetExceeded& error) {
    EXPECT_NE(std::string(error.what()).find("hostile.jpg"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("limit of 256000000 pixel-scans"), std::string::npos) << error.what();
  }
  EXPECT_EQ(budget.spent(), 64 * 2000 * 2000);  // 64 scans fit exactly; the 65th was refused before decoding
}

TEST(DecodeBudget, HeaderThatCannotBePaidIsRefusedBeforeDecoding) {
  TempDir dir;
  const std::vector<uint8_t> jpeg = baseline_jpeg(dir, 64);
  DecodeBudget budget(64 * 64 * 3 - 1);
  EXPECT_THROW(decode_image(jpeg.data(), jpeg.size(), {}, "scan", &budget), DecodeBudgetExceeded);
  EXPECT_EQ(budget.spent(), 0);
  const std::vector<uint8_t> png = encode_png(blobs_image(64, 64, 1));
  EXPECT_THROW(decode_image(png.data(), png.size(), {}, "png", &budget), DecodeBudgetExceeded);
  EXPECT_EQ(budget.spent(), 0);
}

TEST(DecodeBudget, OneBudgetCoversEveryFileOfARequest) {
  TempDir dir;
  const std::vector<uint8_t> jpeg = baseline_jpeg(dir, 64);
  DecodeBudget budget(64 * 64 * 3 * 2);  // two files
  decode_image(jpeg.data(), jpeg.size(), {}, "first", &budget);
  decode_image(jpeg.data(), jpeg.size(), {}, "second", &budget);
  EXPECT_THROW(decode_image(jpeg.data(), jpeg.size(), {}, "third", &budget), DecodeBudgetExceeded);
  // Without a budget the same file decodes as before.
  EXPECT_EQ(decode_image(jpeg.data(), jpeg.size(), {}, "unbudgeted").width, 64);
}
