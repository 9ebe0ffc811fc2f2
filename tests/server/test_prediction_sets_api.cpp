// The API's prediction sets (server/routes_prediction.cpp's prediction_json, the Open Inference Protocol's
// "prediction_set" output) against a real App: a tiny model file the test writes with conformal scores, served with
// `--alpha 0.2`; every set must be the rule's {k : 1 - p_k <= qhat} on the probabilities the answer gives, and a
// file without scores answers null sets.
#include "infer/conformal.h"
#include "server/http_util.h"
#include "tests/support/server_fixture.h"

namespace mriscan::server_test {
namespace {

// 40 calibration scores spread over [0.5, 0.89]: a random model's near-uniform probabilities (1 - p ~ 0.75) fall
// on both sides of the thresholds.
std::vector<float> calibration_scores() {
  std::vector<float> scores;
  for (int i = 0; i < 40; ++i) scores.push_back(0.5f + 0.01f * static_cast<float>(i));
  return scores;
}

std::string write_model_with_sets(const fs::path& path) {
  MobileNetV2Config config;
  config.width_mult = 0.35f;
  config.num_classes = 4;
  config.seed = 3;
  MobileNetV2 model(config);
  const nlohmann::json record = {{"score", "lac"}, {"n", 40}, {"scores", calibration_scores()}};
  save_model_file(path.string(), model, 64, kClasses, {{"temperature", "1.0"}, {"conformal", record.dump()}});
  return path.string();
}

// The set of level `alpha` the rule makes from an answer's probabilities, as class names.
json expected_set(const json& answer, double alpha) {
  const double qhat = conformal_threshold(calibration_scores(), alpha);
  json names = json::array();
  for (const std::string& name : kClasses)
    if (static_cast<double>(1.0f - answer["probabilities"][name].get<float>()) <= qhat) names.push_back(name);
  return names;
}

class PredictionSetsApi : public ServerApi {
 protected:
  void SetUp() override {
    ServerApi::SetUp();
    if (IsSkipped()) return;
    const std::string model = write_model_with_sets(state_.parent_path() / (state_.filename().string() + ".sets"));
    restart([&](ServerConfig& config) {
      config.initial_model = model;
      config.set_alpha = 0.2;
    });
  }
};

TEST_F(PredictionSetsApi, PredictAnswersTheConfiguredSetAndTheReportedOnes) {
  const json answer = body_of(predict(read_bytes(shared().scans[0])));
  ASSERT_FALSE(answer["out_of_distribution"].get<bool>()) << answer;
  EXPECT_EQ(answer["prediction_set_alpha"], 0.2);
  ASSERT_EQ(answer["prediction_sets"].size(), 3u) << answer;
  for (double alpha : {0.2, 0.05, 0.01})
    EXPECT_EQ(answer["prediction_sets"][alpha_key(alpha)], expected_set(answer, alpha)) << alpha << answer;
  EXPECT_EQ(answer["prediction_set"], answer["prediction_sets"]["0.2"]);
}

TEST_F(PredictionSetsApi, BatchesAndTheInferenceProtocolCarryTheSameSets) {
  const std::vector<std::string> files = {read_bytes(shared().scans[1]), noise_png(5, 64, 64)};
  const json batch =
      body_of(client().Post("/predict_batch", {{"files", files[0], "a.jpg", "image/jpeg"},
                                               {"files", files[1], "b.png", "image/png"}}));
  ASSERT_EQ(batch["results"].size(), 2u) << batch;
  json data = json::array();
  for (const std::string& file : files) data.push_back(base64_encode(std::vector<uint8_t>(file.begin(), file.end())));
  const json inferred = body_of(client().Post(
      "/v2/models/mriscan/infer",
      json({{"inputs", {{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {2}}, {"data", data}}}}}).dump(),
      "application/json"));
  ASSERT_EQ(inferred["outputs"].size(), 4u) << inferred;
  EXPECT_EQ(inferred["outputs"][3]["name"], "prediction_set");
  for (size_t i = 0; i < files.size(); ++i) {
    const json single = body_of(predict(files[i]));
    EXPECT_EQ(batch["results"][i]["prediction_sets"], single["prediction_sets"]) << i;
    EXPECT_EQ(inferred["outputs"][3]["data"][i], single["prediction_set"].dump()) << i;
  }
  const json metadata = body_of(client().Get("/v2/models/mriscan"));
  EXPECT_EQ(metadata["parameters"]["prediction_set_alpha"], 0.2) << metadata;
}

TEST_F(ServerApi, AModelWithoutScoresAnswersNullSets) {
  const json answer = body_of(predict(read_bytes(shared().scans[0])));
  ASSERT_TRUE(answer.contains("prediction_sets")) << answer;
  EXPECT_TRUE(answer["prediction_sets"].is_null());
  EXPECT_TRUE(answer["prediction_set"].is_null());
  EXPECT_TRUE(answer["prediction_set_alpha"].is_null());
}

}  // namespace
}  // namespace mriscan::server_test
