// Data-parallel training under MPI (run by ctest as `mpirun -np 2 test_data_parallel`; alone, every test skips).
//   - One step of 2 processes x 16 images equals one step of 1 process x 32 images: weights and BN running
//     statistics, within float tolerance (synchronised batch norm, averaged gradients, reduced in buckets
//     during backward). The tolerance is measured, not guessed: the same 1 x 32 step with the images in reverse
//     order differs from itself by float rounding alone. The step with each process's own BN statistics must
//     NOT match, so the comparison can fail.
//   - A short 2-process `train_model` run ends with the same weights on both processes (checked before the best
//     checkpoint is loaded, so a disagreement shows), and resuming it continues exactly.
// What it is not: a speed measurement (docs/distributed_training.md has those).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>

#include "data/dataset.h"
#include "layers/softmax_cross_entropy.h"
#include "models/mobilenet_v2.h"
#include "optim/sgd.h"
#include "tests/support/tiny_training.h"
#include "train/gradient_reducer.h"
#include "train/mpi_collective.h"
#include "train/trainer.h"

namespace mriscan {
namespace {

namespace fs = std::filesystem;

Collective* world() {
  static std::unique_ptr<Collective> launched = mpi_world_if_launched();
  return launched.get();
}

constexpr int kBatch = 32, kSize = 64;

Tensor images(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Tensor x(Shape{kBatch, kSize, kSize, 3});  // (B, S, S, 3)
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = normal(rng);
  return x;
}

// Rows [begin, begin + count) of x (B, S, S, 3).
Tensor rows(const Tensor& x, int begin, int count) {
  const int64_t per_row = x.numel() / x.dim(0);
  Tensor out = Tensor::uninitialized(Shape{count, x.dim(1), x.dim(2), x.dim(3)});
  std::copy_n(x.data() + begin * per_row, count * per_row, out.data());
  return out;
}

// One SGD step of a fresh model (dropout off: its masks depend on the batch size) on (x, labels); with `world`,
// on this process's shard, BN synchronised or not, gradients averaged over processes.
std::unique_ptr<MobileNetV2> one_step(const Tensor& x, const std::vector<int>& labels, Collective* world,
                                      bool sync_bn) {
  auto model = std::make_unique<MobileNetV2>(
      MobileNetV2Config{.width_mult = 0.35f, .num_classes = 4, .dropout = 0.0f, .seed = 3});
  model->set_training(true);
  if (world && sync_bn) model->set_collective(world);
  std::vector<NamedParameter> params = model->parameters();
  Sgd sgd(params, {.learning_rate = 0.5f, .momentum = 0.0f});
  Tape tape;
  Var loss = softmax_cross_entropy(tape, model->forward(tape, make_var(x)), labels, 0.1f);
  std::unique_ptr<GradientReducer> reducer;
  if (world) {
    reducer = std::make_unique<GradientReducer>(*world, params, /*bucket_bytes=*/64 << 10);  // several buckets
    reducer->prepare(tape);
  }
  tape.backward(loss);
  if (reducer) {
    reducer->finish();
    EXPECT_GT(reducer->num_buckets(), 3u);
    EXPECT_GT(reducer->buckets_started_during_backward(), 0) << "no bucket overlapped with backward";
  }
  sgd.step();
  return model;
}

// Largest |a - b| / (1 + |a|) over every parameter and buffer; `where` names the tensor.
double max_difference(MobileNetV2& a, MobileNetV2& b, std::string* where = nullptr) {
  double worst = 0.0;
  auto compare = [&](const std::string& name, const Tensor& x, const Tensor& y) {
    for (int64_t k = 0; k < x.numel(); ++k) {
      const double d = std::abs(double(x[k]) - y[k]) / (1.0 + std::abs(double(x[k])));
      if (d > worst && where) *where = name;
      worst = std::max(worst, d);
    }
  };
  std::vector<NamedParameter> pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i) compare(pa[i].name, pa[i].var->value, pb[i].var->value);
  std::vector<NamedBuffer> ba = a.buffers(), bb = b.buffers();
  for (size_t i = 0; i < ba.size(); ++i) compare(ba[i].name, ba[i].tensor, bb[i].tensor);
  return worst;
}

TEST(DataParallel, StepOfTwoTimesSixteenEqualsOneTimesThirtyTwo) {
  if (!world() || world()->size() != 2) GTEST_SKIP() << "run under mpirun -np 2";
  const Tensor x = images(11);
  std::vector<int> labels(kBatch);
  for (int i = 0; i < kBatch; ++i) labels[i] = (i * 7) % 4;
  std::unique_ptr<MobileNetV2> whole = one_step(x, labels, nullptr, false);  // 1 process x 32
  // The float noise floor: the same step with the images in reverse order (the same math, sums in another order).
  Tensor reversed = Tensor::uninitialized(x.shape());
  const int64_t per_image = x.numel() / kBatch;
  for (int i = 0; i < kBatch; ++i)
    std::copy_n(x.data() + i * per_image, per_image, reversed.data() + (kBatch - 1 - i) * per_image);
  const std::vector<int> reversed_labels(labels.rbegin(), labels.rend());
  const double noise = max_difference(*whole, *one_step(reversed, reversed_labels, nullptr, false));

  const int half = kBatch / 2, begin = world()->rank() * half;
  const std::vector<int> my_labels(labels.begin() + begin, labels.begin() + begin + half);
  std::unique_ptr<MobileNetV2> synced = one_step(rows(x, begin, half), my_labels, world(), true);
  std::string worst_tensor;
  const double synced_difference = max_difference(*whole, *synced, &worst_tensor);
  EXPECT_LT(synced_difference, 4 * noise + 1e-6) << "rank " << world()->rank() << ", worst in " << worst_tensor;

  std::unique_ptr<MobileNetV2> local = one_step(rows(x, begin, half), my_labels, world(), false);
  const double local_difference = max_difference(*whole, *local);
  std::printf("max relative difference to 1 x 32: reordered %.3g, synchronised BN %.3g, local BN %.3g\n", noise,
              synced_difference, local_difference);
  EXPECT_GT(local_difference, 20 * (noise + synced_difference)) << "the comparison cannot tell";
  const MobileNetV2 untouched({.width_mult = 0.35f, .num_classes = 4, .dropout = 0.0f, .seed = 3});
  EXPECT_GT(max_difference(*whole, const_cast<MobileNetV2&>(untouched)), 1e-3) << "the step changed nothing";
}

TEST(DataParallel, ShortRunAgreesOnEveryProcessAndResumesExactly) {
  if (!world() || world()->size() != 2) GTEST_SKIP() << "run under mpirun -np 2";
  std::string data;
  try {
    data = find_shared_dir() + "/data/brain-tumor-mri";
  } catch (const std::exception& error) {
    GTEST_SKIP() << error.what();
  }
  // One run directory for both processes (they share a parent: the launcher's daemon).
  const fs::path root = fs::temp_directory_path() / ("mriscan_data_parallel_" + std::to_string(::getppid()));
  auto config_for = [&](const std::string& name, int epochs) {
    TrainConfig config = tiny_training(data, (root / name).string(), epochs);
    config.threads = 1;
    config.world = world();
    // "Interrupted" below is a run of fewer epochs; a cosine schedule spans the run's own length, so only a
    // schedule that does not depend on it makes that run a prefix of the straight one.
    config.lr_schedule = "plateau";
    return config;
  };
  const TrainResult straight = train_model(config_for("straight", 2));
  // The weights as trained (before the best checkpoint, which rank 0 wrote, is loaded), compared in double.
  double difference = world()->rank() == 0 ? straight.weights_checksum : -straight.weights_checksum;
  world()->allreduce_sum(&difference, 1);
  EXPECT_EQ(difference, 0.0) << "the processes ended with different weights";
  EXPECT_EQ(straight.metrics["history"].size(), 2u);
  EXPECT_EQ(straight.metrics["history"][0]["processes"]["count"], 2);

  // With each rank's own BN statistics the running averages are averaged at each epoch's end: still one model.
  TrainConfig local_bn = config_for("local_bn", 1);
  local_bn.sync_batch_norm = false;
  double local_difference = train_model(local_bn).weights_checksum * (world()->rank() == 0 ? 1.0 : -1.0);
  world()->allreduce_sum(&local_difference, 1);
  EXPECT_EQ(local_difference, 0.0) << "--no-sync-bn left the ranks with different running statistics";

  train_model(config_for("interrupted", 1));  // as if stopped after epoch 1
  TrainConfig resume;
  resume.resume_dir = (root / "interrupted").string();
  resume.epochs = 2;
  resume.threads = 1;
  resume.world = world();
  const TrainResult resumed = train_model(resume);
  EXPECT_EQ(resumed.weights_checksum, straight.weights_checksum) << "the resumed run trained differently";
  EXPECT_EQ(resumed.metrics["best_epoch"], straight.metrics["best_epoch"]);
  EXPECT_EQ(resumed.metrics["history"][1]["val_loss"], straight.metrics["history"][1]["val_loss"]);
  world()->allgather(std::vector<float>{1.0f});  // a barrier: both have finished before rank 0 cleans up
  if (world()->rank() == 0) fs::remove_all(root);
}

}  // namespace
}  // namespace mriscan
