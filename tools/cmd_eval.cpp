// `mriscan eval`: metrics of a model file on a labelled folder (never used for model selection).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "eval/metrics.h"
#include "eval/ood_report.h"
#include "infer/calibration.h"
#include "infer/inference.h"
#include "models/model_file.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan eval --model FILE [options]

Evaluates FILE on DIR (a folder of class folders, or a dataset root, whose Testing/ is then used; default:
../shared/data/brain-tumor-mri/Testing): accuracy with a 95% Wilson interval, per-class and macro/weighted
precision, recall and F1, one-vs-rest ROC-AUC, confusion matrix, log loss and expected calibration error, with
the model's stored temperature applied.
)";

const std::vector<Option> kOptions = {
    {"model", "FILE", "the model file (required)"},
    {"data", "DIR", "class folders, or a dataset root whose Testing/ is used (../shared/data/brain-tumor-mri)"},
    {"only", "LIST",
     "only the images listed (one path a line, relative to DIR's parent or absolute), e.g. the "
     "de-duplicated Testing list of `mriscan data check`"},
    {"batch", "N", "batch size (32)"},
    {"class-names", "A,B,..", "class names of a model file without them (a torchvision state dict)"},
    {"json", "", "print the metrics as one JSON document on stdout"},
};

int run_eval(const std::vector<std::string>& raw) {
  Args args(raw, kOptions);
  if (args.help()) {
    std::cout << usage_text(kSynopsis, kOptions);
    return 0;
  }
  namespace fs = std::filesystem;
  const std::string model_path = args.require("model");
  fs::path data =
      args.has("data") ? fs::path(args.get("data", "")) : fs::path(find_shared_dir()) / "data/brain-tumor-mri";
  if (fs::is_directory(data / "Testing")) data /= "Testing";
  ModelFileInfo info;
  auto model = load_model_file(model_path, &info, {.class_names = args.get_list("class-names")});
  for (const std::string& warning : info.warnings) std::cerr << "warning: " << warning << "\n";
  Dataset dataset = scan_dataset(data.string(), info.class_names);
  std::vector<Sample> samples = dataset.samples;
  if (args.has("only")) {
    std::ifstream list(args.get("only", ""));
    if (!list) throw CommandError("cannot read --only list " + args.get("only", ""));
    std::set<std::string> wanted;
    for (std::string line; std::getline(list, line);)
      if (!line.empty())
        wanted.insert(
            fs::weakly_canonical(fs::path(line).is_absolute() ? fs::path(line) : data.parent_path() / line).string());
    std::erase_if(samples, [&](const Sample& s) { return !wanted.count(fs::weakly_canonical(s.path).string()); });
    if (samples.empty()) throw CommandError("no image of " + data.string() + " is in the --only list");
  }
  InferenceOutput out =
      run_inference(*model, samples, info.image_size, args.get_int("batch", 32),
                    [](int done, int total) { std::cerr << "\revaluating " << done << "/" << total << std::flush; });
  std::cerr << "\n";
  const double temperature = info.metadata.count("temperature") ? std::stod(info.metadata.at("temperature")) : 1.0;
  Metrics metrics = compute_metrics(apply_temperature(out.logits, temperature), out.labels);
  // The out-of-distribution check on these scans and on generated non-MRI pictures (nothing is tuned here).
  nlohmann::json ood;
  if (OodCheck::present_in(info.extra_tensors))
    ood = ood_report(*model, OodCheck::from_tensors(info.extra_tensors, info.metadata), temperature, info.image_size,
                     {{data.filename().string(), &out}});
  if (args.flag("json")) {
    nlohmann::json j = to_json(metrics, info.class_names);
    j["model"] = model_path;
    j["data"] = data.string();
    j["temperature"] = temperature;
    j["skipped"] = out.skipped;
    j["ood"] = ood;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << "model " << model_path << " on " << data.string() << " (" << out.labels.size()
              << " images, T = " << temperature << ")\n"
              << format_table(metrics, info.class_names);
    for (const std::string& skipped : out.skipped) std::cout << "skipped: " << skipped << "\n";
    if (!ood.is_null()) std::cout << "\n" << format_ood_table(ood);
  }
  return 0;
}

const RegisterCommand kRegister({"eval", "evaluate a model on a labelled image folder", run_eval});

}  // namespace
}  // namespace mriscan
