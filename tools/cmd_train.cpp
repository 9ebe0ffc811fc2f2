// `mriscan train`: fine-tune MobileNetV2 on a folder of class folders (see train/trainer.h). Its options are
// TrainConfig's field table (train/train_config.h).
// What it is not: the training loop (train/trainer.h); this parses options and reports.
#include <iostream>
#include <map>

#include "data/dataset.h"
#include "tools/command.h"
#include "tools/command_line.h"
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
// Values are kept as text and set with set_field after parsing, whose messages name the option.
struct TrainOptions {
  std::map<std::string, std::string> texts;  // by option name, for the fields with a value
  bool json = false;
};

void add_options(CommandLine& cli, TrainOptions& o) {
  const TrainConfig defaults;
  for (const TrainConfigField& field : train_config_fields()) {
    const std::string name = std::string("--") + field.option;
    if (!field.value_name) {
      cli.add_flag(name)->description(field.help);  // (add_flag(name, text) would bind the flag to `text`)
      continue;
    }
    std::string help = field.help;
    const std::string default_text = field_text(defaults, field);
    if (!default_text.empty() && default_text != "0") help += " (" + default_text + ")";
    cli.add_option(name, o.texts[field.option], help)->type_name(field.value_name);
  }
  cli.add_flag("--json", o.json, "print the final metrics as one JSON document on stdout");
}

// The options given, over TrainConfig's defaults; the dataset defaults to ../shared's.
TrainConfig train_config(const CommandLine& cli, const TrainOptions& o) {
  TrainConfig config;
  for (const TrainConfigField& field : train_config_fields()) {
    if (cli.count(std::string("--") + field.option) == 0) continue;
    try {
      set_field(config, field, field.value_name ? o.texts.at(field.option) : "");
    } catch (const std::invalid_argument& error) {
      throw CommandError(error.what());
    }
  }
  if (config.resume_dir.empty() && config.out_dir.empty()) throw CommandError("missing required option --out");
  if (cli.count("--data") == 0) config.data_dir = find_shared_dir() + "/data/brain-tumor-mri";
  return config;
}

void print_summary(const TrainResult& result) {
  const auto& val = result.metrics["validation"];
  std::cout << "model: " << result.model_path << "\n";
  std::cout << "validation accuracy: " << 100.0 * val.value("accuracy", 0.0) << "%  (ECE "
            << 100.0 * val.value("ece", 0.0) << "%, temperature " << result.metrics["temperature"]["value"] << ")\n";
  if (result.metrics.contains("test")) {
    const auto& test = result.metrics["test"];
    std::cout << "test accuracy: " << 100.0 * test.value("accuracy", 0.0) << "%  95% CI ["
              << 100.0 * test["accuracy_ci95"][0].get<double>() << ", "
              << 100.0 * test["accuracy_ci95"][1].get<double>() << "]  (" << test.value("num_samples", 0)
              << " images)\n";
  }
}

int train_command(const std::vector<std::string>& args, Collective* world);

// Under an MPI launcher (`mpirun -np N mriscan train ...`) every process runs this command as one data-parallel
// job; an error on any rank ends the whole job with that rank's message instead of leaving the others waiting.
int run_train(const std::vector<std::string>& args) {
  std::unique_ptr<Collective> world = mpi_world_if_launched();
  if (!world || world->size() == 1) return train_command(args, world.get());
  try {
    return train_command(args, world.get());
  } catch (const std::exception& error) {
    world->abort("mriscan train: rank " + std::to_string(world->rank()) + " of " + std::to_string(world->size()) +
                 ": error: " + error.what() + " (ending every rank)");
  }
  return 1;  // not reached: abort ends every process of the job
}

int train_command(const std::vector<std::string>& args, Collective* world) {
  TrainOptions o;
  CommandLine cli(kSynopsis);
  add_options(cli, o);
  if (cli.parse_arguments(args) == Parsed::help_printed) return 0;
  TrainConfig config = train_config(cli, o);
  config.world = world;
  const bool reports = !world || world->rank() == 0;
  if (world && reports)
    std::cerr << "train: data-parallel over " << world->size() << " processes, " << config.batch_size / world->size()
              << " images each per batch of " << config.batch_size << "\n";

  ProgressPrinter printer;
  TrainResult result = train_model(config, [&](const TrainProgress& p) { printer(p); });
  if (!reports) return 0;
  if (o.json)
    std::cout << result.metrics.dump(2) << "\n";
  else
    print_summary(result);
  return 0;
}

const RegisterCommand kRegister({"train", "fine-tune MobileNetV2 on a labelled image folder", run_train});

}  // namespace
}  // namespace mriscan
