// model_card_markdown: the run's metrics as a Markdown model card (see the header).
#include "train/model_card.h"

#include <cstdio>
#include <sstream>
#include <string>

namespace mriscan {

namespace {

std::string percent(double fraction, int decimals = 2) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f%%", decimals, 100.0 * fraction);
  return text;
}

std::string number(double value, const char* format = "%.3f") {
  char text[32];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

// "99.31% (95% CI 98.70-99.64), macro ROC-AUC 0.999, ECE 0.30%, 1311 images"
std::string metric_line(const nlohmann::json& m) {
  std::string line = percent(m.value("accuracy", 0.0));
  if (m.contains("accuracy_ci95") && m["accuracy_ci95"].size() == 2)
    line += " (95% CI " + number(100.0 * m["accuracy_ci95"][0].get<double>(), "%.2f") + "-" +
            percent(m["accuracy_ci95"][1].get<double>()) + ")";
  if (m.contains("macro_roc_auc") && m["macro_roc_auc"].is_number())
    line += ", macro ROC-AUC " + number(m["macro_roc_auc"].get<double>());
  if (m.contains("ece")) line += ", ECE " + percent(m["ece"].get<double>());
  return line + ", " + std::to_string(m.value("num_samples", 0)) + " images";
}

void confusion_table(std::ostringstream& out, const nlohmann::json& m, const std::vector<std::string>& classes) {
  if (!m.contains("confusion_matrix")) return;
  out << "\n| true \\ predicted |";
  for (const std::string& c : classes) out << " " << c << " |";
  out << "\n|---|";
  for (size_t i = 0; i < classes.size(); ++i) out << "---|";
  out << "\n";
  for (size_t r = 0; r < classes.size() && r < m["confusion_matrix"].size(); ++r) {
    out << "| " << classes[r] << " |";
    for (const auto& v : m["confusion_matrix"][r]) out << " " << v.get<int64_t>() << " |";
    out << "\n";
  }
}

void ood_section(std::ostringstream& out, const nlohmann::json& ood) {
  out << "\n## Inputs that are not brain MRIs\n\n"
         "Every prediction first passes an out-of-distribution check: input statistics (colour, a bright frame, "
         "darkness) against the ranges of the training scans, and the Mahalanobis distance of the network's "
         "features to the nearest class. A flagged input gets no class: the API returns `predicted_class: null`, "
         "the UI says \"this does not look like a brain MRI\". Thresholds were chosen on validation scans (target "
      << percent(ood.value("target_rate", 0.0), 1)
      << " flagged), never on Testing. Measured on genuine scans and on pictures the project generates "
         "(`data/synthetic_negatives.h`):\n\n| input | images | flagged |\n|---|---|---|\n";
  if (ood.contains("scans"))
    for (const auto& [name, r] : ood["scans"].items())
      out << "| " << name << " scans | " << r.value("images", 0) << " | " << percent(r.value("rate", 0.0)) << " |\n";
  if (ood.contains("negatives"))
    for (const auto& [name, r] : ood["negatives"].items())
      out << "| generated " << name << "s | " << r.value("images", 0) << " | " << percent(r.value("rate", 0.0), 1)
          << " |\n";
  out << "\nThe model's top-class confidence (temperature-scaled) on those inputs, had it answered:\n\n"
         "| inputs | count | mean | 5th pct | median | 95th pct |\n|---|---|---|---|---|---|\n";
  if (ood.contains("confidence"))
    for (const auto& [name, d] : ood["confidence"].items()) {
      if (d.value("count", 0) == 0) continue;
      out << "| " << name << " | " << d.value("count", 0) << " | " << number(d.value("mean", 0.0)) << " | "
          << number(d.value("p05", 0.0)) << " | " << number(d.value("p50", 0.0)) << " | " << number(d.value("p95", 0.0))
          << " |\n";
    }
  out << "\nThe generated pictures are a floor on what the check misses, not a guarantee: real photographs and "
         "screenshots can be stranger. Other MRI sequences, other body parts and other scanners were not tested.\n";
}

// One row per split and level of metrics["prediction_sets"] (eval/set_report.h).
void set_rows(std::ostringstream& out, const char* split, const nlohmann::json& report) {
  const nlohmann::json levels = report.value("levels", nlohmann::json::object());
  for (auto it = levels.rbegin(); it != levels.rend(); ++it) {  // keys ascend ("0.01", "0.05"): 95% first
    const std::string& key = it.key();
    const nlohmann::json& level = it.value();
    const nlohmann::json& ci = level["coverage_ci95"];
    out << "| " << split << " | " << percent(1.0 - std::stod(key), 0) << " | " << percent(level.value("coverage", 0.0))
        << " (" << number(100.0 * ci[0].get<double>(), "%.2f") << "-" << percent(ci[1].get<double>()) << ") | "
        << percent(level["guarantee"][0].get<double>()) << "-" << percent(level["guarantee"][1].get<double>()) << " | "
        << number(level.value("mean_set_size", 0.0)) << " | " << percent(level.value("singleton_share", 0.0)) << " | "
        << percent(level.value("empty_share", 0.0)) << " |\n";
  }
}

void sets_section(std::ostringstream& out, const nlohmann::json& sets) {
  const nlohmann::json validation = sets.value("validation", nlohmann::json::object());
  out << "\n## Prediction sets\n\n"
         "Besides its class, every answer carries sets of classes that hold the true class with probability at "
         "least 1 - alpha, for alpha = 5% and 1% (split conformal prediction with the score 1 - p_class on the "
         "calibrated probabilities). The thresholds come from the "
      << validation.value("calibration_scans", 0)
      << " validation scans the out-of-distribution check answers, never from Testing; the guarantee holds on "
         "average over such calibrations, for scans exchangeable with them (drawn alike), and over all classes "
         "together, not per class. An empty set means no class is plausible enough at that level. Validation "
         "coverage is in-sample (at least 1 - alpha by construction); Testing measures it, on the scans answered:\n\n"
         "| split | level | coverage (95% CI) | guaranteed | mean set size | singletons | empty |\n"
         "|---|---|---|---|---|---|---|\n";
  set_rows(out, "validation", validation);
  if (sets.contains("test")) set_rows(out, "Testing (official)", sets["test"]);
  if (sets.contains("test_dedup")) set_rows(out, "Testing without copies in Training", sets["test_dedup"]);
}

}  // namespace

std::string model_card_markdown(const nlohmann::json& metrics, const std::vector<std::string>& class_names) {
  std::ostringstream out;
  const nlohmann::json config = metrics.value("config", nlohmann::json::object());
  out << "# Model card: mriscan MobileNetV2 brain-tumour MRI classifier\n\n"
         "**Not a medical device.** This model has not been clinically validated or approved by any regulator. It "
         "must not be used to diagnose, treat or triage patients. It is a research and teaching artefact.\n\n"
         "## Intended use\n\n"
         "Classifying single axial brain MRI slices, as JPEG or PNG, into ";
  for (size_t i = 0; i < class_names.size(); ++i)
    out << (i ? (i + 1 == class_names.size() ? " or " : ", ") : "") << class_names[i];
  out << ", for studying CPU training and inference and the behaviour of such classifiers. Not intended for: "
         "clinical decisions, other modalities or body parts, or patients unlike the public dataset below.\n\n"
         "## Model\n\nMobileNetV2 (width "
      << config.value("width_mult", 1.0) << ", " << config.value("image_size", 224) << "x"
      << config.value("image_size", 224)
      << " input), ImageNet weights fine-tuned with mriscan's own C++ engine. Recipe: " << config.value("epochs", 0)
      << " epochs (" << config.value("low_res_epochs", 0) << " at " << config.value("low_res_size", 0) << " px), "
      << config.value("optimizer", std::string("?")) << ", " << config.value("lr_schedule", std::string("plateau"))
      << " schedule, peak learning rate " << config.value("learning_rate", 0.0) << ", batch "
      << config.value("batch_size", 0) << ", label smoothing " << config.value("label_smoothing", 0.0) << ", seed "
      << config.value("seed", 0);
  if (const int frozen = config.value("frozen_blocks", 0); frozen > 0)
    out << ", features.0-" << frozen - 1 << " frozen";
  if (config.value("precision", std::string("fp32")) == "bf16")
    out << ", matrix products with bfloat16 inputs and float32 sums (--precision bf16)";
  // EarlyStopping may end a run before its configured maximum: say so rather than claim epochs that never ran.
  const int epochs_run = metrics.contains("history") ? static_cast<int>(metrics["history"].size()) : 0;
  if (epochs_run > 0 && epochs_run < config.value("epochs", 0))
    out << "; early stopping ended it after " << epochs_run << " epochs";
  out << "; best epoch on validation loss: " << metrics.value("best_epoch", 0) << ".";
  if (metrics.contains("train_seconds"))
    out << " Training took " << number(metrics["train_seconds"].get<double>() / 60.0, "%.1f") << " minutes"
        << (metrics.contains("machine") ? " on " + metrics["machine"].get<std::string>() : std::string()) << ".";
  out << "\n\n## Data\n\n"
         "The Kaggle \"Brain Tumor MRI Dataset\" (Nickparvar; CC0), which merges the figshare (Cheng et al.), "
         "SARTAJ and Br35H collections, resized to 224x224. Known defect: it holds duplicates. 217 of the 1311 "
         "Testing images have a byte-identical copy in Training and more are near copies (the same slice "
         "re-encoded), so accuracy on the official Testing split is inflated by leakage; the de-duplicated figure "
         "below counts only Testing images with no exact or near copy in Training (`mriscan data check`).\n\n"
         "Split: validation is carved out of Training (stratified, seeded, "
      << percent(config.value("val_fraction", 0.0), 0) << "); it chose the best epoch, the temperature and the "
      << "out-of-distribution thresholds. Testing was evaluated once, after everything was chosen.";
  if (metrics.contains("splits"))
    out << " Images: " << metrics["splits"].value("train", 0) << " training, "
        << metrics["splits"].value("validation", 0) << " validation, " << metrics["splits"].value("test", 0)
        << " Testing.";
  out << "\n\n## Performance\n\n| split | result |\n|---|---|\n";
  if (metrics.contains("validation")) out << "| validation | " << metric_line(metrics["validation"]) << " |\n";
  if (metrics.contains("test"))
    out << "| Testing (official) | " << metric_line(metrics["test"]) << " |\n";
  else
    out << "| Testing | not evaluated in this run |\n";
  if (metrics.contains("test_dedup"))
    out << "| Testing without copies in Training | " << metric_line(metrics["test_dedup"]) << " |\n";
  if (metrics.contains("test")) {
    out << "\nConfusion matrix on Testing:\n";
    confusion_table(out, metrics["test"], class_names);
  }
  if (metrics.contains("temperature"))
    out << "\n## Calibration\n\nProbabilities are temperature-scaled with T = "
        << number(metrics["temperature"].value("value", 1.0)) << " (fitted on validation: NLL "
        << number(metrics["temperature"].value("val_nll_before", 0.0), "%.4f") << " -> "
        << number(metrics["temperature"].value("val_nll_after", 0.0), "%.4f")
        << "). ECE is the expected calibration error over 15 equal-width confidence bins.\n";
  if (metrics.contains("prediction_sets")) sets_section(out, metrics["prediction_sets"]);
  if (metrics.contains("ood")) ood_section(out, metrics["ood"]);
  out << "\n## Limitations\n\n"
         "One public dataset of unknown scanners and protocols; single slices, not volumes; four classes only (any "
         "other finding is forced into one of them, or flagged as out of distribution at best). Grad-CAM heatmaps "
         "show where the network looked, not why it is right.\n";
  return out.str();
}

}  // namespace mriscan
