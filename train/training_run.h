// A training run being prepared and run: its settings and processes, its data, the model and optimizer, the
// optional steps (data parallelism, weight averaging, the frozen-prefix cache, progressive resizing) and, on
// --resume, where the run left off. train_model (train/trainer.cpp) calls the steps below in the order they are
// declared, then runs the epochs. What it is not: the epoch (train/epoch.h), the end-of-epoch bookkeeping
// (train/trainer.cpp) or the final model (train/final_model.h).
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/data_loader.h"
#include "engine/collective.h"
#include "infer/inference.h"
#include "models/mobilenet_v2.h"
#include "optim/optimizer.h"
#include "optim/weight_average.h"
#include "train/batch_source.h"
#include "train/callbacks.h"
#include "train/frozen_prefix_cache.h"
#include "train/gradient_reducer.h"
#include "train/splits.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace mriscan {

struct TrainingRun {
  // Opens the run: the settings (on --resume, the run's config.json with the requested epoch count), checked
  // against each other and the processes; RUNDIR/resume/ and RUNDIR/config.json (process 0); and this thread's
  // kernel threads and matmul precision. Throws std::invalid_argument or std::runtime_error naming the problem.
  TrainingRun(const TrainConfig& requested, const ProgressCallback& requested_progress,
              const std::atomic<bool>* cancel_flag);
  TrainingRun(const TrainingRun&) = delete;  // the callbacks and batch sources refer to its members
  TrainingRun& operator=(const TrainingRun&) = delete;

  // Fixed when the run opens.
  const std::chrono::steady_clock::time_point start;
  const std::filesystem::path dir;  // RUNDIR: --out, or the run resumed
  const bool resuming;
  const TrainConfig config;
  // Data-parallel: every process holds the whole model and takes its shard of each batch; process 0 alone writes
  // files and reports progress. The run directory must be one that every process sees (it is read on resume).
  Collective& world;
  const bool writes;                      // process 0
  const ProgressCallback progress;        // empty on the other processes
  const std::atomic<bool>* const cancel;  // polled between batches; one process only

  Splits splits;                                     // load_data
  std::unique_ptr<MobileNetV2> model;                // build_model, with the three below
  std::vector<NamedParameter> trainable;             // the parameters of the unfrozen blocks
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<EpochCallbacks> callbacks;         // best checkpoint, learning rate on plateau, early stopping
  std::unique_ptr<WeightAverage> average;            // add_weight_average (--ema); null without
  std::unique_ptr<GradientReducer> reducer;          // add_gradient_reducer; null on one process
  nlohmann::json history = nlohmann::json::array();  // one summary per epoch done; resume_run restores it
  int first_epoch = 0;                               // resume_run: the epoch after the last one saved
  std::unique_ptr<FrozenPrefixCache> cache;          // fill_frozen_prefix_cache (--cache-frozen); null without
  std::unique_ptr<DataLoader> loader;                // batches_for_epoch: the loader at the current resolution
  std::unique_ptr<BatchSource> batches;              // the cache's or the loader's
  std::ofstream log;                                 // RUNDIR/train_log.jsonl (process 0), one line per epoch

  std::string resume_path() const;                  // RUNDIR/resume/state.safetensors
  std::vector<NamedBuffer> state_buffers() const;  // the model's buffers, and the averages as "ema.<name>"
  // The model's outputs on `samples`, the same on every process (train/sharded_inference.h).
  InferenceOutput infer(const std::vector<Sample>& samples);
};

// The splits (train/splits.h). Under data parallelism every process first drops the training files that do not
// decode, the same ones, so that every batch stays whole.
void load_data(TrainingRun& run);
// The model (with --weights, frozen prefix), its optimizer and end-of-epoch callbacks.
void build_model(TrainingRun& run);
// Weight averaging (--ema): a moving average of the weights, updated after every step, validated and kept.
void add_weight_average(TrainingRun& run);
// Data parallelism (more than one process): gradients averaged over the processes, in buckets during backward.
void add_gradient_reducer(TrainingRun& run);
// --resume: weights, buffers, weight average, optimizer, callbacks and history as the last saved epoch left them.
void resume_run(TrainingRun& run);
// --cache-frozen: runs the frozen prefix over the training split once; its output is every epoch's batches.
void fill_frozen_prefix_cache(TrainingRun& run);
// Opens RUNDIR/train_log.jsonl for appending (process 0).
void open_training_log(TrainingRun& run);
// Progressive resizing: the batches of `epoch`, from a loader at its training resolution (made anew when the
// resolution changes), or from the cache.
BatchSource& batches_for_epoch(TrainingRun& run, int epoch);
// The training resolution of `epoch` (0-based): low_res_size for the first low_res_epochs, the last at full size.
int epoch_image_size(const TrainConfig& config, int epoch);

}  // namespace mriscan
