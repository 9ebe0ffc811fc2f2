// `mriscan calibrate-sets`: gives a model file trained before prediction sets existed what training's end now
// writes (train/prediction_sets.h): the conformal scores fitted on the validation split, carved from Training again
// exactly as the model's training carved it (its recorded configuration), the sets measured on Testing and on
// Testing without copies of Training, and the metrics and model card that include them.
// What it is not: a retraining (the weights, temperature and out-of-distribution check are untouched) or a fit on
// Testing (Testing is only measured, as training measures it).
#include <filesystem>
#include <iostream>
#include <optional>

#include "eval/dedup_testing.h"
#include "eval/metrics.h"
#include "eval/set_report.h"
#include "infer/calibration.h"
#include "io/safetensors.h"
#include "models/model_file.h"
#include "tools/command.h"
#include "tools/command_line.h"
#include "train/model_card.h"
#include "train/prediction_sets.h"
#include "train/splits.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan calibrate-sets --model FILE [--out FILE] [options]

Adds prediction sets (docs/conformal.md) to a model file written before they existed. The validation split is
carved from Training again as the model's training carved it (the data folder, validation fraction, seed and cap
recorded in the file's metrics), the conformal scores are fitted on it (never on Testing), the sets are measured on
Testing and on Testing without copies of Training, and the file is written with the scores (metadata "conformal"),
its metrics and its model card updated. FILE is replaced atomically unless --out names another file.
)";

struct CalibrateOptions {
  std::string model, out, data;  // out: empty for in place; data: empty for the recorded folder
  int batch = 32;
  bool json = false;
};

void add_options(CommandLine& cli, CalibrateOptions& o) {
  cli.add_option("--model", o.model, "the model file (required)")->type_name("FILE")->required();
  cli.add_option("--out", o.out, "write the result here instead of replacing FILE")->type_name("FILE");
  cli.add_option("--data", o.data, "the dataset root, if not where the model's training read it")->type_name("DIR");
  cli.add_option("--batch", o.batch, "batch size (32)")->type_name("N");
  cli.add_flag("--json", o.json, "print the sets' reports as one JSON document on stdout");
}

// The training configuration the file records (metrics.config), with --data over its data folder.
TrainConfig recorded_config(const ModelFileInfo& info, const CalibrateOptions& o, nlohmann::json& metrics) {
  if (!info.metadata.count("metrics")) throw CommandError(o.model + " records no training run (no metrics)");
  metrics = nlohmann::json::parse(info.metadata.at("metrics"));
  if (!metrics.contains("config")) throw CommandError(o.model + " records no training configuration");
  TrainConfig config = train_config_from_json(metrics["config"], TrainConfig{});
  if (!o.data.empty()) config.data_dir = o.data;
  if (!std::filesystem::is_directory(config.data_dir))
    throw CommandError("the training data folder " + config.data_dir + " is missing: give it with --data");
  return config;
}

// The split must be the one training made: same classes, same validation size; a different accuracy is reported.
void check_split(const Splits& splits, const ModelFileInfo& info, const nlohmann::json& metrics,
                 const InferenceOutput& val, double temperature) {
  if (splits.class_names != info.class_names)
    throw CommandError("the data's classes differ from the model's: not the data it was trained on");
  const size_t recorded = metrics.contains("splits") ? metrics["splits"].value("validation", size_t{0}) : 0;
  if (recorded != 0 && recorded != splits.validation.size())
    throw CommandError("the validation split has " + std::to_string(splits.validation.size()) +
                       " images, training's had " + std::to_string(recorded) + ": not the data it was trained on");
  const double accuracy = compute_metrics(apply_temperature(val.logits, temperature), val.labels).accuracy;
  std::cerr << "validation: " << val.labels.size() << " images, accuracy " << accuracy << " (training recorded "
            << metrics.value("validation", nlohmann::json::object()).value("accuracy", 0.0) << ")\n";
}

InferenceOutput infer(MobileNetV2& model, const std::vector<Sample>& samples, int image_size, int batch,
                      const char* what) {
  InferenceOutput out = run_inference(model, samples, image_size, batch, [what](int done, int total) {
    std::cerr << "\r" << what << " " << done << "/" << total << std::flush;
  });
  std::cerr << "\n";
  return out;
}

// The file's tensors and metadata as they are, with the three entries replaced; written atomically.
void write_with_sets(const CalibrateOptions& o, const PredictionSetFit& fit, nlohmann::json metrics,
                     const std::vector<std::string>& class_names) {
  SafetensorsFile file = read_safetensors(o.model);
  metrics["prediction_sets"] = fit.metrics;
  file.metadata["conformal"] = fit.record.dump();
  file.metadata["metrics"] = metrics.dump();
  file.metadata["model_card"] = model_card_markdown(metrics, class_names);
  write_safetensors(o.out.empty() ? o.model : o.out, file);
}

int run_calibrate_sets(const std::vector<std::string>& args) {
  CalibrateOptions o;
  CommandLine cli(kSynopsis);
  add_options(cli, o);
  if (cli.parse_arguments(args) == Parsed::help_printed) return 0;
  ModelFileInfo info;
  auto model = load_model_file(o.model, &info);
  nlohmann::json metrics;
  const TrainConfig config = recorded_config(info, o, metrics);
  const Splits splits = load_splits(config);
  // As the Classifier reads it: the sets are made on these probabilities.
  const float temperature = info.metadata.count("temperature") ? std::stof(info.metadata.at("temperature")) : 1.0f;
  const InferenceOutput val = infer(*model, splits.validation, info.image_size, o.batch, "validation");
  check_split(splits, info, metrics, val, temperature);
  std::optional<OodCheck> ood;
  if (OodCheck::present_in(info.extra_tensors)) ood = OodCheck::from_tensors(info.extra_tensors, info.metadata);
  std::optional<InferenceOutput> test, dedup;
  if (!splits.test.empty()) {
    test = infer(*model, splits.test, info.image_size, o.batch, "Testing");
    dedup = without_training_copies(*test, config.data_dir);
  }
  const PredictionSetFit fit = fit_prediction_sets({.validation = val,
                                                    .test = test ? &*test : nullptr,
                                                    .test_dedup = dedup && !dedup->labels.empty() ? &*dedup : nullptr,
                                                    .ood = ood ? &*ood : nullptr,
                                                    .temperature = temperature,
                                                    .num_classes = static_cast<int>(info.class_names.size())});
  if (fit.record.is_null()) throw CommandError("the out-of-distribution check answers no validation scan");
  write_with_sets(o, fit, metrics, info.class_names);
  if (o.json) {
    std::cout << nlohmann::json{{"model", o.out.empty() ? o.model : o.out}, {"prediction_sets", fit.metrics}}.dump(2)
              << "\n";
    return 0;
  }
  for (const char* split : {"validation", "test", "test_dedup"})
    if (fit.metrics.contains(split)) std::cout << split << ": " << format_set_table(fit.metrics[split]);
  std::cout << "written to " << (o.out.empty() ? o.model : o.out) << "\n";
  return 0;
}

const RegisterCommand kRegister(
    {"calibrate-sets", "add prediction sets (fitted on validation) to a model file trained without them",
     run_calibrate_sets});

}  // namespace
}  // namespace mriscan
