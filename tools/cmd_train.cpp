// `mriscan train`: fine-tune MobileNetV2 on a folder of class folders (see train/trainer.h). Its options are
// TrainConfig's field table (train/train_config.h).
#include <iostream>

#include "data/dataset.h"
#include "tools/args.h"
#include "tools/command.h"
#include "tools/progress.h"
#include "train/mpi_collective.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan train --out RUNDIR [options]
       mriscan train --resume RUNDIR [--epochs N]

Fine-tunes MobileNetV2 on DIR/Training (validation carved out of it, stratified and seeded) and evaluates the
best model (chosen on validation loss) once on DIR/Testing.
)";

// The options are the rows of TrainConfig's field table (train/train_config.h), with their defaults, plus --json.
std::vector<Option> train_options() {
  const TrainConfig defaults;
  std::vector<Option> options;
  for (const TrainConfigField& field : train_config_fields()) {
    std::string help = field.help;
    const std::string default_text = field_text(defaults, field);
    if (field.value_name && !default_text.empty() && default_text != "0") help += " (" + default_text + ")";
    options.push_back({field.option, field.value_name ? field.value_name : "", help});
  }
  options.push_back({"json", "", "print the final metrics as one JSON document on stdout"});
  return options;
}

int train_command(const std::vector<std::string>& raw, Collective* world);

// Under an MPI launcher (`mpirun -np N mriscan train ...`) every process runs this command as one data-parallel
// job; an error on any rank ends the whole job with that rank's message instead of leaving the others waiting.
int run_train(const std::vector<std::string>& raw) {
  std::unique_ptr<Collective> world = mpi_world_if_launched();
  if (!world || world->size() == 1) return train_command(raw, world.get());
  try {
    return train_command(raw, world.get());
  } catch (const std::exception& error) {
    world->abort("mriscan train: rank " + std::to_string(world->rank()) + " of " + std::to_string(world->size()) +
                 ": error: " + error.what() + " (ending every rank)");
  }
  return 1;  // not reached: abort ends every process of the job
}

int train_command(const std::vector<std::string>& raw, Collective* world) {
  const std::vector<Option> options = train_options();
  Args args(raw, options);
  if (args.help()) {
    std::cout << usage_text(kSynopsis, options);
    return 0;
  }
  TrainConfig config;
  for (const TrainConfigField& field : train_config_fields()) {
    if (!(field.value_name ? args.has(field.option) : args.flag(field.option))) continue;
    try {
      set_field(config, field, args.get(field.option, ""));
    } catch (const std::invalid_argument& error) {
      throw CommandError(error.what());
    }
  }
  if (config.resume_dir.empty() && config.out_dir.empty()) throw CommandError("missing required option --out");
  if (!args.has("data")) config.data_dir = find_shared_dir() + "/data/brain-tumor-mri";
  config.world = world;
  const bool reports = !world || world->rank() == 0;
  if (world && reports)
    std::cerr << "train: data-parallel over " << world->size() << " processes, " << config.batch_size / world->size()
              << " images each per batch of " << config.batch_size << "\n";

  ProgressPrinter printer;
  TrainResult result = train_model(config, [&](const TrainProgress& p) { printer(p); });
  if (!reports) return 0;
  if (args.flag("json")) {
    std::cout << result.metrics.dump(2) << "\n";
    return 0;
  }
  const auto& val = result.metrics["validation"];
  std::cout << "model: " << result.model_path << "\n";
  std::cout << "validation accuracy: " << 100.0 * val.value("accuracy", 0.0) << "%  (ECE "
            << 100.0 * val.value("ece", 0.0) << "%, temperature " << result.metrics["temperature"]["value"] << ")\n";
  if (result.metrics.contains("test")) {
    const auto& test = result.metrics["test"];
    std::cout << "test accuracy: " << 100.0 * test.value("accuracy", 0.0) << "%  95% CI ["
              << 100.0 * test["accuracy_ci95"][0].get<double>() << ", " << 100.0 * test["accuracy_ci95"][1].get<double>()
              << "]  (" << test.value("num_samples", 0) << " images)\n";
  }
  return 0;
}

const RegisterCommand kRegister({"train", "fine-tune MobileNetV2 on a labelled image folder", run_train});

}  // namespace
}  // namespace mriscan
