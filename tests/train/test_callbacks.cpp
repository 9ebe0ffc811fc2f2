// Tests for train/callbacks.h: the end-of-epoch decisions on a hand-made sequence of validation losses (which
// epochs are saved, when the learning rate drops, when training stops), their state in the resume file (also the
// older layout without the checkpoint's own entry), and a failed save that must leave every decision unchanged.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "optim/sgd.h"
#include "tests/support/temp_dir.h"
#include "train/callbacks.h"

namespace mriscan {
namespace {

using EpochCallbacksTest = TempDirTest;

TrainConfig schedule() {
  TrainConfig config;
  config.patience = 3;     // EarlyStopping
  config.lr_patience = 2;  // ReduceLROnPlateau
  config.lr_factor = 0.5;
  config.lr_schedule = "plateau";  // under "cosine" the trainer sets the rate per step and the plateau only watches
  return config;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(EpochCallbacksTest, SavesBestsReducesOnPlateauAndStops) {
  std::vector<NamedParameter> params = {{"w", make_var(Tensor(Shape{1}, {1.0f}), true)}};
  Sgd optimizer(params, {.learning_rate = 0.1f});
  std::vector<int> saved;
  EpochCallbacks callbacks(schedule(), path("best.txt"), [&](const std::string& tmp_path, int epoch) {
    saved.push_back(epoch);
    std::ofstream(tmp_path) << "epoch " << epoch;
  });
  // Epoch:                   0     1     2     3      4
  const std::vector<float> losses = {1.0f, 0.8f, 0.9f, 0.85f, 0.95f};
  const std::vector<bool> best = {true, true, false, false, false};
  const std::vector<float> lr_after = {0.1f, 0.1f, 0.1f, 0.05f, 0.05f};     // 2 epochs without improvement: halved
  const std::vector<bool> stop_after = {false, false, false, false, true};  // 3 epochs without improvement
  for (int e = 0; e < 5; ++e) {
    EXPECT_EQ(callbacks.on_epoch_end(e, losses[e], optimizer), best[e]) << "epoch " << e;
    EXPECT_FLOAT_EQ(optimizer.learning_rate(), lr_after[e]) << "epoch " << e;
    EXPECT_EQ(callbacks.should_stop(), stop_after[e]) << "epoch " << e;
  }
  EXPECT_EQ(saved, (std::vector<int>{0, 1}));
  EXPECT_EQ(read_text(path("best.txt")), "epoch 1");
  EXPECT_EQ(callbacks.best_epoch(), 1);
}

TEST_F(EpochCallbacksTest, StateRoundTripAndOlderResumeFiles) {
  std::vector<NamedParameter> params = {{"w", make_var(Tensor(Shape{1}, {1.0f}), true)}};
  Sgd optimizer(params, {.learning_rate = 0.1f});
  auto write = [](const std::string& tmp_path, int) { std::ofstream(tmp_path) << "model"; };
  EpochCallbacks callbacks(schedule(), path("best.txt"), write);
  callbacks.on_epoch_end(0, 1.0f, optimizer);
  callbacks.on_epoch_end(1, 0.8f, optimizer);
  callbacks.on_epoch_end(2, 0.9f, optimizer);
  const nlohmann::json state = nlohmann::json::parse(callbacks.state().dump());

  EpochCallbacks resumed(schedule(), path("best.txt"), write);
  resumed.load_state(state);
  EXPECT_EQ(resumed.best_epoch(), 1);
  EXPECT_EQ(resumed.state(), callbacks.state());
  // A resume file written before the checkpoint kept its own state: the stopper's best (same rule) is used.
  nlohmann::json older = state;
  older.erase("best");
  EpochCallbacks from_older(schedule(), path("best.txt"), write);
  from_older.load_state(older);
  EXPECT_EQ(from_older.best_epoch(), 1);
  EXPECT_FALSE(from_older.on_epoch_end(3, 0.85f, optimizer));  // 0.85 is no new best after 0.8
  EXPECT_THROW(from_older.load_state(nlohmann::json::object()), nlohmann::json::exception);
}

TEST_F(EpochCallbacksTest, FailedSaveChangesNoDecision) {
  std::vector<NamedParameter> params = {{"w", make_var(Tensor(Shape{1}, {1.0f}), true)}};
  Sgd optimizer(params, {.learning_rate = 0.1f});
  bool disk_full = false;
  EpochCallbacks callbacks(schedule(), path("best.txt"), [&](const std::string& tmp_path, int) {
    std::ofstream(tmp_path) << "partial";
    if (disk_full) throw std::runtime_error("No space left on device (simulated)");
  });
  callbacks.on_epoch_end(0, 1.0f, optimizer);
  callbacks.on_epoch_end(1, 1.1f, optimizer);
  const nlohmann::json before = callbacks.state();
  disk_full = true;
  EXPECT_THROW(callbacks.on_epoch_end(2, 0.5f, optimizer), std::runtime_error);
  EXPECT_EQ(callbacks.state(), before);  // neither the schedule nor the stopper counted the failed epoch
  EXPECT_FLOAT_EQ(optimizer.learning_rate(), 0.1f);
  EXPECT_EQ(callbacks.best_epoch(), 0);
}

}  // namespace
}  // namespace mriscan
