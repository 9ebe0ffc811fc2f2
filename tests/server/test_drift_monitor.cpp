// The drift rule (server/drift_monitor.h) on answers the test makes: no drift on traffic like validation's; each
// threshold crossed alone marks drift with its reason; fewer than min_answers never do; a new model version
// restarts the window; the figures are published every min_answers answers; the reference is read from a model
// file's metadata as training writes it.
#include <gtest/gtest.h>

#include <random>

#include "server/drift_monitor.h"

namespace mriscan {
namespace {

const std::vector<std::string> kNames = {"glioma", "meningioma", "notumor", "pituitary"};

DriftReference validation_like() {
  DriftReference reference;
  reference.known = true;
  reference.class_mix = {0.25, 0.25, 0.25, 0.25};
  reference.withheld_share = 0.02;
  reference.mean_confidence = 0.9;
  reference.mean_set_size = 1.1;
  return reference;
}

// `n` answers: withheld with probability `withheld`, classes from `mix`, confidence and set size as given.
void feed(DriftMonitor& monitor, int n, double withheld, std::vector<double> mix, double confidence, int set_size,
          int64_t version = 1) {
  std::mt19937 random(7);
  std::bernoulli_distribution is_withheld(withheld);
  std::discrete_distribution<int> cls(mix.begin(), mix.end());
  for (int i = 0; i < n; ++i)
    monitor.observe(version, is_withheld(random), cls(random), confidence, set_size);
}

TEST(DriftMonitor, TrafficLikeValidationIsNotDrift) {
  DriftMonitor monitor(500);
  feed(monitor, 500, 0.02, {1, 1, 1, 1}, 0.9, 1);
  const DriftSnapshot s = monitor.snapshot(1, validation_like(), kNames);
  EXPECT_FALSE(s.drift) << s.to_json().dump();
  EXPECT_EQ(s.answers, 500u);
  EXPECT_LT(*s.class_mix_distance, 0.1);
}

TEST(DriftMonitor, EachThresholdAloneMarksDriftWithItsReason) {
  struct Case {
    double withheld;
    std::vector<double> mix;
    double confidence;
    int set_size;
    std::string reason;
  };
  for (const Case& c : {Case{0.02, {7, 1, 1, 1}, 0.9, 1, "class mix"},
                        Case{0.2, {1, 1, 1, 1}, 0.9, 1, "withheld share"},
                        Case{0.02, {1, 1, 1, 1}, 0.75, 1, "mean confidence"},
                        Case{0.02, {1, 1, 1, 1}, 0.9, 2, "mean set size"}}) {
    DriftMonitor monitor(500);
    feed(monitor, 500, c.withheld, c.mix, c.confidence, c.set_size);
    const DriftSnapshot s = monitor.snapshot(1, validation_like(), kNames);
    EXPECT_TRUE(s.drift) << c.reason;
    EXPECT_EQ(s.reasons, std::vector<std::string>{c.reason}) << s.to_json().dump();
  }
}

TEST(DriftMonitor, TooFewAnswersOrNoReferenceNeverMarkDriftAndANewVersionRestarts) {
  DriftMonitor monitor(500);
  feed(monitor, 99, 0.5, {1, 0, 0, 0}, 0.5, 3);
  EXPECT_FALSE(monitor.snapshot(1, validation_like(), kNames).drift);
  feed(monitor, 1, 0.5, {1, 0, 0, 0}, 0.5, 3);
  EXPECT_TRUE(monitor.snapshot(1, validation_like(), kNames).drift);
  EXPECT_FALSE(monitor.snapshot(1, DriftReference{}, kNames).drift);
  EXPECT_EQ(monitor.snapshot(2, validation_like(), kNames).answers, 0u);  // another version: its own window
  feed(monitor, 150, 0.0, {1, 1, 1, 1}, 0.9, 1, /*version=*/2);
  EXPECT_EQ(monitor.snapshot(2, validation_like(), kNames).answers, 100u);  // published every 100 answers
  feed(monitor, 50, 0.0, {1, 1, 1, 1}, 0.9, 1, /*version=*/2);
  EXPECT_EQ(monitor.snapshot(2, validation_like(), kNames).answers, 200u);
}

TEST(DriftMonitor, TheReferenceIsReadFromTheModelsMetadata) {
  const nlohmann::json validation = {{"class_mix", {0.1, 0.2, 0.3, 0.4}},
                                     {"mean_confidence", 0.8},
                                     {"withheld_share", 0.05},
                                     {"mean_set_size", {{"0.05", 1.2}, {"0.01", 1.8}}}};
  const nlohmann::json metadata = {{"conformal", {{"validation", validation}}}};
  const DriftReference reference = drift_reference(metadata, 4, "0.01");
  ASSERT_TRUE(reference.known);
  EXPECT_EQ(reference.class_mix, (std::vector<double>{0.1, 0.2, 0.3, 0.4}));
  EXPECT_DOUBLE_EQ(*reference.mean_set_size, 1.8);
  EXPECT_FALSE(drift_reference(metadata, 3, "0.05").known);  // another number of classes
  EXPECT_FALSE(drift_reference(nlohmann::json::object(), 4, "0.05").known);
}

}  // namespace
}  // namespace mriscan
