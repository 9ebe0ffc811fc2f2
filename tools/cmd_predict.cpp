// `mriscan predict`: class, confidence, probabilities and OOD flag for image files; optional Grad-CAM PNG.
#include <iostream>

#include "infer/classifier.h"
#include "tools/args.h"
#include "tools/command.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan predict --model FILE IMAGE... [options]

Classifies each IMAGE: class, calibrated probabilities and the out-of-distribution score.
)";

const std::vector<Option> kOptions = {
    {"model", "FILE", "the model file (required)"},
    {"class-names", "A,B,..", "class names of a model file without them (a torchvision state dict)"},
    {"gradcam", "OUT.png", "write the Grad-CAM heatmap of the predicted class over the (first) image"},
    {"json", "", "print the results as one JSON document on stdout"},
};

int run_predict(const std::vector<std::string>& raw) {
  Args args(raw, kOptions);
  if (args.help()) {
    std::cout << usage_text(kSynopsis, kOptions);
    return 0;
  }
  if (args.positional().empty()) throw CommandError("no image given (see --help)");
  auto classifier = Classifier::load(args.require("model"), {.class_names = args.get_list("class-names")});
  for (const std::string& warning : classifier->warnings()) std::cerr << "warning: " << warning << "\n";
  nlohmann::json results = nlohmann::json::array();
  for (size_t i = 0; i < args.positional().size(); ++i) {
    const std::string& path = args.positional()[i];
    Image image = load_image(path);
    Prediction p;
    if (i == 0 && args.has("gradcam")) {
      Explanation explanation = classifier->explain(image);
      write_png(args.get("gradcam", ""), explanation.overlay);
      p = explanation.prediction;
    } else {
      p = classifier->predict(image);
    }
    nlohmann::json probabilities;
    for (size_t k = 0; k < p.probabilities.size(); ++k)
      probabilities[classifier->class_names()[k]] = p.probabilities[k];
    nlohmann::json result = {{"image", path},
                             {"out_of_distribution", p.out_of_distribution},
                             {"ood_reasons", p.ood_reasons},
                             {"ood_score", p.ood_score},
                             {"ood_threshold", p.ood_threshold},
                             {"inference_time_ms", p.inference_ms}};
    // As the API: no class for an input that is not like the training scans (infer/ood_check.h).
    if (p.out_of_distribution)
      result.update({{"predicted_class", nullptr}, {"confidence", nullptr}, {"probabilities", nullptr}});
    else
      result.update(
          {{"predicted_class", p.class_name}, {"confidence", p.confidence}, {"probabilities", probabilities}});
    results.push_back(result);
    if (args.flag("json")) continue;
    if (p.out_of_distribution) {
      std::string reasons;
      for (const std::string& reason : p.ood_reasons) reasons += (reasons.empty() ? "" : "; ") + reason;
      std::printf("%s: this does not look like a brain MRI, no diagnosis given (%s)  %.1f ms\n", path.c_str(),
                  reasons.c_str(), p.inference_ms);
      continue;
    }
    std::printf("%s: %s (%.1f%%)  [", path.c_str(), p.class_name.c_str(), 100.0 * p.confidence);
    for (size_t k = 0; k < p.probabilities.size(); ++k)
      std::printf("%s%s %.3f", k ? ", " : "", classifier->class_names()[k].c_str(), p.probabilities[k]);
    std::printf("]  %.1f ms\n", p.inference_ms);
  }
  if (args.flag("json")) std::cout << results.dump(2) << "\n";
  if (args.has("gradcam") && !args.flag("json")) std::cout << "Grad-CAM written to " << args.get("gradcam", "") << "\n";
  return 0;
}

const RegisterCommand kRegister({"predict", "classify image files (optionally with Grad-CAM)", run_predict});

}  // namespace
}  // namespace mriscan
