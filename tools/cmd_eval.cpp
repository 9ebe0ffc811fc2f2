// `mriscan eval`: metrics of a model file on a labelled folder (never used for model selection).
// What it is not: the metrics themselves (eval/metrics.h), the out-of-distribution report (eval/ood_report.h) or
// the prediction sets' report (eval/set_report.h).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>

#include "eval/metrics.h"
#include "eval/ood_report.h"
#include "eval/set_report.h"
#include "infer/calibration.h"
#include "infer/inference.h"
#include "models/model_file.h"
#include "tools/command.h"
#include "tools/command_line.h"

namespace mriscan {
namespace {

namespace fs = std::filesystem;

const char* kSynopsis = R"(usage: mriscan eval --model FILE [options]

Evaluates FILE on DIR (a folder of class folders, or a dataset root, whose Testing/ is then used; default:
../shared/data/brain-tumor-mri/Testing): accuracy with a 95% Wilson interval, per-class and macro/weighted
precision, recall and F1, one-vs-rest ROC-AUC, confusion matrix, log loss and expected calibration error, with
the model's stored temperature applied; for a model file with conformal scores, the prediction sets at 0.05 and
0.01 (docs/conformal.md): coverage, mean set size, singleton and empty shares on the scans the model answers.
)";

struct EvalOptions {
  std::string model, data, only, class_names;  // data: empty for the ../shared default
  int batch = 32;
  bool json = false;
};

void add_options(CommandLine& cli, EvalOptions& o) {
  cli.add_option("--model", o.model, "the model file (required)")->type_name("FILE")->required();
  cli.add_option("--data", o.data,
                 "class folders, or a dataset root whose Testing/ is used (../shared/data/brain-tumor-mri)")
      ->type_name("DIR");
  cli.add_option("--only", o.only,
                 "only the images listed (one path a line, relative to DIR's parent or absolute), e.g. the "
                 "de-duplicated Testing list of `mriscan data check`")
      ->type_name("LIST");
  cli.add_option("--batch", o.batch, "batch size (32)")->type_name("N");
  cli.add_option("--class-names", o.class_names, "class names of a model file without them (a torchvision state dict)")
      ->type_name("A,B,..");
  cli.add_flag("--json", o.json, "print the metrics as one JSON document on stdout");
}

// Keeps the samples whose file is in the list at `list_path` (paths relative to data's parent, or absolute).
void keep_listed(std::vector<Sample>& samples, const std::string& list_path, const fs::path& data) {
  std::ifstream list(list_path);
  if (!list) throw CommandError("cannot read --only list " + list_path);
  std::set<std::string> wanted;
  for (std::string line; std::getline(list, line);)
    if (!line.empty())
      wanted.insert(
          fs::weakly_canonical(fs::path(line).is_absolute() ? fs::path(line) : data.parent_path() / line).string());
  std::erase_if(samples, [&](const Sample& s) { return !wanted.count(fs::weakly_canonical(s.path).string()); });
  if (samples.empty()) throw CommandError("no image of " + data.string() + " is in the --only list");
}

struct EvalResult {
  InferenceOutput output;
  Metrics metrics;
  double temperature = 1.0;
  nlohmann::json ood;   // null when the model file has no out-of-distribution check
  nlohmann::json sets;  // null when the model file has no conformal scores
};

void print_result(const EvalResult& r, const EvalOptions& o, const ModelFileInfo& info, const fs::path& data) {
  if (o.json) {
    nlohmann::json j = to_json(r.metrics, info.class_names);
    j["model"] = o.model;
    j["data"] = data.string();
    j["temperature"] = r.temperature;
    j["skipped"] = r.output.skipped;
    j["ood"] = r.ood;
    j["prediction_sets"] = r.sets;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "model " << o.model << " on " << data.string() << " (" << r.output.labels.size()
            << " images, T = " << r.temperature << ")\n"
            << format_table(r.metrics, info.class_names);
  for (const std::string& skipped : r.output.skipped) std::cout << "skipped: " << skipped << "\n";
  if (!r.ood.is_null()) std::cout << "\n" << format_ood_table(r.ood);
  if (!r.sets.is_null()) std::cout << "\n" << format_set_table(r.sets);
}

// The prediction sets measured on `output` (the scans `ood` answers), or null for a file without conformal scores.
nlohmann::json prediction_set_report(const ModelFileInfo& info, const InferenceOutput& output, double temperature,
                                     const OodCheck* ood) {
  if (!info.metadata.count("conformal")) return nullptr;
  const ConformalSets sets = ConformalSets::from_record(nlohmann::json::parse(info.metadata.at("conformal")));
  return set_report(sets, output, static_cast<float>(temperature), ood);  // in float, as the Classifier applies it
}

int run_eval(const std::vector<std::string>& args) {
  EvalOptions o;
  CommandLine cli(kSynopsis);
  add_options(cli, o);
  if (cli.parse_arguments(args) == Parsed::help_printed) return 0;
  fs::path data = o.data.empty() ? fs::path(find_shared_dir()) / "data/brain-tumor-mri" : fs::path(o.data);
  if (fs::is_directory(data / "Testing")) data /= "Testing";
  ModelFileInfo info;
  auto model = load_model_file(o.model, &info, {.class_names = comma_separated("--class-names", o.class_names)});
  for (const std::string& warning : info.warnings) std::cerr << "warning: " << warning << "\n";
  std::vector<Sample> samples = scan_dataset(data.string(), info.class_names).samples;
  if (!o.only.empty()) keep_listed(samples, o.only, data);
  EvalResult r;
  r.output = run_inference(*model, samples, info.image_size, o.batch, [](int done, int total) {
    std::cerr << "\revaluating " << done << "/" << total << std::flush;
  });
  std::cerr << "\n";
  r.temperature = info.metadata.count("temperature") ? std::stod(info.metadata.at("temperature")) : 1.0;
  r.metrics = compute_metrics(apply_temperature(r.output.logits, r.temperature), r.output.labels);
  // The out-of-distribution check on these scans and on generated non-MRI pictures (nothing is tuned here).
  std::optional<OodCheck> ood;
  if (OodCheck::present_in(info.extra_tensors)) ood = OodCheck::from_tensors(info.extra_tensors, info.metadata);
  if (ood)
    r.ood = ood_report(*model, *ood, r.temperature, info.image_size, {{data.filename().string(), &r.output}});
  r.sets = prediction_set_report(info, r.output, r.temperature, ood ? &*ood : nullptr);
  print_result(r, o, info, data);
  return 0;
}

const RegisterCommand kRegister({"eval", "evaluate a model on a labelled image folder", run_eval});

}  // namespace
}  // namespace mriscan
