// The trainer end to end on a few real scans: an interrupted run resumes to exactly the weights of an
// uninterrupted one (with and without a weight average), the frozen-prefix cache trains, --threads binds only the
// training thread, and bad configurations fail with clear messages.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "data/dataset.h"
#include "engine/parallel.h"
#include "io/safetensors.h"
#include "models/model_file.h"
#include "tests/support/tiny_training.h"
#include "train/trainer.h"

namespace mriscan {
namespace {

namespace fs = std::filesystem;

class Trainer : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      data_ = find_shared_dir() + "/data/brain-tumor-mri";
    } catch (const std::exception& error) {
      GTEST_SKIP() << error.what();
    }
    root_ = fs::path(::testing::TempDir()) / ("trainer_" + std::to_string(::getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  TrainConfig tiny(const std::string& name, int epochs) const {
    return tiny_training(data_, (root_ / name).string(), epochs);
  }

  static SafetensorsFile last_state(const TrainConfig& config) {
    return read_safetensors((fs::path(config.out_dir) / "resume" / "state.safetensors").string());
  }

  // Trains `config` straight and the same run cancelled in the middle of epoch 2 (as a kill would stop it) and
  // resumed; both must end in bit-identical states (weights, buffers, optimizer, weight averages) and histories.
  TrainResult expect_interrupted_run_resumes_exactly(const TrainConfig& straight);

  std::string data_;
  fs::path root_;
};

TrainResult Trainer::expect_interrupted_run_resumes_exactly(const TrainConfig& straight) {
  TrainResult uninterrupted = train_model(straight);
  EXPECT_FALSE(uninterrupted.cancelled);

  TrainConfig interrupted = straight;
  interrupted.out_dir = straight.out_dir + "_interrupted";
  std::atomic<bool> cancel{false};
  TrainResult first = train_model(
      interrupted,
      [&](const TrainProgress& p) {
        if (p.phase == "train" && p.epoch == 2 && p.batch == 2) cancel = true;
      },
      &cancel);
  EXPECT_TRUE(first.cancelled);
  TrainConfig resume;
  resume.resume_dir = interrupted.out_dir;
  resume.epochs = 2;
  TrainResult resumed = train_model(resume);
  EXPECT_FALSE(resumed.cancelled);

  SafetensorsFile a = last_state(straight), b = last_state(interrupted);
  EXPECT_EQ(a.names, b.names);
  for (const std::string& name : a.names) {
    const Tensor &x = a.tensors.at(name), &y = b.tensors.at(name);
    for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(x[i], y[i]) << name << "[" << i << "]";
  }
  // Same losses, accuracies and learning rates per epoch (timings differ, of course).
  EXPECT_EQ(uninterrupted.metrics["history"].size(), resumed.metrics["history"].size());
  for (size_t e = 0; e < uninterrupted.metrics["history"].size() && e < resumed.metrics["history"].size(); ++e)
    for (const char* key : {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate"})
      EXPECT_EQ(uninterrupted.metrics["history"][e][key], resumed.metrics["history"][e][key]) << key << " epoch " << e;
  return uninterrupted;
}

TEST_F(Trainer, InterruptedRunResumesExactly) {
  const TrainConfig straight = tiny("straight", 2);
  const TrainResult uninterrupted = expect_interrupted_run_resumes_exactly(straight);
  // The run directory holds the model, its metrics and the plots.
  for (const char* file : {"model.safetensors", "metrics.json", "train_log.jsonl", "history.png",
                           "confusion_matrix.png", "per_class.png", "gradcam.png", "samples.png"})
    EXPECT_TRUE(fs::exists(fs::path(straight.out_dir) / file)) << file;
  ModelFileInfo info = read_model_info(uninterrupted.model_path);
  EXPECT_EQ(info.class_names, (std::vector<std::string>{"glioma", "meningioma", "notumor", "pituitary"}));
  EXPECT_TRUE(info.metadata.count("temperature"));
  EXPECT_TRUE(info.extra_tensors.count("ood.means"));
}

// A weight-averaged run (--ema): the average travels with the resume state as "buffer.ema.<name>", so resuming
// continues it exactly, and the model the run keeps is the average, not the raw weights.
TEST_F(Trainer, WeightAverageIsResumedAndIsTheModelKept) {
  TrainConfig straight = tiny("averaged", 2);
  straight.ema_decay = 0.9;
  expect_interrupted_run_resumes_exactly(straight);
  EXPECT_TRUE(last_state(straight).tensors.count("buffer.ema.features.18.1.running_mean"));

  // One epoch, so that its average is the best one: the model kept holds the average, not the raw weights.
  TrainConfig one = tiny("averaged_one_epoch", 1);
  one.ema_decay = 0.9;
  const TrainResult result = train_model(one);
  const SafetensorsFile state = last_state(one);
  ASSERT_TRUE(state.tensors.count("buffer.ema.classifier.1.bias"));
  const Tensor& raw = state.tensors.at("param.classifier.1.bias");                           // (classes)
  const Tensor& averaged = state.tensors.at("buffer.ema.classifier.1.bias");                 // (classes)
  const SafetensorsFile model = read_safetensors(result.model_path);  // kept alive: kept refers into it
  const Tensor& kept = model.tensors.at("classifier.1.bias");          // (classes)
  bool average_differs = false;
  for (int64_t i = 0; i < raw.numel(); ++i) {
    average_differs |= raw[i] != averaged[i];
    EXPECT_EQ(kept[i], averaged[i]) << i;
  }
  EXPECT_TRUE(average_differs);
}

TEST_F(Trainer, FrozenPrefixCacheTrainsTheTail) {
  TrainConfig config = tiny("cached", 2);
  config.frozen_blocks = 14;
  config.cache_frozen = true;
  config.augment = false;
  TrainResult result = train_model(config);
  EXPECT_EQ(result.metrics["history"].size(), 2u);
  EXPECT_LT(result.metrics["history"][1]["train_loss"].get<double>(),
            result.metrics["history"][0]["train_loss"].get<double>() + 0.5);
}

// The server retrains on a worker thread with threads = 1; that must not shrink the other threads' kernels.
TEST_F(Trainer, ThreadsOptionBindsOnlyTheTrainingThread) {
  const int before = num_threads();
  int during = 0;
  std::thread worker([&] {
    TrainConfig config = tiny("threads", 1);
    config.threads = 1;
    train_model(config);
    during = num_threads();
  });
  worker.join();
  EXPECT_EQ(during, 1);
  EXPECT_EQ(num_threads(), before);
}

TEST_F(Trainer, BadConfigurationsFailClearly) {
  TrainConfig config = tiny("bad", 1);
  config.cache_frozen = true;  // with augmentation on: the cache would be stale
  config.frozen_blocks = 5;
  EXPECT_THROW(train_model(config), std::invalid_argument);

  config = tiny("bad", 1);
  config.weights = "/nonexistent/weights.safetensors";
  try {
    train_model(config);
    FAIL() << "a missing weights file must fail";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/weights.safetensors"), std::string::npos) << error.what();
  }

  config = tiny("bad", 1);
  config.data_dir = "/nonexistent/data";
  EXPECT_THROW(train_model(config), std::runtime_error);

  TrainConfig resume;
  resume.resume_dir = (root_ / "never_ran").string();
  EXPECT_THROW(train_model(resume), std::runtime_error);
}

}  // namespace
}  // namespace mriscan
