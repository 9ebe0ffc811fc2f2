// Prediction sets on a real model the test trains (tests/support/tiny_training.h): training's end stores conformal
// scores fitted on the answered validation scans (train/prediction_sets.h) with the drift figures beside them, and
// the Classifier's predictions carry the sets of the configured and reported levels, made by the stored thresholds.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "data/dataset.h"
#include "eval/set_report.h"
#include "infer/calibration.h"
#include "infer/classifier.h"
#include "infer/conformal.h"
#include "io/image_io.h"
#include "models/model_file.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_training.h"
#include "train/splits.h"
#include "train/trainer.h"

namespace mriscan {
namespace {

namespace fs = std::filesystem;

class PredictionSets : public ::testing::Test {
 protected:
  // One tiny run for the whole suite: 12 validation scans (3 per class).
  static void SetUpTestSuite() {
    std::string data;
    try {
      data = find_shared_dir() + "/data/brain-tumor-mri";
    } catch (const std::exception&) {
      return;
    }
    dir_ = std::make_unique<TempDir>("prediction_sets");
    config_ = tiny_training(data, *dir_ / "run", 1);
    model_path_ = train_model(config_).model_path;
  }
  static void TearDownTestSuite() { dir_.reset(); }
  void SetUp() override {
    if (model_path_.empty()) GTEST_SKIP() << "shared dataset not found (set MRISCAN_SHARED)";
  }
  static nlohmann::json metadata_json(const std::string& key) {
    return nlohmann::json::parse(read_model_info(model_path_).metadata.at(key));
  }

  static inline std::unique_ptr<TempDir> dir_;
  static inline TrainConfig config_;
  static inline std::string model_path_;
};

TEST_F(PredictionSets, TrainingStoresScoresFittedOnTheAnsweredValidationScans) {
  const nlohmann::json record = metadata_json("conformal");
  EXPECT_EQ(record["score"], "lac");
  const Splits splits = load_splits(config_);
  ModelFileInfo info;
  auto model = load_model_file(model_path_, &info);
  const OodCheck ood = OodCheck::from_tensors(info.extra_tensors, info.metadata);
  const InferenceOutput answered =
      answered_rows(run_inference(*model, splits.validation, info.image_size), &ood);
  // The same scans, the same scores: the sorted 1 - p_y of the answered validation scans at the stored temperature.
  const ConformalSets expected = ConformalSets::fit(
      apply_temperature(answered.logits, std::stof(info.metadata.at("temperature"))), answered.labels);
  ASSERT_EQ(record["n"], expected.n());
  ASSERT_EQ(record["scores"].size(), static_cast<size_t>(expected.n()));
  const nlohmann::json expected_scores = expected.record()["scores"];
  for (size_t i = 0; i < record["scores"].size(); ++i)
    EXPECT_NEAR(record["scores"][i].get<double>(), expected_scores[i].get<double>(), 1e-6) << i;
  // n = 12 at most: rank ceil(13 * 0.95) = 13 > n, so the 0.05 and 0.01 sets are every class (qhat null).
  EXPECT_TRUE(record["qhat"]["0.05"].is_null());
  EXPECT_TRUE(record["qhat"]["0.01"].is_null());
}

TEST_F(PredictionSets, TheRecordCarriesTheValidationProfileForDriftMonitors) {
  const nlohmann::json validation = metadata_json("conformal")["validation"];
  ASSERT_EQ(validation["class_mix"].size(), 4u);
  double total = 0.0;
  for (const auto& share : validation["class_mix"]) total += share.get<double>();
  EXPECT_NEAR(total, 1.0, 1e-9);
  EXPECT_GT(validation["mean_confidence"].get<double>(), 0.25 - 1e-6);  // the top of 4 probabilities
  EXPECT_LE(validation["mean_confidence"].get<double>(), 1.0);
  EXPECT_GE(validation["withheld_share"].get<double>(), 0.0);
  EXPECT_LT(validation["withheld_share"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(validation["mean_set_size"]["0.05"].get<double>(), 4.0);  // every class (see above)
  EXPECT_DOUBLE_EQ(validation["singleton_share"]["0.01"].get<double>(), 0.0);
}

TEST_F(PredictionSets, MetricsAndModelCardReportTheSets) {
  const nlohmann::json metrics = metadata_json("metrics");
  const nlohmann::json& levels = metrics["prediction_sets"]["validation"]["levels"];
  for (const char* alpha : {"0.05", "0.01"}) {
    // In-sample, the coverage is at least 1 - alpha by construction (rank / n >= 1 - alpha).
    EXPECT_GE(levels[alpha]["coverage"].get<double>(), 1.0 - std::stod(alpha)) << alpha;
    EXPECT_DOUBLE_EQ(levels[alpha]["guarantee"][0].get<double>(), 1.0 - std::stod(alpha));
  }
  const std::string card = read_model_info(model_path_).metadata.at("model_card");
  EXPECT_NE(card.find("## Prediction sets"), std::string::npos) << card;
  EXPECT_NE(card.find("| validation | 95% |"), std::string::npos) << card;
}

// A few validation scans, decoded as predict decodes them.
std::vector<Image> some_scans(const TrainConfig& config) {
  std::vector<Image> images;
  for (const Sample& sample : load_splits(config).validation) images.push_back(load_image(sample.path));
  return images;
}

TEST_F(PredictionSets, PredictionsCarryTheConfiguredLevelFirstThenTheReportedOnes) {
  const std::vector<float> scores = metadata_json("conformal")["scores"].get<std::vector<float>>();
  auto classifier = Classifier::load(model_path_, {}, 0.3);
  ASSERT_TRUE(classifier->has_prediction_sets());
  EXPECT_EQ(classifier->set_alpha(), 0.3);
  for (const Prediction& p : classifier->predict_batch(some_scans(config_))) {
    ASSERT_EQ(p.prediction_sets.size(), 3u);
    const std::vector<double> alphas = {0.3, 0.05, 0.01};
    for (size_t i = 0; i < alphas.size(); ++i) {
      EXPECT_EQ(p.prediction_sets[i].alpha, alphas[i]);
      EXPECT_EQ(p.prediction_sets[i].classes, lac_set(p.probabilities, conformal_threshold(scores, alphas[i])));
    }
    // A smaller alpha has a higher threshold: its set holds the larger alpha's.
    EXPECT_TRUE(std::includes(p.prediction_sets[1].classes.begin(), p.prediction_sets[1].classes.end(),
                              p.prediction_sets[0].classes.begin(), p.prediction_sets[0].classes.end()));
  }
  auto by_default = Classifier::load(model_path_);
  const Prediction p = by_default->predict(some_scans(config_).front());
  ASSERT_EQ(p.prediction_sets.size(), 2u);  // 0.05 first (the default), then 0.01
  EXPECT_EQ(p.prediction_sets[0].alpha, 0.05);
  EXPECT_EQ(p.prediction_sets[1].alpha, 0.01);
  EXPECT_THROW(Classifier::load(model_path_, {}, 1.5), std::invalid_argument);
}

TEST_F(PredictionSets, AFileWithoutScoresGivesNoSetsAndADamagedRecordIsRefused) {
  ModelFileInfo info;
  auto model = load_model_file(model_path_, &info);
  std::map<std::string, std::string> metadata = info.metadata;
  metadata.erase("conformal");
  const std::string bare = *dir_ / "bare.safetensors";
  save_model_file(bare, *model, info.image_size, info.class_names, metadata, info.extra_tensors);
  auto classifier = Classifier::load(bare);
  EXPECT_FALSE(classifier->has_prediction_sets());
  EXPECT_TRUE(classifier->predict(some_scans(config_).front()).prediction_sets.empty());

  metadata["conformal"] = R"({"score": "lac", "scores": [0.5, 0.2]})";  // not sorted
  const std::string damaged = *dir_ / "damaged.safetensors";
  save_model_file(damaged, *model, info.image_size, info.class_names, metadata, info.extra_tensors);
  EXPECT_THROW(Classifier::load(damaged), std::runtime_error);
}

}  // namespace
}  // namespace mriscan
