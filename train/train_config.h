// TrainConfig: every setting of a training run, and the one table that describes its fields.
//
// The table (train_config_fields) is read by everything that lists the fields: config.json and the metrics'
// "config" (train_config_to_json / train_config_from_json), `mriscan train`'s options and its --help
// (tools/cmd_train.cpp). Adding a field is one struct member plus one table row.
// What it is not: the training loop (train/trainer.h) or a general reflection facility.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "data/dataset.h"
#include "engine/collective.h"

namespace mriscan {

struct TrainConfig {
  std::string data_dir;    // dataset root with Training/ (and optionally Testing/), or a Training folder
  std::string weights;     // initial weights (imported ImageNet backbone or a previous model); empty = random
  std::string out_dir;     // RUNDIR
  std::string resume_dir;  // continue this run: every field with a JSON key comes from its config.json but epochs
  // The defaults are the recipe chosen on validation (docs/results/2026-11-27-recipe-selection.md): at most 20
  // epochs (EarlyStopping's patience may end it sooner), the first 6 at 160 px, AdamW 3e-4 with warm-up and cosine
  // decay over the 20, features.0-3 frozen.
  int epochs = 20;
  int batch_size = 32;
  int image_size = 224;
  float width_mult = 1.0f;
  std::string optimizer = "adamw";     // adamw | adam | sgd
  double learning_rate = 3e-4;         // the peak, reached after the warm-up (cosine), or the start (plateau)
  std::string lr_schedule = "cosine";  // cosine: per-step warm-up + cosine decay | plateau: ReduceLROnPlateau
  double warmup_epochs = 0.5;          // cosine: linear warm-up length, in epochs
  // Progressive resizing: the first low_res_epochs epochs train at low_res_size (or image_size if smaller); the
  // last epoch always trains at image_size, the size validation, calibration and serving use.
  int low_res_epochs = 6;
  int low_res_size = 160;
  double weight_decay = 1e-4;
  double label_smoothing = 0.1;
  double ema_decay =
      0.0;  // > 0: validate and keep an exponential moving average of the weights (optim/weight_average.h)
  std::string precision = "fp32";  // fp32 | bf16: the GEMMs' precision (engine/kernels/matmul_precision.h)
  int frozen_blocks = 4;           // features.0 .. features.(k-1) frozen
  bool cache_frozen = false;  // compute the frozen prefix once per image (requires augment == false)
  bool augment = true;
  double val_fraction = 0.15;
  int patience = 5;     // EarlyStopping
  int lr_patience = 3;  // ReduceLROnPlateau
  double lr_factor = 0.5;
  uint32_t seed = 42;
  int threads = 0;                             // 0 = all cores
  int max_samples_per_class = 0;               // 0 = all (quick runs and tests)
  std::vector<Sample> extra_training_samples;  // uploads (server), appended to the training split; not in the table
  bool evaluate_test = true;
  bool sync_batch_norm = true;  // data-parallel: batch statistics over every process's shard (false: each its own)
  double bucket_mb = 4.0;       // data-parallel: gradient bucket size; 0 = one bucket after backward (no overlap)
  Collective* world = nullptr;  // the processes of a data-parallel run (train/mpi_collective.h); null: this one alone
};

// One row of the table. A bool whose option is a "--no-..." flag is inverted: the flag sets it to false.
struct TrainConfigField {
  using Member = std::variant<std::string TrainConfig::*, int TrainConfig::*, uint32_t TrainConfig::*,
                              float TrainConfig::*, double TrainConfig::*, bool TrainConfig::*>;
  const char* key;         // JSON key in config.json, e.g. "learning_rate"; nullptr: not saved (per invocation)
  const char* option;      // command-line option without "--", e.g. "lr"
  const char* value_name;  // "N", "X", "DIR", ...; nullptr for a flag (bool fields)
  const char* help;        // one line; the default is appended from TrainConfig{}
  Member member;
  bool added_later = false;  // config.json files written before this field existed lack it: see legacy_train_config
};

const std::vector<TrainConfigField>& train_config_fields();

// Sets one field from its command-line text; throws std::invalid_argument naming the option on a bad value.
// For a flag, `text` is ignored and the flag's meaning is applied.
void set_field(TrainConfig& config, const TrainConfigField& field, const std::string& text);

// The field's value as text ("0.001", "adamw", "true"), for --help defaults.
std::string field_text(const TrainConfig& config, const TrainConfigField& field);

// What a run did before each added_later field existed (plateau schedule, no warm-up, no progressive resizing), so
// that resuming an older run continues it as it was trained rather than with today's defaults.
TrainConfig legacy_train_config();

// The fields with a JSON key, as written to config.json; train_config_from_json reads them back over `base`. A
// missing key or a value of the wrong type is an error (a damaged config.json), except the key of a field marked
// added_later, which takes legacy_train_config()'s value.
nlohmann::json train_config_to_json(const TrainConfig& config);
TrainConfig train_config_from_json(const nlohmann::json& json, TrainConfig base);

// A configuration as written by train_config_to_json without the fields whose value is a path on the machine
// that trained (the DIR and FILE ones: data_dir, weights), for answers a server gives to anyone.
nlohmann::json train_config_without_paths(const nlohmann::json& config);

}  // namespace mriscan
