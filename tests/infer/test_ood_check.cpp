// The out-of-distribution check (infer/ood_check.h, infer/image_statistics.h) and the generated negatives it is
// tested on (data/synthetic_negatives.h): statistics of hand-made images, ranges and their serialisation, the
// validation target rate, and, with ImageNet MobileNetV2 features of real scans from ../shared, that every
// generated picture of every kind is flagged while held-out scans mostly are not.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "data/dataset.h"
#include "data/preprocess.h"
#include "data/synthetic_negatives.h"
#include "infer/image_statistics.h"
#include "infer/inference.h"
#include "infer/ood_check.h"
#include "models/imagenet_import.h"

namespace mriscan {
namespace {

ImageStatistics statistics_of(const Image& image) { return image_statistics(preprocess_batch({image}, 64), 0); }

Image filled(int size, uint8_t r, uint8_t g, uint8_t b) {
  Image image(size, size);
  for (size_t i = 0; i < image.rgb.size(); i += 3) image.rgb[i] = r, image.rgb[i + 1] = g, image.rgb[i + 2] = b;
  return image;
}

TEST(ImageStatistics, HandMadeImages) {
  // Grey: no colour; white: bright frame, nothing dark; black: all dark.
  const ImageStatistics grey = statistics_of(filled(64, 128, 128, 128));
  EXPECT_NEAR(grey.values[0], 0.0f, 1e-3);
  EXPECT_NEAR(grey.values[3], 128 / 255.0f, 2e-3);
  const ImageStatistics white = statistics_of(filled(64, 255, 255, 255));
  EXPECT_NEAR(white.values[1], 1.0f, 1e-3);
  EXPECT_NEAR(white.values[2], 0.0f, 1e-6);
  EXPECT_NEAR(statistics_of(filled(64, 0, 0, 0)).values[2], 1.0f, 1e-6);
  // Pure red: max - min = 1 everywhere.
  EXPECT_NEAR(statistics_of(filled(64, 255, 0, 0)).values[0], 1.0f, 1e-3);
  // A bright square well inside a black frame leaves the border black.
  Image framed = filled(64, 0, 0, 0);
  for (int y = 16; y < 48; ++y)
    for (int x = 16; x < 48; ++x) framed.pixel(x, y)[0] = framed.pixel(x, y)[1] = framed.pixel(x, y)[2] = 255;
  const ImageStatistics f = statistics_of(framed);
  EXPECT_NEAR(f.values[1], 0.0f, 1e-3);
  EXPECT_NEAR(f.values[2], 0.75f, 0.02f);
  // Texture (index 4): none in a flat image or an all-dark one, little in a smooth glow, much in fine stripes.
  EXPECT_NEAR(grey.values[4], 0.0f, 1e-4);
  EXPECT_EQ(statistics_of(filled(64, 0, 0, 0)).values[4], 0.0f);
  Image glow = filled(64, 0, 0, 0), stripes = filled(64, 0, 0, 0);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) {
      const float distance = std::hypot(x - 31.5f, y - 31.5f) / 32.0f;
      const auto level = static_cast<uint8_t>(255.0f * std::max(0.0f, 1.0f - distance));
      for (int c = 0; c < 3; ++c) glow.pixel(x, y)[c] = level, stripes.pixel(x, y)[c] = (x / 2) % 2 ? 255 : 60;
    }
  EXPECT_LT(statistics_of(glow).values[4], 0.05f);
  EXPECT_GT(statistics_of(stripes).values[4], 0.2f);
}

// A model file fitted before the texture statistic existed has no range for it: it loads, and texture never flags.
TEST(ImageStatistics, OlderRangesWithoutTextureLoadAndNeverFlagIt) {
  std::vector<ImageStatistics> scans(10, {{0.01f, 0.05f, 0.5f, 0.2f, 0.08f}});
  std::map<std::string, std::string> older = ImageStatisticsRanges::fit(scans, 0.0).metadata();
  ASSERT_EQ(older.erase("ood.input.texture.lower") + older.erase("ood.input.texture.upper"), 2u);
  const ImageStatisticsRanges loaded = ImageStatisticsRanges::from_metadata(older);
  EXPECT_TRUE(loaded.violations({{0.01f, 0.05f, 0.5f, 0.2f, 0.0f}}).empty());
  EXPECT_TRUE(loaded.violations({{0.01f, 0.05f, 0.5f, 0.2f, 1.0f}}).empty());
  EXPECT_EQ(ImageStatisticsRanges::fit(scans, 0.0).violations({{0.01f, 0.05f, 0.5f, 0.2f, 0.0f}}).size(), 1u);
}

TEST(ImageStatistics, RangesFlagOutsideAndRoundTrip) {
  std::vector<ImageStatistics> scans;
  for (int i = 0; i <= 100; ++i) scans.push_back({{0.01f * i / 100, 0.05f, 0.3f + 0.001f * i, 0.2f}});
  const ImageStatisticsRanges ranges = ImageStatisticsRanges::fit(scans, 0.0);
  EXPECT_FLOAT_EQ(ranges.upper(0), 0.01f);
  EXPECT_FLOAT_EQ(ranges.lower(0), 0.0f);  // one-sided: a perfectly grey image is never suspicious for it
  EXPECT_FLOAT_EQ(ranges.lower(2), 0.3f);
  EXPECT_TRUE(ranges.violations(scans[50]).empty());
  const std::vector<std::string> colour = ranges.violations({{0.5f, 0.05f, 0.35f, 0.2f}});
  ASSERT_EQ(colour.size(), 1u);
  EXPECT_NE(colour[0].find("colourfulness 0.500 above 0.010"), std::string::npos);
  EXPECT_EQ(ranges.violations({{0.0f, 0.05f, 0.1f, 0.2f}}).size(), 1u);  // too little dark
  const ImageStatisticsRanges loaded = ImageStatisticsRanges::from_metadata(ranges.metadata());
  for (int i = 0; i < ImageStatistics::kCount; ++i) {
    EXPECT_EQ(loaded.lower(i), ranges.lower(i));
    EXPECT_EQ(loaded.upper(i), ranges.upper(i));
  }
  std::map<std::string, std::string> damaged = ranges.metadata();
  damaged.erase("ood.input.dark_fraction.upper");
  EXPECT_THROW(ImageStatisticsRanges::from_metadata(damaged), std::invalid_argument);
}

TEST(SyntheticNegatives, DeterministicAndDistinct) {
  for (NegativeKind kind : all_negative_kinds()) {
    const Image a = make_negative(kind, 3), b = make_negative(kind, 3), c = make_negative(kind, 4);
    EXPECT_EQ(a.width, 224);
    EXPECT_EQ(a.rgb, b.rgb) << negative_kind_name(kind);
    EXPECT_NE(a.rgb, c.rgb) << negative_kind_name(kind);
  }
  EXPECT_THROW(make_negative(NegativeKind::kPattern, 0, 8), std::invalid_argument);
}

// Gaussian features: the fitted check flags about target_rate of the validation rows, and keeps its verdicts
// through serialisation.
TEST(OodCheck, FlagsTheTargetRateOfValidationAndRoundTrips) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  auto features = [&](int n, float shift) {
    Tensor t(Shape{n, 8});  // (n, 8)
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = normal(rng) + shift;
    return t;
  };
  OodFitData data;
  data.train_features = features(400, 0.0f);
  for (int i = 0; i < 400; ++i) data.train_labels.push_back(i % 2);
  data.train_statistics.assign(400, {{0.01f, 0.05f, 0.5f, 0.2f}});
  data.val_features = features(500, 0.0f);
  data.val_statistics.assign(500, {{0.01f, 0.05f, 0.5f, 0.2f}});
  data.val_statistics[0].values[0] = 0.9f;  // one colourful validation image: flagged by the inputs alone
  const OodCheck check = OodCheck::fit(data, 2, 0.02);
  const std::vector<OodVerdict> verdicts = check.check(data.val_features, data.val_statistics);
  int flagged = 0;
  for (const OodVerdict& v : verdicts) flagged += v.out_of_distribution;
  EXPECT_NEAR(flagged, 10, 1);  // 2% of 500, the colourful one included
  EXPECT_TRUE(verdicts[0].out_of_distribution);
  EXPECT_NE(verdicts[0].reasons.at(0).find("colourfulness"), std::string::npos);
  // Far-away features are flagged for their distance.
  const std::vector<OodVerdict> far = check.check(features(3, 6.0f), {3, data.val_statistics[1]});
  for (const OodVerdict& v : far) {
    EXPECT_TRUE(v.out_of_distribution);
    EXPECT_NE(v.reasons.back().find("features unlike every class"), std::string::npos);
  }
  const OodCheck loaded = OodCheck::from_tensors(check.to_tensors(), check.metadata());
  EXPECT_DOUBLE_EQ(loaded.target_rate(), 0.02);
  const std::vector<OodVerdict> again = loaded.check(data.val_features, data.val_statistics);
  for (size_t i = 0; i < verdicts.size(); ++i) EXPECT_EQ(again[i].out_of_distribution, verdicts[i].out_of_distribution);
}

// Validation scans just inside the training extremes but outside the 0.1% tails would have the input ranges alone
// flag more than the target (what a real run did): the tails are widened until the ranges take at most half of
// it, and the total stays at the target.
TEST(OodCheck, InputRangesTakeAtMostHalfTheTarget) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  auto features = [&](int n) {
    Tensor t(Shape{n, 8});  // (n, 8)
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = normal(rng);
    return t;
  };
  OodFitData data;
  data.train_features = features(1000);
  for (int i = 0; i < 1000; ++i) {
    data.train_labels.push_back(i % 2);
    const float v = 0.1f + 0.8f * static_cast<float>(i) / 999.0f;  // evenly spread over [0.1, 0.9]
    data.train_statistics.push_back({{v, v, v, v}});
  }
  data.val_features = features(500);
  data.val_statistics.assign(500, {{0.5f, 0.5f, 0.5f, 0.5f}});
  // 10 of 500 (2%, the target is 0.8%) above every tail but the extreme 0.9 of the training scans.
  for (int i = 0; i < 10; ++i) data.val_statistics[i].values[3] = 0.8999f;
  const OodCheck check = OodCheck::fit(data, 2, 0.008);
  int flagged = 0;
  for (const OodVerdict& v : check.check(data.val_features, data.val_statistics)) {
    flagged += v.out_of_distribution;
    for (const std::string& reason : v.reasons) EXPECT_EQ(reason.find("mean_brightness"), std::string::npos);
  }
  EXPECT_NEAR(flagged, 4, 1);  // 0.8% of 500, all of them by the features
  // Beyond the training extremes, still flagged by the inputs.
  ImageStatistics outside = data.val_statistics[1];
  outside.values[3] = 0.95f;
  EXPECT_NE(check.check(features(1), {outside})[0].reasons.at(0).find("mean_brightness"), std::string::npos);
}

// Real scans through the ImageNet backbone: every kind of generated negative is flagged, and held-out scans
// (neither fitted nor used for the threshold) mostly are not.
TEST(OodCheck, FlagsEveryKindOfNegativeButNotHeldOutScans) {
  std::string npy_dir, training_dir;
  try {
    npy_dir = find_shared_dir() + "/weights/mobilenetv2_1.0_224_nchw_bnfolded_npy";
    training_dir = default_dataset_dir() + "/Training";
  } catch (const std::runtime_error& error) {
    GTEST_FAIL() << error.what();
  }
  MobileNetV2 model({.width_mult = 1.0f, .num_classes = 4});
  load_folded_backbone(model, npy_dir);
  const Dataset dataset = scan_dataset(training_dir);
  // Per class, every 6th of the first 720 images: 3 fit, 2 validation and 1 held-out in each run of 6. That is
  // 240 fitted scans, above kMinScansForInputRanges, so the input statistics take part as in a real run.
  std::vector<Sample> fit, validation, held_out;
  std::map<int, int> seen;
  for (const Sample& sample : dataset.samples) {
    const int n = seen[sample.label]++;
    if (n % 6 != 0 || n / 6 >= 6 * 20) continue;
    const int slot = (n / 6) % 6;
    (slot < 3 ? fit : slot < 5 ? validation : held_out).push_back(sample);
  }
  const InferenceOutput fit_out = run_inference(model, fit, 224);
  const InferenceOutput val_out = run_inference(model, validation, 224);
  const InferenceOutput held_out_out = run_inference(model, held_out, 224);
  const OodCheck check = OodCheck::fit({.train_features = fit_out.features,
                                        .train_labels = fit_out.labels,
                                        .train_statistics = fit_out.statistics,
                                        .val_features = val_out.features,
                                        .val_statistics = val_out.statistics},
                                       4, 0.02);
  int held_out_flagged = 0;
  for (const OodVerdict& v : check.check(held_out_out.features, held_out_out.statistics))
    held_out_flagged += v.out_of_distribution;
  EXPECT_LE(held_out_flagged, static_cast<int>(held_out.size()) / 10) << "of " << held_out.size() << " held-out scans";

  for (NegativeKind kind : all_negative_kinds()) {
    std::vector<Image> images;
    for (uint32_t seed = 0; seed < 10; ++seed) images.push_back(make_negative(kind, seed));
    const InferenceOutput out = run_inference_on_images(model, images, 224);
    const std::vector<OodVerdict> verdicts = check.check(out.features, out.statistics);
    for (size_t i = 0; i < verdicts.size(); ++i)
      EXPECT_TRUE(verdicts[i].out_of_distribution)
          << negative_kind_name(kind) << " seed " << i << " passed as a scan (feature distance "
          << verdicts[i].feature_score << " <= " << verdicts[i].feature_threshold << ")";
  }
}

}  // namespace
}  // namespace mriscan
