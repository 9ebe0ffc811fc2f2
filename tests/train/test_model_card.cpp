// The model card (train/model_card.h) from a hand-made metrics document: the fixed text, the recipe as configured
// (the precision named only when it is bf16), and missing parts said to be missing rather than invented.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "train/model_card.h"

namespace mriscan {
namespace {

nlohmann::json metrics_with(const std::string& precision) {
  return {{"config",
           {{"epochs", 15}, {"low_res_epochs", 6}, {"low_res_size", 160}, {"optimizer", "adamw"},
            {"lr_schedule", "cosine"}, {"learning_rate", 3e-4}, {"batch_size", 32}, {"frozen_blocks", 4},
            {"precision", precision}}},
          {"best_epoch", 14}};
}

TEST(ModelCard, StatesTheRecipeAndItsPrecision) {
  const std::vector<std::string> classes = {"glioma", "meningioma", "notumor", "pituitary"};
  const std::string fp32 = model_card_markdown(metrics_with("fp32"), classes);
  const std::string bf16 = model_card_markdown(metrics_with("bf16"), classes);
  for (const std::string& card : {fp32, bf16}) {
    EXPECT_NE(card.find("ot a medical device"), std::string::npos);
    EXPECT_NE(card.find("15 epochs (6 at 160 px)"), std::string::npos) << card;
    EXPECT_NE(card.find("features.0-3 frozen"), std::string::npos);
  }
  EXPECT_EQ(fp32.find("bfloat16"), std::string::npos);
  EXPECT_NE(bf16.find("bfloat16 inputs and float32 sums"), std::string::npos);
  EXPECT_EQ(fp32.find("early stopping"), std::string::npos);  // no history: nothing claimed
}

TEST(ModelCard, SaysWhenEarlyStoppingEndedTheRunBeforeItsMaximum) {
  const std::vector<std::string> classes = {"glioma", "meningioma", "notumor", "pituitary"};
  nlohmann::json stopped = metrics_with("fp32"), complete = metrics_with("fp32");
  stopped["history"] = nlohmann::json::array();
  for (int epoch = 1; epoch <= 12; ++epoch) stopped["history"].push_back({{"epoch", epoch}});
  complete["history"] = stopped["history"];
  for (int epoch = 13; epoch <= 15; ++epoch) complete["history"].push_back({{"epoch", epoch}});
  EXPECT_NE(model_card_markdown(stopped, classes).find("early stopping ended it after 12 epochs"), std::string::npos);
  EXPECT_EQ(model_card_markdown(complete, classes).find("early stopping"), std::string::npos);
}

}  // namespace
}  // namespace mriscan
