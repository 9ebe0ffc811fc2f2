// The training loop: prepare the run, train and validate epoch after epoch, then write the final model. See
// trainer.h for the overall shape; the story is `train_model` at the bottom of this file, the preparation is
// train/training_run.h and one epoch's batches are train/epoch.h.
#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "eval/metrics.h"
#include "infer/calibration.h"
#include "models/model_file.h"
#include "optim/checkpoint.h"
#include "train/epoch.h"
#include "train/final_model.h"
#include "train/training_run.h"

namespace mriscan {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Sum of every parameter and buffer, in double.
double checksum(MobileNetV2& model) {
  double sum = 0.0;
  for (const NamedParameter& p : model.parameters())
    for (int64_t i = 0; i < p.var->value.numel(); ++i) sum += p.var->value[i];
  for (const NamedBuffer& b : model.buffers())
    for (int64_t i = 0; i < b.tensor.numel(); ++i) sum += b.tensor[i];
  return sum;
}

// With each rank's own batch-norm statistics (--no-sync-bn) the running averages drift apart: make them the
// ranks' mean, so every rank validates and saves the same model (DistributedDataParallel broadcasts them).
void average_buffers(Collective& world, MobileNetV2& model) {
  for (NamedBuffer& b : model.buffers()) {
    Tensor buffer = b.tensor;  // shares the layer's storage
    world.allreduce_sum(buffer.data(), buffer.numel());
    for (int64_t i = 0; i < buffer.numel(); ++i) buffer[i] /= static_cast<float>(world.size());
  }
}

// Data parallelism, after an epoch: the totals of every process added up (a no-op on one process), and the
// batch-norm running averages made the same on every process.
void agree_over_processes(TrainingRun& run, EpochTotals& totals) {
  totals.add_over_processes(run.world);
  if (run.world.size() > 1 && !run.config.sync_batch_norm) average_buffers(run.world, *run.model);
}

// An epoch's training as the summary reports it.
struct TrainedEpoch {
  Clock::time_point start;
  int image_size = 0;
  EpochTotals totals = {};  // over every process
  double train_seconds = 0.0, data_wait_seconds = 0.0;
  double allreduce_wait_seconds = 0.0, batch_norm_sync_seconds = 0.0;  // data parallelism: exposed waits
};

// The epoch's batches at its resolution (progressive resizing), one epoch of steps, then the processes' agreement
// (data parallelism).
TrainedEpoch train_epoch(TrainingRun& run, int epoch) {
  TrainedEpoch trained{.start = Clock::now(), .image_size = epoch_image_size(run.config, epoch)};
  const CollectiveTimes times_before = run.world.times;
  BatchSource& batches = batches_for_epoch(run, epoch);
  const EpochContext context{.model = *run.model,
                             .optimizer = *run.optimizer,
                             .trainable = run.trainable,
                             .batches = batches,
                             .config = run.config,
                             .rank = run.world.rank(),
                             .reducer = run.reducer.get(),
                             .average = run.average.get(),
                             .progress = run.progress,
                             .cancel = run.cancel};
  trained.totals = train_one_epoch(context, epoch);
  if (trained.totals.cancelled) return trained;
  trained.data_wait_seconds = batches.wait_seconds();
  trained.allreduce_wait_seconds = run.world.times.wait_seconds - times_before.wait_seconds;
  trained.batch_norm_sync_seconds = run.world.times.blocking_seconds - times_before.blocking_seconds;
  agree_over_processes(run, trained.totals);
  trained.train_seconds = seconds_since(trained.start);
  return trained;
}

struct Validation {
  double loss = 0.0, accuracy = 0.0;  // the plain NLL (no label smoothing) and accuracy on the validation split
  float learning_rate = 0.0f;         // the rate the epoch ended with, before the callbacks change it
  bool best = false;                  // a new best: saved as RUNDIR/best.safetensors
};

// Validation, then the callbacks on its loss. With a weight average, the average is what is validated and, when
// best, saved; then the raw weights return.
Validation validate_and_decide(TrainingRun& run, int epoch) {
  if (run.average) run.average->swap();
  const InferenceOutput out = run.infer(run.splits.validation);
  const Metrics metrics = compute_metrics(apply_temperature(out.logits, 1.0), out.labels);
  Validation validation{.loss = metrics.log_loss, .accuracy = metrics.accuracy};
  validation.learning_rate = run.optimizer->learning_rate();
  validation.best = run.callbacks->on_epoch_end(epoch, static_cast<float>(validation.loss), *run.optimizer);
  if (run.average) run.average->swap();
  return validation;
}

nlohmann::json epoch_summary(const TrainingRun& run, int epoch, const TrainedEpoch& trained, const Validation& val) {
  const EpochTotals& totals = trained.totals;
  const double seen = static_cast<double>(std::max<int64_t>(totals.seen, 1));
  nlohmann::json summary = {{"epoch", epoch + 1},
                            {"train_loss", totals.loss_sum / seen},
                            {"train_accuracy", totals.correct / seen},
                            {"val_loss", val.loss},
                            {"val_accuracy", val.accuracy},
                            {"learning_rate", val.learning_rate},
                            {"train_seconds", trained.train_seconds},
                            {"images_per_second", totals.seen / trained.train_seconds},
                            {"image_size", trained.image_size},
                            {"data_wait_seconds", trained.data_wait_seconds},
                            {"epoch_seconds", seconds_since(trained.start)},
                            {"best", val.best}};
  if (run.world.size() > 1)
    summary["processes"] = {{"count", run.world.size()},
                            {"allreduce_wait_seconds", trained.allreduce_wait_seconds},
                            {"batch_norm_sync_seconds", trained.batch_norm_sync_seconds}};
  return summary;
}

// Everything --resume needs to continue after `epoch`: weights, buffers, averages, optimizer, callbacks, history.
void save_resume_state(TrainingRun& run, int epoch) {
  nlohmann::json trainer_state = run.callbacks->state();
  trainer_state["epoch"] = epoch;
  trainer_state["history"] = run.history;
  if (run.average) trainer_state["ema_updates"] = run.average->updates();
  if (run.writes)
    save_training_state(run.resume_path(), run.model->parameters(), run.state_buffers(), run.optimizer->state(),
                        trainer_state);
}

// Validate, decide, and record the epoch: its summary in the history and RUNDIR/train_log.jsonl, the resume state.
void end_epoch(TrainingRun& run, int epoch, const TrainedEpoch& trained) {
  const Validation validation = validate_and_decide(run, epoch);
  const nlohmann::json summary = epoch_summary(run, epoch, trained, validation);
  run.history.push_back(summary);
  if (run.writes) run.log << summary.dump() << "\n" << std::flush;
  save_resume_state(run, epoch);
  if (run.progress)
    run.progress({.phase = "epoch", .epoch = epoch + 1, .epochs = run.config.epochs, .epoch_summary = summary});
}

// What a cancelled run returns: nothing written since its last epoch, nothing to register.
TrainResult cancelled_run() {
  TrainResult result;
  result.cancelled = true;
  return result;
}

// The best epoch's model, calibrated and evaluated, written with its metrics and report (train/final_model.h).
TrainResult finish_run(TrainingRun& run) {
  TrainResult result;
  result.weights_checksum = checksum(*run.model);  // the weights as trained, before the best epoch's are loaded
  double written = 1.0;  // a barrier: process 0 has written the best checkpoint before the others read it
  run.world.allreduce_sum(&written, 1);
  if (!fs::exists(run.callbacks->best_path())) throw std::runtime_error("training produced no checkpoint");
  load_weights_into(*run.model, run.callbacks->best_path());
  result.model_path = (run.dir / "model.safetensors").string();
  const FinalModelInputs inputs{.config = run.config,
                                .splits = run.splits,
                                .history = run.history,
                                .best_epoch = run.callbacks->best_epoch() + 1,
                                .infer = [&run](const std::vector<Sample>& samples) { return run.infer(samples); },
                                .write_files = run.writes,
                                .train_seconds = seconds_since(run.start)};
  result.metrics = write_final_model(*run.model, inputs, run.dir.string(), result.model_path, [&](const char* phase) {
    if (run.progress) run.progress({.phase = phase});
  });
  if (run.progress) run.progress({.phase = "done"});
  return result;
}

}  // namespace

TrainResult train_model(const TrainConfig& requested, const ProgressCallback& progress,
                        const std::atomic<bool>* cancel) {
  // Prepare: settings and processes, data, model and optimizer, the optional steps the run asks for, and where a
  // resumed run left off.
  TrainingRun run(requested, progress, cancel);
  load_data(run);
  build_model(run);
  if (run.config.ema_decay > 0.0) add_weight_average(run);
  if (run.world.size() > 1) add_gradient_reducer(run);
  if (run.resuming) resume_run(run);
  if (run.config.cache_frozen) fill_frozen_prefix_cache(run);
  open_training_log(run);

  // Each epoch: train on every batch, then validate, let the callbacks decide (best checkpoint, learning rate,
  // early stopping) and save the resume state.
  for (int epoch = run.first_epoch; epoch < run.config.epochs && !run.callbacks->should_stop(); ++epoch) {
    const TrainedEpoch trained = train_epoch(run, epoch);
    if (trained.totals.cancelled) return cancelled_run();
    end_epoch(run, epoch, trained);
  }

  // Finish: the best epoch's model, calibrated, evaluated and written with its report.
  return finish_run(run);
}

}  // namespace mriscan
