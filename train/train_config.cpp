// The TrainConfig field table and the conversions that read it (see the header).
#include "train/train_config.h"

#include <sstream>
#include <stdexcept>

namespace mriscan {

const std::vector<TrainConfigField>& train_config_fields() {
  using C = TrainConfig;
  static const std::vector<TrainConfigField> fields = {
      {"data_dir", "data", "DIR", "dataset root with Training/ [Testing/] (default: ../shared/data/brain-tumor-mri)",
       &C::data_dir},
      {"weights", "weights", "FILE", "initial weights (from `mriscan convert` or a previous model); default: random",
       &C::weights},
      {nullptr, "out", "RUNDIR", "where the model, logs, metrics and plots go", &C::out_dir},
      {nullptr, "resume", "RUNDIR", "continue an interrupted run exactly, with its settings (--epochs: the maximum)",
       &C::resume_dir},
      {"epochs", "epochs", "N", "maximum epochs", &C::epochs},
      {"batch_size", "batch", "N", "batch size", &C::batch_size},
      {"image_size", "image-size", "N", "input resolution", &C::image_size},
      {"width_mult", "width", "W", "width multiplier", &C::width_mult},
      {"optimizer", "optimizer", "NAME", "adamw | adam | sgd", &C::optimizer},
      {"learning_rate", "lr", "X", "peak learning rate", &C::learning_rate},
      {"lr_schedule", "lr-schedule", "NAME", "cosine (per-step warm-up, cosine decay) | plateau (ReduceLROnPlateau)",
       &C::lr_schedule, /*added_later=*/true},
      {"warmup_epochs", "warmup-epochs", "X", "cosine: linear warm-up, in epochs", &C::warmup_epochs,
       /*added_later=*/true},
      {"low_res_epochs", "low-res-epochs", "N", "progressive resizing: first N epochs at --low-res-size",
       &C::low_res_epochs, /*added_later=*/true},
      {"low_res_size", "low-res-size", "N", "resolution of the low-resolution epochs", &C::low_res_size,
       /*added_later=*/true},
      {"weight_decay", "weight-decay", "X", "weight decay (decoupled for adamw)", &C::weight_decay},
      {"label_smoothing", "label-smoothing", "X", "label smoothing of the training loss", &C::label_smoothing},
      {"ema_decay", "ema", "X", "validate and save a moving average of the weights, decay X per step (0: off)",
       &C::ema_decay, /*added_later=*/true},
      {"precision", "precision", "NAME", "fp32 | bf16 (GEMM inputs rounded to bfloat16, float32 sums; AVX512-BF16)",
       &C::precision, /*added_later=*/true},
      {"frozen_blocks", "frozen-blocks", "K", "freeze features.0 .. features.K-1", &C::frozen_blocks},
      {"cache_frozen", "cache-frozen", nullptr, "compute the frozen prefix once per image (needs --no-augment)",
       &C::cache_frozen},
      {"augment", "no-augment", nullptr, "no augmentation", &C::augment},
      {"val_fraction", "val-fraction", "X", "validation share of Training (stratified, seeded)", &C::val_fraction},
      {"patience", "patience", "N", "EarlyStopping patience in epochs", &C::patience},
      {"lr_patience", "lr-patience", "N", "plateau: ReduceLROnPlateau patience in epochs", &C::lr_patience},
      {"lr_factor", "lr-factor", "X", "plateau: ReduceLROnPlateau factor", &C::lr_factor},
      {"seed", "seed", "N", "seed of the split, shuffling, augmentation and initialisation", &C::seed},
      {nullptr, "threads", "N", "kernel threads of the training thread (0: all cores)", &C::threads},
      {"max_samples_per_class", "max-per-class", "N", "use at most N images per class (0: all; quick runs)",
       &C::max_samples_per_class},
      {"evaluate_test", "no-test", nullptr, "skip the Testing evaluation", &C::evaluate_test},
      {"sync_batch_norm", "no-sync-bn", nullptr, "under MPI: batch-norm statistics of each process's shard alone",
       &C::sync_batch_norm, /*added_later=*/true},
      {"bucket_mb", "bucket-mb", "MB", "under MPI: gradient all-reduce bucket size (0: one, after backward)",
       &C::bucket_mb, /*added_later=*/true},
  };
  return fields;
}

namespace {

bool is_negated_flag(const TrainConfigField& field) { return std::string(field.option).rfind("no-", 0) == 0; }

// Parses the whole of `text` as a T, or throws naming the option.
template <typename T>
T parse_number(const TrainConfigField& field, const std::string& text) {
  std::istringstream in(text);
  T value{};
  in >> value;
  if (text.empty() || in.fail() || !in.eof() || (std::is_unsigned_v<T> && text.front() == '-'))
    throw std::invalid_argument("option --" + std::string(field.option) + " expects " +
                                (std::is_unsigned_v<T>   ? "a non-negative integer"
                                 : std::is_integral_v<T> ? "an integer"
                                                         : "a number") +
                                ", got '" + text + "'");
  return value;
}

}  // namespace

void set_field(TrainConfig& config, const TrainConfigField& field, const std::string& text) {
  std::visit(
      [&](auto member) {
        using T = std::remove_reference_t<decltype(config.*member)>;
        if constexpr (std::is_same_v<T, bool>) {
          config.*member = !is_negated_flag(field);
        } else if constexpr (std::is_same_v<T, std::string>) {
          config.*member = text;
        } else {
          config.*member = parse_number<T>(field, text);
        }
      },
      field.member);
}

std::string field_text(const TrainConfig& config, const TrainConfigField& field) {
  return std::visit(
      [&](auto member) -> std::string {
        using T = std::remove_reference_t<decltype(config.*member)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return config.*member;
        } else {
          std::ostringstream out;
          out << std::boolalpha << config.*member;
          return out.str();
        }
      },
      field.member);
}

nlohmann::json train_config_to_json(const TrainConfig& config) {
  nlohmann::json json = nlohmann::json::object();
  for (const TrainConfigField& field : train_config_fields())
    if (field.key) std::visit([&](auto member) { json[field.key] = config.*member; }, field.member);
  return json;
}

nlohmann::json train_config_without_paths(const nlohmann::json& config) {
  nlohmann::json kept = config;
  for (const TrainConfigField& field : train_config_fields()) {
    const std::string value_name = field.value_name ? field.value_name : "";
    if (field.key && kept.is_object() && (value_name == "DIR" || value_name == "FILE" || value_name == "RUNDIR"))
      kept.erase(field.key);
  }
  return kept;
}

TrainConfig legacy_train_config() {
  TrainConfig legacy;
  legacy.lr_schedule = "plateau";
  legacy.warmup_epochs = 0.0;
  legacy.low_res_epochs = 0;
  legacy.low_res_size = 160;
  legacy.sync_batch_norm = true;
  legacy.bucket_mb = 4.0;
  legacy.ema_decay = 0.0;
  legacy.precision = "fp32";
  return legacy;
}

TrainConfig train_config_from_json(const nlohmann::json& json, TrainConfig base) {
  const TrainConfig legacy = legacy_train_config();
  if (!json.is_object() || !json.contains("data_dir")) throw std::runtime_error("config: not a training configuration");
  for (const TrainConfigField& field : train_config_fields()) {
    if (!field.key) continue;
    if (!json.contains(field.key) && field.added_later) {  // an older file: the run as it was trained
      std::visit([&](auto member) { base.*member = legacy.*member; }, field.member);
      continue;
    }
    if (!json.contains(field.key))
      throw std::runtime_error(std::string("config: field '") + field.key + "' is missing");
    try {
      std::visit([&](auto member) { json.at(field.key).get_to(base.*member); }, field.member);
    } catch (const nlohmann::json::exception&) {
      throw std::runtime_error(std::string("config: field '") + field.key + "' has the wrong type");
    }
  }
  return base;
}

}  // namespace mriscan
