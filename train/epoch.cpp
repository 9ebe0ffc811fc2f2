// One training epoch over its context; see epoch.h.
#include "train/epoch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "layers/softmax_cross_entropy.h"
#include "models/folded_mobilenet_v2.h"
#include "optim/warmup_cosine.h"

namespace mriscan {

namespace {

using Clock = std::chrono::steady_clock;

int count_correct(const Tensor& logits, const std::vector<int>& labels) {
  const int k = static_cast<int>(logits.dim(1));  // logits (B, K)
  int correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = logits.data() + i * k;
    correct += std::max_element(row, row + k) - row == labels[i];
  }
  return correct;
}

struct StepResult {
  float loss = 0.0f;  // the batch's mean (label-smoothed) loss
  int correct = 0;    // images whose largest logit is their label
};

// forward -> loss -> gradients set to none -> backward -> step on one batch. With a frozen prefix, `prefix`
// (folded) or the cache has already run it: only the trainable tail is taped.
StepResult train_step(const EpochContext& c, Tape& tape, const FoldedMobileNetV2* prefix, const Batch& batch,
                      float learning_rate) {
  const int frozen = c.config.frozen_blocks;
  tape.clear();
  Var input = make_var(prefix ? prefix->forward_blocks(batch.images, 0, frozen) : batch.images);
  Var logits = frozen > 0
                   ? c.model.forward_head(tape, c.model.forward_blocks(tape, input, frozen, MobileNetV2::kNumBlocks))
                   : c.model.forward(tape, input);
  Var loss = softmax_cross_entropy(tape, logits, batch.labels, static_cast<float>(c.config.label_smoothing));
  // Gradients set to none (PyTorch's zero_grad(set_to_none=True)): backward stores the first contribution into a
  // fresh, uninitialised buffer (Variable::grad_target, from the caching allocator) instead of adding into zeros,
  // and a parameter this pass did not reach keeps no gradient, so the optimizer skips it.
  for (const NamedParameter& p : c.trainable) p.var->grad = Tensor();
  if (c.reducer) c.reducer->prepare(tape);
  tape.backward(loss);
  if (c.reducer) c.reducer->finish();
  c.optimizer.set_learning_rate(learning_rate);
  c.optimizer.step();
  if (c.average) c.average->update();
  return {loss->value[0], count_correct(logits->value, batch.labels)};
}

void report_batch(const EpochContext& c, int epoch, int b, int batches, const EpochTotals& totals,
                  Clock::time_point start) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  c.progress({.phase = "train",
              .epoch = epoch + 1,
              .epochs = c.config.epochs,
              .batch = b + 1,
              .batches = batches,
              .loss = totals.loss_sum / totals.seen,
              .accuracy = double(totals.correct) / totals.seen,
              .images_per_second = totals.seen / elapsed,
              .eta_seconds = elapsed / (b + 1) * (batches - b - 1),
              .learning_rate = c.optimizer.learning_rate()});
}

}  // namespace

void EpochTotals::add_over_processes(Collective& world) {
  double values[3] = {loss_sum, static_cast<double>(seen), static_cast<double>(correct)};
  world.allreduce_sum(values, 3);
  loss_sum = values[0];
  seen = static_cast<int64_t>(values[1]);
  correct = static_cast<int64_t>(values[2]);
}

float scheduled_learning_rate(const TrainConfig& config, const Optimizer& optimizer, int epoch, int batch,
                              int batches) {
  if (config.lr_schedule != "cosine") return optimizer.learning_rate();
  const int64_t warmup_steps = std::llround(config.warmup_epochs * batches);
  return static_cast<float>(warmup_cosine_lr(config.learning_rate, int64_t{epoch} * batches + batch, warmup_steps,
                                             int64_t{config.epochs} * batches));
}

EpochTotals train_one_epoch(const EpochContext& c, int epoch) {
  c.model.set_training(true);
  // Data-parallel ranks draw independent masks for their different images (the same stream would correlate them).
  c.model.reseed_dropout(c.config.seed * 7919u + epoch + 1000003u * static_cast<uint32_t>(c.rank));
  const auto start = Clock::now();
  const int batches = c.batches.batches_per_epoch();
  c.batches.start_epoch(epoch);
  // A frozen prefix (eval-mode batch norm, no gradients) is a fixed function of the image, so it runs folded, as
  // inference does: one kernel per conv with BN folded in and ReLU6 in its epilogue, nothing taped. Folded anew each
  // epoch (a few ms) from the weights as they are. From the cache, batches already hold the prefix's output.
  std::optional<FoldedMobileNetV2> prefix;
  if (c.config.frozen_blocks > 0 && !c.batches.holds_prefix_output()) prefix.emplace(c.model);
  EpochTotals totals;
  Tape tape;
  for (int b = 0; b < batches; ++b) {
    if (c.cancel && c.cancel->load()) {
      totals.cancelled = true;
      return totals;
    }
    Batch batch;
    if (!c.batches.next(batch)) break;
    const float learning_rate = scheduled_learning_rate(c.config, c.optimizer, epoch, b, batches);
    const StepResult step = train_step(c, tape, prefix ? &*prefix : nullptr, batch, learning_rate);
    const int n = static_cast<int>(batch.labels.size());
    totals.loss_sum += step.loss * n;
    totals.correct += step.correct;
    totals.seen += n;
    if (c.progress) report_batch(c, epoch, b, batches, totals, start);
  }
  return totals;
}

}  // namespace mriscan
