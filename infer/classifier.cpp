// Classifier: model file -> network in eval mode (parameters frozen) and its folded snapshot, preprocessing,
// temperature, OOD, Grad-CAM.
#include "infer/classifier.h"

#include <chrono>
#include <stdexcept>

#include "data/preprocess.h"
#include "infer/calibration.h"
#include "infer/conformal.h"
#include "infer/gradcam.h"
#include "models/model_file.h"

namespace mriscan {

namespace {

// The levels every prediction carries: `alpha` first, then each reported level not equal to it; with the qhat of
// each from the file's conformal scores. None when the file has no scores.
std::vector<std::pair<double, double>> set_levels(const nlohmann::json& metadata, double alpha) {
  if (!metadata.contains("conformal")) return {};
  const ConformalSets sets = ConformalSets::from_record(metadata["conformal"]);
  std::vector<std::pair<double, double>> levels = {{alpha, sets.threshold(alpha)}};
  for (double reported : kReportedSetAlphas)
    if (alpha_key(reported) != alpha_key(alpha)) levels.emplace_back(reported, sets.threshold(reported));
  return levels;
}

}  // namespace

std::shared_ptr<Classifier> Classifier::load(const std::string& path, const ModelLoadOptions& options,
                                             double set_alpha) {
  check_alpha(set_alpha);
  std::shared_ptr<Classifier> classifier(new Classifier());
  ModelFileInfo info;
  classifier->model_ = load_model_file(path, &info, options);
  classifier->warnings_ = info.warnings;
  classifier->model_->set_training(false);
  // Prediction never trains: no parameter needs a gradient, so Grad-CAM's backward touches only the feature map.
  for (NamedParameter& p : classifier->model_->parameters()) p.var->requires_grad = false;
  classifier->folded_ = std::make_unique<FoldedMobileNetV2>(*classifier->model_);
  classifier->class_names_ = info.class_names;
  classifier->image_size_ = info.image_size;
  classifier->path_ = path;
  if (info.metadata.count("temperature")) classifier->temperature_ = std::stof(info.metadata.at("temperature"));
  if (OodCheck::present_in(info.extra_tensors))
    classifier->ood_ = std::make_unique<OodCheck>(OodCheck::from_tensors(info.extra_tensors, info.metadata));
  // Metadata values that are JSON documents (metrics, class_names) are parsed; the rest stay strings.
  for (const auto& [key, value] : info.metadata) {
    nlohmann::json parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
    classifier->metadata_[key] =
        parsed.is_discarded() || !(parsed.is_object() || parsed.is_array()) ? nlohmann::json(value) : parsed;
  }
  classifier->set_alpha_ = set_alpha;
  try {
    classifier->set_levels_ = set_levels(classifier->metadata_, set_alpha);
  } catch (const std::invalid_argument& error) {
    throw std::runtime_error(path + ": " + error.what());
  }
  return classifier;
}

std::vector<Prediction> Classifier::predict_folded(const Tensor& batch, Clock::time_point start) const {
  const FoldedOutput out = folded_->forward(batch);  // logits (N, K), pooled features (N, F)
  Tensor probs = apply_temperature(out.logits, temperature_);
  const size_t n = static_cast<size_t>(batch.dim(0));
  const std::vector<OodVerdict> verdicts =
      ood_ ? ood_->check(out.features, image_statistics(batch)) : std::vector<OodVerdict>(n);
  const double elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();

  const int k = static_cast<int>(class_names_.size());
  std::vector<Prediction> predictions(n);
  for (size_t i = 0; i < n; ++i) {
    Prediction& p = predictions[i];
    p.probabilities.assign(probs.data() + i * k, probs.data() + (i + 1) * k);
    p.class_index =
        static_cast<int>(std::max_element(p.probabilities.begin(), p.probabilities.end()) - p.probabilities.begin());
    p.class_name = class_names_[p.class_index];
    p.confidence = p.probabilities[p.class_index];
    p.out_of_distribution = verdicts[i].out_of_distribution;
    p.ood_reasons = verdicts[i].reasons;
    p.ood_score = verdicts[i].feature_score;
    p.ood_threshold = verdicts[i].feature_threshold;
    p.inference_ms = elapsed_ms / n;
    for (const auto& [alpha, qhat] : set_levels_) p.prediction_sets.push_back({alpha, lac_set(p.probabilities, qhat)});
  }
  return predictions;
}

Prediction Classifier::predict(const Image& image) { return predict_batch({image}).front(); }

std::vector<Prediction> Classifier::predict_batch(const std::vector<Image>& images) {
  if (images.empty()) return {};
  const auto start = Clock::now();
  return predict_folded(preprocess_batch(images, image_size_), start);  // (N, S, S, 3)
}

Explanation Classifier::explain(const Image& image, int class_index) {
  std::lock_guard<std::mutex> lock(explain_mutex_);
  const auto start = Clock::now();
  const Tensor input = preprocess_batch({image}, image_size_);  // (1, S, S, 3): one preprocessing for both passes
  Explanation explanation;
  explanation.prediction = predict_folded(input, start).front();
  GradCam cam = grad_cam(*model_, input, class_index >= 0 ? class_index : explanation.prediction.class_index);
  explanation.class_index = cam.class_index;
  explanation.heatmap = cam.heatmap;
  explanation.heatmap_h = cam.height;
  explanation.heatmap_w = cam.width;
  explanation.overlay = overlay_heatmap(image, cam.heatmap.data(), cam.height, cam.width, 0.45f);
  return explanation;
}

}  // namespace mriscan
