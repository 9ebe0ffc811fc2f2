// Preparing a training run: settings, processes, data, model, optimizer, resume, and the optional steps' objects.
// See training_run.h.
#include "train/training_run.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "engine/kernels/matmul_precision.h"
#include "engine/parallel.h"
#include "io/image_io.h"
#include "models/model_file.h"
#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/sgd.h"
#include "train/sharded_inference.h"

namespace mriscan {

namespace {

namespace fs = std::filesystem;

fs::path run_directory(const TrainConfig& requested) {
  const fs::path dir = requested.resume_dir.empty() ? fs::path(requested.out_dir) : fs::path(requested.resume_dir);
  if (dir.empty()) throw std::invalid_argument("train: an output directory is required (--out)");
  return dir;
}

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

void check_processes(const TrainConfig& config, const Collective& world, const std::atomic<bool>* cancel) {
  if (cancel && world.size() > 1)
    throw std::invalid_argument("train: cancellation is for one process (a rank stopping alone would stall the rest)");
  if (config.batch_size % world.size() != 0)
    throw std::invalid_argument("--batch " + std::to_string(config.batch_size) + " must be a multiple of the " +
                                std::to_string(world.size()) + " processes (each takes an equal shard)");
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

}  // namespace

TrainingRun::TrainingRun(const TrainConfig& requested, const ProgressCallback& requested_progress,
                         const std::atomic<bool>* cancel_flag)
    : start(std::chrono::steady_clock::now()),
      dir(run_directory(requested)),
      resuming(!requested.resume_dir.empty()),
      config(resolve_config(requested, dir)),
      world(config.world ? *config.world : single_process()),
      writes(world.rank() == 0),
      progress(writes ? requested_progress : ProgressCallback()),
      cancel(cancel_flag) {
  check_processes(config, world, cancel);
  if (writes) fs::create_directories(dir / "resume");
  if (writes && !resuming) std::ofstream(dir / "config.json") << train_config_to_json(config).dump(2) << "\n";
  // A budget for this thread only (engine/parallel.h), not the process-wide count: the server retrains on a worker
  // thread with 1 thread while its predictions keep every core.
  if (config.threads > 0) set_thread_num_threads(config.threads);
  set_thread_matmul_precision(parse_matmul_precision(config.precision));  // this thread, as the budget above
}

std::string TrainingRun::resume_path() const { return (dir / "resume" / "state.safetensors").string(); }

std::vector<NamedBuffer> TrainingRun::state_buffers() const {
  std::vector<NamedBuffer> buffers = model->buffers();
  if (average)
    for (NamedBuffer& b : average->state_buffers()) buffers.push_back(std::move(b));
  return buffers;
}

InferenceOutput TrainingRun::infer(const std::vector<Sample>& samples) {
  return run_inference_sharded(world, *model, samples, config.image_size, config.batch_size);
}

void load_data(TrainingRun& run) {
  run.splits = load_splits(run.config);
  if (run.world.size() == 1) return;
  run.splits.train = readable_samples(run.splits.train);
  // Equal shards make the average of the processes' gradients that of the whole batch: only full batches.
  if (run.splits.train.size() < static_cast<size_t>(run.config.batch_size))
    throw std::invalid_argument("data-parallel training needs at least --batch (" +
                                std::to_string(run.config.batch_size) + ") training images, found " +
                                std::to_string(run.splits.train.size()));
}

void build_model(TrainingRun& run) {
  const TrainConfig& config = run.config;
  const int num_classes = static_cast<int>(run.splits.class_names.size());
  run.model = std::make_unique<MobileNetV2>(
      MobileNetV2Config{.width_mult = config.width_mult, .num_classes = num_classes, .seed = config.seed});
  MobileNetV2& model = *run.model;
  if (!config.weights.empty()) load_weights_into(model, config.weights);
  model.freeze_blocks(config.frozen_blocks);
  if (config.sync_batch_norm) model.set_collective(&run.world);
  for (const NamedParameter& p : model.parameters())
    if (p.var->requires_grad) run.trainable.push_back(p);
  run.optimizer = make_optimizer(config, run.trainable);
  // The best model as a model file. (save_model_file is atomic on its own; the checkpoint's rename then
  // publishes it at best.safetensors.)
  auto save_best = [&run](const std::string& tmp_path, int epoch) {
    save_model_file(tmp_path, *run.model, run.config.image_size, run.splits.class_names,
                    {{"best_epoch", std::to_string(epoch + 1)}});
  };
  run.callbacks =
      std::make_unique<EpochCallbacks>(config, (run.dir / "best.safetensors").string(), save_best, run.writes);
}

void add_weight_average(TrainingRun& run) {
  // It covers what changes: the trainable parameters and every buffer.
  run.average = std::make_unique<WeightAverage>(run.trainable, run.model->buffers(), run.config.ema_decay);
}

void add_gradient_reducer(TrainingRun& run) {
  const double bucket_bytes = run.config.bucket_mb > 0.0 ? run.config.bucket_mb * (1 << 20) : 1e18;  // 0: one bucket
  run.reducer = std::make_unique<GradientReducer>(run.world, run.trainable, static_cast<size_t>(bucket_bytes));
}

void resume_run(TrainingRun& run) {
  TrainingState state = load_training_state(run.resume_path(), run.model->parameters(), run.state_buffers());
  if (run.average) run.average->set_updates(state.trainer_state.at("ema_updates").get<int64_t>());
  run.optimizer->load_state(state.optimizer);
  run.callbacks->load_state(state.trainer_state);
  run.history = state.trainer_state.at("history");
  run.first_epoch = state.trainer_state.at("epoch").get<int>() + 1;
}

void fill_frozen_prefix_cache(TrainingRun& run) {
  auto report = [&run](int done, int total) {
    if (run.progress) run.progress({.phase = "cache", .batch = done, .batches = total});
  };
  const FrozenPrefixOptions options{.frozen_blocks = run.config.frozen_blocks,
                                    .image_size = run.config.image_size,
                                    .batch_size = run.config.batch_size,
                                    .seed = run.config.seed,
                                    .shard_index = run.world.rank(),
                                    .shard_count = run.world.size()};
  run.cache = std::make_unique<FrozenPrefixCache>(*run.model, run.splits.train, options, report);
  run.batches = std::make_unique<CachedBatches>(*run.cache, run.config.batch_size);
}

void open_training_log(TrainingRun& run) {
  if (run.writes) run.log.open(run.dir / "train_log.jsonl", std::ios::app);
}

int epoch_image_size(const TrainConfig& config, int epoch) {
  const bool low_res = epoch < config.low_res_epochs && epoch < config.epochs - 1;
  return low_res ? std::min(config.low_res_size, config.image_size) : config.image_size;
}

BatchSource& batches_for_epoch(TrainingRun& run, int epoch) {
  if (run.cache) return *run.batches;  // one resolution (the run refuses --cache-frozen with progressive resizing)
  const int image_size = epoch_image_size(run.config, epoch);
  if (!run.loader || run.loader->config().image_size != image_size) {
    run.batches.reset();
    run.loader.reset();  // its workers stop before the next loader's start
    run.loader = std::make_unique<DataLoader>(
        run.splits.train, training_loader_options(run.config, image_size, run.splits.train.size(), run.world));
    run.batches = std::make_unique<LoaderBatches>(*run.loader);
  }
  return *run.batches;
}

}  // namespace mriscan
