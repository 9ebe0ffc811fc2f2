// One training epoch: for every batch, forward -> loss -> gradients set to none -> backward -> step, over an
// EpochContext (what the epoch reads and changes). The optional steps are fields that stay null when not asked
// for: a GradientReducer (data parallelism: gradients averaged over processes during and after backward) and a
// WeightAverage (updated after every step). What it is not: validation, the end-of-epoch callbacks or the resume
// state (train/trainer.cpp), nor where the batches come from (train/batch_source.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "engine/collective.h"
#include "models/mobilenet_v2.h"
#include "optim/optimizer.h"
#include "optim/weight_average.h"
#include "train/batch_source.h"
#include "train/gradient_reducer.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace mriscan {

struct EpochContext {
  MobileNetV2& model;
  Optimizer& optimizer;
  const std::vector<NamedParameter>& trainable;  // their gradients are dropped before each backward
  BatchSource& batches;
  const TrainConfig& config;  // batch size, frozen blocks, label smoothing, seed, epochs, learning-rate schedule
  int rank = 0;               // this process's: its own dropout stream
  GradientReducer* reducer = nullptr;  // data parallelism; null on one process
  WeightAverage* average = nullptr;    // weight averaging; null without --ema
  ProgressCallback progress = {};      // a "train" event after every batch
  const std::atomic<bool>* cancel = nullptr;  // polled before every batch
};

// One epoch's training numbers (this process's, until add_over_processes).
struct EpochTotals {
  double loss_sum = 0.0;  // sum over images of the (label-smoothed) training loss
  int64_t seen = 0, correct = 0;
  bool cancelled = false;  // `cancel` was set: the epoch stopped before a batch
  void add_over_processes(Collective& world);
};

// Trains `context.model` for epoch `epoch` (0-based) on every batch of `context.batches`.
EpochTotals train_one_epoch(const EpochContext& context, int epoch);

// The learning rate of batch `batch` of `epoch`: per step under "cosine", the optimizer's own under "plateau".
float scheduled_learning_rate(const TrainConfig& config, const Optimizer& optimizer, int epoch, int batch,
                              int batches);

}  // namespace mriscan
