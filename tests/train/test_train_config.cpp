// TrainConfig's JSON round trip (config.json, read back by `train --resume`): every saved field comes back, a
// damaged file fails naming the field, and a file written before a field existed resumes the run as it was
// trained (legacy_train_config), not with today's defaults.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "train/train_config.h"

namespace mriscan {
namespace {

TrainConfig custom_config() {
  TrainConfig config;
  config.data_dir = "/data";
  config.epochs = 7;
  config.learning_rate = 2e-4;
  config.lr_schedule = "cosine";
  config.low_res_epochs = 3;
  config.frozen_blocks = 2;
  return config;
}

TEST(TrainConfigJson, RoundTripsEverySavedField) {
  const TrainConfig config = custom_config();
  const TrainConfig back = train_config_from_json(train_config_to_json(config), TrainConfig{});
  EXPECT_EQ(train_config_to_json(back), train_config_to_json(config));
}

TEST(TrainConfigJson, AnOlderFileResumesAsItWasTrained) {
  nlohmann::json json = train_config_to_json(custom_config());
  int removed = 0;
  for (const TrainConfigField& field : train_config_fields())
    if (field.key && field.added_later) removed += static_cast<int>(json.erase(field.key));
  ASSERT_GE(removed, 4);
  const TrainConfig back = train_config_from_json(json, TrainConfig{});
  EXPECT_EQ(back.lr_schedule, "plateau");  // what every run did before the schedule was a setting
  EXPECT_EQ(back.warmup_epochs, 0.0);
  EXPECT_EQ(back.low_res_epochs, 0);
  EXPECT_EQ(back.epochs, 7);  // fields the file has are its own
  EXPECT_EQ(back.frozen_blocks, 2);
}

TEST(TrainConfigJson, DamagedFilesFailNamingTheField) {
  nlohmann::json json = train_config_to_json(custom_config());
  json.erase("learning_rate");
  try {
    train_config_from_json(json, TrainConfig{});
    FAIL() << "a missing field must fail";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("learning_rate"), std::string::npos) << error.what();
  }
  json = train_config_to_json(custom_config());
  json["epochs"] = "seven";
  EXPECT_THROW(train_config_from_json(json, TrainConfig{}), std::runtime_error);
  EXPECT_THROW(train_config_from_json(nlohmann::json::array(), TrainConfig{}), std::runtime_error);
}

}  // namespace
}  // namespace mriscan
