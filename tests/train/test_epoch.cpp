// One training epoch over its context (train/epoch.h), on synthetic batches and no files: every batch is one
// optimizer step, counted once and reported once with the scheduled learning rate; a set cancel flag stops the
// epoch before a batch; a frozen prefix leaves its parameters as they were; the weight average is updated after
// every step; and the same context and epoch give the same weights, bit for bit (the seeded dropout stream).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "optim/sgd.h"
#include "train/epoch.h"

namespace mriscan {
namespace {

constexpr int kSize = 32, kBatch = 4, kClasses = 4;

// `count` batches of (kBatch, kSize, kSize, 3) noise per epoch, the same for the same (epoch, index).
class SyntheticBatches final : public BatchSource {
 public:
  explicit SyntheticBatches(int count) : count_(count) {}
  int batches_per_epoch() const override { return count_; }
  void start_epoch(int epoch) override { epoch_ = epoch, index_ = 0, ++starts; }
  bool next(Batch& batch) override {
    if (index_ >= count_) return false;
    std::mt19937 rng(1000u * epoch_ + index_);
    std::normal_distribution<float> noise(0.0f, 1.0f);
    batch.images = Tensor(Shape{kBatch, kSize, kSize, 3});  // (B, S, S, 3)
    for (int64_t i = 0; i < batch.images.numel(); ++i) batch.images[i] = noise(rng);
    batch.labels.clear();
    for (int i = 0; i < kBatch; ++i) batch.labels.push_back((index_ + i) % kClasses);
    batch.index = index_++;
    return true;
  }
  int starts = 0;

 private:
  int count_, epoch_ = 0, index_ = 0;
};

// A model, its optimizer and the settings of one epoch, as the trainer builds them.
struct Trainee {
  explicit Trainee(int frozen_blocks = 0) : model({.width_mult = 0.35f, .num_classes = kClasses, .seed = 3}) {
    config.batch_size = kBatch;
    config.epochs = 2;
    config.frozen_blocks = frozen_blocks;
    model.freeze_blocks(frozen_blocks);
    for (const NamedParameter& p : model.parameters())
      if (p.var->requires_grad) trainable.push_back(p);
    optimizer = std::make_unique<Sgd>(trainable, SgdOptions{.learning_rate = 0.01f, .momentum = 0.9f});
  }
  EpochContext context(BatchSource& batches) {
    return {.model = model, .optimizer = *optimizer, .trainable = trainable, .batches = batches, .config = config};
  }
  std::vector<float> weights() {
    std::vector<float> all;
    for (const NamedParameter& p : model.parameters()) {
      const std::vector<float> v = p.var->value.to_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  }

  TrainConfig config;
  MobileNetV2 model;
  std::vector<NamedParameter> trainable;
  std::unique_ptr<Optimizer> optimizer;
};

TEST(Epoch, EveryBatchIsOneStepCountedAndReportedOnce) {
  Trainee trainee;
  SyntheticBatches batches(3);
  std::vector<TrainProgress> events;
  EpochContext context = trainee.context(batches);
  context.progress = [&](const TrainProgress& p) { events.push_back(p); };
  const std::vector<float> before = trainee.weights();
  const EpochTotals totals = train_one_epoch(context, 0);

  EXPECT_FALSE(totals.cancelled);
  EXPECT_EQ(batches.starts, 1);
  EXPECT_EQ(totals.seen, 3 * kBatch);
  EXPECT_GE(totals.correct, 0);
  EXPECT_LE(totals.correct, totals.seen);
  EXPECT_TRUE(std::isfinite(totals.loss_sum));
  EXPECT_GT(totals.loss_sum, 0.0);
  EXPECT_NE(trainee.weights(), before);
  ASSERT_EQ(events.size(), 3u);
  for (int b = 0; b < 3; ++b) {
    EXPECT_EQ(events[b].phase, "train");
    EXPECT_EQ(events[b].epoch, 1);
    EXPECT_EQ(events[b].epochs, 2);
    EXPECT_EQ(events[b].batch, b + 1);
    EXPECT_EQ(events[b].batches, 3);
    EXPECT_EQ(events[b].learning_rate, scheduled_learning_rate(trainee.config, *trainee.optimizer, 0, b, 3)) << b;
  }
  EXPECT_NEAR(events.back().loss, totals.loss_sum / totals.seen, 1e-9);
}

TEST(Epoch, CancelStopsBeforeABatch) {
  Trainee trainee;
  SyntheticBatches batches(3);
  std::atomic<bool> cancel{true};
  EpochContext context = trainee.context(batches);
  context.cancel = &cancel;
  const std::vector<float> before = trainee.weights();
  const EpochTotals stopped = train_one_epoch(context, 0);
  EXPECT_TRUE(stopped.cancelled);
  EXPECT_EQ(stopped.seen, 0);
  EXPECT_EQ(trainee.weights(), before);

  cancel = false;
  context.progress = [&](const TrainProgress& p) { cancel = p.batch == 1; };  // set after the first batch
  const EpochTotals one_batch = train_one_epoch(context, 0);
  EXPECT_TRUE(one_batch.cancelled);
  EXPECT_EQ(one_batch.seen, kBatch);
}

TEST(Epoch, FrozenPrefixKeepsItsParametersAndTheAverageFollowsEveryStep) {
  Trainee trainee(/*frozen_blocks=*/14);
  WeightAverage average(trainee.trainable, trainee.model.buffers(), 0.9);
  SyntheticBatches batches(2);
  EpochContext context = trainee.context(batches);
  context.average = &average;
  std::vector<std::vector<float>> frozen_before, tail_before;
  for (const NamedParameter& p : trainee.model.parameters())
    (p.var->requires_grad ? tail_before : frozen_before).push_back(p.var->value.to_vector());
  ASSERT_FALSE(frozen_before.empty());
  ASSERT_FALSE(tail_before.empty());

  train_one_epoch(context, 0);
  std::vector<std::vector<float>> frozen_after, tail_after;
  for (const NamedParameter& p : trainee.model.parameters())
    (p.var->requires_grad ? tail_after : frozen_after).push_back(p.var->value.to_vector());
  EXPECT_EQ(frozen_after, frozen_before);
  EXPECT_NE(tail_after, tail_before);
  EXPECT_EQ(average.updates(), 2);
}

TEST(Epoch, SameContextAndEpochGiveTheSameWeights) {
  Trainee a, b;
  SyntheticBatches batches_a(2), batches_b(2);
  const EpochTotals totals_a = train_one_epoch(a.context(batches_a), 1);
  const EpochTotals totals_b = train_one_epoch(b.context(batches_b), 1);
  EXPECT_EQ(totals_a.loss_sum, totals_b.loss_sum);
  EXPECT_EQ(totals_a.correct, totals_b.correct);
  EXPECT_EQ(a.weights(), b.weights());
}

}  // namespace
}  // namespace mriscan
