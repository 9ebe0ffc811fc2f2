// The training loop: set-up (config, model, optimizer, resume), the epoch loop, then the final model.
// See trainer.h for the overall shape; the loop is `train_model` at the bottom of this file.
#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <thread>

#include "engine/kernels/matmul_precision.h"
#include "engine/parallel.h"
#include "eval/metrics.h"
#include "infer/calibration.h"
#include "infer/inference.h"
#include "io/image_io.h"
#include "layers/softmax_cross_entropy.h"
#include "models/folded_mobilenet_v2.h"
#include "models/model_file.h"
#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/sgd.h"
#include "optim/warmup_cosine.h"
#include "optim/weight_average.h"
#include "train/callbacks.h"
#include "train/final_model.h"
#include "train/frozen_prefix_cache.h"
#include "train/gradient_reducer.h"
#include "train/sharded_inference.h"
#include "train/splits.h"

namespace mriscan {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The run's configuration: the request, or on resume the run's config.json with the requested epoch count.
TrainConfig resolve_config(const TrainConfig& requested, const fs::path& run_dir) {
  TrainConfig config = requested;
  if (!requested.resume_dir.empty()) {
    std::ifstream in(run_dir / "config.json");
    if (!in) throw std::runtime_error("cannot resume: " + (run_dir / "config.json").string() + " not found");
    config = train_config_from_json(nlohmann::json::parse(in), requested);
    config.epochs = requested.epochs;
  }
  if (config.cache_frozen && (config.augment || config.frozen_blocks == 0))
    throw std::invalid_argument(
        "--cache-frozen needs --no-augment and --frozen-blocks > 0: cached activations of "
        "the frozen prefix are computed once per image, so they cannot see augmentation");
  if (config.cache_frozen && config.low_res_epochs > 0 && config.low_res_size < config.image_size)
    throw std::invalid_argument("--cache-frozen needs --low-res-epochs 0: the cached activations have one resolution");
  if (config.lr_schedule != "cosine" && config.lr_schedule != "plateau")
    throw std::invalid_argument("unknown --lr-schedule '" + config.lr_schedule + "' (cosine, plateau)");
  if (config.epochs < 1 || config.batch_size < 1) throw std::invalid_argument("epochs and batch size must be >= 1");
  if (config.low_res_epochs < 0 || config.low_res_size < 32 || config.warmup_epochs < 0)
    throw std::invalid_argument("--low-res-epochs and --warmup-epochs must be >= 0, --low-res-size >= 32");
  return config;
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& config, const std::vector<NamedParameter>& params) {
  if (config.optimizer == "sgd") {
    SgdOptions options;
    options.learning_rate = static_cast<float>(config.learning_rate);
    options.momentum = 0.9f;
    options.weight_decay = static_cast<float>(config.weight_decay);
    return std::make_unique<Sgd>(params, options);
  }
  if (config.optimizer != "adam" && config.optimizer != "adamw")
    throw std::invalid_argument("unknown optimizer '" + config.optimizer + "' (adamw, adam, sgd)");
  AdamOptions options;
  options.learning_rate = static_cast<float>(config.learning_rate);
  options.weight_decay = static_cast<float>(config.weight_decay);
  options.decoupled_weight_decay = config.optimizer == "adamw";
  return std::make_unique<Adam>(params, options);
}

int count_correct(const Tensor& logits, const std::vector<int>& labels) {
  const int k = static_cast<int>(logits.dim(1));  // logits (B, K)
  int correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = logits.data() + i * k;
    correct += std::max_element(row, row + k) - row == labels[i];
  }
  return correct;
}

// Validation loss (with the training label smoothing off: the monitored quantity is the plain NLL) and accuracy.
std::pair<double, double> validation_loss_accuracy(const InferenceOutput& out) {
  Metrics metrics = compute_metrics(apply_temperature(out.logits, 1.0), out.labels);
  return {metrics.log_loss, metrics.accuracy};
}

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

// Under data parallelism a file that fails to decode would leave one rank's shard short (unequal shards, and a
// rank whose whole shard failed would skip a batch the others train on): every rank drops such files first, the
// same ones, so every batch stays whole. Decoding the training split once costs seconds.
std::vector<Sample> readable_samples(const std::vector<Sample>& samples) {
  std::vector<Sample> readable;
  for (const Sample& sample : samples) {
    try {
      load_image(sample.path);
      readable.push_back(sample);
    } catch (const ImageError&) {
    }
  }
  return readable;
}

// Shuffled, augmented (unless switched off) batches; the last partial batch is dropped when there is more than one.
// Under data parallelism, this rank's shard of every batch.
DataLoaderConfig training_loader_options(const TrainConfig& config, int image_size, size_t train_size,
                                         const Collective& world) {
  DataLoaderConfig options;
  options.batch_size = config.batch_size;
  options.image_size = image_size;
  options.shuffle = true;
  options.drop_last = train_size > static_cast<size_t>(config.batch_size);
  options.augment = AugmentConfig{.enabled = config.augment};
  options.seed = config.seed;
  options.shard_index = world.rank();
  options.shard_count = world.size();
  // Inline (data_loader.h) when the kernel threads take every CPU: a background worker would have to preempt one of
  // them mid-kernel. Measured on 2 cores, five alternating one-epoch runs: 1.13x the epoch throughput (median of the
  // pairs; docs/results/2026-12-05-pytorch-comparison.md). With CPUs to spare (SMT siblings, a smaller --threads),
  // workers run on those.
  const unsigned cpus = std::thread::hardware_concurrency();
  options.num_workers = cpus == 0 || static_cast<unsigned>(num_threads()) >= cpus ? 0 : 2;
  return options;
}

// The training resolution of `epoch` (0-based) under progressive resizing; the last epoch is at full size.
int epoch_image_size(const TrainConfig& config, int epoch) {
  const bool low_res = epoch < config.low_res_epochs && epoch < config.epochs - 1;
  return low_res ? std::min(config.low_res_size, config.image_size) : config.image_size;
}

// The learning rate of batch `batch` of `epoch`: per step under "cosine", the optimizer's own under "plateau".
float scheduled_learning_rate(const TrainConfig& config, const Optimizer& optimizer, int epoch, int batch,
                              int batches) {
  if (config.lr_schedule != "cosine") return optimizer.learning_rate();
  const int64_t warmup_steps = std::llround(config.warmup_epochs * batches);
  return static_cast<float>(warmup_cosine_lr(config.learning_rate, int64_t{epoch} * batches + batch, warmup_steps,
                                             int64_t{config.epochs} * batches));
}

// One epoch's training numbers (this process's, until add_over_processes).
struct EpochTotals {
  double loss_sum = 0.0;  // sum over images of the (label-smoothed) training loss
  int64_t seen = 0, correct = 0;
  bool cancelled = false;
  void add_over_processes(Collective& world) {
    double values[3] = {loss_sum, static_cast<double>(seen), static_cast<double>(correct)};
    world.allreduce_sum(values, 3);
    loss_sum = values[0];
    seen = static_cast<int64_t>(values[1]);
    correct = static_cast<int64_t>(values[2]);
  }
};

// Where an epoch's batches come from: the image loader, or the frozen-prefix cache.
struct BatchSource {
  DataLoader* loader;
  const FrozenPrefixCache* cache;
  int batches(int batch_size) const {
    return cache ? cache->batches_per_epoch(batch_size) : loader->batches_per_epoch();
  }
  bool next(int epoch, int index, int batch_size, Batch& batch) {
    if (cache) return cache->batch(epoch, index, batch_size, batch);
    std::optional<Batch> next = loader->next();
    if (next) batch = std::move(*next);
    return next.has_value();
  }
};

// forward -> loss -> zero_grad -> backward -> step, for every batch of one epoch.
// With a reducer (data-parallel), the gradients are averaged over processes during and after backward.
// With a weight average, it is updated after every step.
EpochTotals train_one_epoch(MobileNetV2& model, Optimizer& optimizer, const std::vector<NamedParameter>& trainable,
                            GradientReducer* reducer, WeightAverage* average, int world_rank, BatchSource& source,
                            const TrainConfig& config, int epoch, const ProgressCallback& progress,
                            const std::atomic<bool>* cancel) {
  model.set_training(true);
  // Data-parallel ranks draw independent masks for their different images (the same stream would correlate them).
  model.reseed_dropout(config.seed * 7919u + epoch + 1000003u * static_cast<uint32_t>(world_rank));
  const auto start = Clock::now();
  const int batches = source.batches(config.batch_size);
  source.loader->start_epoch(epoch);
  EpochTotals totals;
  // A frozen prefix (eval-mode batch norm, no gradients) is a fixed function of the image, so it runs folded, as
  // inference does: one kernel per conv with BN folded in and ReLU6 in its epilogue, nothing taped. Folded anew each
  // epoch (a few ms) from the weights as they are. With the cache, batches already hold the prefix's output.
  const int frozen = config.frozen_blocks;
  std::optional<FoldedMobileNetV2> prefix;
  if (frozen > 0 && !source.cache) prefix.emplace(model);
  Tape tape;
  for (int b = 0; b < batches; ++b) {
    if (cancel && cancel->load()) {
      totals.cancelled = true;
      return totals;
    }
    Batch batch;
    if (!source.next(epoch, b, config.batch_size, batch)) break;
    tape.clear();
    Var input = make_var(prefix ? prefix->forward_blocks(batch.images, 0, frozen) : batch.images);
    // With a frozen prefix, the input is its output: only the trainable tail is taped.
    Var logits = frozen > 0
                     ? model.forward_head(tape, model.forward_blocks(tape, input, frozen, MobileNetV2::kNumBlocks))
                     : model.forward(tape, input);
    Var loss = softmax_cross_entropy(tape, logits, batch.labels, static_cast<float>(config.label_smoothing));
    // zero_grad as PyTorch's set_to_none: dropping the buffers makes backward allocate zeroed ones on first
    // accumulation (from the caching allocator, engine/tensor.cpp), and a parameter this pass did not reach keeps
    // no gradient, so the optimizer skips it.
    for (const NamedParameter& p : trainable) p.var->grad = Tensor();
    if (reducer) reducer->prepare(tape);
    tape.backward(loss);
    if (reducer) reducer->finish();
    optimizer.set_learning_rate(scheduled_learning_rate(config, optimizer, epoch, b, batches));
    optimizer.step();
    if (average) average->update();

    const int n = static_cast<int>(batch.labels.size());
    totals.loss_sum += loss->value[0] * n;
    totals.correct += count_correct(logits->value, batch.labels);
    totals.seen += n;
    if (progress) {
      const double elapsed = seconds_since(start);
      progress({.phase = "train",
                .epoch = epoch + 1,
                .epochs = config.epochs,
                .batch = b + 1,
                .batches = batches,
                .loss = totals.loss_sum / totals.seen,
                .accuracy = double(totals.correct) / totals.seen,
                .images_per_second = totals.seen / elapsed,
                .eta_seconds = elapsed / (b + 1) * (batches - b - 1),
                .learning_rate = optimizer.learning_rate()});
    }
  }
  return totals;
}

}  // namespace

TrainResult train_model(const TrainConfig& requested, const ProgressCallback& requested_progress,
                        const std::atomic<bool>* cancel) {
  // --- configuration, run directory, processes ---
  const auto run_start = Clock::now();
  const fs::path run_dir = requested.resume_dir.empty() ? fs::path(requested.out_dir) : fs::path(requested.resume_dir);
  if (run_dir.empty()) throw std::invalid_argument("train: an output directory is required (--out)");
  const bool resuming = !requested.resume_dir.empty();
  const TrainConfig config = resolve_config(requested, run_dir);
  // Data-parallel: every process holds the whole model and takes its shard of each batch; process 0 alone writes
  // files and reports progress. The run directory must be one that every process sees (it is read on resume).
  Collective& world = config.world ? *config.world : single_process();
  const bool writes = world.rank() == 0;
  const ProgressCallback progress = writes ? requested_progress : ProgressCallback();
  if (cancel && world.size() > 1)
    throw std::invalid_argument("train: cancellation is for one process (a rank stopping alone would stall the rest)");
  if (config.batch_size % world.size() != 0)
    throw std::invalid_argument("--batch " + std::to_string(config.batch_size) + " must be a multiple of the " +
                                std::to_string(world.size()) + " processes (each takes an equal shard)");
  if (writes) fs::create_directories(run_dir / "resume");
  if (writes && !resuming) std::ofstream(run_dir / "config.json") << train_config_to_json(config).dump(2) << "\n";
  // A budget for this thread only (engine/parallel.h), not the process-wide count: the server retrains on a worker
  // thread with 1 thread while its predictions keep every core.
  if (config.threads > 0) set_thread_num_threads(config.threads);
  set_thread_matmul_precision(parse_matmul_precision(config.precision));  // this thread, as the budget above
  Splits splits = load_splits(config);
  if (world.size() > 1) splits.train = readable_samples(splits.train);
  // Equal shards make the average of the processes' gradients that of the whole batch: only full batches.
  if (world.size() > 1 && splits.train.size() < static_cast<size_t>(config.batch_size))
    throw std::invalid_argument("data-parallel training needs at least --batch (" + std::to_string(config.batch_size) +
                                ") training images, found " + std::to_string(splits.train.size()));

  // --- model, optimizer, callbacks, resume ---
  MobileNetV2 model({.width_mult = config.width_mult,
                     .num_classes = static_cast<int>(splits.class_names.size()),
                     .seed = config.seed});
  if (!config.weights.empty()) load_weights_into(model, config.weights);
  model.freeze_blocks(config.frozen_blocks);
  if (config.sync_batch_norm) model.set_collective(&world);
  std::vector<NamedParameter> trainable;
  for (const NamedParameter& p : model.parameters())
    if (p.var->requires_grad) trainable.push_back(p);
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config, trainable);
  // The weight average, when asked for, covers what changes: the trainable parameters and every buffer.
  std::unique_ptr<WeightAverage> average;
  if (config.ema_decay > 0.0) average = std::make_unique<WeightAverage>(trainable, model.buffers(), config.ema_decay);
  // The resume state's buffers: the model's, and the averages as "ema.<name>".
  auto state_buffers = [&] {
    std::vector<NamedBuffer> buffers = model.buffers();
    if (average)
      for (NamedBuffer& b : average->state_buffers()) buffers.push_back(std::move(b));
    return buffers;
  };
  // The best model as a model file. (save_model_file is atomic on its own; the checkpoint's rename then
  // publishes it at best.safetensors.)
  auto save_best = [&](const std::string& tmp_path, int epoch) {
    save_model_file(tmp_path, model, config.image_size, splits.class_names,
                    {{"best_epoch", std::to_string(epoch + 1)}});
  };
  EpochCallbacks callbacks(config, (run_dir / "best.safetensors").string(), save_best, writes);
  std::unique_ptr<GradientReducer> reducer;
  if (world.size() > 1) {
    const double bucket_bytes = config.bucket_mb > 0.0 ? config.bucket_mb * (1 << 20) : 1e18;  // 0: one bucket
    reducer = std::make_unique<GradientReducer>(world, trainable, static_cast<size_t>(bucket_bytes));
  }
  auto infer = [&](const std::vector<Sample>& samples) {
    return run_inference_sharded(world, model, samples, config.image_size, config.batch_size);
  };
  const std::string resume_path = (run_dir / "resume" / "state.safetensors").string();
  nlohmann::json history = nlohmann::json::array();
  int first_epoch = 0;
  if (resuming) {
    TrainingState state = load_training_state(resume_path, model.parameters(), state_buffers());
    if (average) average->set_updates(state.trainer_state.at("ema_updates").get<int64_t>());
    optimizer->load_state(state.optimizer);
    callbacks.load_state(state.trainer_state);
    history = state.trainer_state.at("history");
    first_epoch = state.trainer_state.at("epoch").get<int>() + 1;
  }

  // --- data ---
  std::unique_ptr<FrozenPrefixCache> cache;
  if (config.cache_frozen) {
    auto report = [&](int done, int total) {
      if (progress) progress({.phase = "cache", .batch = done, .batches = total});
    };
    const FrozenPrefixOptions cache_options{.frozen_blocks = config.frozen_blocks,
                                            .image_size = config.image_size,
                                            .batch_size = config.batch_size,
                                            .seed = config.seed,
                                            .shard_index = world.rank(),
                                            .shard_count = world.size()};
    cache = std::make_unique<FrozenPrefixCache>(model, splits.train, cache_options, report);
  }
  // One loader per training resolution (progressive resizing), made when the epoch loop first needs it.
  std::unique_ptr<DataLoader> train_loader;
  BatchSource source{nullptr, cache.get()};
  std::ofstream log;
  if (writes) log.open(run_dir / "train_log.jsonl", std::ios::app);

  // --- the epoch loop: train, validate, callbacks, resume state ---
  TrainResult result;
  for (int epoch = first_epoch; epoch < config.epochs && !callbacks.should_stop(); ++epoch) {
    const auto epoch_start = Clock::now();
    const CollectiveTimes times_before = world.times;
    const int image_size = epoch_image_size(config, epoch);
    if (!train_loader || train_loader->config().image_size != image_size) {
      train_loader.reset();  // its workers stop before the next loader's start
      train_loader = std::make_unique<DataLoader>(
          splits.train, training_loader_options(config, image_size, splits.train.size(), world));
      source.loader = train_loader.get();
    }
    EpochTotals totals = train_one_epoch(model, *optimizer, trainable, reducer.get(), average.get(), world.rank(),
                                         source, config, epoch, progress, cancel);
    if (totals.cancelled) {
      result.cancelled = true;
      return result;
    }
    const double exposed_allreduce_seconds = world.times.wait_seconds - times_before.wait_seconds;
    const double batch_norm_sync_seconds = world.times.blocking_seconds - times_before.blocking_seconds;
    totals.add_over_processes(world);
    if (world.size() > 1 && !config.sync_batch_norm) average_buffers(world, model);
    const double train_seconds = seconds_since(epoch_start);
    // With a weight average, the average is what is validated and, when best, saved; then the raw weights return.
    if (average) average->swap();
    InferenceOutput val = infer(splits.validation);
    auto [val_loss, val_accuracy] = validation_loss_accuracy(val);
    const float lr_used = optimizer->learning_rate();
    const bool is_best = callbacks.on_epoch_end(epoch, static_cast<float>(val_loss), *optimizer);
    if (average) average->swap();
    const double seen = static_cast<double>(std::max<int64_t>(totals.seen, 1));
    nlohmann::json summary = {{"epoch", epoch + 1},
                              {"train_loss", totals.loss_sum / seen},
                              {"train_accuracy", totals.correct / seen},
                              {"val_loss", val_loss},
                              {"val_accuracy", val_accuracy},
                              {"learning_rate", lr_used},
                              {"train_seconds", train_seconds},
                              {"images_per_second", totals.seen / train_seconds},
                              {"image_size", image_size},
                              {"data_wait_seconds", cache ? 0.0 : train_loader->wait_seconds()},
                              {"epoch_seconds", seconds_since(epoch_start)},
                              {"best", is_best}};
    if (world.size() > 1)
      summary["processes"] = {{"count", world.size()},
                              {"allreduce_wait_seconds", exposed_allreduce_seconds},
                              {"batch_norm_sync_seconds", batch_norm_sync_seconds}};
    history.push_back(summary);
    if (writes) log << summary.dump() << "\n" << std::flush;
    nlohmann::json trainer_state = callbacks.state();
    trainer_state["epoch"] = epoch;
    trainer_state["history"] = history;
    if (average) trainer_state["ema_updates"] = average->updates();
    if (writes)
      save_training_state(resume_path, model.parameters(), state_buffers(), optimizer->state(), trainer_state);
    if (progress) progress({.phase = "epoch", .epoch = epoch + 1, .epochs = config.epochs, .epoch_summary = summary});
  }

  // --- the best model, calibrated, with its metrics ---
  result.weights_checksum = checksum(model);  // the weights as trained, before the best epoch's are loaded
  double written = 1.0;  // a barrier: process 0 has written the best checkpoint before the others read it
  world.allreduce_sum(&written, 1);
  if (!fs::exists(callbacks.best_path())) throw std::runtime_error("training produced no checkpoint");
  load_weights_into(model, callbacks.best_path());
  result.model_path = (run_dir / "model.safetensors").string();
  const FinalModelInputs inputs{.config = config,
                                .splits = splits,
                                .history = history,
                                .best_epoch = callbacks.best_epoch() + 1,
                                .infer = infer,
                                .write_files = writes,
                                .train_seconds = seconds_since(run_start)};
  result.metrics = write_final_model(model, inputs, run_dir.string(), result.model_path, [&](const char* phase) {
    if (progress) progress({.phase = phase});
  });
  if (progress) progress({.phase = "done"});
  return result;
}

}  // namespace mriscan
