// The training loop: data, model, optimizer, callbacks, checkpoints, calibration, final evaluation.
// See trainer.h for the overall shape; the epoch loop is `train_model` at the bottom of this file.
#include "models/trainer.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "engine/parallel.h"
#include "layers/softmax_cross_entropy.h"
#include "models/calibration.h"
#include "models/data_loader.h"
#include "models/frozen_prefix_cache.h"
#include "models/inference.h"
#include "models/metrics.h"
#include "models/model_file.h"
#include "models/ood.h"
#include "models/run_report.h"
#include "models/safetensors.h"
#include "optim/adam.h"
#include "optim/early_stopping.h"
#include "optim/reduce_lr_on_plateau.h"
#include "optim/sgd.h"

namespace mriscan {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

nlohmann::json config_to_json(const TrainConfig& c) {
  return {{"data_dir", c.data_dir}, {"weights", c.weights}, {"epochs", c.epochs}, {"batch_size", c.batch_size},
          {"image_size", c.image_size}, {"width_mult", c.width_mult}, {"optimizer", c.optimizer},
          {"learning_rate", c.learning_rate}, {"weight_decay", c.weight_decay},
          {"label_smoothing", c.label_smoothing}, {"frozen_blocks", c.frozen_blocks},
          {"cache_frozen", c.cache_frozen}, {"augment", c.augment}, {"val_fraction", c.val_fraction},
          {"patience", c.patience}, {"lr_patience", c.lr_patience}, {"lr_factor", c.lr_factor}, {"seed", c.seed},
          {"max_samples_per_class", c.max_samples_per_class}, {"evaluate_test", c.evaluate_test}};
}

TrainConfig config_from_json(const nlohmann::json& j, TrainConfig c) {
  c.data_dir = j.at("data_dir");
  c.weights = j.at("weights");
  c.batch_size = j.at("batch_size");
  c.image_size = j.at("image_size");
  c.width_mult = j.at("width_mult");
  c.optimizer = j.at("optimizer");
  c.learning_rate = j.at("learning_rate");
  c.weight_decay = j.at("weight_decay");
  c.label_smoothing = j.at("label_smoothing");
  c.frozen_blocks = j.at("frozen_blocks");
  c.cache_frozen = j.at("cache_frozen");
  c.augment = j.at("augment");
  c.val_fraction = j.at("val_fraction");
  c.patience = j.at("patience");
  c.lr_patience = j.at("lr_patience");
  c.lr_factor = j.at("lr_factor");
  c.seed = j.at("seed");
  c.max_samples_per_class = j.at("max_samples_per_class");
  c.evaluate_test = j.at("evaluate_test");
  return c;
}

// Training, validation and (optional) test samples; validation is carved out of Training, stratified and seeded.
struct Splits {
  std::vector<std::string> class_names;
  std::vector<Sample> train, validation, test;
  std::vector<std::string> warnings;
};

std::vector<Sample> cap_per_class(const std::vector<Sample>& samples, int num_classes, int cap) {
  if (cap <= 0) return samples;
  std::vector<int> taken(num_classes, 0);
  std::vector<Sample> kept;
  for (const Sample& s : samples)
    if (taken[s.label]++ < cap) kept.push_back(s);
  return kept;
}

Splits load_splits(const TrainConfig& config) {
  const fs::path root(config.data_dir);
  const bool has_split_folders = fs::is_directory(root / "Training");
  Dataset training = scan_dataset((has_split_folders ? root / "Training" : root).string());
  Splits splits;
  splits.class_names = training.class_names;
  splits.warnings = training.warnings;
  const int k = static_cast<int>(splits.class_names.size());
  // Cap before splitting so quick runs keep the stratification; the cap uses the split seed's order.
  auto [train, validation] = stratified_split(training.samples, k, config.val_fraction, config.seed);
  const int val_cap = config.max_samples_per_class > 0
                          ? std::max(1, static_cast<int>(config.max_samples_per_class * config.val_fraction))
                          : 0;
  splits.train = cap_per_class(train, k, config.max_samples_per_class);
  splits.validation = cap_per_class(validation, k, val_cap);
  for (const Sample& extra : config.extra_training_samples) {
    if (extra.label < 0 || extra.label >= k) throw std::runtime_error("extra sample with invalid label: " + extra.path);
    splits.train.push_back(extra);
  }
  if (config.evaluate_test && has_split_folders && fs::is_directory(root / "Testing"))
    splits.test = cap_per_class(scan_dataset((root / "Testing").string(), splits.class_names).samples, k,
                                config.max_samples_per_class);
  if (splits.train.empty() || splits.validation.empty())
    throw std::runtime_error("not enough images in " + config.data_dir + " for a training and a validation split");
  return splits;
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

// Everything a resumed run needs, written after every epoch: weights, buffers, optimizer state and the
// callbacks' state. RNG state needs no saving: shuffling and augmentation are derived from (seed, epoch, index)
// and dropout is reseeded from (seed, epoch) at the start of each epoch.
void save_resume_state(const fs::path& path, MobileNetV2& model, const Optimizer& optimizer,
                       const nlohmann::json& trainer_state) {
  SafetensorsFile file;
  for (const NamedParameter& p : model.parameters()) file.add("param." + p.name, p.var->value);
  for (const NamedBuffer& b : model.buffers()) file.add("buffer." + b.name, b.tensor);
  OptimizerState state = optimizer.state();
  for (const auto& [name, tensor] : state.tensors) file.add("optim." + name, tensor);
  nlohmann::json meta = trainer_state;
  meta["optimizer_step_count"] = state.step_count;
  meta["optimizer_learning_rate"] = state.learning_rate;
  file.metadata["trainer_state"] = meta.dump();
  write_safetensors(path.string(), file);
}

nlohmann::json load_resume_state(const fs::path& path, MobileNetV2& model, Optimizer& optimizer) {
  SafetensorsFile file = read_safetensors(path.string());
  auto copy_into = [&](const std::string& name, Tensor& destination) {
    auto found = file.tensors.find(name);
    if (found == file.tensors.end() || found->second.shape() != destination.shape())
      throw std::runtime_error(path.string() + ": missing or mis-shaped " + name);
    std::copy_n(found->second.data(), destination.numel(), destination.data());
  };
  for (NamedParameter& p : model.parameters()) copy_into("param." + p.name, p.var->value);
  for (NamedBuffer& b : model.buffers()) copy_into("buffer." + b.name, b.tensor);
  nlohmann::json meta = nlohmann::json::parse(file.metadata.at("trainer_state"));
  OptimizerState state;
  state.step_count = meta.at("optimizer_step_count");
  state.learning_rate = meta.at("optimizer_learning_rate");
  for (const auto& [name, tensor] : file.tensors)
    if (name.rfind("optim.", 0) == 0) state.tensors[name.substr(6)] = tensor;
  optimizer.load_state(state);
  return meta;
}

int count_correct(const Tensor& logits, const std::vector<int>& labels) {
  const int k = static_cast<int>(logits.dim(1));
  int correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = logits.data() + i * k;
    correct += std::max_element(row, row + k) - row == labels[i];
  }
  return correct;
}

// Validation loss (with the training label smoothing off: the monitored quantity is the plain NLL) and accuracy.
std::pair<double, double> validation_loss_accuracy(const InferenceOutput& out) {
  Tensor probs = apply_temperature(out.logits, 1.0);
  Metrics metrics = compute_metrics(probs, out.labels);
  return {metrics.log_loss, metrics.accuracy};
}

}  // namespace

TrainResult train_model(const TrainConfig& requested, const ProgressCallback& progress,
                        const std::atomic<bool>* cancel) {
  // --- configuration, run directory, resume ---
  TrainConfig config = requested;
  fs::path run_dir = requested.resume_dir.empty() ? fs::path(requested.out_dir) : fs::path(requested.resume_dir);
  if (run_dir.empty()) throw std::invalid_argument("train: an output directory is required (--out)");
  const bool resuming = !requested.resume_dir.empty();
  if (resuming) {
    std::ifstream in(run_dir / "config.json");
    if (!in) throw std::runtime_error("cannot resume: " + (run_dir / "config.json").string() + " not found");
    config = config_from_json(nlohmann::json::parse(in), requested);
    config.epochs = requested.epochs;
  }
  if (config.cache_frozen && (config.augment || config.frozen_blocks == 0))
    throw std::invalid_argument("--cache-frozen needs --no-augment and --frozen-blocks > 0: cached activations of "
                                "the frozen prefix are computed once per image, so they cannot see augmentation");
  if (config.epochs < 1 || config.batch_size < 1) throw std::invalid_argument("epochs and batch size must be >= 1");
  fs::create_directories(run_dir / "resume");
  if (!resuming) std::ofstream(run_dir / "config.json") << config_to_json(config).dump(2) << "\n";
  // A budget for this thread only (engine/parallel.h), not the process-wide count: the server retrains on a worker
  // thread with 1 thread while its predictions keep every core.
  if (config.threads > 0) set_thread_num_threads(config.threads);

  Splits splits = load_splits(config);
  const int num_classes = static_cast<int>(splits.class_names.size());

  MobileNetV2Config model_config;
  model_config.width_mult = config.width_mult;
  model_config.num_classes = num_classes;
  model_config.seed = config.seed;
  MobileNetV2 model(model_config);
  if (!config.weights.empty()) load_weights_into(model, config.weights);
  model.freeze_blocks(config.frozen_blocks);
  std::vector<NamedParameter> trainable;
  for (const NamedParameter& p : model.parameters())
    if (p.var->requires_grad) trainable.push_back(p);
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config, trainable);

  ReduceLROnPlateauOptions plateau_options;
  plateau_options.factor = static_cast<float>(config.lr_factor);
  plateau_options.patience = config.lr_patience;
  plateau_options.min_lr = 1e-6f;
  ReduceLROnPlateau plateau(plateau_options);
  EarlyStoppingOptions stop_options;
  stop_options.patience = config.patience;
  EarlyStopping early_stopping(stop_options);
  nlohmann::json history = nlohmann::json::array();
  int first_epoch = 0;
  const fs::path resume_path = run_dir / "resume" / "state.safetensors";
  const fs::path best_path = run_dir / "best.safetensors";
  if (resuming) {
    nlohmann::json state = load_resume_state(resume_path, model, *optimizer);
    plateau.load_state(state.at("plateau"));
    early_stopping.load_state(state.at("early_stopping"));
    history = state.at("history");
    first_epoch = state.at("epoch").get<int>() + 1;
  }

  // --- data ---
  DataLoaderConfig train_options;
  train_options.batch_size = config.batch_size;
  train_options.image_size = config.image_size;
  train_options.shuffle = true;
  train_options.drop_last = splits.train.size() > static_cast<size_t>(config.batch_size);
  train_options.augment = AugmentConfig{.enabled = config.augment};
  train_options.seed = config.seed;
  std::unique_ptr<FrozenPrefixCache> cache;
  if (config.cache_frozen) {
    auto report = [&](int done, int total) {
      if (progress) progress({.phase = "cache", .batch = done, .batches = total});
    };
    cache = std::make_unique<FrozenPrefixCache>(model, splits.train, config, report);
  }
  DataLoader train_loader(splits.train, train_options);
  std::ofstream log(run_dir / "train_log.jsonl", std::ios::app);

  TrainResult result;
  Tape tape;
  for (int epoch = first_epoch; epoch < config.epochs && !early_stopping.stopped(); ++epoch) {
    model.set_training(true);
    model.reseed_dropout(config.seed * 7919u + epoch);
    const auto epoch_start = Clock::now();
    double loss_sum = 0.0;
    int64_t seen = 0, correct = 0;
    const int batches = cache ? cache->batches_per_epoch(config.batch_size) : train_loader.batches_per_epoch();
    train_loader.start_epoch(epoch);
    for (int b = 0; b < batches; ++b) {
      if (cancel && cancel->load()) {
        result.cancelled = true;
        return result;
      }
      Batch batch;
      if (cache) {
        if (!cache->batch(epoch, b, config.batch_size, batch)) break;
      } else if (std::optional<Batch> next = train_loader.next()) {
        batch = std::move(*next);
      } else {
        break;
      }
      // forward -> loss -> zero_grad -> backward -> step
      tape.clear();
      Var input = make_var(batch.images);
      Var logits = cache ? model.forward_head(tape, model.forward_blocks(tape, input, config.frozen_blocks,
                                                                          MobileNetV2::kNumBlocks))
                         : model.forward(tape, input);
      Var loss = softmax_cross_entropy(tape, logits, batch.labels, static_cast<float>(config.label_smoothing));
      for (const NamedParameter& p : trainable) p.var->grad = Tensor();  // zero_grad without a memset pass
      tape.backward(loss);
      optimizer->step();

      const int n = static_cast<int>(batch.labels.size());
      loss_sum += loss->value[0] * n;
      correct += count_correct(logits->value, batch.labels);
      seen += n;
      if (progress) {
        const double elapsed = seconds_since(epoch_start);
        TrainProgress p{.phase = "train", .epoch = epoch + 1, .epochs = config.epochs, .batch = b + 1,
                        .batches = batches, .loss = loss_sum / seen, .accuracy = double(correct) / seen,
                        .images_per_second = seen / elapsed, .eta_seconds = elapsed / (b + 1) * (batches - b - 1),
                        .learning_rate = optimizer->learning_rate()};
        progress(p);
      }
    }
    tape.clear();
    const double train_seconds = seconds_since(epoch_start);

    // validation -> schedule -> early stopping -> checkpoint
    InferenceOutput val = run_inference(model, splits.validation, config.image_size, config.batch_size);
    auto [val_loss, val_accuracy] = validation_loss_accuracy(val);
    const float lr_used = optimizer->learning_rate();
    optimizer->set_learning_rate(plateau.step(static_cast<float>(val_loss), lr_used));
    early_stopping.step(static_cast<float>(val_loss));
    if (early_stopping.is_best())
      save_model_file(best_path.string(), model, config.image_size, splits.class_names,
                      {{"best_epoch", std::to_string(epoch + 1)}});
    nlohmann::json summary = {{"epoch", epoch + 1}, {"train_loss", loss_sum / std::max<int64_t>(seen, 1)},
                              {"train_accuracy", double(correct) / std::max<int64_t>(seen, 1)},
                              {"val_loss", val_loss}, {"val_accuracy", val_accuracy}, {"learning_rate", lr_used},
                              {"train_seconds", train_seconds}, {"images_per_second", seen / train_seconds},
                              {"data_wait_seconds", cache ? 0.0 : train_loader.wait_seconds()},
                              {"epoch_seconds", seconds_since(epoch_start)}, {"best", early_stopping.is_best()}};
    history.push_back(summary);
    log << summary.dump() << "\n" << std::flush;
    save_resume_state(resume_path, model, *optimizer,
                      {{"epoch", epoch}, {"plateau", plateau.state()}, {"early_stopping", early_stopping.state()},
                       {"history", history}});
    if (progress) progress({.phase = "epoch", .epoch = epoch + 1, .epochs = config.epochs, .epoch_summary = summary});
  }

  // --- best model, calibration, OOD, test ---
  if (!fs::exists(best_path)) throw std::runtime_error("training produced no checkpoint");
  load_weights_into(model, best_path.string());
  if (progress) progress({.phase = "calibrate"});
  InferenceOutput val = run_inference(model, splits.validation, config.image_size, config.batch_size);
  TemperatureFit temperature = fit_temperature(val.logits, val.labels);
  // OOD statistics come from training images (no augmentation), the threshold from validation images.
  std::vector<Sample> ood_fit_samples = cap_per_class(splits.train, num_classes, 400);
  InferenceOutput fit = run_inference(model, ood_fit_samples, config.image_size, config.batch_size);
  OodDetector ood = OodDetector::fit(fit.features, fit.labels, num_classes);
  ood.calibrate_threshold(val.features);

  nlohmann::json metrics;
  metrics["validation"] = to_json(compute_metrics(apply_temperature(val.logits, temperature.temperature), val.labels),
                                  splits.class_names);
  metrics["temperature"] = {{"value", temperature.temperature}, {"val_nll_before", temperature.nll_before},
                            {"val_nll_after", temperature.nll_after}};
  metrics["history"] = history;
  metrics["best_epoch"] = early_stopping.best_epoch() + 1;
  metrics["config"] = config_to_json(config);
  metrics["splits"] = {{"train", splits.train.size()}, {"validation", splits.validation.size()},
                       {"test", splits.test.size()}};
  std::optional<InferenceOutput> test;
  if (!splits.test.empty()) {
    if (progress) progress({.phase = "test"});
    test = run_inference(model, splits.test, config.image_size, config.batch_size);
    metrics["test"] = to_json(compute_metrics(apply_temperature(test->logits, temperature.temperature), test->labels),
                              splits.class_names);
  }

  std::map<std::string, std::string> metadata = ood.metadata();
  metadata["temperature"] = std::to_string(temperature.temperature);
  metadata["metrics"] = metrics.dump();
  metadata["created_at"] = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                              std::chrono::system_clock::now().time_since_epoch()).count());
  result.model_path = (run_dir / "model.safetensors").string();
  save_model_file(result.model_path, model, config.image_size, splits.class_names, metadata, ood.to_tensors());
  std::ofstream(run_dir / "metrics.json") << metrics.dump(2) << "\n";
  write_run_report(run_dir.string(), model, config.image_size, splits.class_names, metrics,
                   test ? *test : val);
  result.metrics = metrics;
  if (progress) progress({.phase = "done"});
  return result;
}

}  // namespace mriscan
