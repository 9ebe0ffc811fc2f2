// `mriscan predict`: class, confidence, probabilities, prediction sets and OOD flag for image files; optional
// Grad-CAM PNG.
// What it is not: the classifier (infer/classifier.h) or the server's /predict (server/), which answer alike.
#include <cstdio>
#include <iostream>

#include "infer/classifier.h"
#include "tools/command.h"
#include "tools/command_line.h"

namespace mriscan {
namespace {

const char* kSynopsis = R"(usage: mriscan predict --model FILE IMAGE... [options]

Classifies each IMAGE: class, calibrated probabilities, the out-of-distribution score and, for a model file with
conformal scores, the prediction sets (docs/conformal.md): the classes that hold the true one with probability at
least 1 - alpha, for alpha 0.05 and 0.01 (and --alpha A, listed first).
)";

struct PredictOptions {
  std::vector<std::string> images;
  std::string model, class_names, gradcam;
  double alpha = kDefaultSetAlpha;
  bool json = false;
};

void add_options(CommandLine& cli, PredictOptions& o) {
  cli.add_option("IMAGE", o.images, "the image files to classify")->type_name("");
  cli.add_option("--model", o.model, "the model file (required)")->type_name("FILE")->required();
  cli.add_option("--class-names", o.class_names, "class names of a model file without them (a torchvision state dict)")
      ->type_name("A,B,..");
  cli.add_option("--gradcam", o.gradcam, "write the Grad-CAM heatmap of the predicted class over the (first) image")
      ->type_name("OUT.png");
  cli.add_option("--alpha", o.alpha, "the level of the prediction set listed first (0.05)")->type_name("A");
  cli.add_flag("--json", o.json, "print the results as one JSON document on stdout");
}

// {"0.05": ["glioma"], "0.01": ["glioma", "meningioma"]}: each set's class names, keyed by its level.
nlohmann::json sets_json(const Prediction& p, const std::vector<std::string>& names) {
  nlohmann::json sets = nlohmann::json::object();
  for (const PredictionSet& set : p.prediction_sets) {
    sets[alpha_key(set.alpha)] = nlohmann::json::array();
    for (int k : set.classes) sets[alpha_key(set.alpha)].push_back(names[k]);
  }
  return sets;
}

// As the API: no class for an input that is not like the training scans (infer/ood_check.h).
nlohmann::json result_json(const std::string& path, const Prediction& p, const std::vector<std::string>& names) {
  nlohmann::json result = {{"image", path},
                           {"out_of_distribution", p.out_of_distribution},
                           {"ood_reasons", p.ood_reasons},
                           {"ood_score", p.ood_score},
                           {"ood_threshold", p.ood_threshold},
                           {"inference_time_ms", p.inference_ms}};
  if (p.out_of_distribution) {
    result.update({{"predicted_class", nullptr},
                   {"confidence", nullptr},
                   {"probabilities", nullptr},
                   {"prediction_set", nullptr},
                   {"prediction_set_alpha", nullptr},
                   {"prediction_sets", nullptr}});
    return result;
  }
  nlohmann::json probabilities;
  for (size_t k = 0; k < p.probabilities.size(); ++k) probabilities[names[k]] = p.probabilities[k];
  result.update({{"predicted_class", p.class_name},
                 {"confidence", p.confidence},
                 {"probabilities", probabilities},
                 {"prediction_set", nullptr},
                 {"prediction_set_alpha", nullptr},
                 {"prediction_sets", nullptr}});
  if (p.prediction_sets.empty()) return result;
  const double lead = p.prediction_sets.front().alpha;  // the --alpha level's set
  result["prediction_sets"] = sets_json(p, names);
  result["prediction_set"] = result["prediction_sets"][alpha_key(lead)];
  result["prediction_set_alpha"] = lead;
  return result;
}

void print_prediction(const std::string& path, const Prediction& p, const std::vector<std::string>& names) {
  if (p.out_of_distribution) {
    std::string reasons;
    for (const std::string& reason : p.ood_reasons) reasons += (reasons.empty() ? "" : "; ") + reason;
    std::printf("%s: this does not look like a brain MRI, no diagnosis given (%s)  %.1f ms\n", path.c_str(),
                reasons.c_str(), p.inference_ms);
    return;
  }
  std::printf("%s: %s (%.1f%%)  [", path.c_str(), p.class_name.c_str(), 100.0 * p.confidence);
  for (size_t k = 0; k < p.probabilities.size(); ++k)
    std::printf("%s%s %.3f", k ? ", " : "", names[k].c_str(), p.probabilities[k]);
  std::printf("]  %.1f ms\n", p.inference_ms);
  // "  95% set {glioma}  99% set {glioma, meningioma}"
  for (const PredictionSet& set : p.prediction_sets) {
    std::string classes;
    for (int k : set.classes) classes += (classes.empty() ? "" : ", ") + names[k];
    std::printf("  %g%% set {%s}", 100.0 * (1.0 - set.alpha), classes.c_str());
  }
  if (!p.prediction_sets.empty()) std::printf("\n");
}

int run_predict(const std::vector<std::string>& args) {
  PredictOptions o;
  CommandLine cli(kSynopsis);
  add_options(cli, o);
  if (cli.parse_arguments(args) == Parsed::help_printed) return 0;
  if (o.images.empty()) throw CommandError("no image given (see --help)");
  if (!(o.alpha > 0.0 && o.alpha < 1.0)) throw CommandError("--alpha must be in (0, 1)");
  auto classifier =
      Classifier::load(o.model, {.class_names = comma_separated("--class-names", o.class_names)}, o.alpha);
  for (const std::string& warning : classifier->warnings()) std::cerr << "warning: " << warning << "\n";
  nlohmann::json results = nlohmann::json::array();
  for (size_t i = 0; i < o.images.size(); ++i) {
    // A large JPEG is decoded at a reduced DCT scale, as the server does (io/jpeg_decode.h).
    const Image image = load_image(o.images[i], {.min_decoded_side = classifier->image_size()});
    Prediction p;
    if (i == 0 && !o.gradcam.empty()) {
      Explanation explanation = classifier->explain(image);
      write_png(o.gradcam, explanation.overlay);
      p = explanation.prediction;
    } else {
      p = classifier->predict(image);
    }
    results.push_back(result_json(o.images[i], p, classifier->class_names()));
    if (!o.json) print_prediction(o.images[i], p, classifier->class_names());
  }
  if (o.json) std::cout << results.dump(2) << "\n";
  if (!o.gradcam.empty() && !o.json) std::cout << "Grad-CAM written to " << o.gradcam << "\n";
  return 0;
}

const RegisterCommand kRegister({"predict", "classify image files (optionally with Grad-CAM)", run_predict});

}  // namespace
}  // namespace mriscan
